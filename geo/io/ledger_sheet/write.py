"""Writing the ledger in the county's layout: xlsx (title, 截至日期 line, two-row merged header,
合计 row, sign-off line) or CSV (UTF-8 with BOM, or GBK), from a plain frame (`WRITER_COLUMNS`);
`export_ledger` fills that frame from the database.
"""

import csv
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, text

from geo import TitlemapError
from geo.core.dates import cn_date, today
from geo.core.model import BLOCKER_LABELS, STATUS_LABELS, Blocker, LedgerStatus
from geo.core.sheets import cell as text_cell
from geo.io.ledger_sheet.columns import (
    BY_FIELD,
    COLUMNS,
    FORMULA_STARTS,
    NO_BLOCKERS,
    PROGRESS_GROUP,
    SERIAL_HEADER,
    UNIT_FIELDS,
    WRITER_REQUIRED,
    Column,
    Progress,
    tick,
)


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, list | tuple):
        return False
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _codes(value: Any) -> list[str]:
    if _missing(value):
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [str(item).strip() for item in items if str(item).strip()]


def _day_words(value: Any) -> str | None:
    if _missing(value) or value == "":
        return None
    if isinstance(value, pd.Timestamp | datetime):
        return cn_date(value.date())
    if isinstance(value, date):
        return cn_date(value)
    return cn_date(date.fromisoformat(str(value)[:10]))


def _words(name: str, value: Any) -> Any:
    """One frame value as the sheet shows it."""
    kind = BY_FIELD[name].kind
    if kind == "int":
        return 0 if _missing(value) else int(value)
    if kind == "date":
        return _day_words(value)
    if kind == "status":
        if _missing(value):
            return None
        try:
            return STATUS_LABELS[LedgerStatus(value)]
        except ValueError:
            return str(value)
    if kind == "blockers":
        labels = []
        for code in _codes(value):
            try:
                labels.append(BLOCKER_LABELS[Blocker(code)])
            except ValueError:
                labels.append(code)
        return "、".join(labels) or NO_BLOCKERS
    if kind == "list":
        return "、".join(_codes(value)) or None
    if _missing(value):
        return None
    return str(value)


# A frame column holding the county's own words for a field: written instead of our label.
COUNTY_WORDS = {"status": "status_word", "blockers": "blocker_words"}


def _cell(name: str, value: Any, words: dict[str, Any]) -> Any:
    """One frame value as the sheet shows it: the county's own words for it when it has them."""
    own = words.get(COUNTY_WORDS.get(name, ""))
    if name == "blockers" and _codes(own):
        return "、".join(_codes(own))
    if name == "status" and not _missing(own) and own != "":
        return str(own)
    return _words(name, value)


def _table(rows: pd.DataFrame) -> tuple[list[Column], Iterator[list]]:
    """The columns to write (the frame's, in layout order) and the rows as sheet values; a
    status or blockers in the county's own words (status_word, blocker_words) as it wrote them."""
    missing = [name for name in WRITER_REQUIRED if name not in rows.columns]
    if missing and not ("compound_name" in rows.columns and missing == ["compound_code"]):
        raise TitlemapError(f"台账表缺少列 / the ledger frame lacks columns: {missing}")
    columns = [column for column in COLUMNS if column.field in rows.columns]
    names = [column.field for column in columns]
    own = [COUNTY_WORDS[n] for n in names if n in COUNTY_WORDS and COUNTY_WORDS[n] in rows.columns]

    def generate() -> Iterator[list]:
        for record in rows[names + own].itertuples(index=False, name=None):
            words = dict(zip(own, record[len(names) :], strict=True))
            yield [_cell(name, value, words) for name, value in zip(names, record, strict=False)]

    return columns, generate()


def ledger_title(county_name: str) -> str:
    return f"{county_name}国有土地上已售城镇住宅“登记难”问题化解台账"


