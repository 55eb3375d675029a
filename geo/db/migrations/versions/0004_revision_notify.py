"""Tell listening servers when a county's data revision changes (LISTEN/NOTIFY).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 10:50:00

Each change of a `data_revision` row sends `NOTIFY titlemap_data_revision, '<county code>'`.
PostgreSQL delivers it on commit and folds repeats within a transaction into one, so a
100 000-row import sends one. Servers keep the revision in memory while they listen
(geo.db.revisions) instead of reading it for every tile and page.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = "titlemap_data_revision"  # geo.db.revisions.CHANNEL


def upgrade() -> None:
    op.execute(f"""
        CREATE FUNCTION notify_data_revision() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', NEW.county_code);
            RETURN NULL;
        END $$
    """)
    op.execute(
        "CREATE TRIGGER data_revision_notify AFTER INSERT OR UPDATE ON data_revision "
        "FOR EACH ROW EXECUTE FUNCTION notify_data_revision()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS data_revision_notify ON data_revision")
    op.execute("DROP FUNCTION IF EXISTS notify_data_revision()")
