"""titlemap on Citus: a coordinator and two workers on loopback, the schema distributed by county
(geo.db.citus, geo.db.distribute), the same answers as plain PostGIS.

The demo county and a small province are loaded into the Citus coordinator and into a plain
database of the test cluster; a county's tiles, parcel checks, rates and burn-down and the
province overview must come out the same, one county's queries on one shard."""

import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from geo.checks.run import run_parcel_checks
from geo.core.model import LedgerEntry
from geo.db import revisions
from geo.db.audit import Actor, act_as
from geo.db.citus import CitusCluster, citus_available
from geo.db.distribute import DISTRIBUTED, REFERENCE, distribute, is_distributed
from geo.db.engine import make_engine
from geo.db.schema import upgrade
from geo.demo.province import generate_province, load_province
from geo.io.load import load_county
from geo.ledger import regions, stats
from geo.ledger.rules import update_entry
from geo.query import tiles
from tests.conftest import free_port, run_cli
from tests.test_web_map import fields, varints

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not citus_available(), reason="citus.so 未安装 / run scripts/build-citus.sh"
    ),
]

COUNTY = "629901"  # the demo county
PROVINCE = "620000"
UNTIL = date(2026, 12, 6)  # a fixed day for the burn-down: both databases the same weeks


@pytest.fixture(scope="module")
def province():
    return generate_province(PROVINCE, cities=2, counties_per_city=2, compounds=40)


@pytest.fixture(scope="module")
def nodes() -> Iterator[CitusCluster]:
    folder = Path(tempfile.mkdtemp(prefix="titlemap-citus-", dir="/tmp"))
    cluster = CitusCluster(folder, (free_port(), free_port(), free_port()), fsync=False)
    try:
        cluster.ensure_running()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def citus(nodes, demo, province) -> Iterator[Engine]:
    engine = make_engine(nodes.url())
    upgrade(engine)
    distribute(engine)
    load_county(engine, demo)
    load_province(engine, province)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def plain(demo_database, province) -> Engine:
    with demo_database("titlemap_citus_twin") as engine:
        load_province(engine, province)
        yield engine


def both(citus: Engine, plain: Engine, read) -> tuple:
    """`read(conn)` on each database."""
    answers = []
    for engine in (citus, plain):
        with engine.connect() as conn:
            answers.append(read(conn))
    return tuple(answers)


def counties(province) -> list[str]:
    return [COUNTY] + [str(frames.county["code"].iloc[0]) for frames in province]


def test_the_command_line_tells_each_nodes_state(nodes):
    ports = ",".join(str(node.port) for node in nodes.nodes)
    shown = run_cli("db", "citus", "status", "--folder", str(nodes.folder), "--ports", ports)
    assert shown.returncode == 0, shown.stderr
    for node, name in zip(nodes.nodes, ("coordinator", "worker1", "worker2"), strict=True):
        assert f"{name}: 运行中 / running on 127.0.0.1:{node.port}" in shown.stdout


def test_every_table_is_placed_and_county_tables_colocated(citus):
    with citus.connect() as conn:
        placed = dict(
            conn.execute(
                text(
                    "SELECT logicalrelid::regclass::text, partmethod || colocationid "
                    "FROM pg_dist_partition"
                )
            ).all()
        )
        assert is_distributed(conn)
    assert {t for t, kind in placed.items() if kind.startswith("n")} == set(REFERENCE)
    assert {t for t, kind in placed.items() if kind.startswith("h")} == set(DISTRIBUTED)
    assert len({placed[t] for t in DISTRIBUTED}) == 1  # one colocation group: joins stay local
    distribute(citus)  # again: nothing to do


@pytest.mark.parametrize(
    "table", ["compound", "parcel", "ledger_entry", "ledger_event", "compound_parcel"]
)
def test_the_same_rows_land_in_both(citus, plain, province, table):
    count = text(f"SELECT county_code, count(*) FROM {table} GROUP BY 1 ORDER BY 1")
    on_citus, on_plain = both(citus, plain, lambda conn: conn.execute(count).all())
    assert on_citus == on_plain
    assert {row[0] for row in on_citus} == set(counties(province))


def tile_places(conn, county: str) -> list[tuple[int, int, int]]:
    """A few tiles over the county's compounds, at a detailed and a counted zoom."""
    points = conn.execute(
        text(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM compound "
            "WHERE county_code = :c ORDER BY code LIMIT 3) s"
        ),
        {"c": county},
    ).all()
    return sorted({(z, *tiles.tile_of(x, y, z)) for x, y in points for z in (10, 15)})


