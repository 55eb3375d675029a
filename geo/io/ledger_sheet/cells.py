"""Cell values as the ledger keeps them: counts typed as "120 套", statuses and blockers in an
office's own words, lists, text; dates go to geo.core.dates.parse_date, the one date parser.

A bad cell raises a ValueError whose message names the problem (CellError here, DateError
from parse_date); the import puts the column's header in front, so a clerk sees which cell.
"""

import re
import unicodedata
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from geo.core.dates import cn_date, parse_date
from geo.core.model import BLOCKER_LABELS, STATUS_LABELS
from geo.io.ledger_sheet.columns import (
    BLOCKER_SPLIT,
    BLOCKER_WORDS,
    LIST_SPLIT,
    NO_BLOCKER_WORDS,
    STATUS_WORDS,
    header_key,
    is_blank,
    text_of,
)


class CellError(ValueError):
    """A cell that cannot be what its column says (a date cell raises parse_date's DateError,
    also a ValueError)."""


def parse_units(value: Any) -> int | None:
    """A count of homes: 120, 120.0, "120", "120 套", "1,200", "１２０"; None when blank."""
    if is_blank(value):
        return None
    if isinstance(value, bool):
        raise CellError(f"{value!r} 不是套数 / not a count")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if value != value or not value.is_integer():
            raise CellError(f"{value:g} 不是整数 / not a whole number")
        number = int(value)
    elif isinstance(value, str):
        word = re.sub(r"\s", "", unicodedata.normalize("NFKC", value))
        match = re.fullmatch(r"(-?)(\d{1,3}(?:,\d{3})+|\d+)(?:\.0+)?(套|户)?", word)
        if not match:
            raise CellError(f"“{value.strip()}”不是整数套数 / not a whole number of homes")
        number = int(match.group(2).replace(",", "")) * (-1 if match.group(1) else 1)
    else:
        raise CellError(f"“{value}”不是套数 / not a count")
    if number < 0:
        raise CellError(f"{number} 是负数 / is negative")
    return number


def parse_status(value: Any) -> str | None:
    if is_blank(value):
        return None
    status = STATUS_WORDS.get(header_key(value))
    if status is None:
        allowed = "、".join(STATUS_LABELS.values())
        raise CellError(f"未知化解状态“{text_of(value)}”，可填：{allowed} / unknown status")
    return status


def parse_blockers(value: Any) -> list[str]:
    """Blocker labels (or codes) separated by 、，, ; or spaces → codes, in the sheet's order."""
    if is_blank(value):
        return []
    whole = header_key(value)
    if whole in NO_BLOCKER_WORDS or text_of(value) in NO_BLOCKER_WORDS:
        return []
    word = unicodedata.normalize("NFKC", str(value))
    word = re.sub(r"\([^)]*\)", "", word)  # 手续缺失（立项/规划/…）→ 手续缺失
    codes: list[str] = []
    unknown = []
    for part in BLOCKER_SPLIT.split(word):
        part = part.strip()
        if not part:
            continue
        code = BLOCKER_WORDS.get(part)
        if code is None:
            unknown.append(part)
        elif code not in codes:
            codes.append(code)
    if unknown:
        allowed = "、".join(BLOCKER_LABELS.values())
        raise CellError(f"未知卡点“{'、'.join(unknown)}”，可填：{allowed} / unknown blocker")
    return codes


def parse_list(value: Any) -> list[str]:
    if is_blank(value):
        return []
    return [part.strip() for part in LIST_SPLIT.split(str(value)) if part.strip()]


def parse_text(value: Any) -> str | None:
    if is_blank(value):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, datetime | date):
        return cn_date(value if isinstance(value, date) else value.date())
    return str(value).replace("\r\n", "\n").replace("\r", "\n").strip()


def parse_key_code(value: Any) -> str | None:
    if is_blank(value):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return re.sub(r"\s", "", unicodedata.normalize("NFKC", str(value)))


def name_key(value: Any) -> str:
    """Names compared exactly, ignoring spaces and full-width/half-width forms."""
    return re.sub(r"\s", "", unicodedata.normalize("NFKC", str(value)))


PARSERS: dict[str, Callable[[Any], Any]] = {
    "int": parse_units,
    "date": parse_date,
    "status": parse_status,
    "blockers": parse_blockers,
    "list": parse_list,
    "text": parse_text,
}
