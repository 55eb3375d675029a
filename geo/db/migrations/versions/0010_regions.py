"""Regions above the county: cities (地级市) and the province, their users, county roll-ups.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 11:00:00

A region is a province (code ending 0000) or a city (ending 00); which counties it holds comes
from the codes (GB/T 2260), so no table links them. A user belongs to one county or to one
region (exactly one of app_user.county_code / region_code). `county_rollup` keeps a county's
overview figures with the data revision they were computed at: the province overview reads
one row per county while its data has not moved (geo.ledger.regions).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "region",
        sa.Column("code", sa.String(6), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("level", sa.Text(), nullable=False, comment="province / city"),
        sa.Column("target_rate", sa.Numeric(5, 4),
                  comment="总体登记率目标；空则用各县自己的 / none: each county's own"),
        sa.Column("target_deadline", sa.Date()),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.CheckConstraint("level IN ('province', 'city')", name="region_level"),
        sa.CheckConstraint(
            "(level = 'province' AND code ~ '^[0-9]{2}0000$') OR "
            "(level = 'city' AND code ~ '^[0-9]{4}00$' AND code !~ '0000$')",
            name="region_code_level",
        ),
    )  # fmt: skip
    op.execute(
        "CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON region "
        "FOR EACH ROW EXECUTE FUNCTION audit_row()"
    )
    op.create_table(
        "county_rollup",
        sa.Column("county_code", sa.String(6),
                  sa.ForeignKey("county.code", ondelete="CASCADE"), primary_key=True),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("figures", JSONB(), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
    )  # fmt: skip
    op.add_column(
        "app_user",
        sa.Column("region_code", sa.String(6), sa.ForeignKey("region.code"),
                  comment="省或市的用户 / a region's user"),
    )  # fmt: skip
    op.create_index("ix_app_user_region_code", "app_user", ["region_code"])
    op.alter_column("app_user", "county_code", nullable=True)
    op.create_check_constraint(
        "user_home", "app_user", "(county_code IS NULL) <> (region_code IS NULL)"
    )
    op.create_index("app_user_region_name", "app_user", ["region_code", "name"], unique=True,
                    postgresql_where=sa.text("region_code IS NOT NULL"))  # fmt: skip


def downgrade() -> None:
    op.execute("DELETE FROM app_user WHERE region_code IS NOT NULL")
    op.drop_index("app_user_region_name", table_name="app_user")
    op.drop_constraint("user_home", "app_user", type_="check")
    op.alter_column("app_user", "county_code", nullable=False)
    op.drop_index("ix_app_user_region_code", table_name="app_user")
    op.drop_column("app_user", "region_code")
    op.drop_table("county_rollup")
    op.drop_table("region")
