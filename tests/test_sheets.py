"""geo.core.sheets: text from the data stays text in every spreadsheet we write."""

import io

from openpyxl import Workbook, load_workbook

from geo.core.sheets import cell, end_list, list_sheet

HOSTILE = ['=HYPERLINK("http://example.invalid","点我")', "正常\x01小区", "=1+1"]


def _read(book) -> list[tuple]:
    buffer = io.BytesIO()
    book.save(buffer)
    buffer.seek(0)
    sheet = load_workbook(buffer).worksheets[0]
    return [tuple(c for c in row) for row in sheet.iter_rows()]


def test_a_list_sheet_keeps_formulas_as_text_and_drops_control_characters():
    book = Workbook(write_only=True)
    sheet = list_sheet(book, "清单", [("名称", 20), ("说明", 30)], "=标题", "说明行\x02")
    for value in HOSTILE:
        sheet.append([cell(sheet, value), cell(sheet, 3)])
    end_list(sheet, 2, len(HOSTILE))
    rows = _read(book)
    assert rows[0][0].value == "=标题" and rows[0][0].data_type == "s"
    assert rows[1][0].value == "说明行"
    assert rows[2][0].value == "名称" and rows[2][0].font.b
    data = rows[3:]
    assert [r[0].value for r in data] == [HOSTILE[0], "正常小区", "=1+1"]
    assert all(r[0].data_type == "s" for r in data), "a formula got in"
    assert data[0][1].value == 3


def test_a_normal_sheet_takes_the_same_cells():
    book = Workbook()
    sheet = book.active
    sheet.append([cell(sheet, v) for v in HOSTILE])
    (row,) = _read(book)
    assert [c.value for c in row] == [HOSTILE[0], "正常小区", "=1+1"]
    assert {c.data_type for c in row} == {"s"}
