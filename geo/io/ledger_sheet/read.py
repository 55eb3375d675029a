"""The ledger as a spreadsheet (化解台账): import the county's own xlsx / CSV, export it back.

Reading copes with the way the ledger is kept by hand: a title row (or several) above the
table, two-row merged headers ("登记进展" over 首次登记套数 / 转移登记套数), header words that
vary from office to office (`COLUMNS` lists the variants), 合计 / 小计 rows, sign-off lines
(填表人 / 审核人 / 分管领导 …), blank rows, merged cells, dates written as 2026年12月31日,
numbers stored as text ("120 套"), and CSVs in UTF-8 or GBK / GB18030.

Every row keeps the spreadsheet's own row number (what a clerk sees in Excel; for a CSV, the
record number), so a refused row can be found and fixed.

Importing is all-or-nothing: any refused row and nothing changes (unless `partial=True`, which
applies the good rows and reports the others). Changes go through geo.ledger.rules: a compound not
yet on the ledger is opened (`open_entry`), one already on it gets `update_entry` with only the
fields whose cells differ, so re-importing the same file appends no event.

Writing (`write_ledger_xlsx`, `write_ledger_csv`) produces the county's layout from a plain
frame (`WRITER_COLUMNS`); `export_ledger` fills that frame from the database.
"""

import csv
import io
import re
import time
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.orm import Session, load_only
from sqlalchemy.orm.attributes import set_committed_value

from geo import TitlemapError
from geo.core.model import (
    BLOCKER_LABELS,
    STATUS_LABELS,
    Blocker,
    Compound,
    LedgerEntry,
    LedgerStatus,
)
from geo.ledger.rules import (
    EDITABLE,
    LedgerConflict,
    LedgerRuleError,
    check_entry,
    open_entry,
    update_entry,
)

TZ = ZoneInfo("Asia/Shanghai")

# progress(stage, done, total): stage is one of STAGES; total is None while unknown.
Progress = Callable[[str, int, int | None], None]
STAGES = {
    "read": "读取表格 / reading the sheet",
    "check": "核对 / checking rows",
    "apply": "写入台账 / applying",
    "query": "查询 / querying",
    "write": "写出文件 / writing the file",
}
PROGRESS_EVERY = 500


class LedgerSheetError(TitlemapError):
    """The file cannot be read as a ledger at all (corrupt, wrong format, no header row)."""


# -- columns ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """A ledger column: the field, the header we write, and the headers we accept."""

    field: str
    header: str
    width: float
    kind: str  # key, info, int, status, blockers, list, text, date
    aliases: tuple[str, ...] = ()


# Writing order (the county's layout); reading accepts any order and any of the aliases.
# Header words are compared after `header_key` (full-width → half-width, spaces, "*" and any
# bracketed unit such as "（套）" removed), so "小区（项目）名称" reads as 小区名称.
COLUMNS = (
    Column("ledger_no", "台账编号", 11, "text", ("台账号", "挂账编号", "台账序号")),
    Column("compound_code", "项目编号", 16, "key",
           ("小区编号", "项目代码", "小区代码", "项目小区编号", "小区项目编号")),
    Column("compound_name", "项目名称", 18, "key",
           ("小区名称", "项目小区名称", "小区项目名称", "小区名", "楼盘名称", "项目名")),
    Column("township", "所在乡镇", 10, "info",
           ("乡镇", "乡镇街道", "所在乡镇街道", "所属乡镇", "所属乡镇街道", "街道")),
    Column("developer", "开发企业", 30, "info",
           ("开发商", "开发单位", "开发企业名称", "房地产开发企业")),
    Column("units_task", "问题房屋套数", 9, "int",
           ("套数", "任务套数", "问题套数", "问题房屋数", "涉及套数", "登记难套数",
            "化解任务套数", "问题房屋总套数")),
    Column("units_first_registered", "首次登记套数", 9, "int",
           ("已首次登记", "已首次登记套数", "已办理首次登记套数", "首次登记", "完成首次登记套数")),
    Column("units_transferred", "转移登记套数", 9, "int",
           ("已转移登记", "已转移登记套数", "已办证套数", "已办证", "已办理转移登记套数",
            "转移登记", "完成转移登记套数", "已办理不动产权证套数")),
    Column("status", "化解状态", 10, "status", ("状态", "进展状态", "当前状态", "化解进度状态")),
    Column("blockers", "主要问题", 36, "blockers",
           ("卡点", "存在问题", "主要卡点", "卡点问题", "问题类型", "卡点类别", "卡点类型",
            "主要问题类型", "存在的主要问题")),
    Column("blocker_note", "问题描述", 40, "text",
           ("问题说明", "卡点说明", "具体问题", "问题详情", "卡点描述")),
    Column("lead_department", "牵头单位", 11, "text",
           ("责任单位", "牵头部门", "责任部门", "主责单位", "牵头责任单位")),
    Column("cooperating_departments", "配合单位", 30, "list", ("配合部门", "协同单位", "协办单位")),
    Column("supervising_leader", "包抓领导", 24, "text",
           ("包抓县级领导", "包抓县领导", "包联领导", "包联县级领导", "分包领导", "包抓领导姓名")),
    Column("plan", "化解方案", 60, "text",
           ("工作措施", "化解措施", "整改措施", "解决措施", "化解方案及措施", "化解路径")),
    Column("task_force_lead", "专班负责人", 16, "text",
           ("工作专班负责人", "专班责任人", "专班组长", "专班牵头人")),
    Column("deadline", "完成时限", 15, "date",
           ("办结时限", "化解时限", "限时办结", "办结期限", "完成期限", "计划完成时限")),
    Column("opened_on", "挂账日期", 15, "date", ("挂账时间",)),
    Column("closed_on", "销号日期", 15, "date", ("销号时间",)),
    Column("close_reason", "销号理由", 24, "text", ("销号说明", "销号原因", "销号依据")),
)  # fmt: skip
BY_FIELD = {column.field: column for column in COLUMNS}
SERIAL_HEADER = "序号"
PROGRESS_GROUP = "登记进展"  # the merged group over 首次登记套数 / 转移登记套数
UNIT_FIELDS = ("units_task", "units_first_registered", "units_transferred")
# The frame write_ledger_xlsx / write_ledger_csv take: any of these, in any order.
WRITER_COLUMNS = tuple(column.field for column in COLUMNS)
WRITER_REQUIRED = ("compound_code", *UNIT_FIELDS)
NO_BLOCKERS = "尚未研判"


