"""The trace (全过程留痕) made readable: the audit log of a county, filtered and paged, each row
in words a clerk or the discipline commission (纪委) reads — when (Beijing time), who (person
and department), from where, what (台账 / 任务 / … and the compound), which action (新增 /
修改 / 删除 / 登录 …) and what changed, one "字段：前 → 后" line per field.

Reading never changes the log. Rows come newest first (`at DESC, id DESC`) through the
(county_code, at) index, one page at a time (LIMIT / OFFSET); the total is counted up to
COUNT_CAP rows, so a vast log costs a bounded count. A date range is of Beijing days,
inclusive at both ends. The same rows go to a spreadsheet (`write_xlsx`) with Chinese headers.

Field names come from geo.core.model.FIELD_LABELS (as the card words them), else from the
schema's own Chinese column comments, else the column's name.
"""

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, text

from geo import TitlemapError
from geo.core.dates import BEIJING, cn_date
from geo.core.model import BLOCKER_LABELS, FIELD_LABELS, STATUS_LABELS, Base
from geo.core.sheets import cell, end_list, list_sheet
from geo.core.work import TASK_STATUS_LABELS
from geo.db.memo import memo_of
from geo.ledger.users import ROLE_LABELS
from geo.query.compounds import escape_like

# What a row concerns (audit_log.object_kind: the table, or a hand-written kind).
KIND_LABELS = {
    "ledger_entry": "台账", "task": "任务", "task_reply": "任务答复", "compound_file": "档案文件",
    "app_user": "用户", "county": "县设置", "bulletin": "通报", "audit_log": "留痕记录",
}  # fmt: skip
# What was done: the triggers' insert / update / delete, and the rows written by hand
# (geo.db.audit.record: signing in and out, loading a county, onboarding, imports, exports).
ACTION_LABELS = {
    "insert": "新增", "update": "修改", "delete": "删除", "sign_in": "登录", "sign_out": "退出",
    "load": "载入数据", "onboard": "县数据入库", "import": "导入", "export": "导出",
}  # fmt: skip
# Codes shown as their words: (object kind, field) → code → label.
VALUE_LABELS: dict[tuple[str, str], Mapping[str, str]] = {
    ("ledger_entry", "status"): STATUS_LABELS,
    ("ledger_entry", "blockers"): BLOCKER_LABELS,
    ("task", "status"): TASK_STATUS_LABELS,
    ("app_user", "role"): ROLE_LABELS,
}
# The fields of the rows written by hand (geo.db.audit.record), which no table names.
RECORD_LABELS = {"filters": "筛选条件", "rows": "条数", "format": "格式", "replace": "替换原有数据",
                 "files": "文件"}  # fmt: skip
# The row's identity and bookkeeping: said by the other columns, or by nothing a reader needs.
HIDDEN_FIELDS = {"id", "county_code", "compound_id", "version", "updated_at", "updated_by", "geom"}
EMPTY = "（空）"
MAX_VALUE_CHARS = 300  # a long text (a plan, a bulletin's figures) is cut here, with …
PAGE_SIZE = 50
COUNT_CAP = 100_000  # rows counted at most: "100000+" beyond
EXPORT_CAP = 100_000  # rows a spreadsheet holds at most (the newest)

_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}(:\d{2})?|Z)")
# A column comment that is a Chinese label, maybe followed by a remark in brackets.
_LABEL_COMMENT = re.compile(r"([\u4e00-\u9fff]+)(?:\s*[（(].*[）)])?")


class AuditFilterError(TitlemapError):
    """A filter that cannot be applied (an unknown kind, a range ending before it starts)."""


