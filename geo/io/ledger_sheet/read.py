"""Opening a ledger file: xlsx (merged cells filled in) or CSV (UTF-8, UTF-16 or GBK/GB18030),
the header row found under any title rows, and the data rows told from 合计 rows, sign-off
and note lines (填表单位：… 填表日期：…, 注：…), repeated headers and group lines.

A header is read by the county's own mapping first (`given`, from --columns or remembered),
then by an alias, then by its meaning (columns.header_meaning); a header whose words name
two fields is listed as ambiguous, never guessed.

Every row keeps the spreadsheet's own row number (what a clerk sees in Excel; for a CSV, the
record number), so a refused row can be found and fixed.
"""

import csv
import io
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geo.io.ledger_sheet.columns import (
    FORMULA_STARTS,
    HEADERS,
    IGNORE,
    PROGRESS_GROUP,
    SERIAL_HEADER,
    SIGN_OFF_RE,
    TOTAL_RE,
    UNIT_FIELDS,
    LedgerSheetError,
    Progress,
    header_key,
    header_meaning,
    is_blank,
    text_of,
    tick,
)


@dataclass
class SheetRow:
    row: int  # the spreadsheet's own row number (CSV: record number)
    values: dict[str, Any]  # field → cell value, for the mapped columns


@dataclass
class Sheet:
    """A ledger read from a file: its rows and how they were found."""

    file_name: str
    kind: str  # xlsx / csv
    encoding: str | None
    sheet_name: str | None
    header_rows: list[int]
    columns: dict[str, str]  # field → the sheet's own header words
    ignored_columns: list[str]
    rows: list[SheetRow]
    skipped: list[dict] = field(default_factory=list)  # {row, reason}; blank rows only counted
    blank_rows: int = 0
    total_row: dict | None = None  # the 合计 row: {row, units_task, …} as written
    matched_by: dict[str, str] = field(default_factory=dict)  # field → given / alias / meaning
    ambiguous_columns: list[dict] = field(default_factory=list)  # {header, fields}


def read_sheet(
    path: str | Path,
    progress: Progress | None = None,
    name: str | None = None,
    given: dict[str, str] | None = None,
) -> Sheet:
    """Read an xlsx or CSV ledger into rows, or raise LedgerSheetError naming the problem.

    `given` maps the county's own headers to fields (--columns; IGNORE leaves one out)."""
    path = Path(path)
    given = {header_key(word): f for word, f in (given or {}).items()}
    name = name or path.name
    try:
        with path.open("rb") as handle:
            head = handle.read(8)
    except OSError as exc:
        raise LedgerSheetError(f"无法读取文件 {name} / cannot read the file: {exc}") from None
    if not head:
        raise LedgerSheetError(f"{name} 是空文件 / the file is empty")
    suffix = path.suffix.lower()
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise LedgerSheetError(
            f"{name} 是旧版 .xls 或加密的工作簿，请在 Excel 中另存为 .xlsx（不加密）/ "
            "an old .xls or a password-protected workbook: save it as .xlsx"
        )
    if head.startswith(b"PK"):
        return _read_xlsx(path, name, progress, given)
    if suffix in (".xlsx", ".xlsm"):
        raise LedgerSheetError(
            f"{name} 不是有效的 xlsx 文件（文件损坏或不完整）/ not a valid xlsx file (corrupt or "
            "truncated): 请重新导出或另存 / export or save it again"
        )
    return _read_csv(path, name, progress, given)


# xlsx -----------------------------------------------------------------------------------------


SHEET_DATA_END = re.compile(rb"</(?:\w+:)?sheetData>|<(?:\w+:)?sheetData\s*/>")


def _merged_ranges(path: Path, sheet_path: str | None) -> list[tuple[int, int, int, int]]:
    """Merged ranges of a sheet as (min_col, min_row, max_col, max_row), read from its XML tail.

    openpyxl's read-only mode does not give them; <mergeCells> follows <sheetData>, so the
    stream is scanned once without parsing the rows.
    """
    from openpyxl.utils.cell import column_index_from_string

    if not sheet_path:
        return []
    tail, found, carry = b"", False, b""
    with zipfile.ZipFile(path) as book, book.open(sheet_path.lstrip("/")) as stream:
        while chunk := stream.read(1 << 20):
            if found:
                tail += chunk
                if len(tail) > (64 << 20):
                    break
                continue
            data = carry + chunk
            end = SHEET_DATA_END.search(data)
            if end:
                found, tail = True, data[end.end() :]
            else:
                carry = data[-64:]
    ranges = []
    for match in re.finditer(rb'<(?:\w+:)?mergeCell\s+ref="([A-Z]+)(\d+):([A-Z]+)(\d+)"', tail):
        c1, r1, c2, r2 = (g.decode() for g in match.groups())
        ranges.append(
            (column_index_from_string(c1), int(r1), column_index_from_string(c2), int(r2))
        )
    return ranges


