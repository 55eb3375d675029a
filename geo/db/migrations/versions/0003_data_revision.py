"""A per-county data revision, bumped by every change to what maps draw.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 08:50:00

`data_revision(county_code, revision, changed_at)` gains 1 for each statement that inserts,
updates or deletes rows of a county in any drawn table (compounds, parcels and their links,
the ledger and its history, developers, planned areas, complaints, townships, context
features, the county itself). Statement-level triggers with transition tables: a 100 000-row COPY bumps
once. Caches of drawn data (extents, tiles, ETags) key on it (`geo.query.compounds.data_version`).
The row is never deleted, not even with its county (no foreign key on purpose), so a county
deleted and loaded again never repeats a revision a cache may still hold.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table → its county column
TABLES = {
    "county": "code",
    "township": "county_code",
    "context_feature": "county_code",
    "developer": "county_code",
    "compound": "county_code",
    "parcel": "county_code",
    "compound_parcel": "county_code",
    "ledger_entry": "county_code",
    "ledger_event": "county_code",
    "planned_area": "county_code",
    "complaint": "county_code",
}

# TG_ARGV[0] names the county column; the transition tables are read by dynamic SQL (PL/pgSQL
# registers them for EXECUTE too). DISTINCT first: one upsert per county, not per row.
BUMP_FUNCTION = """
CREATE FUNCTION bump_data_revision() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    rows text;
BEGIN
    rows := CASE TG_OP
        WHEN 'INSERT' THEN format('SELECT DISTINCT %I FROM new_rows', TG_ARGV[0])
        WHEN 'DELETE' THEN format('SELECT DISTINCT %I FROM old_rows', TG_ARGV[0])
        ELSE format('SELECT %1$I FROM new_rows UNION SELECT %1$I FROM old_rows', TG_ARGV[0])
    END;
    EXECUTE format(
        'INSERT INTO data_revision AS r (county_code, revision, changed_at) '
        'SELECT s.c, 1, now() FROM (%s) s(c) WHERE s.c IS NOT NULL ORDER BY s.c '
        'ON CONFLICT (county_code) DO UPDATE '
        'SET revision = r.revision + 1, changed_at = now()', rows);
    RETURN NULL;
END $$
"""


def _triggers(table: str) -> list[str]:
    # One trigger per event: INSERT has no old rows and DELETE no new ones.
    column = TABLES[table]
    spec = {
        "insert": "REFERENCING NEW TABLE AS new_rows",
        "update": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "delete": "REFERENCING OLD TABLE AS old_rows",
    }
    return [
        f"CREATE TRIGGER {table}_revision_{event} AFTER {event.upper()} ON {table} "
        f"{refs} FOR EACH STATEMENT EXECUTE FUNCTION bump_data_revision('{column}')"
        for event, refs in spec.items()
    ]


def upgrade() -> None:
    op.create_table(
        "data_revision",
        sa.Column("county_code", sa.String(length=6), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column(
            "changed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("county_code"),
        comment="每县数据修订号 / per-county revision of drawn data: caches key on it",
    )
    op.execute(
        "INSERT INTO data_revision (county_code, revision, changed_at) "
        "SELECT code, 1, now() FROM county"
    )
    op.execute(BUMP_FUNCTION)
    for table in TABLES:
        for statement in _triggers(table):
            op.execute(statement)


def downgrade() -> None:
    for table in TABLES:
        for event in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_revision_{event} ON {table}")
    op.execute("DROP FUNCTION IF EXISTS bump_data_revision()")
    op.drop_table("data_revision")