def header_key(value: Any) -> str:
    """A header word as compared: NFKC, no spaces, no "*", no bracketed part, no colon."""
    word = unicodedata.normalize("NFKC", str(value))
    word = re.sub(r"\([^)]*\)|\[[^\]]*\]|【[^】]*】|<[^>]*>", "", word)
    return re.sub(r"[\s*:]", "", word)


HEADERS: dict[str, str] = {}
for _column in COLUMNS:
    for _word in (_column.header, *_column.aliases):
        HEADERS[header_key(_word)] = _column.field

STATUS_WORDS: dict[str, str] = {}
for _status, _label in STATUS_LABELS.items():
    STATUS_WORDS[header_key(_label)] = _status.value
    STATUS_WORDS[_status.value] = _status.value
STATUS_WORDS |= {
    "未开始": "not_started", "未启动化解": "not_started",
    "正在推进": "in_progress", "化解中": "in_progress", "办理中": "in_progress",
    "推进": "in_progress", "进行中": "in_progress",
    "停滞不前": "stalled", "暂停": "stalled", "停滞中": "stalled",
    "首次登记完成": "first_registered", "已完成首次登记": "first_registered",
    "销号": "closed", "已化解": "closed", "化解销号": "closed",
}  # fmt: skip

BLOCKER_WORDS: dict[str, str] = {}
for _blocker, _label in BLOCKER_LABELS.items():
    BLOCKER_WORDS[header_key(_label)] = _blocker.value  # "手续缺失" without its bracket
    BLOCKER_WORDS[_blocker.value] = _blocker.value
BLOCKER_WORDS |= {
    "手续不全": "approvals", "手续不完善": "approvals", "缺少手续": "approvals",
    "手续缺失": "approvals",
    "欠缴出让金": "land_premium", "土地出让金": "land_premium", "出让金未缴清": "land_premium",
    "欠缴土地出让金": "land_premium",
    "欠税": "taxes", "税费": "taxes", "欠缴税款": "taxes",
    "开发企业失联": "developer", "开发企业违规": "developer", "企业失联": "developer",
    "开发商失联": "developer",
    "抵押未解除": "mortgage", "查封": "mortgage", "抵押": "mortgage", "抵押查封": "mortgage",
    "工程款": "construction_debt", "欠工程款": "construction_debt",
    "规划不符": "planning_conflict", "违反规划": "planning_conflict",
    "面积不符": "area_discrepancy", "权属不符": "area_discrepancy",
    "权属争议": "area_discrepancy",
}  # fmt: skip
NO_BLOCKER_WORDS = {"尚未研判", "未研判", "待研判", "无", "暂无", "-", "—", "/", "无卡点"}

TOTAL_RE = re.compile(r"^\S{0,16}?(合计|小计|总计)$")
SIGN_OFF_RE = re.compile(
    r"^(填表人|填报人|制表人|审核人|审核|分管领导|主要领导|单位负责人|负责人|联系人|联系电话|"
    r"填表日期|填报日期|制表日期|报送日期|注|备注|说明|填报单位)[:：\s]"
)
LIST_SPLIT = re.compile(r"[、，,;；\n]+")
BLOCKER_SPLIT = re.compile(r"[、,;\s]+")  # after NFKC: ，→,  ；→;


# -- reading ------------------------------------------------------------------------------------


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


def _tick(progress: Progress | None, stage: str, done: int, total: int | None) -> None:
    if progress is not None and (done % PROGRESS_EVERY == 0 or done == total):
        progress(stage, done, total)


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text_of(value: Any) -> str:
    return "" if value is None else str(value).strip()


