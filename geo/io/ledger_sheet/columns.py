"""The ledger's columns: which header means which field, how a county's own headers are read
by their meaning, and what the package shares (progress stages, its error, row words).

Header words are compared after `header_key` (full-width → half-width, spaces, "*" and any
bracketed unit such as "（套）" removed). A header is found, in this order, by the county's own
mapping (`--columns`, remembered per county), by one of `COLUMNS`' aliases, then by its meaning
(`header_meaning`: 首次登记 / 首登 … with 套数 / 户数 → units_first_registered). The words of
cells — statuses, blockers — are the county's and live in geo/core/vocabulary.toml.
"""

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from geo import TitlemapError

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


# Text starting with one of these is a formula to Excel: the CSV writer guards it with a
# leading ', which the reader takes off again.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class LedgerSheetError(TitlemapError):
    """The file cannot be read as a ledger at all (corrupt, wrong format, no header row)."""


def tick(progress: Progress | None, stage: str, done: int, total: int | None) -> None:
    """Report progress every PROGRESS_EVERY items and at the end."""
    if progress is not None and (done % PROGRESS_EVERY == 0 or done == total):
        progress(stage, done, total)


def is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def text_of(value: Any) -> str:
    return "" if value is None else str(value).strip()


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

# -- headers by meaning ---------------------------------------------------------------------------

# A count header: 套数 / 户数 / 数量 anywhere, or 套 / 户 at its end or in its bracket
# ("已办首次登记（套）").
COUNT_RE = re.compile(r"套数|户数|数量|[套户]$|[(\[【][套户][)\]】]")
# Not a count of done homes: what remains (未 / 尚未 / 剩余 / 待), a rate, an area, a date.
NOT_DONE_RE = re.compile(r"未|剩余|待|率|比例|占比|%|面积|金额|栋|幢|日期|时间")
# Registration words: a header holding words of both fields is ambiguous, reported, not guessed.
REGISTRATION_WORDS = (
    ("units_first_registered", re.compile(r"首次.{0,4}登记|首登|初始登记|大证")),
    ("units_transferred", re.compile(r"转移|过户|办证|产权证|权证|发证|小证|分户登记")),
)
TASK_WORDS = ("问题", "任务", "涉及", "登记难", "摸排", "挂账", "台账")
# Headers of words rather than counts, by how they end: 化解进度 / 办理状态, 卡点类型.
WORD_MEANINGS = (
    ("status", re.compile(r"(状态|进度)$")),
    ("blockers", re.compile(r"卡点(类型|类别|问题)?$")),
)
IGNORE = "-"  # in --columns: "备注=-" leaves a column out


def header_meaning(word: Any) -> tuple[str, ...]:
    """The fields a header means by its words, for headers no alias names: () for none, one
    field, or several when it is ambiguous ("首次及转移登记套数"). Counts need a count word
    (套数 / 户数 …) and what was done (not 未办证, not a rate); words end as WORD_MEANINGS say."""
    key = header_key(word)
    whole = re.sub(r"[\s*:]", "", unicodedata.normalize("NFKC", str(word)))
    if not key:
        return ()
    if not COUNT_RE.search(whole):
        return tuple(f for f, ending in WORD_MEANINGS if ending.search(key))[:1]
    if NOT_DONE_RE.search(key):
        return ()
    found = tuple(f for f, words in REGISTRATION_WORDS if words.search(key))
    if found:
        return found
    return ("units_task",) if any(w in key for w in TASK_WORDS) else ()


def field_of(word: str) -> str | None:
    """A field named in --columns: its name (units_transferred), our header (转移登记套数) or
    one of its aliases; IGNORE for a column to leave out."""
    key = header_key(word)
    if key in (IGNORE, "忽略", "不导入", "ignore"):
        return IGNORE
    if key in BY_FIELD:
        return key
    return HEADERS.get(key)


def parse_columns(text: str | None) -> dict[str, str]:
    """--columns "表头=字段,表头=字段" → {header as written: field}; a bad pair is one line."""
    out: dict[str, str] = {}
    for pair in re.split(r"[,，;；\n]+", text or ""):
        if not pair.strip():
            continue
        header, sep, name = unicodedata.normalize("NFKC", pair).partition("=")
        field = field_of(name) if sep and header.strip() else None
        if field is None:
            allowed = "、".join(column.field for column in COLUMNS)
            raise LedgerSheetError(
                f"--columns 中的“{pair.strip()}”应为“表头=字段”，字段可用 / should be "
                f"header=field, one of: {allowed}（或 - 表示不导入 / or - to leave it out）"
            )
        out[header.strip()] = field
    return out


# -- rows that are not data ------------------------------------------------------------------------

TOTAL_RE = re.compile(r"^\S{0,16}?(合计|小计|总计)$")
# Sign-off and note lines under the table: 填表单位（盖章）：… 填表日期：… 审核人：… 注：…
SIGN_OFF_RE = re.compile(
    r"^(填表|填报|制表|报送|审核|审批|签发|分管|主要领导|单位负责人|负责人|联系人|联系电话|"
    r"注|备注|附注|说明)[^:：\s]{0,6}[:：\s.．、]"
)
LIST_SPLIT = re.compile(r"[、，,;；\n]+")
