"""Where compound tiles changed: per-cell revisions, so an edit stales only its own tiles.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 11:20:00

A change to compounds or their ledger entries (a statement of up to CELL_ROWS rows) records,
for every z14 Web Mercator tile ("cell", ≈ 2 km) the changed rows' boxes touch — old and new
geometry; for a ledger entry, its compound's — the county's revision after the change in
`tile_cell_revision`. A larger statement (a county loaded or replaced) moves the county's
`data_revision.tiles_floor` to that revision instead: every compound tile changed. The
revision of an unfiltered compound tile is then the largest of the floor and the cells its
buffered box meets (geo.query.tiles.CompoundChanges): an edit makes new ETags only for the tiles
around it, and the tile cache keeps the rest. `compounds_revision` is the revision of the
last change to the compound table itself (not the ledger): the compounds' count and extent,
which decide the counted zooms, are kept until it moves. Derived data: the triggers of
migration 0003 stay the one revision everything else keys on.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CELL_ZOOM = 14  # geo.query.tiles.CELL_ZOOM
CELL_ROWS = 1000  # beyond this many rows in one statement, every compound tile changed

# jit = off: the planner, blind to a transition table's size and to generate_series', expects
# millions of cells and JIT-compiled for 600 ms what takes 5 ms (500 edited entries).

# (county_code, geom) of the rows a statement changed, per table and event; transition
# tables new_rows / old_rows as in migration 0003.
CHANGED = {
    "compound": "SELECT county_code, geom FROM {rows}",
    # each entry's compound looked up by its key: the planner knows nothing of a transition
    # table's size, and a join could hash all 100 000 compounds
    "ledger_entry": "SELECT c.county_code, c.geom FROM {rows} r CROSS JOIN LATERAL "
    "(SELECT county_code, geom FROM compound WHERE id = r.compound_id LIMIT 1) c",
}


def _cell(coordinate: str, axis: str) -> str:
    """The z14 tile column (x, of a longitude) or row (y, of a latitude) as SQL."""
    n = 2**CELL_ZOOM
    if axis == "x":
        return f"floor(({coordinate} + 180) / 360 * {n})::int"
    lat = f"radians({coordinate})"
    return f"floor((1 - ln(tan({lat}) + 1 / cos({lat})) / pi()) / 2 * {n})::int"


EVENTS = {  # event → its transition tables (named as in migration 0003)
    "insert": ("REFERENCING NEW TABLE AS new_rows", ("new_rows",)),
    "update": ("REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows", ("new_rows", "old_rows")),
    "delete": ("REFERENCING OLD TABLE AS old_rows", ("old_rows",)),
}


def _function(table: str, event: str) -> str:
    """The trigger function of one table and event. Static SQL, so PL/pgSQL plans it once per
    session (dynamic SQL planned per statement: 1.7 ms of each one-row ledger edit), in one
    statement of data-modifying CTEs: a large statement moves the floor (every compound tile
    changed) and drops the county's cells, all older; a small one marks its cells. The
    compound table also moves `compounds_revision` (the count and extent follow it)."""
    changed = " UNION ALL ".join(CHANGED[table].format(rows=r) for r in EVENTS[event][1])
    compound = "true" if table == "compound" else "false"
    return f"""
CREATE FUNCTION mark_tile_cells_{table}_{event}() RETURNS trigger LANGUAGE plpgsql
SET jit = off AS $$
BEGIN
    WITH changed AS ({changed}),
    counts AS (
        SELECT county_code, count(*) > {CELL_ROWS} AS big FROM changed GROUP BY 1
    ), marked AS (  -- a small ledger edit leaves the row alone
        UPDATE data_revision r SET
            compounds_revision = CASE WHEN {compound} THEN r.revision
                                      ELSE r.compounds_revision END,
            tiles_floor = CASE WHEN k.big THEN r.revision ELSE r.tiles_floor END,
            tiles_floor_at = CASE WHEN k.big THEN r.changed_at ELSE r.tiles_floor_at END
        FROM counts k WHERE r.county_code = k.county_code AND (k.big OR {compound})
        RETURNING r.county_code, k.big
    ), dropped AS (
        DELETE FROM tile_cell_revision t USING marked m
        WHERE t.county_code = m.county_code AND m.big
    )
    INSERT INTO tile_cell_revision AS t (county_code, x, y, revision)
    SELECT DISTINCT ch.county_code, gx, gy, r.revision
    FROM changed ch
    JOIN counts k ON k.county_code = ch.county_code AND NOT k.big
    JOIN data_revision r ON r.county_code = ch.county_code
    CROSS JOIN LATERAL generate_series({_cell("ST_XMin(ch.geom)", "x")},
                                       {_cell("ST_XMax(ch.geom)", "x")}) gx
    CROSS JOIN LATERAL generate_series({_cell("ST_YMax(ch.geom)", "y")},
                                       {_cell("ST_YMin(ch.geom)", "y")}) gy
    WHERE ch.geom IS NOT NULL
    ON CONFLICT (county_code, x, y) DO UPDATE SET revision = excluded.revision;
    RETURN NULL;
END $$
"""


def _trigger(table: str, event: str) -> str:
    # Named after migration 0003's `<table>_revision_<event>`: triggers of one event fire in
    # name order, so the revision is bumped before the cells take it.
    return (
        f"CREATE TRIGGER {table}_tiles_{event} AFTER {event.upper()} ON {table} "
        f"{EVENTS[event][0]} FOR EACH STATEMENT EXECUTE FUNCTION mark_tile_cells_{table}_{event}()"
    )


def upgrade() -> None:
    op.add_column(
        "data_revision",
        sa.Column("tiles_floor", sa.BigInteger(), server_default="0", nullable=False),
    )
    op.add_column("data_revision", sa.Column("tiles_floor_at", sa.DateTime(timezone=True)))
    op.add_column(
        "data_revision",
        sa.Column("compounds_revision", sa.BigInteger(), server_default="0", nullable=False),
    )
    op.execute(
        "UPDATE data_revision SET tiles_floor = revision, tiles_floor_at = changed_at, "
        "compounds_revision = revision"
    )
    op.create_table(
        "tile_cell_revision",
        sa.Column("county_code", sa.String(length=6), nullable=False),
        sa.Column("x", sa.Integer(), nullable=False),
        sa.Column("y", sa.Integer(), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("county_code", "x", "y"),
        comment="小区瓦片按 z14 格的修订号 / per z14 cell, the revision its compound tiles "
        "last changed at (derived by triggers)",
    )
    for table in CHANGED:
        for event in EVENTS:
            op.execute(_function(table, event))
            op.execute(_trigger(table, event))


def downgrade() -> None:
    for table in CHANGED:
        for event in EVENTS:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_tiles_{event} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS mark_tile_cells_{table}_{event}()")
    op.drop_table("tile_cell_revision")
    op.drop_column("data_revision", "compounds_revision")
    op.drop_column("data_revision", "tiles_floor_at")
    op.drop_column("data_revision", "tiles_floor")