def read_sheet(
    path: str | Path, progress: Progress | None = None, name: str | None = None
) -> Sheet:
    """Read an xlsx or CSV ledger into rows, or raise LedgerSheetError naming the problem."""
    path = Path(path)
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
        return _read_xlsx(path, name, progress)
    if suffix in (".xlsx", ".xlsm"):
        raise LedgerSheetError(
            f"{name} 不是有效的 xlsx 文件（文件损坏或不完整）/ not a valid xlsx file (corrupt or "
            "truncated): 请重新导出或另存 / export or save it again"
        )
    return _read_csv(path, name, progress)


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


def _read_xlsx(path: Path, name: str, progress: Progress | None) -> Sheet:
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
            header = _find_header(head)
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


def _read_csv(path: Path, name: str, progress: Progress | None) -> Sheet:
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
        header = _find_header(head)
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


def _no_header(name: str) -> str:
    return (
        f"{name} 的前 60 行中找不到台账表头（需要“项目名称”或“项目编号”，以及“问题房屋套数”"
        "等列）/ no ledger header row in the first 60 rows (needs 项目名称 or 项目编号 and columns "
        "such as 问题房屋套数)"
    )


def _known(value: Any) -> str | None:
    return None if _is_blank(value) else HEADERS.get(header_key(value))


def _header_of(rows: list[list], top: int, two: bool) -> _Header:
    """The columns read from row `top` (0-based), alone or over the row below it."""
    upper = rows[top]
    lower = rows[top + 1] if two else []
    width = max(len(upper), len(lower))
    fields: dict[int, str] = {}
    words: dict[int, str] = {}
    ignored: list[str] = []
    for k in range(width):
        up = upper[k] if k < len(upper) else None
        down = lower[k] if k < len(lower) else None
        up_text, down_text = _text_of(up), _text_of(down)
        found = None
        word = down_text or up_text
        if two and up_text and down_text and up_text != down_text:
            found = _known(up_text + down_text)  # 首次登记 over 套数
            word = up_text + down_text
        if found is None and two and down_text:
            found, word = _known(down_text), down_text
        if found is None and up_text:
            found, word = _known(up_text), up_text
        if found is None:
            if word and header_key(word) not in (SERIAL_HEADER, PROGRESS_GROUP):
                ignored.append(word.replace("\n", ""))
            continue
        if found in fields.values():
            ignored.append(f"{word}（重复 / duplicate）")
            continue
        fields[k], words[k] = found, word.replace("\n", "")
    score = len(fields)
    rows_used = [top + 1, top + 2] if two else [top + 1]
    return _Header(rows_used, fields, words, ignored, score)


def _find_header(rows: list[list]) -> _Header | None:
    """The best header among the first rows: a name or code column and two more known ones."""
    singles = [_header_of(rows, top, False) for top in range(len(rows))]
    best = None
    for top in range(len(rows)):
        candidates = [singles[top]]
        if top + 1 < len(rows):
            two = _header_of(rows, top, True)
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
        if _is_blank(value):
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


ROW_KINDS = {
    "total": "合计/小计行 / total row",
    "sign_off": "签字/说明行 / sign-off or note line",
    "header": "重复表头 / repeated header",
    "group": "标题或分组行 / title or group line",
}


def _row_kind(cells: list, header: _Header) -> tuple[str, str] | None:
    """Why a row is not data — (kind, the words that say so) — or None for a data row."""
    keys = [k for k, f in header.fields.items() if f in ("compound_code", "compound_name")]
    key_texts = {header_key(cells[k]) for k in keys if k < len(cells) and not _is_blank(cells[k])}
    for value in cells:
        if isinstance(value, str) and "计" in value and len(value) < 40:
            word = header_key(value)
            if TOTAL_RE.match(word) and key_texts <= {word}:
                return "total", word
    first = next((str(v).strip() for v in cells if isinstance(v, str) and v.strip()), "")
    units = [cells[k] for k, f in header.fields.items() if f in UNIT_FIELDS and k < len(cells)]
    counts = [v for v in units if not _is_blank(v) and str(v).strip() != first]
    signed = SIGN_OFF_RE.match(first) or "签字" in first or "盖章" in first
    if first and signed and not counts:  # 填表人：… with no counts beside it
        return "sign_off", first[:20]
    if key_texts and all(HEADERS.get(w) in ("compound_code", "compound_name") for w in key_texts):
        return "header", first[:20]
    distinct = {str(v).strip() for v in cells if not _is_blank(v)}
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
        _tick(progress, "read", number, estimate)
        if number <= last_header:
            continue
        if all(_is_blank(v) for v in cells):
            blank += 1
            continue
        if first_data and _column_number_row(cells):
            skipped.append({"row": number, "reason": "列序号行 / column-number row"})
            first_data = False
            continue
        first_data = False
        kind = _row_kind(cells, header)
        if kind:
            skipped.append({"row": number, "reason": f"{ROW_KINDS[kind[0]]}（{kind[1]}）"})
            if kind[0] == "total" and total_row is None and not kind[1].endswith("小计"):
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
    return Sheet(name, kind, encoding, sheet_name, header.rows, columns, header.ignored, out,
                 skipped, blank, total_row)  # fmt: skip


