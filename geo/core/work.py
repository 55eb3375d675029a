"""The work on the ledger, as people do it: sign-in sessions, tasks with deadlines (分派交办 →
分类处置 → 限时办结), papers per compound (一小区一档), the audit trail (全过程留痕) and the
issued supervision bulletins (督查通报).

`audit_log` is append-only: rows come from triggers on the tables people change (migration
0009), the database refuses UPDATE, DELETE and TRUNCATE on it, and the application's database
role (geo.db.schema.APP_ROLE) may only read and insert. It has no foreign keys: a trace outlives
what it traces.
"""

import enum
from datetime import date, datetime
from typing import ClassVar

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from geo.core.model import (
    Base,
    _enum_check,
    county_fk,
    county_key,
    geometry,
    row_id,
    row_identity,
)


class LoginSession(Base):
    """A signed-in browser: the cookie's SHA-256 is the key; `csrf` goes with every write."""

    __tablename__ = "login_session"
    id: Mapped[str] = mapped_column(String(64), primary_key=True, comment="sha256 of the cookie")
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    csrf: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    address: Mapped[str | None] = mapped_column(Text)
    user_agent: Mapped[str | None] = mapped_column(Text)


class TaskStatus(enum.StrEnum):
    """Stored states; 逾期 (overdue) is not one: it is computed, in Beijing time, from due_on."""

    ASSIGNED = "assigned"  # 交办
    IN_PROGRESS = "in_progress"  # 办理中
    DONE = "done"  # 已办结

    @property
    def label(self) -> str:
        return TASK_STATUS_LABELS[self]


TASK_STATUS_LABELS = {
    TaskStatus.ASSIGNED: "交办",
    TaskStatus.IN_PROGRESS: "办理中",
    TaskStatus.DONE: "已办结",
}
OVERDUE_LABEL = "逾期"


class Task(Base):
    """A problem of a compound assigned by the office to a department, due on a day."""

    __tablename__ = "task"
    id: Mapped[int] = row_id()
    county_code: Mapped[str] = county_fk()
    compound_id: Mapped[int] = mapped_column(
        ForeignKey("compound.id", ondelete="CASCADE"), index=True
    )
    department: Mapped[str] = mapped_column(Text, comment="承办单位")
    action: Mapped[str] = mapped_column(Text, comment="交办事项")
    due_on: Mapped[date] = mapped_column(Date, comment="限时办结日期")
    status: Mapped[str] = mapped_column(Text, default=TaskStatus.ASSIGNED.value)
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    done_on: Mapped[date | None] = mapped_column(Date, comment="办结日期 (Beijing)")
    closed_by: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    __mapper_args__: ClassVar[dict] = {"version_id_col": version, **row_identity()}
    __table_args__ = (
        county_key(),
        _enum_check("status", TaskStatus),
        CheckConstraint("(status = 'done') = (done_on IS NOT NULL)", name="done_has_day"),
        Index("task_open_due", "county_code", "due_on", postgresql_where="status <> 'done'"),
    )


class TaskReply(Base):
    """A department's answer on a task (what was done); files may go with it."""

    __tablename__ = "task_reply"
    id: Mapped[int] = row_id()
    county_code: Mapped[str] = county_fk()
    task_id: Mapped[int] = mapped_column(ForeignKey("task.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    user_name: Mapped[str] = mapped_column(Text)
    department: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    __mapper_args__ = row_identity()
    __table_args__ = (county_key(),)


class FileKind(enum.StrEnum):
    PDF = "pdf"
    IMAGE = "image"
    OFFICE = "office"


class CompoundFile(Base):
    """A paper of a compound: bytes on disk under the data directory by SHA-256, the rest here.
    A photo keeps its EXIF time and place (a point on the map)."""

    __tablename__ = "compound_file"
    id: Mapped[int] = row_id()
    county_code: Mapped[str] = county_fk()
    compound_id: Mapped[int] = mapped_column(
        ForeignKey("compound.id", ondelete="CASCADE"), index=True
    )
    task_id: Mapped[int | None] = mapped_column(ForeignKey("task.id", ondelete="SET NULL"))
    sha256: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(Text, comment="the file's own name, without any path")
    media_type: Mapped[str] = mapped_column(Text, comment="as found in its content")
    kind: Mapped[str] = mapped_column(Text)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    title: Mapped[str | None] = mapped_column(
        Text, comment="批复 / 会议纪要 / 缴款凭证 / 现场照片 …"
    )
    uploaded_by: Mapped[str] = mapped_column(Text)
    uploaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    taken_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), comment="EXIF")
    geom = mapped_column(geometry("POINT"), comment="EXIF GPS, EPSG:4490")
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deleted_by: Mapped[str | None] = mapped_column(Text)
    __mapper_args__ = row_identity()
    __table_args__ = (county_key(), _enum_check("kind", FileKind))


class AuditLog(Base):
    """One change: who, when, from where, the row before and after (全过程留痕)."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor: Mapped[str] = mapped_column(Text)
    department: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    county_code: Mapped[str | None] = mapped_column(String(6), index=True)
    object_kind: Mapped[str] = mapped_column(Text, comment="the table: ledger_entry, task …")
    object_id: Mapped[str | None] = mapped_column(Text)
    compound_id: Mapped[int | None] = mapped_column(Integer, comment="the compound it concerns")
    action: Mapped[str] = mapped_column(Text, comment="insert / update / delete / sign_in …")
    before: Mapped[dict | None] = mapped_column(JSONB)
    after: Mapped[dict | None] = mapped_column(JSONB)
    __table_args__ = (Index("audit_log_county_at", "county_code", "at"),)


class Bulletin(Base):
    """An issued 督查通报: what it printed, kept as printed (later ledger edits leave it be)."""

    __tablename__ = "bulletin"
    id: Mapped[int] = row_id()
    county_code: Mapped[str] = county_fk()
    period: Mapped[str] = mapped_column(Text, comment="2026-W48 / 2026-11 …")
    number: Mapped[int] = mapped_column(Integer, comment="第 N 期")
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    issued_by: Mapped[str] = mapped_column(Text)
    figures: Mapped[dict] = mapped_column(JSONB, comment="everything it printed")
    __mapper_args__ = row_identity()
    __table_args__ = (
        county_key(),
        UniqueConstraint("county_code", "period"),
        UniqueConstraint("county_code", "number"),
    )
