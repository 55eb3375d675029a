"""A county's list of developers — or its 失信名单 — as a table, into its developers.

The housing bureau keeps its developers (开发企业) in a spreadsheet: 企业名称, 统一社会信用代码,
联系人 and 联系电话, and for the credit blacklist (失信名单) a 失信原因 and a 列入日期, sometimes
a 信用状态 in words. It comes as xlsx or CSV (UTF-8 or GBK), with a title row above the header
and a sign-off line or a 合计 under it. `read_developer_list` finds the header by the fields its
columns map to (`DEVELOPER_FIELDS`, compared as every importer compares headers:
`geo.io.layers.map_columns`) and leaves the other rows out; `import_developers` matches each
row to the county's developers by credit code or name (`geo.io.developers.DeveloperBook`, the
one way companies are matched), creates the missing ones and sets what the row says: contact,
credit status — blacklisted where a 失信原因 or a 列入日期 is given, or as its 信用状态 words
say — reason and date. Blank cells never erase what the database holds.

All or nothing, as every import: a row without name and code, or with a date that cannot be
read, is refused with its row number, and nothing is written unless `partial`.
"""

import csv
import io
import itertools
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
from sqlalchemy import Connection, Engine, text

from geo import TitlemapError
from geo.core.dates import is_blank
from geo.io.converters import cell_text, day
from geo.io.developers import DeveloperBook, NewDeveloper
from geo.io.import_report import ImportReport
from geo.io.importer import import_transaction
from geo.io.layers import Field, map_columns
from geo.io.ledger_sheet.columns import SIGN_OFF_RE, TOTAL_RE, header_key
from geo.io.load import county_exists

LAYER = "developers"
HEADER_ROWS = 20  # a header below more title rows than this is not looked for

DEVELOPER_FIELDS = (
    Field("name", ("企业名称", "开发企业名称", "开发企业", "开发商", "开发单位", "单位名称",
                   "公司名称", "企业", "名称", "developer", "name"), "企业名称"),
    Field("credit_code", ("统一社会信用代码", "社会信用代码", "信用代码", "统一社会信",
                          "credit_code"), "统一社会信用代码"),
    Field("contact", ("联系人", "企业联系人", "法定代表人", "负责人", "contact"), "联系人"),
    Field("phone", ("联系电话", "电话", "手机", "联系方式", "phone"), "联系电话"),
    Field("status", ("信用状态", "信用等级", "状态", "credit_status", "status"), "信用状态"),
    Field("reason", ("失信原因", "失信行为", "失信情形", "列入原因", "主要失信行为", "原因",
                     "blacklist_reason", "reason"), "失信原因"),
    Field("listed_on", ("列入日期", "列入时间", "认定日期", "列入名单日期", "公布日期",
                        "blacklisted_on", "date"), "列入日期"),
)  # fmt: skip
VALUE_FIELDS = ("contact", "credit_status", "blacklist_reason", "blacklisted_on")
# 信用状态 words, the first that a cell holds wins: "已移出失信名单" is back to normal.
CREDIT_WORDS = (
    ("normal", ("移出", "正常", "良好", "守信", "normal")),
    ("unreachable", ("失联", "跑路", "unreachable")),
    ("blacklisted", ("失信", "黑名单", "列入", "blacklisted")),
)


@dataclass
class DeveloperList:
    """A developers table as read: the rows' cells by field, each row's number in the file."""

    source: str
    columns: dict[str, str]  # field → header as written
    rows: pd.DataFrame  # the mapped columns, by field
    refs: list[str]  # "第 5 行", as the spreadsheet numbers it
    notes: list[str]


# -- reading -------------------------------------------------------------------------------------