# -- cell values ----------------------------------------------------------------------------------


class CellError(ValueError):
    """A cell that cannot be what its column says."""


def parse_units(value: Any) -> int | None:
    """A count of homes: 120, 120.0, "120", "120 套", "1,200", "１２０"; None when blank."""
    if _is_blank(value):
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


def _month_end(year: int, month: int) -> date:
    following = date(year + month // 12, month % 12 + 1, 1)
    return following - timedelta(days=1)


def parse_day(value: Any) -> date | None:
    """2026年12月31日, 2026.12.31, 2026/12/31, 2026-12-31, 20261231, 2026年12月底, date cells."""
    if _is_blank(value):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if 20000 <= value <= 80000 and float(value).is_integer():  # an Excel serial day
            return date(1899, 12, 30) + timedelta(days=int(value))
        raise CellError(f"{value} 不是日期 / not a date")
    word = re.sub(r"\s+", " ", unicodedata.normalize("NFKC", str(value))).strip()
    try:
        match = re.fullmatch(
            r"(\d{4})\s*[年./-]\s*(\d{1,2})\s*[月./-]\s*(\d{1,2})\s*日?(?:\s+\d{1,2}:\d{2}(?::\d{2})?)?",
            word,
        )
        if match:
            return date(*(int(g) for g in match.groups()))
        match = re.fullmatch(r"(\d{4})(\d{2})(\d{2})", word)
        if match:
            return date(*(int(g) for g in match.groups()))
        match = re.fullmatch(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(底|末)", word)
        if match:
            return _month_end(int(match.group(1)), int(match.group(2)))
    except ValueError:
        raise CellError(f"“{value}”不是有效日期 / not a valid date") from None
    raise CellError(f"“{value}”不是日期（应如 2026年12月31日）/ not a date (e.g. 2026年12月31日)")


def parse_status(value: Any) -> str | None:
    if _is_blank(value):
        return None
    status = STATUS_WORDS.get(header_key(value))
    if status is None:
        allowed = "、".join(STATUS_LABELS.values())
        raise CellError(f"未知化解状态“{_text_of(value)}”，可填：{allowed} / unknown status")
    return status


def parse_blockers(value: Any) -> list[str]:
    """Blocker labels (or codes) separated by 、，, ; or spaces → codes, in the sheet's order."""
    if _is_blank(value):
        return []
    whole = header_key(value)
    if whole in NO_BLOCKER_WORDS or _text_of(value) in NO_BLOCKER_WORDS:
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
    if _is_blank(value):
        return []
    return [part.strip() for part in LIST_SPLIT.split(str(value)) if part.strip()]


def parse_text(value: Any) -> str | None:
    if _is_blank(value):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, datetime | date):
        return _cn_date(value if isinstance(value, date) else value.date())
    return str(value).replace("\r\n", "\n").replace("\r", "\n").strip()


def parse_key_code(value: Any) -> str | None:
    if _is_blank(value):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return re.sub(r"\s", "", unicodedata.normalize("NFKC", str(value)))


def name_key(value: Any) -> str:
    """Names compared exactly, ignoring spaces and full-width/half-width forms."""
    return re.sub(r"\s", "", unicodedata.normalize("NFKC", str(value)))


PARSERS: dict[str, Callable[[Any], Any]] = {
    "int": parse_units,
    "date": parse_day,
    "status": parse_status,
    "blockers": parse_blockers,
    "list": parse_list,
    "text": parse_text,
}


# -- the report ------------------------------------------------------------------------------------


@dataclass
class RowIssue:
    row: int
    code: str | None
    name: str | None
    problems: list[str]


@dataclass
class LedgerImportReport:
    file_name: str
    county: str
    user: str
    kind: str
    encoding: str | None
    sheet_name: str | None
    header_rows: list[int]
    columns: dict[str, str]
    ignored_columns: list[str]
    rows: int = 0  # data rows read
    blank_rows: int = 0
    skipped: list[dict] = field(default_factory=list)
    refused: list[RowIssue] = field(default_factory=list)
    unmatched: list[RowIssue] = field(default_factory=list)  # sheet rows without a compound
    ambiguous: list[RowIssue] = field(default_factory=list)  # names matching several compounds
    missing: list[dict] = field(default_factory=list)  # ledger compounds not in the sheet
    opened: list[dict] = field(default_factory=list)  # {row, code}
    updated: list[dict] = field(default_factory=list)  # {row, code, fields}
    unchanged: int = 0
    warnings: list[str] = field(default_factory=list)
    partial: bool = False
    dry_run: bool = False
    applied: bool = False
    events: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Applied with no refused row."""
        return self.applied and not self.refused

    def to_dict(self) -> dict:
        data = asdict(self)
        data["ok"] = self.ok
        return data

    def lines(self, limit: int = 20) -> list[str]:
        """The report in a clerk's words, Chinese first, English alongside; lists cut at `limit`."""
        where = f"工作表“{self.sheet_name}”，" if self.sheet_name else ""
        encoding = f"编码 {self.encoding}，" if self.encoding else ""
        header = "–".join(str(r) for r in (self.header_rows[0], self.header_rows[-1]))
        if len(self.header_rows) == 1:
            header = str(self.header_rows[0])
        out = [
            f"导入 {self.file_name}（{where}{encoding}表头第 {header} 行，数据 {self.rows} 行）/ "
            f"importing {self.file_name}: {self.rows} data rows"
        ]
        if self.ignored_columns:
            out.append(
                "未导入的列 / columns not imported: " + "、".join(self.ignored_columns[:limit])
            )
        if self.refused:
            head = (
                "已拒绝，台账未作任何修改 / refused, nothing changed"
                if not self.applied
                else "以下行有误，已跳过 / these rows were skipped"
            )
            out.append(f"{head}：{len(self.refused)} 行有误 / rows with errors")
            out += [f"  {_issue_line(issue)}" for issue in self.refused[:limit]]
            out += _more(len(self.refused), limit)
        if self.dry_run:
            out.append("试算，未写入 / dry run, nothing written")
        if self.applied or self.dry_run:
            verb = "将" if self.dry_run else ""
            out.append(
                f"{verb}新挂账 {len(self.opened)} 个，{verb}更新 {len(self.updated)} 个，"
                f"未变化 {self.unchanged} 个，台账事件 {self.events} 条 / opened "
                f"{len(self.opened)}, updated {len(self.updated)}, unchanged {self.unchanged}, "
                f"{self.events} ledger events"
            )
            for item in self.updated[:limit]:
                fields = "、".join(BY_FIELD[f].header for f in item["fields"])
                out.append(f"  第{item['row']}行 {item['code']}：{fields}")
            out += _more(len(self.updated), limit)
        if self.unmatched:
            out.append(
                f"表中有、库中无的行 {len(self.unmatched)} 个（未导入）/ sheet rows without a "
                "compound (not imported):"
            )
            out += [f"  {_issue_line(issue)}" for issue in self.unmatched[:limit]]
            out += _more(len(self.unmatched), limit)
        if self.ambiguous:
            out.append(
                f"名称对应多个小区的行 {len(self.ambiguous)} 个（未导入，请填项目编号）/ "
                "names matching several compounds (not imported: give the code)"
            )
            out += [f"  {_issue_line(issue)}" for issue in self.ambiguous[:limit]]
            out += _more(len(self.ambiguous), limit)
        if self.missing:
            out.append(
                f"台账中有、表中无的小区 {len(self.missing)} 个（保持不变）/ ledger compounds "
                "missing from the sheet (left as they are):"
            )
            out += [f"  {item['code']} {item['name']}" for item in self.missing[:limit]]
            out += _more(len(self.missing), limit)
        for warning in self.warnings[:limit]:
            out.append(f"提示 / note: {warning}")
        out += _more(len(self.warnings), limit)
        return out


def _issue_line(issue: RowIssue) -> str:
    who = " ".join(part for part in (issue.code, issue.name) if part)
    return f"第{issue.row}行 {who}：" + "；".join(issue.problems)


def _more(count: int, limit: int) -> list[str]:
    return [f"  …… 另有 {count - limit} 项 / and {count - limit} more"] if count > limit else []


# -- importing ------------------------------------------------------------------------------------


@dataclass
class _Plan:
    row: SheetRow
    code: str | None
    name: str | None
    fields: dict[str, Any]
    problems: list[str]
    compound_id: int | None = None
    compound_code: str | None = None


def _parse(row: SheetRow, labels: dict[str, str]) -> _Plan:
    code = parse_key_code(row.values.get("compound_code"))
    raw_name = row.values.get("compound_name")
    name = None if _is_blank(raw_name) else str(raw_name).strip()
    fields: dict[str, Any] = {}
    problems: list[str] = []
    for name_of_field, value in row.values.items():
        column = BY_FIELD[name_of_field]
        if column.kind in ("key", "info"):
            continue
        try:
            fields[name_of_field] = PARSERS[column.kind](value)
        except CellError as exc:
            problems.append(f"{labels[name_of_field]} {exc}")
    if code is None and name is None:
        problems.append("缺少项目编号和项目名称 / no compound code or name")
    return _Plan(row, code, name, fields, problems)


def _check_rules(state: dict[str, Any]) -> list[str]:
    """What cannot be true of the entry the row would leave: check_entry plus the dates."""
    problems = []
    try:
        check_entry(SimpleNamespace(**state))  # the same rules the ledger enforces
    except LedgerRuleError as exc:
        problems.append(str(exc))
    closed_on, opened_on = state.get("closed_on"), state.get("opened_on")
    if closed_on and state.get("status") != LedgerStatus.CLOSED.value:
        problems.append(
            f"填了销号日期 {_cn_date(closed_on)}，但化解状态不是已销号 / a closing date on an "
            "entry that is not closed"
        )
    if closed_on and opened_on and closed_on < opened_on:
        problems.append(
            f"销号日期 {_cn_date(closed_on)} 早于挂账日期 {_cn_date(opened_on)} / closed before "
            "it was opened"
        )
    return problems


def _same(name: str, before: Any, after: Any) -> bool:
    if BY_FIELD[name].kind == "text":
        before = parse_text(before)
    return before == after


def _changes(entry: LedgerEntry, fields: dict[str, Any]) -> dict[str, Any]:
    return {
        name: value
        for name, value in fields.items()
        if not _same(name, getattr(entry, name), value)
    }


def _new_fields(fields: dict[str, Any], today: date) -> dict[str, Any]:
    """Fields for open_entry: blank 首次/转移 count as 0, a blank 挂账日期 is the import day."""
    out = dict(fields)
    for name in ("units_first_registered", "units_transferred"):
        if out.get(name) is None:
            out[name] = 0
    if out.get("status") is None:
        out.pop("status", None)
    if out.get("opened_on") is None:
        out.pop("opened_on", None)
    if out.get("status") == LedgerStatus.CLOSED.value and not out.get("closed_on"):
        out["closed_on"] = today
    return out


def _state_new(fields: dict[str, Any], today: date) -> dict[str, Any]:
    state = {name: None for name in EDITABLE} | {
        "status": LedgerStatus.NOT_STARTED.value,
        "blockers": [],
        "cooperating_departments": [],
        "opened_on": today,
    }
    return state | fields


def _state_after(entry: LedgerEntry, changes: dict[str, Any], today: date) -> dict[str, Any]:
    """The entry as update_entry would leave it (it dates a closing that gives no date)."""
    state = {name: getattr(entry, name) for name in EDITABLE} | changes
    closing = changes.get("status") == LedgerStatus.CLOSED and entry.status != LedgerStatus.CLOSED
    if closing and "closed_on" not in changes:
        state["closed_on"] = today
    reopening = entry.status == LedgerStatus.CLOSED and state["status"] != LedgerStatus.CLOSED
    if reopening and "closed_on" not in changes:
        state["closed_on"] = None
    return state


def import_ledger(
    engine: Engine,
    path: str | Path,
    county: str,
    user: str,
    partial: bool = False,
    progress: Progress | None = None,
    *,
    file_name: str | None = None,
    dry_run: bool = False,
    at: datetime | None = None,
) -> LedgerImportReport:
    """Import a ledger spreadsheet into `county`'s ledger as `user`.

    Raises LedgerSheetError when the file cannot be read as a ledger at all. Otherwise returns
    the report; with any refused row nothing is written unless `partial`. `dry_run` checks and
    reports without writing. Every event carries the note "导入 <file name>".
    """
    started = time.perf_counter()
    sheet = read_sheet(path, progress, name=file_name)
    report = LedgerImportReport(
        file_name=sheet.file_name, county=county, user=user, kind=sheet.kind,
        encoding=sheet.encoding, sheet_name=sheet.sheet_name, header_rows=sheet.header_rows,
        columns=sheet.columns, ignored_columns=sheet.ignored_columns, rows=len(sheet.rows),
        blank_rows=sheet.blank_rows, skipped=sheet.skipped, partial=partial, dry_run=dry_run,
    )  # fmt: skip
    moment = at or datetime.now(UTC)
    today = moment.astimezone(TZ).date()
    note = f"导入 {sheet.file_name}"
    labels = sheet.columns
    with Session(engine, expire_on_commit=False) as session:
        conn = session.connection()
        # One import per county at a time; entries locked against edits while we work.
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"ledger:{county}"})
        if (
            conn.execute(text("SELECT 1 FROM county WHERE code = :c"), {"c": county}).first()
            is None
        ):
            raise TitlemapError(f"没有这个县 / no such county: {county}")
        compounds = conn.execute(
            text("SELECT id, code, name FROM compound WHERE county_code = :c"), {"c": county}
        ).all()
        entries = {
            entry.compound_id: entry
            for entry in session.scalars(
                select(LedgerEntry).where(LedgerEntry.county_code == county).with_for_update()
            )
        }
        plans = _match(sheet, compounds, labels, report, progress)
        todo = _validate(plans, entries, today, report)
        report.refused.sort(key=lambda issue: issue.row)
        sheet_ids = {plan.compound_id for plan in plans if plan.compound_id is not None}
        names = {c.id: (c.code, c.name) for c in compounds}
        report.missing = [
            {"code": names[cid][0], "name": names[cid][1]}
            for cid in sorted(entries, key=lambda cid: names[cid][0])
            if cid not in sheet_ids
        ]
        _check_totals(sheet, plans, report)
        if report.refused and not partial:
            session.rollback()
            report.seconds = round(time.perf_counter() - started, 3)
            return report
        for plan, fields in todo:
            if plan.compound_id not in entries:
                report.opened.append({"row": plan.row.row, "code": plan.compound_code})
            elif fields:
                item = {"row": plan.row.row, "code": plan.compound_code, "fields": list(fields)}
                report.updated.append(item)
            else:
                report.unchanged += 1
        report.events = len(report.opened) + len(report.updated)
        if dry_run:
            session.rollback()
            report.seconds = round(time.perf_counter() - started, 3)
            return report
        _apply(session, todo, entries, user, note, moment, progress, report)
        if report.applied:
            session.commit()
        else:
            session.rollback()
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _match(
    sheet: Sheet,
    compounds: list,
    labels: dict,
    report: LedgerImportReport,
    progress: Progress | None,
) -> list[_Plan]:
    by_code = {c.code: c for c in compounds}
    by_name: dict[str, list] = {}
    for c in compounds:
        by_name.setdefault(name_key(c.name), []).append(c)
    plans = [_parse(row, labels) for row in sheet.rows]
    seen: dict[tuple[str, str], int] = {}  # sheet key → first row
    first_of: dict[int, int] = {}  # compound id → first row
    duplicate: dict[int, str] = {}
    for done, plan in enumerate(plans, start=1):
        _tick(progress, "check", done, len(plans))
        key = ("code", plan.code) if plan.code else ("name", name_key(plan.name or ""))
        if plan.code is None and plan.name is None:
            continue
        if key in seen:
            what = "项目编号" if key[0] == "code" else "项目名称"
            duplicate[plan.row.row] = (
                f"与第{seen[key]}行{what}重复 / same {key[0]} as row {seen[key]}"
            )
            duplicate.setdefault(
                seen[key], f"与第{plan.row.row}行{what}重复 / same {key[0]} as row {plan.row.row}"
            )
            continue
        seen[key] = plan.row.row
        found = None
        if plan.code:
            found = by_code.get(plan.code)
            if found is None:
                hint = ""
                if plan.name and len(by_name.get(name_key(plan.name), [])) == 1:
                    other = by_name[name_key(plan.name)][0].code
                    hint = f"（同名小区的编号是 {other} / the compound of that name is {other}）"
                problem = f"库中没有项目编号 {plan.code}{hint} / no compound with this code"
                report.unmatched.append(RowIssue(plan.row.row, plan.code, plan.name, [problem]))
            elif plan.name and name_key(plan.name) != name_key(found.name):
                report.warnings.append(
                    f"第{plan.row.row}行：项目编号 {plan.code} 在库中名为“{found.name}”，表中写作"
                    f"“{plan.name}” / the database names this compound differently"
                )
        else:
            candidates = by_name.get(name_key(plan.name or ""), [])
            if len(candidates) == 1:
                found = candidates[0]
            elif not candidates:
                problem = f"库中没有名为“{plan.name}”的小区 / no compound of this name"
                report.unmatched.append(RowIssue(plan.row.row, None, plan.name, [problem]))
            else:
                codes = "、".join(sorted(c.code for c in candidates))
                problem = f"名称对应多个小区：{codes} / several compounds have this name"
                report.ambiguous.append(RowIssue(plan.row.row, None, plan.name, [problem]))
        if found is not None:
            if found.id in first_of:
                earlier = first_of[found.id]
                duplicate[plan.row.row] = (
                    f"与第{earlier}行是同一小区 {found.code} / the same compound as row {earlier}"
                )
                duplicate.setdefault(
                    earlier,
                    f"与第{plan.row.row}行是同一小区 {found.code} / the same compound as row "
                    f"{plan.row.row}",
                )
            else:
                first_of[found.id] = plan.row.row
                plan.compound_id, plan.compound_code = found.id, found.code
    for plan in plans:
        if plan.row.row in duplicate:
            plan.problems.append(duplicate[plan.row.row])
    return plans


