"""The OGC `overlaps` collection's stored pieces (geo.query.overlaps.refresh_pieces,
migration 0005): equal to the live computation, rewritten when the county's data revision
moves on and only then, never bumping the revision themselves, computed once when two workers
ask at once."""

import threading

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from geo.core.settings import Settings
from geo.db.engine import make_engine
from geo.db.schema import alembic_config, current_revision, upgrade
from geo.query.compounds import CompoundFilter, data_version, get_county
from geo.query.overlaps import _sql, pieces_revision, refresh_pieces

COUNTY = "629901"
ITEMS = "/ogc/collections/overlaps/items"
TABLES = ("overlap_piece", "overlap_piece_revision")


@pytest.fixture(scope="module")
def db(demo_database):
    """A database of its own: these tests edit compounds."""
    with demo_database("overlap_pieces") as engine:
        yield engine


@pytest.fixture(scope="module")
def client(db):
    return TestClient(create_app(Settings(county=COUNTY), db))


def stored(conn) -> dict[str, dict]:
    rows = conn.execute(
        text("SELECT *, ST_AsBinary(geom) AS wkb FROM overlap_piece WHERE county_code = :c"),
        {"c": COUNTY},
    ).mappings()
    return {r["id"]: dict(r) for r in rows}


def xmins(conn) -> dict[str, str]:
    rows = conn.execute(
        text("SELECT id, xmin::text FROM overlap_piece WHERE county_code = :c"), {"c": COUNTY}
    )
    return dict(rows.all())


def test_the_stored_pieces_equal_a_live_computation(engine):
    with engine.connect() as conn:
        refresh_pieces(conn, COUNTY)
        sql, params = _sql(COUNTY, get_county(conn, COUNTY).epsg, (), CompoundFilter(),
                           False, stored=True)  # fmt: skip
        live = conn.execute(
            text(f"SELECT o.*, ST_AsBinary(o.geom) AS wkb FROM ({sql}) o"), params
        ).mappings()
        live = {r["id"]: dict(r) for r in live}
        pieces = stored(conn)
        assert pieces_revision(conn, COUNTY) == data_version(conn, COUNTY)
    assert len(live) > 100  # the demo county has a few hundred overlaps
    assert set(pieces) == set(live)
    for fid, row in live.items():
        piece = pieces[fid]
        for name in ("compound_code", "compound_name", "township", "status", "status_label",
                     "planned_code", "planned_name", "kind", "kind_label", "overlap_m2",
                     "compound_m2", "percent", "wkb"):  # fmt: skip
            assert piece[name] == row[name], (fid, name)


def test_both_tables_are_unlogged_and_carry_no_revision_trigger(engine):
    with engine.connect() as conn:
        for table in TABLES:
            persistence = conn.execute(
                text("SELECT relpersistence FROM pg_class WHERE oid = to_regclass(:t)"),
                {"t": table},
            ).scalar_one()
            assert persistence == "u", table
            triggers = conn.execute(
                text("SELECT count(*) FROM pg_trigger WHERE tgrelid = to_regclass(:t)"),
                {"t": table},
            ).scalar_one()
            assert triggers == 0, table


def test_an_edit_shows_on_the_next_page_and_the_recorded_revision_moves_on(client, db):
    first = client.get(ITEMS, params={"limit": 10000}).json()
    pieces = {f["id"]: f for f in first["features"]}
    partial = next(f for f in pieces.values() if 1 < f["properties"]["percent"] < 99)
    fid = partial["id"]
    compound, planned = fid.split("~")
    with db.connect() as conn:
        recorded = pieces_revision(conn, COUNTY)
        assert recorded == data_version(conn, COUNTY)
    # Cut the compound down to its part inside the planned area: the overlap becomes 100 %.
    with db.begin() as conn:
        conn.execute(
            text("""
                UPDATE compound c SET geom = ST_Multi(ST_CollectionExtract(
                    ST_Intersection(c.geom, p.geom), 3))
                FROM planned_area p
                WHERE c.county_code = :c AND c.code = :compound
                  AND p.county_code = :c AND p.code = :planned
            """),
            {"c": COUNTY, "compound": compound, "planned": planned},
        )
    one = client.get(f"{ITEMS}/{fid}")
    assert one.status_code == 200
    assert one.json()["properties"]["percent"] == pytest.approx(100, abs=0.05)
    assert one.json()["properties"]["compound_m2"] == pytest.approx(
        partial["properties"]["overlap_m2"], rel=1e-3
    )
    again = client.get(ITEMS, params={"limit": 10000, "filter": f"compound_code = '{compound}'"})
    assert {f["id"]: f["properties"]["percent"] for f in again.json()["features"]}[fid] == (
        pytest.approx(100, abs=0.05)
    )
    with db.connect() as conn:
        now = pieces_revision(conn, COUNTY)
        assert now == data_version(conn, COUNTY)
    assert now[0] > recorded[0]


