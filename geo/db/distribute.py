"""titlemap's schema on Citus: county tables spread by county code, shared tables everywhere.

`distribute(engine)` runs on a Citus coordinator after `geo.db.schema.upgrade(engine)` (which
brings the county code into every key: migration 0011). Every table of the schema is decided
below, with why; a table nobody decided stops it (a new migration must say where its table
goes). What had to change for Citus, and what still does not work there: docs/scale.md.

Triggers run on the shards, on the workers (`citus.enable_unsafe_triggers`, geo.db.citus):
- a statement that reads a transition table cannot be sent to a shard ("could not find named
  tuplestore"), so the data-revision and tile-cell functions are replaced by ones that read
  the transition table locally and then write one routed row per county;
- the tile-cell function marks no cells: every change moves the county's tile floor (all of
  its compound tiles change), correct and coarser than plain PostGIS's per-cell revisions;
- a trigger on a reference table fires on every node's copy; a copy cannot write a shard on
  another node ("cannot execute a distributed query from a query on a shard"), and the
  coordinator's connections are busy with the statement itself: the node that holds the
  county's shards writes, locally (`county_is_local`), the others skip;
- on a shard TG_TABLE_NAME is the shard's name (ledger_entry_102045): the audit function
  strips the shard number, and takes a region's code where a row has no county;
- NOTIFY on a worker reaches that worker's listeners only, and a transaction spanning nodes
  (two-phase commit) cannot PREPARE after a NOTIFY: the notify trigger is dropped, and
  geo.db.revisions does not listen on a Citus coordinator (it reads the revision each time).
"""

import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, text

from geo import TitlemapError

ANCHOR = "compound"  # the distributed tables are colocated with it: a county's rows on one node

# Copied to every node: small, read by every request or joined with every county's rows.
REFERENCE = {
    "county": "a few hundred rows; every county query joins its settings and boundary",
    "region": "cities and the province: a few dozen rows",
    "app_user": "people sign in before their county is known; region users span counties",
    "login_session": "looked up by cookie on every request, before any county",
}

# Distributed by county_code, colocated with compound: one county's rows live on one node,
# so its map, tiles, checks and ledger edits route to one shard, joins included.
DISTRIBUTED = {
    "compound": "the colocation anchor: what the ledger is kept by",
    "township": "a county's townships, joined with its compounds",
    "context_feature": "a county's rivers and roads under its map",
    "developer": "developers per county (unique by county and credit code)",
    "parcel": "a county's parcels: the largest table with the ledger events",
    "compound_parcel": "compound ↔ parcel links, inside one county",
    "ledger_entry": "the ledger, one entry per compound",
    "ledger_event": "the ledger's history: the largest table at a province's size",
    "planned_area": "a county's planned areas, overlaid on its compounds",
    "complaint": "a county's complaints, overlaid on its compounds",
    "task": "tasks on a county's compounds",
    "task_reply": "replies to a county's tasks",
    "compound_file": "papers of a county's compounds",
    "bulletin": "a county's issued bulletins",
    "audit_log": "written by triggers on the shards: must be reachable from them by county",
    "data_revision": "bumped by triggers on the shards: must sit on the same node as the rows",
    "tile_cell_revision": "tile revisions per county, written with data_revision",
    "overlap_piece": "derived compound × planned-area pieces per county",
    "overlap_piece_revision": "the revision a county's pieces were computed at",
    "county_rollup": "a county's overview figures, refreshed on its own shard",
}

# Left where they are.
LOCAL = {
    "alembic_version": "the coordinator's: migrations run there only",
    "spatial_ref_sys": "PostGIS's own, on every node already",
}

