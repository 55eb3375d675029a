"""The domain model: compounds and parcels linked to the resolution ledger (化解台账).

Every geometry is stored in EPSG:4490 (CGCS2000 geographic); areas are measured in the
county's Gauss-Krüger zone (geo.core.crs). Every table carries `county_code`, so one database can
serve a province and each county sees only its own rows.
"""

import enum
from datetime import date, datetime
from decimal import Decimal

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

SRID = 4490


def geometry(kind: str) -> Geometry:
    # GiST indexes are created explicitly in the migration, so they are visible there.
    return Geometry(kind, srid=SRID, spatial_index=False)


class Base(DeclarativeBase):
    pass


class LedgerStatus(enum.StrEnum):
    """Where a compound stands on the ledger; labels in `STATUS_LABELS`."""

    NOT_STARTED = "not_started"
    IN_PROGRESS = "in_progress"
    STALLED = "stalled"
    FIRST_REGISTERED = "first_registered"
    CLOSED = "closed"


STATUS_LABELS = {
    LedgerStatus.NOT_STARTED: "未启动",
    LedgerStatus.IN_PROGRESS: "推进中",
    LedgerStatus.STALLED: "停滞",
    LedgerStatus.FIRST_REGISTERED: "已首次登记",
    LedgerStatus.CLOSED: "已销号",
}


class Blocker(enum.StrEnum):
    """Blocker categories (卡点); `BLOCKER_LABELS` and `BLOCKER_LEAD` give words and routing."""

    APPROVALS = "approvals"
    LAND_PREMIUM = "land_premium"
    TAXES = "taxes"
    DEVELOPER = "developer"
    MORTGAGE = "mortgage"
    CONSTRUCTION_DEBT = "construction_debt"
    PLANNING_CONFLICT = "planning_conflict"
    AREA_DISCREPANCY = "area_discrepancy"
    OTHER = "other"  # the county's own words matched no category: kept in blocker_words


BLOCKER_LABELS = {
    Blocker.APPROVALS: "手续缺失（立项/规划/施工/竣工/消防/人防）",
    Blocker.LAND_PREMIUM: "欠缴土地出让金",
    Blocker.TAXES: "欠缴税费",
    Blocker.DEVELOPER: "开发企业违规或失联",
    Blocker.MORTGAGE: "抵押未解除或查封",
    Blocker.CONSTRUCTION_DEBT: "拖欠工程款",
    Blocker.PLANNING_CONFLICT: "规划冲突",
    Blocker.AREA_DISCREPANCY: "面积或权属不符",
    Blocker.OTHER: "其他问题",
}

# Typical routing of a blocker to its lead department (domain.md); a county may change it.
BLOCKER_LEAD = {
    Blocker.APPROVALS: "住建局",
    Blocker.LAND_PREMIUM: "自然资源局",
    Blocker.TAXES: "税务局",
    Blocker.DEVELOPER: "住建局",
    Blocker.MORTGAGE: "住建局",
    Blocker.CONSTRUCTION_DEBT: "住建局",
    Blocker.PLANNING_CONFLICT: "自然资源局",
    Blocker.AREA_DISCREPANCY: "自然资源局",
    Blocker.OTHER: "未定",
}

# The ledger's fields as the card, its history and the trace word them.
FIELD_LABELS = {
    "status": "状态", "units_task": "问题房屋套数", "units_first_registered": "首次登记套数",
    "units_transferred": "转移登记套数", "blockers": "卡点", "blocker_note": "问题描述",
    "lead_department": "牵头单位", "cooperating_departments": "配合单位",
    "supervising_leader": "包抓领导", "plan": "化解方案", "task_force_lead": "专班负责人",
    "deadline": "完成时限", "opened_on": "挂账日期", "closed_on": "销号日期",
    "close_reason": "销号理由", "ledger_no": "台账编号", "status_word": "化解状态（县台账原文）",
    "blocker_words": "卡点（县台账原文）", "measures": "化解措施", "next_step": "下一步",
}  # fmt: skip