def _validate(
    plans: list[_Plan], entries: dict[int, LedgerEntry], today: date, report: LedgerImportReport
) -> list[tuple[_Plan, dict[str, Any]]]:
    """Rows to apply with their fields (new) or changes (existing); refused rows reported."""
    todo = []
    for plan in plans:
        problems = list(plan.problems)
        entry = entries.get(plan.compound_id) if plan.compound_id else None
        if not problems:
            if entry is None:
                fields = _new_fields(plan.fields, today)
                if fields.get("units_task") is None:
                    problems.append(
                        "挂账需填写问题房屋套数 / a new ledger entry needs its task units"
                    )
                else:
                    problems += _check_rules(_state_new(fields, today))
                    if plan.compound_id is not None and not problems:
                        todo.append((plan, fields))
            else:
                fields = dict(plan.fields)
                for name in UNIT_FIELDS:
                    if name in fields and fields[name] is None:
                        if name == "units_task":
                            problems.append(f"{report.columns[name]} 为空 / task units are empty")
                        else:
                            fields[name] = 0  # a blank cell counts as 0, as Excel's SUM does
                if "status" in fields and fields["status"] is None:
                    problems.append(f"{report.columns['status']} 为空 / status is empty")
                if not problems:
                    changes = _changes(entry, fields)
                    problems += _check_rules(_state_after(entry, changes, today))
                    if not problems:
                        todo.append((plan, changes))
        if problems:
            report.refused.append(RowIssue(plan.row.row, plan.code, plan.name, problems))
    return todo