def _cells(path: Path, source: str, rows: int | None = None) -> tuple[pd.DataFrame, str]:
    """The cells of the first sheet (or the CSV) as they are, no header yet — all, or the
    first `rows`; how it was read."""
    with path.open("rb") as handle:
        head = handle.read(8)
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise TitlemapError(
            f"{source} 是旧版 .xls 工作簿，请在 Excel 中另存为 .xlsx / an old .xls workbook: save "
            "it as .xlsx"
        )
    if head.startswith(b"PK"):
        try:
            return pd.read_excel(path, header=None, dtype=object, nrows=rows), "xlsx"
        except Exception as exc:  # openpyxl's own words for a broken workbook
            raise TitlemapError(
                f"无法打开 {source}（文件损坏或不是 xlsx）/ cannot open the workbook: {exc}"
            ) from None
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            content = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise TitlemapError(f"{source} 的编码无法识别（非 UTF-8 也非 GBK）/ unknown encoding")
    try:
        sep = csv.Sniffer().sniff(content[:8192], delimiters=",\t;").delimiter
    except csv.Error:
        sep = ","
    lines = list(itertools.islice(csv.reader(io.StringIO(content), delimiter=sep), rows))
    label = "UTF-8" if encoding == "utf-8-sig" else "GBK"
    return pd.DataFrame([[v if v.strip() else None for v in line] for line in lines]), label


def _header(cells: pd.DataFrame) -> tuple[int, dict[str, int]] | None:
    """(row, {field: column}) of the best header among the first rows: one naming the company
    (name or credit code) and one more field at least."""
    best = None
    for r in range(min(len(cells), HEADER_ROWS)):
        words = ["" if is_blank(v) else str(v).strip() for v in cells.iloc[r]]
        found, _, _ = map_columns([w for w in words if w], LAYER, DEVELOPER_FIELDS)
        if len(found) < 2 or not {"name", "credit_code"} & set(found):
            continue
        if best is None or len(found) > len(best[1]):
            best = (r, {f: words.index(h) for f, h in found.items()})
    return best


def header_score(path: Path, source: str | None = None) -> int:
    """How many developer fields the table's header maps (0: not a developers table)."""
    try:
        found = _header(_cells(path, source or path.name, HEADER_ROWS)[0])
    except (TitlemapError, ValueError, OSError):
        return 0
    return len(found[1]) if found else 0


def _not_data(cells: list) -> bool:
    """A 合计 line, a sign-off or note line under the table (填表人：… 审核：…)."""
    first = next((str(v).strip() for v in cells if not is_blank(v)), "")
    word = header_key(first)
    return bool(TOTAL_RE.match(word) or SIGN_OFF_RE.match(first) or "盖章" in first)


def read_developer_list(path: str | Path, source: str | None = None) -> DeveloperList:
    """The developers table at `path`; TitlemapError in one line when it is not one."""
    path = Path(path)
    source = source or path.name
    cells, how = _cells(path, source)
    found = _header(cells)
    if found is None:
        raise TitlemapError(
            f"{source} 的前 {HEADER_ROWS} 行中找不到企业表头（需要“企业名称”或“统一社会信用代码”，"
            "以及联系人、失信原因、列入日期等列）/ no developers header: needs 企业名称 or "
            "统一社会信用代码 and one more column"
        )
    top, columns = found
    headers = {f: str(cells.iat[top, k]).strip() for f, k in columns.items()}
    body = cells.iloc[top + 1 :]
    blank = body.apply(lambda row: all(is_blank(v) for v in row), axis=1).astype(bool)
    footer = body.apply(lambda row: _not_data(list(row)), axis=1).astype(bool) & ~blank
    keep = body.index[~blank & ~footer]
    rows = pd.DataFrame({f: body.loc[keep, k].to_list() for f, k in columns.items()})
    skipped = int(footer.sum())
    notes = [f"{how}，表头在第 {top + 1} 行 / header on row {top + 1}",
             "列对应 / columns: " + "，".join(f"{h}→{f}" for f, h in headers.items())]  # fmt: skip
    if skipped:
        notes.append(f"跳过合计行和表尾签字行 {skipped} 行 / skipped total and sign-off rows")
    return DeveloperList(source, headers, rows, [f"第 {i + 1} 行" for i in keep], notes)


# -- the rows' values ----------------------------------------------------------------------------


def credit_status(word: object) -> str | None:
    """The credit status a 信用状态 cell says, None when it says nothing known."""
    key = header_key(cell_text(word)).lower()
    return next((status for status, words in CREDIT_WORDS if any(w in key for w in words)), None)


def _text(row: dict, name: str) -> str | None:
    value = row.get(name)
    return None if is_blank(value) else cell_text(value)


