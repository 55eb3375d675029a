"""The ledger's columns and words: which header means which field, which cell words mean
which status or blocker, and what the package shares (progress stages, its error).

Header words are compared after `header_key` (full-width → half-width, spaces, "*" and any
bracketed unit such as "（套）" removed); `COLUMNS` lists the variants offices use.
"""

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from geo import TitlemapError
from geo.core.model import BLOCKER_LABELS, STATUS_LABELS

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