def _check_totals(sheet: Sheet, plans: list[_Plan], report: LedgerImportReport) -> None:
    """Warn when the sheet's own 合计 row disagrees with the sum of its rows."""
    if not sheet.total_row:
        return
    for name in UNIT_FIELDS:
        if name not in sheet.columns:
            continue
        try:
            written = parse_units(sheet.total_row.get(name))
        except CellError:
            written = None
        if written is None:
            continue
        summed = sum(plan.fields.get(name) or 0 for plan in plans)
        if written != summed:
            report.warnings.append(
                f"第{sheet.total_row['row']}行合计的{sheet.columns[name]}为 {written}，明细之和为 "
                f"{summed} / the sheet's total differs from the sum of its rows"
            )


def _apply(
    session: Session,
    todo: list,
    entries: dict[int, LedgerEntry],
    user: str,
    note: str,
    moment: datetime,
    progress: Progress | None,
    report: LedgerImportReport,
) -> None:
    new_ids = [plan.compound_id for plan, _ in todo if plan.compound_id not in entries]
    compounds: dict[int, Compound] = {}
    for start in range(0, len(new_ids), 5000):
        chunk = new_ids[start : start + 5000]
        query = (
            select(Compound)
            .options(load_only(Compound.id, Compound.county_code, Compound.code, Compound.name))
            .where(Compound.id.in_(chunk))
        )
        for compound in session.scalars(query):
            set_committed_value(compound, "ledger", None)  # known: not on the ledger yet
            compounds[compound.id] = compound
    total = len(todo)
    for done, (plan, fields) in enumerate(todo, start=1):
        _tick(progress, "apply", done, total)
        try:
            entry = entries.get(plan.compound_id)
            if entry is None:
                open_entry(session, compounds[plan.compound_id], fields, user, note, at=moment,
                           flush=False)  # fmt: skip
            elif fields and update_entry(session, entry, fields, user, note, at=moment) is None:
                raise LedgerRuleError("核对与写入不一致 / the checked change did not apply")
        except (LedgerRuleError, LedgerConflict) as exc:
            # Checked beforehand, so this is a race or a rule the checks do not know: stop.
            report.refused.append(RowIssue(plan.row.row, plan.code, plan.name, [str(exc)]))
            report.opened, report.updated, report.unchanged, report.events = [], [], 0, 0
            return
    session.flush()  # the new entries and their events, in batches
    if progress is not None:
        progress("apply", total, total)
    report.applied = True