# Measures (化解措施) offices name; a county's own words are kept as written beside these.
MEASURES = (
    "证缴分离", "容缺办理", "分割登记", "联合验收", "补办手续", "司法处置", "解除抵押",
    "分期缴纳", "政府兜底", "信用惩戒",
)  # fmt: skip


class PlannedAreaKind(enum.StrEnum):
    """Categories of planned area; the county's own word for one is kept in `kind_word`."""

    DISTRICT = "district"  # a named district of the plan: 城东片区, 高铁新区 …
    URBAN_RENEWAL = "urban_renewal"
    CIVILISED_CITY = "civilised_city"
    PLANNED_ROAD = "planned_road"
    GREEN_SPACE = "green_space"
    PLANNING_AREA = "planning_area"
    OTHER = "other"


PLANNED_AREA_LABELS = {
    PlannedAreaKind.DISTRICT: "片区",
    PlannedAreaKind.URBAN_RENEWAL: "城市更新片区",
    PlannedAreaKind.CIVILISED_CITY: "文明城市创建重点区域",
    PlannedAreaKind.PLANNED_ROAD: "规划道路",
    PlannedAreaKind.GREEN_SPACE: "规划绿地",
    PlannedAreaKind.PLANNING_AREA: "城市规划区",
    PlannedAreaKind.OTHER: "其他规划区域",
}


class ClosingRule(enum.StrEnum):
    """When a county counts an entry as closed (销号): a county setting."""

    ALL_TRANSFERRED = "all_transferred"  # every task unit transferred, or a written reason
    FIRST_REGISTERED = "first_registered"  # every task unit has its first registration
    AS_RECORDED = "as_recorded"  # whatever the county's ledger records


CLOSING_RULE_LABELS = {
    ClosingRule.ALL_TRANSFERRED: "全部转移登记（或写明理由）",
    ClosingRule.FIRST_REGISTERED: "全部完成首次登记",
    ClosingRule.AS_RECORDED: "以县台账记录为准",
}

# 地类 (GB/T 21010) of the parcels a county records, for labels on maps, pages and files.
LAND_USE_LABELS = {
    "05": "商服用地", "06": "工矿仓储用地", "07": "住宅用地", "0701": "城镇住宅用地",
    "0702": "农村宅基地",
}  # fmt: skip


def _enum_check(column: str, values: type[enum.StrEnum]) -> CheckConstraint:
    allowed = ", ".join(f"'{v.value}'" for v in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=f"{column}_allowed")


def county_fk() -> Mapped[str]:
    return mapped_column(
        String(6), ForeignKey("county.code", ondelete="CASCADE"), nullable=False, index=True
    )


def row_id() -> Mapped[int]:
    """A county row's serial id: the row's identity to the ORM (`row_identity`), while the
    table's key is (county_code, id) (`county_key`; migration 0011: a Citus shard enforces only
    keys that hold the county, docs/scale.md). The database's foreign keys between county
    tables are (county_code, x_id) → (county_code, id); the ORM joins on the ids."""
    return mapped_column(Integer, autoincrement=True, index=True)  # ix_<table>_id: lookups by id


def county_key(*columns: str) -> PrimaryKeyConstraint:
    return PrimaryKeyConstraint("county_code", *(columns or ("id",)))


def row_identity() -> dict:
    return {"primary_key": ["id"]}


