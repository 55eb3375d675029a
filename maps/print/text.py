"""Words on the printed page: user strings made printable, dates, numbers and line breaks."""

import re
import unicodedata
from datetime import date, datetime

from geo.core import dates
from geo.query.selection import BLOCKER_TEXT, CompoundFacts
from maps.fonts import text_width_mm

NO_LINE_START = set("，。、；：？！）》」』”’…%％·,.;:?!)]}")  # hang at a line's end
BLOCKER_SHORT = {  # a blocker in the few words a table cell holds
    "approvals": "手续缺失",
    "land_premium": "欠出让金",
    "taxes": "欠税费",
    "developer": "企业违规失联",
    "mortgage": "抵押查封",
    "construction_debt": "欠工程款",
    "planning_conflict": "规划冲突",
    "area_discrepancy": "面积权属不符",
}


def clean(value, empty: str = "—") -> str:
    """A user string made printable: control characters and line breaks become spaces."""
    if value is None:
        return empty
    if isinstance(value, date) and not isinstance(value, datetime):
        return cn_date(value)
    text_ = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in str(value))
    text_ = re.sub(r"\s+", " ", text_).strip()
    return text_ or empty


def cn_date(day: date | None) -> str:
    return "—" if day is None else dates.cn_date(day)


def short_date(day: date | None) -> str:
    return "—" if day is None else f"{day.year}.{day.month}.{day.day}"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def units(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def wrap(text_: str, width_mm: float, size: float) -> list[str]:
    """Lines of `text_` no wider than `width_mm` at `size` pt; Latin words kept whole.

    A closing mark (，。）…) never starts a line: it hangs at the end of the one before.
    """
    tokens = re.findall(r"[A-Za-z0-9_.\-/:%+#@&]+|\s+|.", text_)
    lines, line, used = [], "", 0.0
    for token in tokens:
        w = text_width_mm(token, size)
        if token.isspace():
            if line:
                line, used = line + " ", used + w
            continue
        if w > width_mm:  # a run longer than the line: cut it by characters
            for ch in token:
                cw = text_width_mm(ch, size)
                if used + cw > width_mm and line.strip():
                    lines.append(line.rstrip())
                    line, used = "", 0.0
                line, used = line + ch, used + cw
            continue
        hangs = len(token) == 1 and token in NO_LINE_START
        if used + w <= width_mm or not line.strip() or hangs:
            line, used = line + token, used + w
        else:
            lines.append(line.rstrip())
            line, used = token, w
    if line.strip():
        lines.append(line.rstrip())
    return lines or [""]


def fit(
    text_: str, width_mm: float, size: float, max_lines: int = 1, min_size: float | None = None
) -> tuple[list[str], float]:
    """Wrap, shrinking down to `min_size`, then cut the last line with an ellipsis."""
    min_size = min_size or size
    current = size
    while True:
        lines = wrap(text_, width_mm, current)
        if len(lines) <= max_lines or current - 0.5 < min_size - 1e-9:
            break
        current -= 0.5
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        last = lines[-1]
        while last and text_width_mm(last + "…", current) > width_mm:
            last = last[:-1]
        lines[-1] = last + "…"
    return lines, current


def blocker_short(blocker: str) -> str:
    return BLOCKER_SHORT.get(blocker, BLOCKER_TEXT.get(blocker, blocker))


def blockers_short(c: CompoundFacts) -> str:
    return "、".join(blocker_short(b) for b in c.blockers) or ("—" if c.on_ledger else "")