# Citus versions of migration 0003's and 0006's trigger functions (see the module's text).
BUMP_DATA_REVISION = """
CREATE OR REPLACE FUNCTION bump_data_revision() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    rows text;
    county text;
    at timestamptz := now();  -- Citus ships no function in DO UPDATE SET: a value
BEGIN
    rows := CASE TG_OP
        WHEN 'INSERT' THEN format('SELECT DISTINCT %I FROM new_rows', TG_ARGV[0])
        WHEN 'DELETE' THEN format('SELECT DISTINCT %I FROM old_rows', TG_ARGV[0])
        ELSE format('SELECT %1$I FROM new_rows UNION SELECT %1$I FROM old_rows', TG_ARGV[0])
    END;
    FOR county IN EXECUTE format('SELECT c FROM (%s) s(c) WHERE c IS NOT NULL ORDER BY c', rows)
    LOOP
        CONTINUE WHEN NOT county_is_local(county);  -- a reference table's other copies
        INSERT INTO data_revision AS r (county_code, revision, changed_at)
        VALUES (county, 1, at)
        ON CONFLICT (county_code) DO UPDATE SET revision = r.revision + 1, changed_at = at;
    END LOOP;
    RETURN NULL;
END $$
"""

# Whether this node holds the county's shards (colocated: data_revision's says for all). A
# reference table's triggers fire on every node's copy; the one holding the shard writes, and
# writes locally (a remote write from a shard's trigger is refused, and the coordinator's
# connections are busy with the statement itself, a COPY to every copy).
COUNTY_IS_LOCAL = """
CREATE OR REPLACE FUNCTION county_is_local(county text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT 1 FROM pg_dist_placement p JOIN pg_dist_local_group g USING (groupid)
        WHERE p.shardid = get_shard_id_for_distribution_column('data_revision', county))
$$
"""

TILE_EVENTS = {
    "insert": "SELECT county_code FROM new_rows",
    "update": "SELECT county_code FROM new_rows UNION SELECT county_code FROM old_rows",
    "delete": "SELECT county_code FROM old_rows",
}


def _tile_function(table: str, event: str) -> str:
    compound = "true" if table == "compound" else "false"
    return f"""
CREATE OR REPLACE FUNCTION mark_tile_cells_{table}_{event}() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    county text;
BEGIN
    FOR county IN SELECT DISTINCT c FROM ({TILE_EVENTS[event]}) s(c) ORDER BY c LOOP
        UPDATE data_revision SET
            tiles_floor = revision, tiles_floor_at = changed_at,
            compounds_revision = CASE WHEN {compound} THEN revision ELSE compounds_revision END
        WHERE county_code = county;
    END LOOP;
    RETURN NULL;
END $$
"""


def distribute(engine: Engine) -> None:
    """Make the schema's tables reference or distributed tables and fit its triggers to Citus.
    Run it again after every `upgrade` on Citus: it places new tables and fits the trigger
    functions a migration may have replaced; what is done already it leaves."""
    with engine.begin() as conn:  # all or nothing: the dropped links come back in it
        _check_citus(conn)
        _check_decided(conn)
        _fit_triggers(conn)
        done = _distributed(conn)
        if set(REFERENCE) | set(DISTRIBUTED) <= done:
            return
        links = _drop_links(conn)
        # a trace keeps its serial id; a shard can only enforce keys holding county_code
        conn.execute(text("ALTER TABLE audit_log DROP CONSTRAINT IF EXISTS audit_log_pkey"))
        for table in REFERENCE:
            if table not in done:
                conn.execute(text("SELECT create_reference_table(:t)"), {"t": table})
        for table in sorted(DISTRIBUTED, key=lambda t: t != ANCHOR):
            if table not in done:
                conn.execute(
                    text("SELECT create_distributed_table(:t, 'county_code', colocate_with => :c)"),
                    {"t": table, "c": "default" if table == ANCHOR else ANCHOR},
                )
        for table, definition in links:
            # Citus refuses ON DELETE SET NULL on a key holding the distribution column, even
            # SET NULL (x_id): those links (a compound's township and developer, a file's
            # task) are not enforced on Citus (docs/scale.md)
            if "SET NULL" not in definition:
                conn.execute(text(f"ALTER TABLE {table} ADD {definition}"))


def is_distributed(conn: Connection, table: str = ANCHOR) -> bool:
    """Whether `table` is a Citus table here (False on plain PostGIS)."""
    return placed_by_citus(lambda sql: conn.execute(text(sql)).scalar(), table)