def features(tile: bytes) -> list[tuple]:
    """The tile's features, each (layer, type, geometry commands, sorted properties), sorted:
    the same tile whatever order its rows came in (a vector tile's keys and values are
    numbered in that order)."""
    found = []
    for number, layer in fields(tile):
        if number != 3:
            continue
        parts = list(fields(layer))
        name = next(v for n, v in parts if n == 1)
        keys = [v for n, v in parts if n == 3]
        values = [v for n, v in parts if n == 4]
        for feature in (v for n, v in parts if n == 2):
            own = dict(fields(feature))
            tags = varints(own.get(2, b""))
            properties = sorted(
                (keys[k], values[v]) for k, v in zip(tags[::2], tags[1::2], strict=True)
            )
            found.append((name, own.get(3), varints(own.get(4, b"")), properties))
    return sorted(found)


@pytest.mark.parametrize("layer", ["compounds", "parcels"])
def test_a_countys_tiles_are_the_same(citus, plain, layer):
    with plain.connect() as conn:
        places = tile_places(conn, COUNTY)

    def read(conn):
        return [features(tiles.tile(conn, layer, COUNTY, z, x, y)) for z, x, y in places]

    on_citus, on_plain = both(citus, plain, read)
    assert any(on_plain), "the tiles hold something"
    assert on_citus == on_plain


def test_the_parcel_checks_are_the_same(citus, plain):
    def read(conn):
        report = run_parcel_checks(conn, COUNTY, workers=1)
        return sorted((p.check, p.parcel or "", p.compound or "") for p in report.problems)

    on_citus, on_plain = both(citus, plain, read)
    assert on_plain
    assert on_citus == on_plain


@pytest.mark.parametrize("by", stats.GROUPS)
def test_rates_are_the_same(citus, plain, by):
    on_citus, on_plain = both(citus, plain, lambda conn: stats.rates(conn, COUNTY, by))
    assert on_plain and on_citus == on_plain


def test_the_burndown_is_the_same(citus, plain):
    read = lambda conn: stats.burndown(conn, COUNTY, UNTIL)  # noqa: E731
    on_citus, on_plain = both(citus, plain, read)
    assert on_plain and on_citus == on_plain


def test_the_province_overview_is_the_same(citus, plain, province):
    on_citus, on_plain = both(citus, plain, lambda conn: regions.overview(conn, PROVINCE))
    assert [c["code"] for c in on_plain["counties"]]
    assert {c["code"] for c in on_citus["counties"]} >= set(counties(province)[1:])
    assert on_citus == on_plain


def explain(conn, sql: str, **params) -> str:
    rows = conn.execute(text(f"EXPLAIN {sql}"), params).scalars()
    return "\n".join(rows)


def test_one_countys_query_runs_on_one_shard_and_a_cross_county_one_on_all(citus, plain):
    one = (
        "SELECT c.code, e.status, ST_Area(c.geom) FROM compound c JOIN ledger_entry e "
        "ON e.county_code = c.county_code AND e.compound_id = c.id WHERE c.county_code = :c"
    )
    with citus.connect() as conn:
        assert "Task Count: 1\n" in explain(conn, one, c=COUNTY)
        every = "SELECT county_code, sum(units_task) FROM ledger_entry GROUP BY 1 ORDER BY 1"
        plan = explain(conn, every)
        shards = conn.execute(
            text("SELECT shard_count FROM citus_tables WHERE table_name = 'ledger_entry'::regclass")
        ).scalar_one()
        assert f"Task Count: {shards}\n" in plan and shards > 1
    on_citus, on_plain = both(citus, plain, lambda conn: conn.execute(text(every)).all())
    assert on_citus == on_plain


def test_a_compound_tile_is_drawn_on_its_countys_shard(citus):
    # The per-compound LATERAL … LIMIT 1 of plain PostGIS went to all 8 shards and was drawn on
    # the coordinator (0.5 tiles/s at 50 connections); on Citus the query is the plain join.
    spec = tiles.MAP_LAYERS["compounds"]
    with citus.connect() as conn:
        z, x, y = tile_places(conn, COUNTY)[-1]
        key = tiles.tile_key(conn, "compounds", COUNTY, z, x, y)
        sql, params = tiles._detail_query(citus, spec, key, conn)
        plan = conn.connection.driver_connection.execute("EXPLAIN " + sql, params).fetchall()
    shown = "\n".join(row[0] for row in plan)
    assert "Task Count: 1" in shown and "Task Count: 8" not in shown, shown