@dataclass(frozen=True)
class AuditFilter:
    """Which rows: every field set narrows them; None (or blank) does not."""

    actor: str | None = None  # the person's name, or part of it
    department: str | None = None  # exactly
    compound: str | None = None  # a compound's code (exactly) or part of its name
    since: date | None = None  # Beijing days, inclusive
    until: date | None = None
    kind: str | None = None  # KIND_LABELS' keys

    def __post_init__(self) -> None:
        for name in ("actor", "department", "compound", "kind"):
            value = getattr(self, name)
            object.__setattr__(self, name, (value or "").strip() or None)
        if self.kind is not None and self.kind not in KIND_LABELS:
            raise AuditFilterError(
                f"未知对象类别 / unknown kind {self.kind!r}; 可选 / allowed: {list(KIND_LABELS)}"
            )
        if self.since and self.until and self.since > self.until:
            raise AuditFilterError(
                f"起始日期 {cn_date(self.since)} 晚于截止日期 {cn_date(self.until)} / "
                "the range ends before it starts"
            )

    def words(self) -> str:
        """The filters in one line, as a sheet's title block names them."""
        parts = []
        if self.actor:
            parts.append(f"人员：{self.actor}")
        if self.department:
            parts.append(f"单位：{self.department}")
        if self.compound:
            parts.append(f"小区：{self.compound}")
        if self.since or self.until:
            start = cn_date(self.since) if self.since else "最早"
            end = cn_date(self.until) if self.until else "至今"
            parts.append(f"日期：{start} 至 {end}")
        if self.kind:
            parts.append(f"对象：{KIND_LABELS[self.kind]}")
        return "；".join(parts) or "全部记录"

    def as_dict(self) -> dict[str, str]:
        """The filters set, as text (ISO days): for a query string or an export's own trace."""
        return {k: v.isoformat() if isinstance(v, date) else v
                for k, v in asdict(self).items() if v is not None}  # fmt: skip


@dataclass
class AuditPage:
    """One page of readable rows and how many match in all (up to COUNT_CAP)."""

    rows: list[dict[str, Any]]
    total: int
    total_capped: bool  # more than COUNT_CAP rows match
    limit: int
    offset: int
    filters: AuditFilter = field(default_factory=AuditFilter)

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total, "total_capped": self.total_capped, "limit": self.limit,
            "offset": self.offset, "filters": self.filters.as_dict(), "rows": self.rows,
        }  # fmt: skip


# -- reading -------------------------------------------------------------------------------------

# The compound a row concerns: its own compound_id, or for a task's reply the task's compound.
_ABOUT = (
    "coalesce(a.compound_id, CASE WHEN a.object_kind = 'task_reply' THEN (SELECT t.compound_id "
    "FROM task t WHERE t.county_code = a.county_code "
    "AND t.id = (coalesce(a.after, a.before) ->> 'task_id')::int) END)"
)


def _where(county: str, f: AuditFilter) -> tuple[str, dict[str, Any]]:
    where, params = ["a.county_code = :county"], {"county": county}
    if f.actor:
        where.append("a.actor ILIKE :actor ESCAPE '\\'")
        params["actor"] = f"%{escape_like(f.actor)}%"
    if f.department:
        where.append("a.department = :department")
        params["department"] = f.department
    if f.compound:
        where.append(
            f"{_ABOUT} IN (SELECT id FROM compound WHERE county_code = :county "
            "AND (code = :compound OR name ILIKE :compound_any ESCAPE '\\'))"
        )
        params |= {"compound": f.compound, "compound_any": f"%{escape_like(f.compound)}%"}
    if f.since:  # the Beijing day's first moment: the index on (county_code, at) serves it
        where.append("a.at >= :start")
        params["start"] = datetime.combine(f.since, time(), BEIJING)
    if f.until:
        where.append("a.at < :end")
        params["end"] = datetime.combine(f.until + timedelta(days=1), time(), BEIJING)
    if f.kind:
        where.append("a.object_kind = :kind")
        params["kind"] = f.kind
    return " AND ".join(where), params


def audit_rows(
    conn: Connection,
    county: str,
    *,
    actor: str | None = None,
    department: str | None = None,
    compound: str | None = None,
    since: date | None = None,
    until: date | None = None,
    kind: str | None = None,
    limit: int = PAGE_SIZE,
    offset: int = 0,
    labels: Mapping[str, str] | None = None,
) -> AuditPage:
    """The county's audit rows matching the filters, newest first, `limit` from `offset`, each
    made readable (`readable_row`); `labels` name fields (field → Chinese)."""
    f = AuditFilter(actor, department, compound, since, until, kind)
    limit, offset = max(0, min(int(limit), EXPORT_CAP + 1)), max(0, int(offset))
    where, params = _where(county, f)
    counted = conn.execute(
        text(f"SELECT count(*) FROM (SELECT 1 FROM audit_log a WHERE {where} LIMIT :cap) s"),
        params | {"cap": COUNT_CAP + 1},
    ).scalar_one()
    rows = conn.execute(
        text(f"""
            SELECT a.id, a.at, a.actor, a.department, a.address, a.object_kind, a.object_id,
                   a.action, a.before, a.after, c.code AS compound_code,
                   c.name AS compound_name, u.name AS user_name
              FROM (SELECT a.*, {_ABOUT} AS about FROM audit_log a WHERE {where}
                     ORDER BY a.at DESC, a.id DESC LIMIT :limit OFFSET :offset) a
              LEFT JOIN compound c ON c.county_code = :county AND c.id = a.about
              LEFT JOIN app_user u ON a.object_kind = 'app_user' AND u.id::text = a.object_id
             ORDER BY a.at DESC, a.id DESC
        """),
        params | {"limit": limit, "offset": offset},
    ).mappings()
    readable = [readable_row(row, labels or FIELD_LABELS) for row in rows]
    return AuditPage(readable, min(counted, COUNT_CAP), counted > COUNT_CAP, limit, offset, f)