class County(Base):
    """A county (县/区), by its 6-digit GB/T 2260 code."""

    __tablename__ = "county"
    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    province: Mapped[str | None] = mapped_column(Text)
    gk_epsg: Mapped[int | None] = mapped_column(
        Integer, comment="override of the Gauss-Krüger zone EPSG derived from the longitude"
    )
    target_rate: Mapped[Decimal] = mapped_column(Numeric(5, 4), default=Decimal("0.9"))
    target_deadline: Mapped[date | None] = mapped_column(Date)
    ledger_cutoff: Mapped[date | None] = mapped_column(
        Date, comment="compounds sold and occupied before this date belong on the ledger"
    )
    overall_rate_basis: Mapped[str] = mapped_column(
        Text,
        default="sold",
        server_default="sold",
        comment="总体登记率 denominator: sold (all sold units in scope) or task (ledger units)",
    )
    closing_rule: Mapped[str] = mapped_column(
        Text, default=ClosingRule.ALL_TRANSFERRED.value,
        server_default=ClosingRule.ALL_TRANSFERRED.value, comment="when an entry counts as closed",
    )  # fmt: skip
    map_public: Mapped[bool] = mapped_column(
        default=True, server_default="true", comment="地图对内网公开；否则须登录本县账号"
    )
    ledger_columns: Mapped[dict] = mapped_column(
        JSONB, default=dict, server_default="{}",
        comment="the county's ledger headers → fields, remembered from --columns",
    )  # fmt: skip
    geom = mapped_column(geometry("MULTIPOLYGON"))
    __table_args__ = (
        CheckConstraint("code ~ '^[0-9]{6}$'", name="county_code_digits"),
        _enum_check("closing_rule", ClosingRule),
        CheckConstraint("overall_rate_basis IN ('sold', 'task')", name="overall_rate_basis"),
    )


class Region(Base):
    """A province (省, code ending 0000) or a city (地级市, ending 00) above its counties; which
    counties it holds comes from the codes (geo.core.codes.region_prefix)."""

    __tablename__ = "region"
    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    level: Mapped[str] = mapped_column(Text, comment="province / city")
    target_rate: Mapped[Decimal | None] = mapped_column(
        Numeric(5, 4), comment="总体登记率目标；空则用各县自己的 / none: each county's own"
    )
    target_deadline: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    __table_args__ = (
        CheckConstraint("level IN ('province', 'city')", name="region_level"),
        CheckConstraint(
            "(level = 'province' AND code ~ '^[0-9]{2}0000$') OR "
            "(level = 'city' AND code ~ '^[0-9]{4}00$' AND code !~ '0000$')",
            name="region_code_level",
        ),
    )


class CountyRollup(Base):
    """A county's overview figures as of its data revision: the province overview reads one
    row per county instead of every county's ledger (geo.ledger.regions)."""

    __tablename__ = "county_rollup"
    county_code: Mapped[str] = mapped_column(
        String(6), ForeignKey("county.code", ondelete="CASCADE"), primary_key=True
    )
    revision: Mapped[int] = mapped_column(BigInteger)
    as_of: Mapped[date] = mapped_column(Date)
    figures: Mapped[dict] = mapped_column(JSONB)
    refreshed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Township(Base):
    """乡镇 / 街道."""

    __tablename__ = "township"
    id: Mapped[int] = row_id()
    county_code: Mapped[str] = county_fk()
    code: Mapped[str] = mapped_column(String(12))
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text, comment="镇 / 乡 / 街道")
    geom = mapped_column(geometry("MULTIPOLYGON"), nullable=False)
    __mapper_args__ = row_identity()
    __table_args__ = (county_key(), UniqueConstraint("county_code", "code"))


class ContextFeature(Base):
    """Context layers drawn under everything else: rivers, roads."""

    __tablename__ = "context_feature"
    id: Mapped[int] = row_id()
    county_code: Mapped[str] = county_fk()
    kind: Mapped[str] = mapped_column(Text, comment="river / road")
    name: Mapped[str] = mapped_column(Text)
    geom = mapped_column(geometry("GEOMETRY"), nullable=False)
    __mapper_args__ = row_identity()
    __table_args__ = (county_key(),)