def _read_xlsx(path: Path, name: str, progress: Progress | None, given: dict) -> Sheet:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise LedgerSheetError(
            f"无法打开 {name}：文件损坏、不完整或不是 xlsx / cannot open the workbook (corrupt, "
            f"truncated or not xlsx): {type(exc).__name__}: {exc}"
        ) from None
    try:
        best = None
        for sheet in book.worksheets:
            if not hasattr(sheet, "iter_rows"):
                continue  # chartsheets
            estimate = sheet.max_row if (sheet.max_row or 0) > 1 else None
            sheet.reset_dimensions()  # some writers store a wrong <dimension>: read every row
            head = [list(r) for r in sheet.iter_rows(max_row=60, values_only=True)]
            header = _find_header(head, given)
            if header and (best is None or header.score > best[1].score):
                best = (sheet, header, estimate)
        if best is None:
            raise LedgerSheetError(_no_header(name))
        sheet, header, estimate = best
        merges = _merged_ranges(path, getattr(sheet, "_worksheet_path", None))
        rows = _filled(sheet.iter_rows(values_only=True), merges)
        return _collect(rows, header, name, "xlsx", None, sheet.title, estimate, progress)
    except LedgerSheetError:
        raise
    except Exception as exc:
        raise LedgerSheetError(
            f"读取 {name} 时出错，文件可能已损坏 / the workbook could not be read (corrupt?): "
            f"{type(exc).__name__}: {exc}"
        ) from None
    finally:
        book.close()


def _filled(rows: Iterable, merges: list[tuple[int, int, int, int]]) -> Iterator[list]:
    """Rows with each merged range's value copied into every cell it covers."""
    starts: dict[int, list[tuple[int, int, int, int]]] = {}
    for merge in merges:
        starts.setdefault(merge[1], []).append(merge)
    active: list[tuple[int, int, int, Any]] = []  # (min_col, max_col, max_row, value)
    for number, values in enumerate(rows, start=1):
        cells = list(values)
        for c1, _, c2, r2 in starts.get(number, ()):
            value = cells[c1 - 1] if c1 - 1 < len(cells) else None
            active.append((c1, c2, r2, value))
        if active:
            active = [a for a in active if a[2] >= number]
            for c1, c2, _, value in active:
                if len(cells) < c2:
                    cells.extend([None] * (c2 - len(cells)))
                for k in range(c1 - 1, c2):
                    cells[k] = value
        yield cells


# csv ------------------------------------------------------------------------------------------


def _decode(raw: bytes, name: str) -> tuple[str, str]:
    """The text and its encoding: UTF-8 (with or without BOM), UTF-16 with BOM, or GB18030."""
    if raw.startswith(b"\xef\xbb\xbf"):
        try:
            return raw[3:].decode("utf-8"), "UTF-8-BOM"
        except UnicodeDecodeError as exc:
            raise LedgerSheetError(
                f"{name} 标明是 UTF-8 却含有无效字节（位置 {exc.start + 3}）/ marked UTF-8 but "
                "holds invalid bytes: 文件可能已损坏 / the file may be corrupt"
            ) from None
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16"), "UTF-16"
        except UnicodeDecodeError:
            raise LedgerSheetError(
                f"{name} 标明是 UTF-16 却含有无效字节 / marked UTF-16 but holds invalid bytes"
            ) from None
    if b"\x00" in raw:
        raise LedgerSheetError(
            f"{name} 不是文本表格（含二进制内容），请上传 xlsx 或 CSV / not a text table (binary "
            "content): upload an xlsx or CSV file"
        )
    for encoding, label in (("utf-8", "UTF-8"), ("gb18030", "GBK/GB18030")):
        try:
            return raw.decode(encoding), label
        except UnicodeDecodeError:
            continue
    raise LedgerSheetError(
        f"{name} 的编码无法识别（既不是 UTF-8 也不是 GBK/GB18030）/ unknown text encoding "
        "(neither UTF-8 nor GBK/GB18030): 请另存为 UTF-8 CSV 或 xlsx / save as UTF-8 CSV or xlsx"
    )


