"""Cell values as the ledger keeps them: counts typed as "120 套", statuses and blockers in the
county's own words, lists, text; dates go to geo.core.dates.parse_date, the one date parser.

Statuses and blockers are read by geo.core.vocabulary (one data file, a county's own on top):
titlemap's own labels and codes first, then the county's words, whose text is kept beside the
category. A word the vocabulary does not know is never a reason to refuse a row.

A bad cell raises a ValueError whose message names the problem (CellError here, DateError
from parse_date); the import puts the column's header in front, so a clerk sees which cell.
"""

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from geo.core.dates import cn_date, parse_date
from geo.core.model import BLOCKER_LABELS, STATUS_LABELS, Blocker
from geo.core.vocabulary import NONE, Vocabulary, load_vocabulary
from geo.io.ledger_sheet.columns import (
    LIST_SPLIT,
    NO_BLOCKERS,
    header_key,
    is_blank,
    text_of,
)

# titlemap's own words (what our export writes): a category, no county word to keep
OWN_STATUSES = {header_key(label): s.value for s, label in STATUS_LABELS.items()} | {
    s.value: s.value for s in STATUS_LABELS
}
OWN_BLOCKERS = {header_key(label): b.value for b, label in BLOCKER_LABELS.items()} | {
    b.value: b.value for b in BLOCKER_LABELS
}
OPEN_BRACKETS, CLOSE_BRACKETS = "(（[【<《", ")）]】>》"
BLOCKER_SEPARATORS = "、，,;；\n\t 　"


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


@dataclass(frozen=True)
class StatusCell:
    """A status cell: the category, and the county's word when it is not titlemap's own.

    `status` is None for a word the vocabulary does not know: the import takes the status from
    the figures (never 已销号 by guess) and lists the word."""

    status: str | None
    word: str | None = None


@dataclass(frozen=True)
class BlockerCell:
    """A blockers cell: categories in the sheet's order; the phrases as written (when any is
    the county's own rather than titlemap's label); those no category took (kept as `other`)."""

    codes: list[str] = field(default_factory=list)
    words: list[str] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)


def parse_status(value: Any, words: Vocabulary | None = None) -> StatusCell | None:
    """A status in titlemap's words or the county's; None when blank."""
    if is_blank(value):
        return None
    own = OWN_STATUSES.get(header_key(value))
    if own is not None:
        return StatusCell(own)
    return StatusCell((words or load_vocabulary()).status(value), text_of(value))


def blocker_phrases(value: Any) -> list[str]:
    """The phrases of a blockers cell as written, split at 、，,;； and spaces outside brackets:
    "手续缺失（立项、规划）；欠税" → ["手续缺失（立项、规划）", "欠税"]."""
    phrases, current, depth = [], [], 0
    for char in str(value):
        depth += (char in OPEN_BRACKETS) - (char in CLOSE_BRACKETS and depth > 0)
        if depth == 0 and char in BLOCKER_SEPARATORS:
            phrases.append("".join(current))
            current = []
        else:
            current.append(char)
    phrases.append("".join(current))
    return [phrase.strip() for phrase in phrases if phrase.strip()]


def parse_blockers(value: Any, words: Vocabulary | None = None) -> BlockerCell:
    """Blocker phrases → categories; an unknown phrase becomes `other`, its words kept."""
    if is_blank(value):
        return BlockerCell()
    words = words or load_vocabulary()
    phrases = blocker_phrases(value)
    codes: list[str] = []
    unmapped: list[str] = []
    own = True
    for phrase in phrases:
        code = OWN_BLOCKERS.get(header_key(phrase))
        if code is None:
            own = own and phrase == NO_BLOCKERS
            code = NONE if phrase == NO_BLOCKERS else words.blocker(phrase)
        if code is None:
            code = Blocker.OTHER.value
            unmapped.append(phrase)
        if code != NONE and code not in codes:
            codes.append(code)
    return BlockerCell(codes, [] if own else phrases, unmapped)


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
    "status": parse_status,  # with the shipped vocabulary; the import passes the county's
    "blockers": parse_blockers,
    "list": parse_list,
    "text": parse_text,
}