# Rows written while a page read the log may commit after rows with higher ids (the identity
# is taken at INSERT): each reading of the choices looks again at this many rows before it.
PEOPLE_OVERLAP = 1000


def audit_people(conn: Connection, county: str) -> tuple[list[str], list[str]]:
    """The people and the departments named in the county's log, for the filters' choices.

    The log only grows: the engine's memo keeps what the rows up to some id named, and each
    call reads only the rows after it (through the primary key), so a log of millions costs
    one scan per county and process, not one per page."""
    memo, key = memo_of(conn.engine), ("audit_people", county)
    last, people, departments = memo.get(key) or (0, frozenset(), frozenset())
    found = conn.execute(
        text(
            "SELECT max(id) AS last, array_agg(DISTINCT actor) AS people, "
            "array_agg(DISTINCT department) FILTER (WHERE department IS NOT NULL) AS departments "
            "FROM audit_log WHERE county_code = :c AND id > :after"
        ),
        {"c": county, "after": max(0, last - PEOPLE_OVERLAP)},
    ).one()
    if found.last is not None:
        people |= set(found.people or ())
        departments |= set(found.departments or ())
        memo.put(key, (max(last, found.last), people, departments))
    return sorted(people), sorted(departments)


# -- in words ------------------------------------------------------------------------------------


def cn_time(moment: datetime) -> str:
    """2026年12月7日 14:05:09, Beijing time."""
    return _cn_time(moment.astimezone(BEIJING))


def _cn_time(beijing: datetime) -> str:
    return f"{cn_date(beijing.date())} {beijing:%H:%M:%S}"


def field_label(kind: str, name: str, labels: Mapping[str, str]) -> str:
    """A field's Chinese name: the caller's (or a hand-written row's), else its column's
    Chinese comment, else `name`."""
    return labels.get(name) or RECORD_LABELS.get(name) or _comment_label(kind, name)


@cache
def _comment_label(kind: str, name: str) -> str:
    table = Base.metadata.tables.get(kind)
    column = table.columns.get(name) if table is not None else None
    match = _LABEL_COMMENT.fullmatch(column.comment or "") if column is not None else None
    return match.group(1) if match else name


def value_text(kind: str, name: str, value: Any) -> str:
    """A value as a reader takes it: codes as their words, lists 、-joined, moments in Beijing
    time, nothing as （空）; cut at MAX_VALUE_CHARS."""
    if value is None or value == "" or value == [] or value == {}:
        return EMPTY
    words = VALUE_LABELS.get((kind, name), {})
    if isinstance(value, list):
        shown = "、".join(_item_text(v, words) for v in value)
    elif isinstance(value, bool):
        shown = "是" if value else "否"
    elif isinstance(value, dict):
        shown = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, str) and value in words:
        shown = words[value]
    elif isinstance(value, str) and _TIMESTAMP.fullmatch(value):
        shown = cn_time(datetime.fromisoformat(value))
    else:
        shown = str(value)
    return shown if len(shown) <= MAX_VALUE_CHARS else shown[:MAX_VALUE_CHARS] + "…"


