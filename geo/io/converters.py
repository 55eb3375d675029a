"""A file's cells as column values: text, whole numbers, amounts, dates, kinds and codes.

Each converter takes one non-blank cell and returns the value to store, or raises ValueError
with what is wrong (Chinese first); `convert_all` runs one over a column, once per distinct
value, and collects the refusals by row. Dates are read by `geo.core.dates.parse_date`,
parcel codes checked by `geo.core.codes` and the county's words mapped by its vocabulary
(`geo.core.vocabulary`), as everywhere else in titlemap.
"""

import re
from collections.abc import Callable, Iterable
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import numpy as np
import pandas as pd

from geo.core.codes import (
    check_parcel_code,
    is_parcel_code_attempt,
    local_plot_code,
    parcel_code_pattern,
)
from geo.core.dates import EXCEL_SERIALS, is_blank, parse_date
from geo.core.model import PlannedAreaKind
from geo.core.vocabulary import Vocabulary

PLANNED_KINDS = frozenset(k.value for k in PlannedAreaKind)


def cell_text(value) -> str:
    """The cell as text: 12.0 → "12", a timestamp → its ISO day."""
    if type(value) is str:  # most cells: no further checks
        return value.strip()
    if type(value) is float:
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, pd.Timestamp | datetime):
        return value.date().isoformat()
    return str(value).strip()


SEPARATORS = re.compile(r"[,，\s]")
UNIT_SUFFIX = re.compile(r"(栋|幢|套|户|元|平方米|㎡|m2|公顷|亩|万元)$")


def _number_text(value) -> str:
    if type(value) in (int, float):  # a numeric field: no separators or units to take off
        return cell_text(value)
    return UNIT_SUFFIX.sub("", SEPARATORS.sub("", cell_text(value)))


def whole_number(value) -> int:
    """A count: 12, "12", "12 栋", "1,200 套"; not negative, fits an integer column."""
    try:
        number = Decimal(_number_text(value))
    except InvalidOperation:
        raise ValueError(f"不是整数 / not a whole number: {value!r}") from None
    if number != number.to_integral_value() or number < 0 or number > 2**31 - 1:
        raise ValueError(f"不是有效的整数 / not a valid whole number: {value!r}")
    return int(number)


def amount(limit: Decimal) -> Callable[[object, float], Decimal]:
    """A converter of amounts below `limit`, times the header's unit factor, to the cent."""

    def convert(value, factor: float = 1.0) -> Decimal:
        try:
            number = Decimal(_number_text(value))
        except InvalidOperation:
            raise ValueError(f"不是数字 / not a number: {value!r}") from None
        if not number.is_finite() or number < 0:
            raise ValueError(f"不是有效的数 / not a valid amount: {value!r}")
        number = (number * Decimal(repr(factor))).quantize(Decimal("0.01"), ROUND_HALF_UP)
        if number >= limit:
            raise ValueError(f"数值过大 / too large: {value!r}")
        return number

    return convert


def day(value) -> date:
    """A date cell, by `parse_date`; a whole number of eight digits (a .dbf's numeric field
    holding 20240501) is read by its digits rather than refused as too large a serial."""
    if isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool):
        if float(value).is_integer() and EXCEL_SERIALS[1] < value and len(str(int(value))) == 8:
            value = str(int(value))
    found = parse_date(value)
    if found is None:  # blanks are filtered out before a converter sees them
        raise ValueError(f"不是日期 / not a date: {value!r}")
    return found


def planned_kind(vocabulary: Vocabulary) -> Callable[[object], str]:
    """A converter of a planned area's kind, in the county's words, to its category: a key
    (planned_road) as it is, a word by `vocabulary` (城市更新 → urban_renewal); a word the
    vocabulary does not know is `other` — the importer keeps every word beside its category."""

    def convert(value) -> str:
        raw = cell_text(value)
        if raw in PLANNED_KINDS:
            return raw
        return vocabulary.planned_kind(raw) or PlannedAreaKind.OTHER.value

    return convert


def parcel_code(
    county: str, project: str | None = None, known: Callable[[], set[str]] | None = None
) -> Callable[[object], str]:
    """A converter of 宗地代码 of `county`: refused, position by position, as the parcel checks
    would flag them (`geo.core.codes`). With a `project`, a survey's own plot number (1, 地块一:
    not shaped like a 宗地代码) is kept under it (`local_plot_code`) until the plot gets its
    code, rather than refused — unless it is already the code of one of the county's plots
    (`known()`: a file the county exported, coming back)."""
    pattern = re.compile(parcel_code_pattern(county))

    def convert(value) -> str:
        code = re.sub(r"\s", "", cell_text(value)).upper()
        if pattern.fullmatch(code):
            return code
        if project is not None and not is_parcel_code_attempt(code):
            plot = cell_text(value)
            return plot if known is not None and plot in known() else local_plot_code(project, plot)
        failures = check_parcel_code(code, county)
        if not failures:  # the pattern is exactly the checks' rules; kept in case they part
            return code
        raise ValueError(
            f"宗地代码 {code} 有误："
            + "；".join(f"第 {f.position} 位，{f.zh}" for f in failures)
            + " / wrong parcel code: "
            + "; ".join(f"position {f.position}: {f.en}" for f in failures)
        )

    return convert


def township_code(value) -> str:
    code = cell_text(value)
    if len(code) > 12:
        raise ValueError(f"乡镇代码超过 12 位 / township code longer than 12: {code!r}")
    return code


def convert_all(values: Iterable, convert: Callable) -> tuple[list, dict[int, str]]:
    """Converted values (None for blanks) and {row: why} for those that would not convert.

    Each distinct value is converted once (files repeat their values a lot), and the rows take
    their distinct value's result by numpy indexing, not a Python step per row."""
    column = _objects(values)
    try:
        index, distinct = pd.factorize(column)  # None, NaN, NaT: -1, a blank
    except TypeError:  # an unhashable cell: one at a time
        return _convert_each(column, convert)
    results = np.empty(len(distinct) + 1, dtype=object)  # the last one: index -1, blank
    failed = np.zeros(len(distinct) + 1, dtype=bool)
    for k, value in enumerate(distinct):
        if type(value) is str:
            if not value.strip():
                continue
        elif type(value) not in (int, float) and is_blank(value):  # no NaN among the distinct
            continue
        try:
            results[k] = convert(value)
        except ValueError as exc:
            results[k], failed[k] = str(exc), True
    out = results[index]
    bad = np.flatnonzero(failed[index])
    errors = {int(i): out[i] for i in bad}
    out[bad] = None
    return out.tolist(), errors


def _objects(values: Iterable) -> np.ndarray:
    """The cells as a flat array of Python objects (iterating a Series is slow)."""
    if isinstance(values, pd.Series):
        return values.to_numpy(dtype=object)
    values = values if isinstance(values, list | tuple | np.ndarray) else list(values)
    column = np.empty(len(values), dtype=object)
    column[:] = values
    return column


def _convert_each(column: np.ndarray, convert: Callable) -> tuple[list, dict[int, str]]:
    out: list = []
    errors: dict[int, str] = {}
    for i, value in enumerate(column):
        if is_blank(value):
            out.append(None)
            continue
        try:
            out.append(convert(value))
        except ValueError as exc:
            errors[i] = str(exc)
            out.append(None)
    return out, errors