def write_ledger_xlsx(
    rows: pd.DataFrame,
    path: str | Path,
    county_name: str,
    as_of: date,
    progress: Progress | None = None,
) -> Path:
    """The ledger in the county's layout: title, 截至日期 line, two-row merged header with 序号
    and 登记进展 over 首次/转移登记套数, data rows, 合计 row, sign-off line.

    `rows` holds any of WRITER_COLUMNS (machine values: status and blocker codes, lists or
    comma-joined text, dates or ISO text); the sheet shows the frame's columns in layout order.
    Write-only mode streams the rows, so 100 000 of them stay fast.
    """
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    path = Path(path)
    columns, body = _table(rows)
    layout = [Column("serial", SERIAL_HEADER, 6, "serial"), *columns]
    fields = [column.field for column in layout]
    last = get_column_letter(len(layout))
    book = Workbook(write_only=True)
    sheet = book.create_sheet("化解台账")
    for k, column in enumerate(layout, start=1):
        sheet.column_dimensions[get_column_letter(k)].width = column.width
    name_at = next((k for k, f in enumerate(fields, 1) if f == "compound_name"), 3)
    sheet.freeze_panes = f"{get_column_letter(name_at + 1)}5"
    bold = Font(bold=True)
    centre = Alignment(horizontal="center", vertical="center", wrap_text=True)
    left = Alignment(horizontal="left", vertical="center")

    def cell(value, font=bold, align=centre):
        out = WriteOnlyCell(sheet, value)
        out.font, out.alignment = font, align
        return out

    def plain(value):
        return text_cell(sheet, value)  # text as text: never a formula

    sheet.append([cell(ledger_title(county_name), Font(bold=True, size=16))])
    sheet.merged_cells.add(f"A1:{last}1")
    line = f"填报单位：{county_name}化解办　　　截至日期：{cn_date(as_of)}"
    sheet.append([cell(line, Font(), left)])
    sheet.merged_cells.add(f"A2:{last}2")
    group = [
        k for k, f in enumerate(fields, 1) if f in ("units_first_registered", "units_transferred")
    ]
    top, below = [], []
    for k, column in enumerate(layout, start=1):
        letter = get_column_letter(k)
        if k in group:
            top.append(cell(PROGRESS_GROUP if k == group[0] else None))
            below.append(cell(column.header))
        else:
            top.append(cell(column.header))
            below.append(cell(None))
            sheet.merged_cells.add(f"{letter}3:{letter}4")
    if group:
        sheet.merged_cells.add(f"{get_column_letter(group[0])}3:{get_column_letter(group[-1])}3")
    sheet.append(top)
    sheet.append(below)
    unit_at = [k for k, f in enumerate(fields) if f in UNIT_FIELDS]
    totals = dict.fromkeys(unit_at, 0)
    count = len(rows)
    for serial, values in enumerate(body, start=1):
        for k in unit_at:
            totals[k] += values[k - 1]
        sheet.append([serial, *(plain(v) for v in values)])
        tick(progress, "write", serial, count)
    end = count + 5
    first_unit = min(unit_at) + 1 if unit_at else len(layout) + 1
    sum_row = [cell("合计")] + [None] * (first_unit - 2)
    sum_row += [
        cell(totals[k]) if k in totals else None for k in range(first_unit - 1, len(layout))
    ]
    sheet.append(sum_row)
    if first_unit > 2:
        sheet.merged_cells.add(f"A{end}:{get_column_letter(first_unit - 1)}{end}")
    sheet.append([])
    sheet.append([cell("填表人：　　　审核人：　　　分管领导：", Font(), left)])
    sheet.merged_cells.add(f"A{end + 2}:{last}{end + 2}")
    book.save(path)
    if progress is not None:
        progress("write", count, count)
    return path


def write_ledger_csv(
    rows: pd.DataFrame,
    path: str | Path,
    gbk: bool = False,
    progress: Progress | None = None,
) -> Path:
    """The ledger as CSV: one header row (序号 and the layout's headers), the same words as the
    xlsx (dates as 2026年12月31日), no title or 合计 row. UTF-8 with BOM so Excel opens it;
    `gbk` writes GB18030, byte-identical to GBK for every character GBK has.

    Text starting with = + - @ gets a leading ' so Excel shows it rather than computing it;
    read_sheet takes the ' off again.
    """
    path = Path(path)
    columns, body = _table(rows)
    count = len(rows)
    encoding = "gb18030" if gbk else "utf-8-sig"
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow([SERIAL_HEADER, *(column.header for column in columns)])
        for serial, values in enumerate(body, start=1):
            writer.writerow([serial, *(_csv_cell(v) for v in values)])
            tick(progress, "write", serial, count)
    if progress is not None:
        progress("write", count, count)
    return path


def _csv_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return "" if value is None else value


LEDGER_SQL = """
    SELECT e.ledger_no, c.code AS compound_code, c.name AS compound_name, t.name AS township,
           d.name AS developer, e.units_task, e.units_first_registered, e.units_transferred,
           e.status, e.blockers, e.blocker_note, e.lead_department, e.cooperating_departments,
           e.supervising_leader, e.plan, e.task_force_lead, e.deadline, e.opened_on,
           e.closed_on, e.close_reason, e.status_word, e.blocker_words
    FROM ledger_entry e
    JOIN compound c ON c.id = e.compound_id
    LEFT JOIN township t ON t.id = c.township_id
    LEFT JOIN developer d ON d.id = c.developer_id
    WHERE e.county_code = :county
    ORDER BY e.ledger_no NULLS LAST, c.code
"""


def ledger_frame(conn: Connection, county: str) -> pd.DataFrame:
    """The county's current ledger as the writers' frame (WRITER_COLUMNS, and the county's own
    words: status_word, blocker_words)."""
    result = conn.execute(text(LEDGER_SQL), {"county": county})
    return pd.DataFrame(result.all(), columns=list(result.keys()), dtype=object)


def county_name(conn: Connection, county: str) -> str:
    name = conn.execute(text("SELECT name FROM county WHERE code = :c"), {"c": county}).scalar()
    if name is None:
        raise TitlemapError(f"没有这个县 / no such county: {county}")
    return name


def export_ledger(
    engine: Engine,
    county: str,
    path: str | Path,
    fmt: str = "xlsx",
    *,
    gbk: bool = False,
    as_of: date | None = None,
    progress: Progress | None = None,
) -> Path:
    """Write the county's current ledger to `path` as xlsx (the county's layout) or csv."""
    if fmt not in ("xlsx", "csv"):
        raise TitlemapError(f"不支持的格式 / unsupported format {fmt!r}: xlsx 或 / or csv")
    if progress is not None:
        progress("query", 0, None)
    with engine.connect() as conn:
        name = county_name(conn, county)
        frame = ledger_frame(conn, county)
    if fmt == "csv":
        return write_ledger_csv(frame, path, gbk=gbk, progress=progress)
    return write_ledger_xlsx(frame, path, name, as_of or today(), progress)