def _item_text(value: Any, words: Mapping[str, str]) -> str:
    if isinstance(value, str):
        return words.get(value, value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def change_lines(
    kind: str, before: dict | None, after: dict | None, labels: Mapping[str, str]
) -> list[str]:
    """What changed, one line per field: "字段：前 → 后" where both sides are known (an
    update keeps only the fields it changed), "字段：值" for a row added or removed (its
    filled fields) and for what a hand-written row says."""
    before, after = before or {}, after or {}
    lines = []
    for name in dict.fromkeys([*before, *after]):
        if name in HIDDEN_FIELDS:
            continue
        label = field_label(kind, name, labels)
        if name in before and name in after:
            old, new = value_text(kind, name, before[name]), value_text(kind, name, after[name])
            lines.append(f"{label}：{old} → {new}")
        else:
            value = after[name] if name in after else before[name]
            if not _empty(value):
                lines.append(f"{label}：{value_text(kind, name, value)}")
    return lines


def _object_name(row: Mapping[str, Any]) -> str:
    """The object in a few words: a user's name, a file's, a bulletin's number, else #id."""
    content = row["after"] or row["before"] or {}
    kind = row["object_kind"]
    if kind == "app_user" and (row["user_name"] or content.get("name")):
        return row["user_name"] or content["name"]
    if kind == "compound_file" and content.get("name"):
        return str(content["name"])
    if kind == "bulletin" and content.get("number"):
        return f"第{content['number']}期"
    if kind in ("ledger_entry", "audit_log") or not row["object_id"]:
        return ""
    return row["object_id"] if kind == "county" else f"#{row['object_id']}"


def readable_row(row: Mapping[str, Any], labels: Mapping[str, str]) -> dict[str, Any]:
    """One audit row in words (and its raw codes beside them, for scripts)."""
    kind, action = row["object_kind"], row["action"]
    kind_label = KIND_LABELS.get(kind, kind)
    compound = " ".join(filter(None, (row["compound_code"], row["compound_name"])))
    name = _object_name(row)
    department = row["department"]
    at = row["at"].astimezone(BEIJING)
    return {
        "id": row["id"],
        "at": at.isoformat(timespec="seconds"),
        "time": _cn_time(at),
        "actor": row["actor"],
        "department": department,
        "who": f"{row['actor']}（{department}）" if department else row["actor"],
        "address": row["address"],
        "kind": kind,
        "kind_label": kind_label,
        "object_id": row["object_id"],
        "object": " ".join(filter(None, (kind_label, name))),
        "compound_code": row["compound_code"],
        "compound_name": row["compound_name"],
        "compound": compound,
        "what": " · ".join(filter(None, (kind_label, name, compound))),
        "action": action,
        "action_label": ACTION_LABELS.get(action, action),
        "changes": change_lines(kind, row["before"], row["after"], labels),
    }


# -- the spreadsheet -----------------------------------------------------------------------------

XLSX_COLUMNS = (
    ("序号", 7), ("时间（北京时间）", 21), ("人员", 14), ("单位", 14), ("地址", 15),
    ("对象", 18), ("小区", 24), ("操作", 9), ("变更内容", 70),
)  # fmt: skip


def write_xlsx(
    page: AuditPage,
    target: str | Path | IO[bytes],
    *,
    county: str,
    county_name: str,
    exported_at: datetime,
    exported_by: str,
) -> None:
    """The rows as one sheet: a title naming the county, a line with the filters, who exported
    and when (Beijing) and how many rows — saying so when EXPORT_CAP cut them —, the Chinese
    headers (frozen, with a filter), one row per change."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment

    shown = len(page.rows)
    count = f"共 {shown} 条"
    if page.total_capped or page.total > shown:
        total = f"{page.total}{'+' if page.total_capped else ''}"
        count = (
            f"符合条件的共 {total} 条，仅导出最新的 {shown} 条，请缩小筛选范围后分次导出"
            f" / capped: the newest {shown} of {total} rows, narrow the filters"
        )
    book = Workbook(write_only=True)
    sheet = list_sheet(
        book, "留痕记录", XLSX_COLUMNS, f"{county_name}（{county}）“登记难”化解工作留痕记录",
        f"筛选条件：{page.filters.words()}；导出时间：{cn_time(exported_at)}（北京时间）；"
        f"导出人：{exported_by}；{count}",
    )  # fmt: skip
    wrap = Alignment(wrap_text=True, vertical="top")
    for k, row in enumerate(page.rows, start=1):
        values: Sequence[str] = (
            row["time"], row["actor"], row["department"] or "", row["address"] or "",
            row["object"], row["compound"], row["action_label"],
        )  # fmt: skip
        changes = cell(sheet, "\n".join(row["changes"]), align=wrap)
        sheet.append([k, *(cell(sheet, v) for v in values), changes])
    end_list(sheet, len(XLSX_COLUMNS), shown)
    book.save(target)