def placed_by_citus(scalar: Callable[[str], Any], table: str) -> bool:
    """The one test of "is this Citus", for SQLAlchemy and psycopg connections alike (the
    revision listener has only the latter): `scalar(sql)` runs a query, gives its value."""
    if table not in DISTRIBUTED and table not in REFERENCE:
        raise ValueError(f"not a table of the schema: {table}")
    if scalar("SELECT to_regclass('pg_dist_partition')") is None:
        return False  # no Citus in this database
    return bool(scalar(f"SELECT count(*) FROM pg_dist_partition WHERE logicalrelid = "
                       f"to_regclass('{table}')"))  # fmt: skip


def _check_citus(conn: Connection) -> None:
    installed = conn.execute(
        text("SELECT extname FROM pg_extension WHERE extname = 'citus'")
    ).scalar_one_or_none()
    if installed is None:
        raise TitlemapError("这个数据库没有 Citus / no citus extension in this database")


def _distributed(conn: Connection) -> set[str]:
    rows = conn.execute(text("SELECT logicalrelid::regclass::text FROM pg_dist_partition"))
    return set(rows.scalars())


def _check_decided(conn: Connection) -> None:
    tables = set(
        conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars()
    )
    undecided = tables - set(REFERENCE) - set(DISTRIBUTED) - set(LOCAL)
    if undecided:
        raise TitlemapError(
            "这些表还没决定如何分布 / tables not yet placed on Citus (geo.db.distribute): "
            + ", ".join(sorted(undecided))
        )


def _fit_triggers(conn: Connection) -> None:
    conn.execute(text(COUNTY_IS_LOCAL))
    conn.execute(text(BUMP_DATA_REVISION))
    for table, event in _tile_triggers(conn):
        conn.execute(text(_tile_function(table, event)))
    conn.execute(text(_audit_function(conn)))
    # NOTIFY on a worker would reach that worker's listeners only, and a transaction over
    # several nodes (two-phase commit) cannot PREPARE after a NOTIFY: every such commit failed
    conn.execute(text("DROP TRIGGER IF EXISTS data_revision_notify ON data_revision"))


def _tile_triggers(conn: Connection) -> list[tuple[str, str]]:
    names = conn.execute(
        text("SELECT proname FROM pg_proc WHERE proname LIKE 'mark\\_tile\\_cells\\_%'")
    ).scalars()
    found = [re.fullmatch(r"mark_tile_cells_(\w+)_(insert|update|delete)", n) for n in names]
    return [(m.group(1), m.group(2)) for m in found if m]


def _audit_function(conn: Connection) -> str:
    """Migration 0009's audit_row fitted: the table's own name on a shard (not
    ledger_entry_102045), a region's code where a row has no county (the trace's distribution
    column cannot be NULL), written on the node holding the county's shards only."""
    definition = conn.execute(text("SELECT pg_get_functiondef('audit_row'::regproc)")).scalar_one()
    if "county_is_local" in definition:
        return definition  # fitted already
    county = re.compile(r"coalesce\(row_ ->> 'county_code', CASE WHEN .*? END\)")
    identity = "row_ := coalesce(to_jsonb(NEW), to_jsonb(OLD));"
    if not county.search(definition) or identity not in definition:
        raise TitlemapError("audit_row 已改动，请更新 geo.db.distribute / audit_row changed")
    where = "coalesce(row_ ->> 'county_code', row_ ->> 'region_code', row_ ->> 'code')"
    fitted = county.sub(where, definition).replace(
        identity, f"{identity}\n    IF NOT county_is_local({where}) THEN RETURN NULL; END IF;"
    )
    return fitted.replace("TG_TABLE_NAME", "regexp_replace(TG_TABLE_NAME, '_[0-9]+$', '')")


def _drop_links(conn: Connection) -> list[tuple[str, str]]:
    """Drop the foreign keys between tables about to be distributed (Citus checks both ends
    as it distributes each); returned to be added back once all are."""
    rows = conn.execute(
        text(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace "
            "AND conrelid::regclass::text = ANY(:tables) "
            "AND confrelid::regclass::text = ANY(:tables)"
        ),
        {"tables": list(DISTRIBUTED)},
    ).all()
    for table, name, _ in rows:
        conn.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
    return [(table, f'CONSTRAINT "{name}" {definition}') for table, name, definition in rows]