class Developer(Base):
    """开发企业, identified by its 18-character 统一社会信用代码."""

    __tablename__ = "developer"
    id: Mapped[int] = row_id()
    county_code: Mapped[str] = county_fk()
    name: Mapped[str] = mapped_column(Text)
    credit_code: Mapped[str | None] = mapped_column(String(18))
    contact: Mapped[str | None] = mapped_column(Text)
    credit_status: Mapped[str] = mapped_column(
        Text, default="normal", comment="normal / blacklisted (失信名单) / unreachable (失联)"
    )
    blacklist_reason: Mapped[str | None] = mapped_column(Text)
    blacklisted_on: Mapped[date | None] = mapped_column(Date)
    __mapper_args__ = row_identity()
    __table_args__ = (
        county_key(),
        UniqueConstraint("county_code", "credit_code"),
        CheckConstraint(
            "credit_status IN ('normal', 'blacklisted', 'unreachable')", name="credit_status"
        ),
    )


compound_parcel = Table(
    "compound_parcel",
    Base.metadata,
    Column("compound_id", ForeignKey("compound.id", ondelete="CASCADE"), nullable=False),
    Column("parcel_id", ForeignKey("parcel.id", ondelete="CASCADE"), nullable=False),
    Column("county_code", String(6), ForeignKey("county.code", ondelete="CASCADE"), nullable=False),
    county_key("compound_id", "parcel_id"),
    Index("ix_compound_parcel_parcel", "parcel_id"),
    Index("ix_compound_parcel_compound", "compound_id"),
)


class Compound(Base):
    """小区 / 项目: the unit the ledger is kept by."""

    __tablename__ = "compound"
    id: Mapped[int] = row_id()
    county_code: Mapped[str] = county_fk()
    code: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    township_id: Mapped[int | None] = mapped_column(ForeignKey("township.id", ondelete="SET NULL"))
    developer_id: Mapped[int | None] = mapped_column(
        ForeignKey("developer.id", ondelete="SET NULL")
    )
    buildings: Mapped[int | None] = mapped_column(Integer)
    units_sold: Mapped[int | None] = mapped_column(Integer, comment="已售套数")
    sold_on: Mapped[date | None] = mapped_column(Date, comment="首次销售日期")
    occupied_on: Mapped[date | None] = mapped_column(Date, comment="交付入住日期")
    geom = mapped_column(geometry("MULTIPOLYGON"), nullable=False)

    township: Mapped["Township | None"] = relationship()
    developer: Mapped["Developer | None"] = relationship()
    parcels: Mapped[list["Parcel"]] = relationship(
        secondary=compound_parcel, back_populates="compounds"
    )
    ledger: Mapped["LedgerEntry | None"] = relationship(back_populates="compound")
    __mapper_args__ = row_identity()
    __table_args__ = (county_key(), UniqueConstraint("county_code", "code"))


class Parcel(Base):
    """宗地, by its 19-character 宗地代码 (GB/T 37346)."""

    __tablename__ = "parcel"
    id: Mapped[int] = row_id()
    county_code: Mapped[str] = county_fk()
    code: Mapped[str] = mapped_column(String(19))
    recorded_area_m2: Mapped[Decimal | None] = mapped_column(Numeric(14, 2), comment="登记面积")
    land_use: Mapped[str | None] = mapped_column(Text, comment="地类, e.g. 0701 城镇住宅用地")
    right_type: Mapped[str | None] = mapped_column(Text, comment="出让 / 划拨")
    premium_due: Mapped[Decimal | None] = mapped_column(Numeric(16, 2), comment="应缴出让金 元")
    premium_paid: Mapped[Decimal | None] = mapped_column(Numeric(16, 2), comment="已缴出让金 元")
    geom = mapped_column(geometry("MULTIPOLYGON"), nullable=False)

    compounds: Mapped[list[Compound]] = relationship(
        secondary=compound_parcel, back_populates="parcels"
    )
    __mapper_args__ = row_identity()
    __table_args__ = (county_key(), UniqueConstraint("county_code", "code"))


