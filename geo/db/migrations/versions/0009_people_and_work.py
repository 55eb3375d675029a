"""People and their work: passwords and departments, an entry's measures and next step, sign-in sessions, tasks, files per
compound, the append-only audit log and issued bulletins.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 05:00:00

The audit log is written by triggers (`audit_row`) on every table people change, so no path
— API, CLI, sheet, raw SQL — changes them untraced. Who and from where come from the
transaction's settings titlemap.actor / .department / .address (geo.db.audit.act_as); a bulk
load sets titlemap.audit = 'summary' and writes one row for the whole file instead of one per
row. UPDATE, DELETE and TRUNCATE on audit_log are refused by trigger for everyone, and the
application's role is granted only SELECT and INSERT on it (geo.db.schema.grant_app_role).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EVENT_ACTIONS = "'open', 'update', 'close', 'reopen', 'progress'"

# table → columns left out of its trace (secrets; a county's boundary is megabytes)
AUDITED = {
    "ledger_entry": [],
    "task": [],
    "task_reply": [],
    "compound_file": [],
    "app_user": ["password_hash", "token_sha256"],
    "county": ["geom"],
    "bulletin": [],
}

AUDIT_ROW = """
CREATE FUNCTION audit_row() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_row jsonb;
    new_row jsonb;
    row_ jsonb;
BEGIN
    IF coalesce(current_setting('titlemap.audit', true), '') = 'summary' THEN
        RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' THEN old_row := to_jsonb(OLD) - coalesce(TG_ARGV, '{}'); END IF;
    IF TG_OP <> 'DELETE' THEN new_row := to_jsonb(NEW) - coalesce(TG_ARGV, '{}'); END IF;
    IF TG_OP = 'UPDATE' THEN
        -- only what changed, besides the row's identity
        SELECT jsonb_object_agg(o.key, o.value), jsonb_object_agg(o.key, new_row -> o.key)
          INTO old_row, new_row
          FROM jsonb_each(old_row) o
         WHERE o.value IS DISTINCT FROM new_row -> o.key
           AND o.key NOT IN ('updated_at', 'updated_by', 'version');
        IF old_row IS NULL THEN RETURN NULL; END IF;
    END IF;
    row_ := coalesce(to_jsonb(NEW), to_jsonb(OLD));
    INSERT INTO audit_log (at, actor, department, address, county_code, object_kind,
                           object_id, compound_id, action, before, after)
    VALUES (
        clock_timestamp(),
        coalesce(nullif(current_setting('titlemap.actor', true), ''), session_user::text),
        nullif(current_setting('titlemap.department', true), ''),
        nullif(current_setting('titlemap.address', true), ''),
        coalesce(row_ ->> 'county_code', CASE WHEN TG_TABLE_NAME = 'county' THEN row_ ->> 'code' END),
        TG_TABLE_NAME,
        coalesce(row_ ->> 'id', row_ ->> 'code'),
        (row_ ->> 'compound_id')::int,
        lower(TG_OP),
        old_row,
        new_row
    );
    RETURN NULL;
END $$
"""

APPEND_ONLY = """
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '审计日志只能追加，不能修改或删除 / the audit log is append-only'
        USING ERRCODE = 'insufficient_privilege';
