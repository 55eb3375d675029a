"""Spreadsheets handed to the offices (openpyxl): what a cell may hold, and the one layout of a
list — a title row, a note row, Chinese headers frozen with a filter, one row per item.

Text from the data is written as text: without the control characters XML refuses, and never
as a formula (a compound named "=HYPERLINK(…)" stays those characters).
"""

from collections.abc import Sequence
from typing import Any


def cell(sheet: Any, value: Any, font: Any = None, fill: Any = None, align: Any = None) -> Any:
    """`value` for `sheet.append`: a bare value where nothing needs saying (a styled cell per
    value costs, on 100 000 rows), else a cell with its style — and text that starts with "="
    kept as text."""
    from openpyxl.cell import Cell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    formula = False
    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
        formula = value.startswith("=")
    if not (formula or font or fill or align):
        return value
    out = Cell(sheet, row=1, column=1, value=value)  # placed where it is appended
    if formula:
        out.data_type = "s"
    if font:
        out.font = font
    if fill:
        out.fill = fill
    if align:
        out.alignment = align
    return out


def list_sheet(book: Any, name: str, columns: Sequence[tuple[str, float]], title: str,
               note: str) -> Any:  # fmt: skip
    """A write-only sheet `name` of `book` laid out as a list: `title` (merged, large),
    `note` (merged, wrapped), the `columns` (header, width) as a bold grey header row, frozen
    under it. Append the rows, then `end_list`."""
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    sheet = book.create_sheet(name)
    last = get_column_letter(len(columns))
    for k, (_, width) in enumerate(columns, start=1):
        sheet.column_dimensions[get_column_letter(k)].width = width
    sheet.freeze_panes = "A4"
    sheet.append([cell(sheet, title, Font(bold=True, size=14))])
    sheet.merged_cells.add(f"A1:{last}1")
    sheet.append([cell(sheet, note, align=Alignment(wrap_text=True, vertical="top"))])
    sheet.merged_cells.add(f"A2:{last}2")
    bold, grey = Font(bold=True), PatternFill("solid", fgColor="DDDDDD")
    sheet.append([cell(sheet, header, bold, grey) for header, _ in columns])
    return sheet


def end_list(sheet: Any, columns: int, rows: int) -> None:
    """The header row's filter over the `rows` appended under it."""
    from openpyxl.utils import get_column_letter

    sheet.auto_filter.ref = f"A3:{get_column_letter(columns)}{rows + 3}"