# -- writing --------------------------------------------------------------------------------------

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ILLEGAL_XML = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")


def _cn_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


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
        return _cn_date(value.date())
    if isinstance(value, date):
        return _cn_date(value)
    return _cn_date(date.fromisoformat(str(value)[:10]))


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


def _table(rows: pd.DataFrame) -> tuple[list[Column], Iterator[list]]:
    """The columns to write (the frame's, in layout order) and the rows as sheet values."""
    missing = [name for name in WRITER_REQUIRED if name not in rows.columns]
    if missing and not ("compound_name" in rows.columns and missing == ["compound_code"]):
        raise TitlemapError(f"台账表缺少列 / the ledger frame lacks columns: {missing}")
    columns = [column for column in COLUMNS if column.field in rows.columns]
    names = [column.field for column in columns]

    def generate() -> Iterator[list]:
        for record in rows[names].itertuples(index=False, name=None):
            yield [_words(name, value) for name, value in zip(names, record, strict=True)]

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
        if isinstance(value, str):
            value = ILLEGAL_XML.sub("", value)
            if value.startswith("="):  # text, never a formula
                out = WriteOnlyCell(sheet, value)
                out.data_type = "s"
                return out
        return value

    sheet.append([cell(ledger_title(county_name), Font(bold=True, size=16))])
    sheet.merged_cells.add(f"A1:{last}1")
    line = f"填报单位：{county_name}化解办　　　截至日期：{_cn_date(as_of)}"
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
        _tick(progress, "write", serial, count)
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
            _tick(progress, "write", serial, count)
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
           e.closed_on, e.close_reason
    FROM ledger_entry e
    JOIN compound c ON c.id = e.compound_id
    LEFT JOIN township t ON t.id = c.township_id
    LEFT JOIN developer d ON d.id = c.developer_id
    WHERE e.county_code = :county
    ORDER BY e.ledger_no NULLS LAST, c.code
"""


def ledger_frame(conn: Connection, county: str) -> pd.DataFrame:
    """The county's current ledger as the writers' frame (WRITER_COLUMNS)."""
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
    return write_ledger_xlsx(frame, path, name, as_of or datetime.now(TZ).date(), progress)