def _values(row: dict) -> dict:
    """The developer's columns a row gives (None: leave as it is); ValueError for a bad date."""
    listed: date | None = None if is_blank(row.get("listed_on")) else day(row["listed_on"])
    contact = " ".join(t for t in (_text(row, "contact"), _text(row, "phone")) if t) or None
    reason = _text(row, "reason")
    status = credit_status(row["status"]) if _text(row, "status") else None
    if status is None and (reason or listed):
        status = "blacklisted"
    return {"contact": contact, "credit_status": status, "blacklist_reason": reason,
            "blacklisted_on": listed}  # fmt: skip


# -- the import ----------------------------------------------------------------------------------


def _resolve(table: DeveloperList, book: DeveloperBook, report: ImportReport) -> dict:
    """{developer (id or one to create): its values, later rows over earlier}; rows that
    cannot be taken are refused on the report."""
    chosen: dict[int | NewDeveloper, dict] = {}
    seen: dict[int | NewDeveloper, str] = {}
    for ref, row in zip(table.refs, table.rows.to_dict("records"), strict=True):
        name, code = _text(row, "name"), _text(row, "credit_code")
        if name is None and code is None:
            report.refused.append(
                (ref, "缺少企业名称和统一社会信用代码 / no name and no credit code")
            )
            continue
        try:
            values = _values(row)
            developer = book.resolve(name, code, ref)
        except ValueError as exc:  # a date that cannot be read, a name of several developers
            report.refused.append((ref, f"{name or code}：{exc}"))
            continue
        if developer in seen:
            report.warnings.append(f"{ref} 与{seen[developer]}是同一家企业，后者为准 / the same "
                                   "developer as an earlier row: the later row counts")  # fmt: skip
        seen[developer] = ref
        given = {k: v for k, v in values.items() if v is not None}
        chosen[developer] = chosen.get(developer, {}) | given
    report.warnings += book.warnings
    return chosen


def _set_values(conn: Connection, chosen: dict) -> set[int]:
    """Write each developer's values (blank ones keep the stored); the ids that changed."""
    ids = [d.id if isinstance(d, NewDeveloper) else d for d in chosen]
    columns = {c: [values.get(c) for values in chosen.values()] for c in VALUE_FIELDS}
    sets = ", ".join(f"{c} = COALESCE(t.{c}, d.{c})" for c in VALUE_FIELDS)
    changed = conn.execute(
        text(f"UPDATE developer d SET {sets} FROM unnest(CAST(:ids AS integer[]), "
             "CAST(:contact AS text[]), CAST(:credit_status AS text[]), "
             "CAST(:blacklist_reason AS text[]), CAST(:blacklisted_on AS date[])) "
             f"AS t(id, {', '.join(VALUE_FIELDS)}) WHERE d.id = t.id AND "
             f"({', '.join(f'd.{c}' for c in VALUE_FIELDS)}) IS DISTINCT FROM "
             f"({', '.join(f'COALESCE(t.{c}, d.{c})' for c in VALUE_FIELDS)}) RETURNING d.id"),
        {"ids": ids, **columns},
    ).scalars()  # fmt: skip
    return set(changed)


def import_developers(
    engine: Engine,
    path: str | Path,
    county: str,
    partial: bool = False,
    *,
    source: str | None = None,
    conn: Connection | None = None,
) -> ImportReport:
    """Import a developers table (or 失信名单) into `county`'s developers; see the module.
    With `conn`, inside the caller's transaction (a savepoint), as `import_file`."""
    started = time.monotonic()
    table = read_developer_list(path, source)
    report = ImportReport(
        layer=LAYER, source=table.source, county=county, notes=table.notes,
        columns=table.columns, features=len(table.rows), partial=partial,
    )  # fmt: skip
    with import_transaction(engine, conn) as (work, tx):
        if not county_exists(work, county):
            raise TitlemapError(f"没有这个县 / no such county: {county}")
        book = DeveloperBook.of(work, county)
        chosen = _resolve(table, book, report)
        if (report.refused and not partial) or not chosen:
            tx.rollback()
            report.seconds = time.monotonic() - started
            return report
        report.new_developers = book.write(work, county, list(chosen))
        changed = _set_values(work, chosen)
        new = {d for d in chosen if isinstance(d, NewDeveloper)}
        report.added = len(new)
        report.updated = len(changed - {d.id for d in new})
        report.unchanged = len(chosen) - report.added - report.updated
        tx.commit()
        report.committed = True
    report.seconds = time.monotonic() - started
    return report
