"""Compound × planned-area overlap pieces, kept per county and data revision.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 11:00:00

`overlap_piece` holds the rows the OGC `overlaps` collection serves (geo.query.overlaps._sql, the
geometry in EPSG:4490), `overlap_piece_revision` the `(revision, changed_at)` of
`data_revision` they were computed at. `geo.query.overlaps.refresh_pieces` rewrites a county's rows
when its revision moved on, so a page reads rows instead of intersecting 100 000 compounds.

Both tables are UNLOGGED: derived data, rebuilt from the drawn tables on demand. A crash
empties both together (no revision recorded → computed again), and they are not replicated.
No data_revision triggers here on purpose: writing derived rows must not bump the revision
they are keyed on (that would make them stale as soon as written).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TEXT_COLUMNS = ("compound_code", "compound_name", "township", "status", "status_label",
                "planned_code", "planned_name", "kind", "kind_label")  # fmt: skip
DERIVED = "派生数据，可随时重算，不写日志 / derived data, recomputed on demand, unlogged"


def upgrade() -> None:
    op.create_table(
        "overlap_piece",
        sa.Column("county_code", sa.String(length=6), nullable=False),
        sa.Column("id", sa.Text(), nullable=False, comment="小区编号~片区编号"),
        *(sa.Column(name, sa.Text(), nullable=True) for name in TEXT_COLUMNS),
        sa.Column("overlap_m2", sa.Float(), nullable=True),
        sa.Column("compound_m2", sa.Float(), nullable=True),
        sa.Column("percent", sa.Float(), nullable=True),
        sa.Column(
            "geom",
            # Polygon or MultiPolygon, as the intersection comes out
            Geometry(geometry_type="GEOMETRY", srid=4490, dimension=2, spatial_index=False),
            nullable=False,
        ),
        prefixes=["UNLOGGED"],
        comment=f"小区与规划片区重叠部分（OGC overlaps 集合）；{DERIVED}",
    )
    op.create_index("ix_overlap_piece_county_id", "overlap_piece", ["county_code", "id"],
                    unique=True)  # fmt: skip
    op.create_index("ix_overlap_piece_geom", "overlap_piece", ["geom"], postgresql_using="gist")
    op.create_table(
        "overlap_piece_revision",
        sa.Column("county_code", sa.String(length=6), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "computed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("county_code"),
        prefixes=["UNLOGGED"],
        comment=f"overlap_piece 按哪个数据修订号计算 / data revision of the pieces；{DERIVED}",
    )


def downgrade() -> None:
    op.drop_table("overlap_piece_revision")
    op.drop_index("ix_overlap_piece_geom", table_name="overlap_piece")
    op.drop_index("ix_overlap_piece_county_id", table_name="overlap_piece")
    op.drop_table("overlap_piece")