class LedgerEntry(Base):
    """One compound on the resolution ledger: its task units, progress, blockers and owners."""

    __tablename__ = "ledger_entry"
    id: Mapped[int] = row_id()
    county_code: Mapped[str] = county_fk()
    compound_id: Mapped[int] = mapped_column(ForeignKey("compound.id", ondelete="CASCADE"))
    ledger_no: Mapped[str | None] = mapped_column(Text, comment="台账编号")
    units_task: Mapped[int] = mapped_column(Integer, comment="问题房屋套数（任务套数）")
    units_first_registered: Mapped[int] = mapped_column(Integer, default=0)
    units_transferred: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(Text, default=LedgerStatus.NOT_STARTED.value)
    status_word: Mapped[str | None] = mapped_column(Text, comment="the status as the county has it")
    blockers: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    blocker_words: Mapped[list[str]] = mapped_column(
        ARRAY(Text), default=list, server_default="{}",
        comment="the blockers in the county's own words, as its ledger wrote them",
    )  # fmt: skip
    blocker_note: Mapped[str | None] = mapped_column(Text)
    lead_department: Mapped[str | None] = mapped_column(Text)
    cooperating_departments: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    supervising_leader: Mapped[str | None] = mapped_column(Text, comment="包抓领导")
    plan: Mapped[str | None] = mapped_column(Text, comment="化解方案")
    task_force_lead: Mapped[str | None] = mapped_column(Text, comment="专班负责人")
    deadline: Mapped[date | None] = mapped_column(Date, comment="限时办结日期")
    opened_on: Mapped[date | None] = mapped_column(Date, comment="挂账日期")
    closed_on: Mapped[date | None] = mapped_column(Date, comment="销号日期")
    close_reason: Mapped[str | None] = mapped_column(Text)
    measures: Mapped[list[str]] = mapped_column(
        ARRAY(Text), default=list, server_default="{}", comment="化解措施 (MEASURES or own words)"
    )
    next_step: Mapped[str | None] = mapped_column(Text, comment="下一步")
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    updated_by: Mapped[str | None] = mapped_column(Text)

    compound: Mapped[Compound] = relationship(back_populates="ledger")
    events: Mapped[list["LedgerEvent"]] = relationship(
        back_populates="entry", order_by="LedgerEvent.at"
    )
    # A stale version is refused on update: no lost edits.
    __mapper_args__ = {"version_id_col": version, **row_identity()}  # noqa: RUF012
    __table_args__ = (
        county_key(),
        UniqueConstraint("county_code", "compound_id"),  # one entry per compound
        Index("ix_ledger_entry_compound_id", "compound_id"),
        _enum_check("status", LedgerStatus),
        CheckConstraint("units_task >= 0", name="units_task_nonnegative"),
        CheckConstraint(
            "units_first_registered BETWEEN 0 AND units_task", name="first_within_task"
        ),
        CheckConstraint(
            "units_transferred BETWEEN 0 AND units_first_registered",
            name="transferred_within_first",
        ),
        # migration 0007; geo.ledger.rules.check_entry says the same in a clerk's words
        CheckConstraint("closed_on >= opened_on", name="closed_after_opened"),  # NULL passes
        CheckConstraint("closed_on IS NULL OR status = 'closed'", name="closed_on_only_closed"),
    )