def test_writing_pieces_does_not_bump_the_revision(db):
    with db.begin() as conn:  # make the pieces stale by an edit (this does bump: once)
        conn.execute(
            text("UPDATE compound SET name = name || '' WHERE county_code = :c"), {"c": COUNTY}
        )
    with db.connect() as conn:
        before = data_version(conn, COUNTY)
        assert pieces_revision(conn, COUNTY) != before
        assert refresh_pieces(conn, COUNTY) is True
        assert data_version(conn, COUNTY) == before == pieces_revision(conn, COUNTY)


def test_a_second_refresh_at_the_same_revision_rewrites_nothing(db):
    with db.connect() as conn:
        refresh_pieces(conn, COUNTY)
        rows = xmins(conn)
        computed = conn.execute(
            text("SELECT computed_at FROM overlap_piece_revision WHERE county_code = :c"),
            {"c": COUNTY},
        ).scalar_one()
    # An autocommit and a read-only caller too: the rewrite would need its own transaction.
    with db.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        assert refresh_pieces(conn, COUNTY) is False
    with db.connect() as conn:
        conn = conn.execution_options(postgresql_readonly=True)
        assert refresh_pieces(conn, COUNTY) is False
        assert xmins(conn) == rows
        assert (
            conn.execute(
                text("SELECT computed_at FROM overlap_piece_revision WHERE county_code = :c"),
                {"c": COUNTY},
            ).scalar_one()
            == computed
        )
    assert len(rows) > 100


def test_a_read_only_caller_gets_the_pieces_computed(db):
    with db.begin() as conn:
        conn.execute(text("DELETE FROM overlap_piece_revision WHERE county_code = :c"),
                     {"c": COUNTY})  # fmt: skip
    with db.connect() as conn:
        conn = conn.execution_options(postgresql_readonly=True)
        assert refresh_pieces(conn, COUNTY) is True
        assert pieces_revision(conn, COUNTY) == data_version(conn, COUNTY)
        assert len(xmins(conn)) > 100


def test_two_workers_at_once_compute_the_pieces_once(db):
    with db.begin() as conn:
        conn.execute(
            text("UPDATE compound SET name = name || '' WHERE county_code = :c"), {"c": COUNTY}
        )
    start = threading.Barrier(2)
    results: list[bool | Exception] = []

    def worker() -> None:
        with db.connect() as conn:
            start.wait()
            try:
                results.append(refresh_pieces(conn, COUNTY))
            except Exception as exc:  # reported below, not lost in the thread
                results.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results, key=str) == [False, True]
    with db.connect() as conn:
        assert pieces_revision(conn, COUNTY) == data_version(conn, COUNTY)


def test_downgrade_drops_the_tables(new_database):
    engine = make_engine(new_database("overlap_pieces_downgrade"))
    try:
        upgrade(engine)
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0004")
        assert current_revision(engine) == "0004"
        with engine.connect() as conn:
            for table in TABLES:
                assert conn.execute(text("SELECT to_regclass(:t)"), {"t": table}).scalar() is None
        upgrade(engine)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT to_regclass('overlap_piece')")).scalar() is not None
    finally:
        engine.dispose()


def test_a_refused_query_computes_nothing(client, db):
    with db.begin() as conn:
        conn.execute(
            text("UPDATE compound SET name = name || '' WHERE county_code = :c"), {"c": COUNTY}
        )
    with db.connect() as conn:
        before = pieces_revision(conn, COUNTY)
        assert before != data_version(conn, COUNTY)
    r = client.get(ITEMS, params={"filter": "no_such_property = 1"})
    assert r.status_code == 400
    with db.connect() as conn:
        assert pieces_revision(conn, COUNTY) == before
    assert client.get(ITEMS, params={"limit": 1}).json()["numberReturned"] == 1
    with db.connect() as conn:
        assert pieces_revision(conn, COUNTY) == data_version(conn, COUNTY)
