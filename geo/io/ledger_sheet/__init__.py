"""The ledger as a spreadsheet (化解台账): import the county's own xlsx / CSV, export it back.

Reading copes with the way the ledger is kept by hand: a title row (or several) above the
table, two-row merged headers ("登记进展" over 已办首次登记套数 / 已办转移登记套数), header words
that vary from office to office (`COLUMNS` lists the variants, `header_meaning` reads the others
by their words, `--columns` names any, remembered per county), 合计 / 小计 rows (a 合计 that
differs from the sum is reported), sign-off and note lines (填表单位：… 填表日期：…, 注：…),
blank rows, merged cells, dates written as 2026年12月31日, numbers stored as text ("120 套"),
and CSVs in UTF-8 or GBK / GB18030. Statuses and blockers are in the county's words, mapped by
geo.core.vocabulary and kept as written.

Importing is all-or-nothing unless `partial=True`, and changes go through geo.ledger.rules, the
same rules the API and the CLI obey; a closed row against the county's closing rule is taken
as recorded, with a warning. Writing (`write_ledger_xlsx`, `write_ledger_csv`)
produces the county's layout from a plain frame (`WRITER_COLUMNS`); `export_ledger` fills that
frame from the database.

The modules, each leaning only on those above it:
- `columns`: the columns, their header words and meanings, --columns, progress stages;
- `cells`: cell parsers (counts, statuses and blockers by the vocabulary, lists, text; dates
  by geo.core.dates);
- `read`: opening xlsx / CSV, merged cells, encodings, the header row, the data rows;
- `report`: what an import did, in a clerk's words;
- `apply`: the database import; `write`: the xlsx / CSV writers and the export.
"""

from geo.io.ledger_sheet.apply import import_ledger
from geo.io.ledger_sheet.cells import (
    PARSERS,
    BlockerCell,
    CellError,
    StatusCell,
    name_key,
    parse_blockers,
    parse_key_code,
    parse_list,
    parse_status,
    parse_text,
    parse_units,
)
from geo.io.ledger_sheet.columns import (
    BY_FIELD,
    COLUMNS,
    STAGES,
    UNIT_FIELDS,
    WRITER_COLUMNS,
    WRITER_REQUIRED,
    Column,
    LedgerSheetError,
    Progress,
    header_key,
    header_meaning,
    parse_columns,
)
from geo.io.ledger_sheet.read import Sheet, SheetRow, read_sheet
from geo.io.ledger_sheet.report import LedgerImportReport, RowIssue
from geo.io.ledger_sheet.write import (
    county_name,
    export_ledger,
    ledger_frame,
    ledger_title,
    write_ledger_csv,
    write_ledger_xlsx,
)

__all__ = [
    "BY_FIELD",
    "COLUMNS",
    "PARSERS",
    "STAGES",
    "UNIT_FIELDS",
    "WRITER_COLUMNS",
    "WRITER_REQUIRED",
    "BlockerCell",
    "CellError",
    "Column",
    "LedgerImportReport",
    "LedgerSheetError",
    "Progress",
    "RowIssue",
    "Sheet",
    "SheetRow",
    "StatusCell",
    "county_name",
    "export_ledger",
    "header_key",
    "header_meaning",
    "import_ledger",
    "ledger_frame",
    "ledger_title",
    "name_key",
    "parse_blockers",
    "parse_columns",
    "parse_key_code",
    "parse_list",
    "parse_status",
    "parse_text",
    "parse_units",
    "read_sheet",
    "write_ledger_csv",
    "write_ledger_xlsx",
]