def test_a_ledger_edit_lands_on_its_countys_shard_with_its_trace_and_revision(citus):
    with citus.connect() as conn:
        revision = conn.execute(
            text("SELECT revision FROM data_revision WHERE county_code = :c"), {"c": COUNTY}
        ).scalar_one()
    with Session(citus) as session:
        act_as(session, Actor("张三", "住建局", "10.0.0.7"))
        entry = session.scalars(
            select(LedgerEntry).where(LedgerEntry.county_code == COUNTY).order_by(LedgerEntry.id)
        ).first()
        update_entry(session, entry, {"plan": "证缴分离：分布式测试"}, "张三")
        session.commit()
        entry_id = entry.id
    with citus.connect() as conn:
        row = conn.execute(
            text(
                "SELECT revision, tiles_floor, compounds_revision FROM data_revision "
                "WHERE county_code = :c"
            ),
            {"c": COUNTY},
        ).one()
        # every compound tile of the county is stale (Citus marks no cells: geo.db.distribute)
        assert row.tiles_floor > revision and row.revision >= row.tiles_floor
        trace = conn.execute(
            text(
                "SELECT actor, department, object_kind, after ->> 'plan' FROM audit_log "
                "WHERE county_code = :c AND object_id = :id ORDER BY id DESC LIMIT 1"
            ),
            {"c": COUNTY, "id": str(entry_id)},
        ).one()
        assert tuple(trace) == ("张三", "住建局", "ledger_entry", "证缴分离：分布式测试")
        routed = "SELECT plan FROM ledger_entry WHERE county_code = :c AND id = :id"
        assert "Task Count: 1\n" in explain(conn, routed, c=COUNTY, id=entry_id)
        # the row sits in the one shard that holds the county
        shard = conn.execute(
            text("SELECT get_shard_id_for_distribution_column('ledger_entry', CAST(:c AS text))"),
            {"c": COUNTY},
        ).scalar_one()
        holding = conn.execute(
            text(
                "SELECT shardid, result FROM run_command_on_shards('ledger_entry', "
                "$$SELECT count(*) FROM %s WHERE plan = '证缴分离：分布式测试'$$) "
                "WHERE result <> '0'"
            )
        ).all()
        assert [tuple(row) for row in holding] == [(shard, "1")]


def test_the_revision_watcher_reads_each_time_on_citus(citus):
    watcher = revisions.watch(citus)
    try:
        time.sleep(0.5)
        assert not watcher.listening  # the notices stay on the workers
        with citus.connect() as conn:
            before = revisions.data_version(conn, COUNTY)
        with citus.begin() as conn:
            conn.execute(
                text("UPDATE compound SET name = name || '' WHERE county_code = :c AND code = "
                     "(SELECT min(code) FROM compound WHERE county_code = :c)"),
                {"c": COUNTY},
            )  # fmt: skip
        with citus.connect() as conn:
            assert revisions.data_version(conn, COUNTY)[0] > before[0]
    finally:
        revisions.unwatch(citus)


def test_the_apps_role_reads_and_writes_rows_but_not_the_trail_through_the_coordinator(
    nodes, citus
):
    app = make_engine(nodes.app_url())
    try:
        with app.begin() as conn:
            assert conn.execute(
                text("SELECT count(*) FROM compound WHERE county_code = :c"), {"c": COUNTY}
            ).scalar_one()
            edited = conn.execute(
                text(
                    "UPDATE ledger_entry SET next_step = '约谈开发企业' WHERE county_code = :c "
                    "AND id = (SELECT min(id) FROM ledger_entry WHERE county_code = :c)"
                ),
                {"c": COUNTY},
            )
            assert edited.rowcount == 1
        with app.connect() as conn, pytest.raises(DBAPIError, match="permission denied"):
            conn.execute(text("DELETE FROM audit_log WHERE county_code = :c"), {"c": COUNTY})
    finally:
        app.dispose()


def test_a_province_user_signs_in_on_citus_and_the_trace_is_filed_under_the_province(
    nodes, citus, province
):
    # A region's user has no county; every audit row on Citus needs one (where it lives).
    from fastapi.testclient import TestClient

    from api.app import create_app
    from geo.core.settings import Settings
    from geo.ledger.users import add_user
    from tests.conftest import PASSWORD, sign_in

    with Session(citus) as session:
        add_user(session, None, "省厅查看员", "viewer", region="620000", password=PASSWORD,
                 with_token=False)  # fmt: skip
        session.commit()
    app = make_engine(nodes.app_url())
    try:
        with TestClient(create_app(Settings(), app)) as browser:
            sign_in(browser, "省厅查看员")
            seen = browser.get("/api/regions/620000/overview")
            assert seen.status_code == 200 and seen.json()["withheld"] == 0
        with citus.connect() as conn:
            last_sign_in = text(
                "SELECT county_code FROM audit_log WHERE object_kind = 'app_user' "
                "AND action = 'sign_in' ORDER BY at DESC LIMIT 1"
            )
            filed = conn.execute(last_sign_in).scalar_one()
        assert filed == "620000"
    finally:
        app.dispose()