def _read_csv(path: Path, name: str, progress: Progress | None, given: dict) -> Sheet:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise LedgerSheetError(f"无法读取文件 {name} / cannot read the file: {exc}") from None
    content, encoding = _decode(raw, name)
    best = None
    for delimiter in (",", "\t", ";"):
        try:
            head = [
                row
                for _, row in zip(
                    range(60), csv.reader(io.StringIO(content), delimiter=delimiter), strict=False
                )
            ]
        except csv.Error:
            continue
        header = _find_header(head, given)
        if header and (best is None or header.score > best[1].score):
            best = (delimiter, header)
    if best is None:
        raise LedgerSheetError(_no_header(name))
    delimiter, header = best
    try:
        rows = [
            _uncsv(row) for row in csv.reader(io.StringIO(content, newline=""), delimiter=delimiter)
        ]
    except csv.Error as exc:
        raise LedgerSheetError(f"{name} 的 CSV 格式有误 / malformed CSV: {exc}") from None
    return _collect(rows, header, name, "csv", encoding, None, len(rows), progress)


def _uncsv(row: list[str]) -> list[str | None]:
    """CSV cells as values: blank → None, our formula guard (a leading ') removed."""
    out: list[str | None] = []
    for cell in row:
        if cell.startswith("'") and cell[1:2] in FORMULA_STARTS:
            cell = cell[1:]
        out.append(cell if cell.strip() else None)
    return out


# header ---------------------------------------------------------------------------------------


@dataclass
class _Header:
    rows: list[int]  # 1-based spreadsheet rows of the header (one or two)
    fields: dict[int, str]  # 0-based column → field
    words: dict[int, str]  # 0-based column → the header as written (for messages)
    ignored: list[str]
    score: int
    how: dict[int, str] = field(default_factory=dict)  # 0-based column → given/alias/meaning
    ambiguous: list[dict] = field(default_factory=list)  # {header, fields}


def _no_header(name: str) -> str:
    return (
        f"{name} 的前 60 行中找不到台账表头（需要“项目名称”或“项目编号”，以及“问题房屋套数”"
        "等列）/ no ledger header row in the first 60 rows (needs 项目名称 or 项目编号 and columns "
        "such as 问题房屋套数)"
    )


def _known(value: Any) -> str | None:
    return None if is_blank(value) else HEADERS.get(header_key(value))


def _meaning_of(word: str, given: dict[str, str]) -> tuple[str, tuple[str, ...]] | None:
    """(how, fields) for one header word: the county's own mapping, an alias, or its meaning."""
    key = header_key(word)
    if key in given:
        return "given", (given[key],)
    if key in HEADERS:
        return "alias", (HEADERS[key],)
    fields = header_meaning(word)
    return ("meaning", fields) if fields else None


def _column_of(up: str, down: str, two: bool, given: dict[str, str]):
    """The field of one column from its header cells: (how, fields, the word as written).

    Two rows: the words together first ("首次登记" over "套数"), then the lower, then the upper.
    When the lower row alone means the same as both together ("登记进展" over "首次登记套数"),
    the column is the lower row's, as written."""
    candidates = []
    if two and up and down and up != down:
        candidates.append(up + down)
    if two and down:
        candidates.append(down)
    if up:
        candidates.append(up)
    for word in candidates:
        found = _meaning_of(word, given)
        if found is None:
            continue
        if word != down and word == up + down:
            alone = _meaning_of(down, given)
            if alone is not None and alone[1] == found[1]:
                found, word = alone, down
        return (*found, word.replace("\n", ""))
    return None


def _header_of(rows: list[list], top: int, two: bool, given: dict[str, str]) -> _Header:
    """The columns read from row `top` (0-based), alone or over the row below it."""
    upper = rows[top]
    lower = rows[top + 1] if two else []
    width = max(len(upper), len(lower))
    header = _Header([top + 1, top + 2] if two else [top + 1], {}, {}, [], 0)
    for k in range(width):
        up = text_of(upper[k] if k < len(upper) else None)
        down = text_of(lower[k] if k < len(lower) else None)
        found = _column_of(up, down, two, given)
        written = (down or up).replace("\n", "")
        if found is None:
            if written and header_key(written) not in (SERIAL_HEADER, PROGRESS_GROUP):
                header.ignored.append(written)
            continue
        how, fields, word = found
        if fields == (IGNORE,):
            header.ignored.append(f"{word}（指定不导入 / left out）")
        elif len(fields) > 1:
            header.ambiguous.append({"header": word, "fields": list(fields)})
        elif fields[0] in header.fields.values():
            header.ignored.append(f"{word}（重复 / duplicate）")
        else:
            header.fields[k], header.words[k], header.how[k] = fields[0], word, how
    header.score = len(header.fields)
    return header


def _find_header(rows: list[list], given: dict[str, str]) -> _Header | None:
    """The best header among the first rows: a name or code column and two more known ones."""
    singles = [_header_of(rows, top, False, given) for top in range(len(rows))]
    best = None
    for top in range(len(rows)):
        candidates = [singles[top]]
        if top + 1 < len(rows):
            two = _header_of(rows, top, True, given)
            if two.score > max(singles[top].score, singles[top + 1].score):
                candidates.append(two)
        for header in candidates:
            values = set(header.fields.values())
            if header.score < 3 or not values & {"compound_code", "compound_name"}:
                continue
            if best is None or header.score > best.score:
                best = header
    return best


