"""Beijing time and the one date parser.

A county's day ends at midnight Beijing time, whatever the server's clock or zone says:
"today" (overdue, printed on, closed on) and "as of 30 June" mean Beijing's day everywhere.
Dates come in as offices write them — 2026年12月31日, 2026.12.31, 20261231, 2026年12月底,
date cells, Excel serial days — and are read by `parse_date` alone.
"""

import re
import sys
import unicodedata
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

BEIJING_ZONE = "Asia/Shanghai"  # for SQL: AT TIME ZONE 'Asia/Shanghai'
BEIJING = ZoneInfo(BEIJING_ZONE)

# Excel counts days from 1899-12-30; serials 10 000–80 000 are 1927-05-18 to 2119-01-11, the
# span a ledger's or a file's dates fall in. Outside it a number is a count, not a date.
EXCEL_EPOCH = date(1899, 12, 30)
EXCEL_SERIALS = (10_000, 80_000)

_DAY = re.compile(
    r"(\d{4})\s*[年./-]\s*(\d{1,2})\s*[月./-]\s*(\d{1,2})\s*日?(?:[ T]\d{1,2}:\d{2}(?::\d{2})?.*)?"
)
_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})")
_MONTH_END = re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(底|末)")


class DateError(ValueError):
    """A value that is not a date (the message is one line in Chinese and English)."""


def now() -> datetime:
    """This moment (aware, UTC): when an event happened."""
    return datetime.now(UTC)


def today() -> date:
    """Today in Beijing: the day overdue, printed-on and closed-on dates are counted in."""
    return datetime.now(BEIJING).date()


def beijing_day(moment: datetime) -> date:
    """The Beijing day a moment falls on (naive moments are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(BEIJING).date()


def cn_date(day: date) -> str:
    """2026年12月31日."""
    return f"{day.year}年{day.month}月{day.day}日"


def _month_end(year: int, month: int) -> date:
    return date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)


def is_blank(value) -> bool:
    """None, NaN, NaT or only spaces: an empty cell."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    # pandas' NaT and NA come only from a loaded pandas: a command that reads no table does not
    # pay for importing it (half a second of every `titlemap …` start)
    pandas = sys.modules.get("pandas")
    if pandas is not None:
        try:
            return bool(pandas.isna(value))
        except (TypeError, ValueError):
            return False
    if isinstance(value, float | np.floating):
        return bool(np.isnan(value))
    return isinstance(value, np.datetime64) and bool(np.isnat(value))


def parse_date(value) -> date | None:
    """A day from a cell or field; None for a blank; DateError for anything else."""
    if is_blank(value):
        return None
    if isinstance(value, datetime):  # pandas' Timestamp too
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, np.datetime64):
        return value.astype("datetime64[D]").item()
    if isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool):
        low, high = EXCEL_SERIALS
        if low <= value <= high and float(value).is_integer():
            return EXCEL_EPOCH + timedelta(days=int(value))
        if 19_000_101 <= value <= 21_001_231 and float(value).is_integer():
            value = str(int(value))  # 20261231 typed into a number cell or a .dbf number field
        else:
            raise DateError(f"{value} 不是日期 / not a date")
    word = re.sub(r"\s+", " ", unicodedata.normalize("NFKC", str(value))).strip()
    try:
        match = _DAY.fullmatch(word) or _COMPACT.fullmatch(word)
        if match:
            return date(*(int(part) for part in match.groups()[:3]))
        match = _MONTH_END.fullmatch(word)
        if match:
            return _month_end(int(match.group(1)), int(match.group(2)))
    except ValueError:
        raise DateError(f"“{value}”不是有效日期 / not a valid date") from None
    raise DateError(f"“{value}”不是日期（应如 2026年12月31日）/ not a date (e.g. 2026年12月31日)")