class LedgerEvent(Base):
    """Append-only history of a ledger entry (挂账销号): who changed what, when, and why.

    `changes` holds {field: [before, after]}; `state` the tracked fields after the change, so
    the ledger as of any date is the latest event per entry up to that date.
    """

    __tablename__ = "ledger_event"
    id: Mapped[int] = row_id()
    county_code: Mapped[str] = county_fk()
    entry_id: Mapped[int] = mapped_column(ForeignKey("ledger_entry.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    user_name: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text, comment="open / update / close / reopen / progress")
    changes: Mapped[dict] = mapped_column(JSONB, default=dict)
    state: Mapped[dict] = mapped_column(JSONB, default=dict)
    note: Mapped[str | None] = mapped_column(Text)

    entry: Mapped[LedgerEntry] = relationship(back_populates="events")
    __mapper_args__ = row_identity()
    __table_args__ = (
        county_key(),
        Index("ix_ledger_event_entry_at", "entry_id", "at"),
        CheckConstraint(
            "action IN ('open', 'update', 'close', 'reopen', 'progress')", name="event_action"
        ),
    )


class PlannedArea(Base):
    """A planned area a compound may overlap: 城东片区, urban renewal, planned road, …"""

    __tablename__ = "planned_area"
    id: Mapped[int] = row_id()
    county_code: Mapped[str] = county_fk()
    code: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    kind_word: Mapped[str | None] = mapped_column(Text, comment="the kind as the county wrote it")
    name: Mapped[str] = mapped_column(Text)
    geom = mapped_column(geometry("MULTIPOLYGON"), nullable=False)
    __mapper_args__ = row_identity()
    __table_args__ = (
        county_key(),
        UniqueConstraint("county_code", "code"),
        _enum_check("kind", PlannedAreaKind),
    )


class Complaint(Base):
    """留言投诉: a point outside every ledger compound means the survey missed a compound."""

    __tablename__ = "complaint"
    id: Mapped[int] = row_id()
    county_code: Mapped[str] = county_fk()
    code: Mapped[str] = mapped_column(Text)
    received_on: Mapped[date] = mapped_column(Date)
    source: Mapped[str | None] = mapped_column(Text, comment="12345 热线 / 信访 / 网络留言")
    text: Mapped[str] = mapped_column(Text)
    geom = mapped_column(geometry("POINT"), nullable=False)
    __mapper_args__ = row_identity()
    __table_args__ = (county_key(), UniqueConstraint("county_code", "code"))


class Role(enum.StrEnum):
    """viewer reads; editor also edits the ledger and imports; admin also manages users."""

    VIEWER = "viewer"
    EDITOR = "editor"
    ADMIN = "admin"


class User(Base):
    """A person: signs in with a password (its argon2 hash alone is stored), or a script, by a
    bearer token (its SHA-256 alone is stored). `department` (住建局 …) limits an editor to the
    entries that department leads or co-operates on; none means the whole county (the
    leading group's office). `counties`: other counties this user has been given. A user
    belongs to one county (`county_code`) or to a city or the province (`region_code`)."""

    __tablename__ = "app_user"
    id: Mapped[int] = mapped_column(primary_key=True)
    county_code: Mapped[str | None] = mapped_column(
        String(6), ForeignKey("county.code", ondelete="CASCADE"), index=True
    )
    region_code: Mapped[str | None] = mapped_column(
        String(6), ForeignKey("region.code"), index=True, comment="省或市的用户 / a region's user"
    )
    name: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(Text)
    token_sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str | None] = mapped_column(Text)
    department: Mapped[str | None] = mapped_column(Text)
    counties: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, server_default="{}")
    active: Mapped[bool] = mapped_column(default=True, server_default="true")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    __table_args__ = (
        UniqueConstraint("county_code", "name"),
        Index(
            "app_user_region_name",
            "region_code",
            "name",
            unique=True,
            postgresql_where=text("region_code IS NOT NULL"),
        ),
        CheckConstraint("(county_code IS NULL) <> (region_code IS NULL)", name="user_home"),
        _enum_check("role", Role),
    )


def copy_columns(table_name: str) -> list[str]:
    """The columns a row of `table_name` is written with (COPY), in declaration order: all but
    the serial id and those the server fills (updated_at, server defaults)."""
    table = Base.metadata.tables[table_name]
    return [
        column.name
        for column in table.columns
        if column is not table.autoincrement_column and column.server_default is None
    ]