END $$
"""


def _timestamps(*names: str) -> list[sa.Column]:
    return [sa.Column(name, sa.DateTime(timezone=True), nullable=False) for name in names]


def _county() -> sa.Column:
    return sa.Column(
        "county_code", sa.String(6), sa.ForeignKey("county.code", ondelete="CASCADE"),
        nullable=False, index=True,
    )  # fmt: skip


def upgrade() -> None:
    op.add_column("app_user", sa.Column("password_hash", sa.Text()))
    op.add_column("app_user", sa.Column("department", sa.Text()))
    op.add_column("app_user", sa.Column("counties", ARRAY(sa.Text()), nullable=False,
                                        server_default="{}"))  # fmt: skip
    op.alter_column("app_user", "token_sha256", nullable=True)
    op.add_column("ledger_entry", sa.Column("measures", ARRAY(sa.Text()), nullable=False,
                                            server_default="{}"))  # fmt: skip
    op.add_column("ledger_entry", sa.Column("next_step", sa.Text()))
    # a progress note on its own (a meeting held): an event without changed fields
    op.drop_constraint("event_action", "ledger_event", type_="check")
    op.create_check_constraint("event_action", "ledger_event", f"action IN ({EVENT_ACTIONS})")
    op.add_column("county", sa.Column("map_public", sa.Boolean(), nullable=False,
                                      server_default="true"))  # fmt: skip

    op.create_table(
        "login_session",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("app_user.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("csrf", sa.Text(), nullable=False),
        *_timestamps("created_at", "expires_at", "last_seen_at"),
        sa.Column("address", sa.Text()),
        sa.Column("user_agent", sa.Text()),
    )
    op.create_table(
        "task",
        sa.Column("id", sa.Integer(), primary_key=True),
        _county(),
        sa.Column(
            "compound_id",
            sa.Integer(),
            sa.ForeignKey("compound.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("department", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False, server_default="assigned"),
        sa.Column("created_by", sa.Text(), nullable=False),
        *_timestamps("created_at"),
        sa.Column("done_on", sa.Date()),
        sa.Column("closed_by", sa.Text()),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.CheckConstraint("status IN ('assigned', 'in_progress', 'done')", name="status_allowed"),
        sa.CheckConstraint("(status = 'done') = (done_on IS NOT NULL)", name="done_has_day"),
    )
    op.create_index("task_open_due", "task", ["county_code", "due_on"],
                    postgresql_where=sa.text("status <> 'done'"))  # fmt: skip
    op.create_table(
        "task_reply",
        sa.Column("id", sa.Integer(), primary_key=True),
        _county(),
        sa.Column(
            "task_id",
            sa.Integer(),
            sa.ForeignKey("task.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        *_timestamps("at"),
        sa.Column("user_name", sa.Text(), nullable=False),
        sa.Column("department", sa.Text()),
        sa.Column("text", sa.Text(), nullable=False),
    )
    op.create_table(
        "compound_file",
        sa.Column("id", sa.Integer(), primary_key=True),
        _county(),
        sa.Column(
            "compound_id",
            sa.Integer(),
            sa.ForeignKey("compound.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("task_id", sa.Integer(), sa.ForeignKey("task.id", ondelete="SET NULL")),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("media_type", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("title", sa.Text()),
        sa.Column("uploaded_by", sa.Text(), nullable=False),
        *_timestamps("uploaded_at"),
        sa.Column("taken_at", sa.DateTime(timezone=True)),
        sa.Column("geom", Geometry("POINT", srid=4490, spatial_index=False)),
        sa.Column("deleted_at", sa.DateTime(timezone=True)),
        sa.Column("deleted_by", sa.Text()),
        sa.CheckConstraint("kind IN ('pdf', 'image', 'office')", name="kind_allowed"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("department", sa.Text()),
        sa.Column("address", sa.Text()),
        sa.Column("county_code", sa.String(6)),
        sa.Column("object_kind", sa.Text(), nullable=False),
        sa.Column("object_id", sa.Text()),
        sa.Column("compound_id", sa.Integer()),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("before", JSONB()),
        sa.Column("after", JSONB()),
    )
    op.create_index("ix_audit_log_county_code", "audit_log", ["county_code"])
    op.create_index("audit_log_county_at", "audit_log", ["county_code", "at"])
    op.create_table(
        "bulletin",
        sa.Column("id", sa.Integer(), primary_key=True),
        _county(),
        sa.Column("period", sa.Text(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        *_timestamps("issued_at"),
        sa.Column("issued_by", sa.Text(), nullable=False),
        sa.Column("figures", JSONB(), nullable=False),
        sa.UniqueConstraint("county_code", "period"),
        sa.UniqueConstraint("county_code", "number"),
    )

    op.execute(APPEND_ONLY)
    op.execute("CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON audit_log "
               "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()")  # fmt: skip
    op.execute("CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON audit_log "
               "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()")  # fmt: skip
    op.execute(AUDIT_ROW)
    for table, hidden in AUDITED.items():
        arguments = ", ".join(f"'{column}'" for column in hidden)
        op.execute(
            f"CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION audit_row({arguments})"
        )


def downgrade() -> None:
    for table in AUDITED:
        op.execute(f"DROP TRIGGER IF EXISTS audit ON {table}")
    op.execute("DROP FUNCTION IF EXISTS audit_row()")
    for table in ("bulletin", "audit_log", "compound_file", "task_reply", "task", "login_session"):
        op.drop_table(table)
    op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    op.drop_column("county", "map_public")
    op.execute("DELETE FROM ledger_event WHERE action = 'progress'")
    op.drop_constraint("event_action", "ledger_event", type_="check")
    op.create_check_constraint("event_action", "ledger_event",
                               "action IN ('open', 'update', 'close', 'reopen')")  # fmt: skip
    op.drop_column("ledger_entry", "next_step")
    op.drop_column("ledger_entry", "measures")
    op.execute("DELETE FROM app_user WHERE token_sha256 IS NULL")
    op.alter_column("app_user", "token_sha256", nullable=False)
    for column in ("counties", "department", "password_hash"):
        op.drop_column("app_user", column)