# rows -----------------------------------------------------------------------------------------


def _column_number_row(cells: list) -> bool:
    """The row of column numbers some forms put under the header: 1 2 3 … or (1) (2) (3) …"""
    numbers = []
    for value in cells:
        if is_blank(value):
            continue
        if isinstance(value, str):
            match = re.fullmatch(r"\(?(\d+)\)?", unicodedata.normalize("NFKC", value).strip())
            if not match:
                return False
            numbers.append(int(match.group(1)))
        elif isinstance(value, int | float) and not isinstance(value, bool) and value == int(value):
            numbers.append(int(value))
        else:
            return False
    return len(numbers) >= 3 and numbers == list(range(numbers[0], numbers[0] + len(numbers)))


def _count_like(value: Any) -> bool:
    """A cell that reads as a number of homes ("120", 120, "1,024 套"), not words beside it."""
    if isinstance(value, bool) or is_blank(value):
        return False
    if isinstance(value, int | float):
        return True
    word = re.sub(r"\s", "", unicodedata.normalize("NFKC", str(value)))
    return re.fullmatch(r"-?[\d,.]+(套|户)?", word) is not None


ROW_KINDS = {
    "total": "合计/小计行 / total row",
    "sign_off": "签字/说明行 / sign-off or note line",
    "header": "重复表头 / repeated header",
    "group": "标题或分组行 / title or group line",
}


def _row_kind(cells: list, header: _Header) -> tuple[str, str] | None:
    """Why a row is not data — (kind, the words that say so) — or None for a data row."""
    keys = [k for k, f in header.fields.items() if f in ("compound_code", "compound_name")]
    key_texts = {header_key(cells[k]) for k in keys if k < len(cells) and not is_blank(cells[k])}
    for value in cells:
        if isinstance(value, str) and "计" in value and len(value) < 40:
            word = header_key(value)
            if TOTAL_RE.match(word) and key_texts <= {word}:
                return "total", word
    first = next((str(v).strip() for v in cells if isinstance(v, str) and v.strip()), "")
    units = [cells[k] for k, f in header.fields.items() if f in UNIT_FIELDS and k < len(cells)]
    counts = [v for v in units if _count_like(v)]
    signed = SIGN_OFF_RE.match(first) or "签字" in first or "盖章" in first
    if first and signed and not counts:  # 填表单位：… 填表日期：… with no counts beside it
        return "sign_off", first[:20]
    if key_texts and all(HEADERS.get(w) in ("compound_code", "compound_name") for w in key_texts):
        return "header", first[:20]
    distinct = {str(v).strip() for v in cells if not is_blank(v)}
    if len(distinct) == 1 and not counts:
        return "group", next(iter(distinct))[:20]
    return None


def _collect(
    rows: Iterable[list],
    header: _Header,
    name: str,
    kind: str,
    encoding: str | None,
    sheet_name: str | None,
    estimate: int | None,
    progress: Progress | None,
) -> Sheet:
    last_header = header.rows[-1]
    out: list[SheetRow] = []
    skipped: list[dict] = []
    blank = 0
    total_row = None
    first_data = True
    number = 0
    for number, cells in enumerate(rows, start=1):
        tick(progress, "read", number, estimate)
        if number <= last_header:
            continue
        if all(is_blank(v) for v in cells):
            blank += 1
            continue
        if first_data and _column_number_row(cells):
            skipped.append({"row": number, "reason": "列序号行 / column-number row"})
            first_data = False
            continue
        first_data = False
        # not `kind`: that is the file's (xlsx / csv), returned below
        skip = _row_kind(cells, header)
        if skip:
            skipped.append({"row": number, "reason": f"{ROW_KINDS[skip[0]]}（{skip[1]}）"})
            if skip[0] == "total" and total_row is None and not skip[1].endswith("小计"):
                total_row = {"row": number} | {
                    f: cells[k] if k < len(cells) else None
                    for k, f in header.fields.items()
                    if f in UNIT_FIELDS
                }
            continue
        values = {f: (cells[k] if k < len(cells) else None) for k, f in header.fields.items()}
        out.append(SheetRow(number, values))
    if progress is not None:
        progress("read", number, number)
    columns = {f: header.words[k] for k, f in header.fields.items()}
    how = {f: header.how[k] for k, f in header.fields.items()}
    return Sheet(name, kind, encoding, sheet_name, header.rows, columns, header.ignored, out,
                 skipped, blank, total_row, how, header.ambiguous)  # fmt: skip
