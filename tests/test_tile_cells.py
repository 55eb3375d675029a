"""Per-cell tile revisions (migration 0006): an edit to a compound or its ledger entry stales
the compound tiles around it and no others; a large change or a filter stales them all."""

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import Engine, text

from api.app import create_app
from geo import demo as demo_county
from geo.core.settings import Settings
from geo.db.engine import make_engine
from geo.db.memo import memo_of
from geo.db.schema import upgrade
from geo.io.load import load_county
from geo.query import tiles as geo_tiles
from geo.query.compounds import CompoundFilter, data_version
from tests.conftest import Server
from tests.test_revisions import edit_elsewhere, eventually
from tests.test_web_map import decode_mvt

COUNTY = "629901"
Z = 16


@pytest.fixture(scope="module")
def db(demo_database) -> Iterator[Engine]:
    with demo_database("tile_cells") as engine:
        yield engine


def compound_tile(db: Engine, code: str, z: int = Z) -> tuple[int, int]:
    with db.connect() as conn:
        lon, lat = conn.execute(
            text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p "
                 "FROM compound WHERE code = :code) s"),
            {"code": code},
        ).one()  # fmt: skip
    return geo_tiles.tile_of(lon, lat, z)


def two_far_compounds(db: Engine) -> tuple[str, str]:
    """Two compounds more than 5 km apart (different cells, not neighbours)."""
    with db.connect() as conn:
        return tuple(
            conn.execute(
                text("""
                    SELECT a.code, b.code FROM compound a JOIN compound b
                    ON ST_Distance(a.geom::geography, b.geom::geography) > 5000
                    WHERE a.county_code = :c AND b.county_code = :c
                    ORDER BY a.code, b.code LIMIT 1
                """),
                {"c": COUNTY},
            ).one()
        )


def key(db: Engine, code: str, filters: CompoundFilter | None = None) -> geo_tiles.TileKey:
    x, y = compound_tile(db, code)
    with db.connect() as conn:
        return geo_tiles.tile_key(conn, "compounds", COUNTY, Z, x, y, filters)


def test_a_ledger_edit_stales_its_tile_only(db):
    near, far = two_far_compounds(db)
    near_before, far_before = key(db, near), key(db, far)
    edit_elsewhere(
        db,
        "UPDATE ledger_entry SET lead_department = '住建局（测试）' WHERE compound_id = "
        "(SELECT id FROM compound WHERE code = %(code)s)",
        code=near,
    )
    near_after, far_after = key(db, near), key(db, far)
    assert near_after.etag() != near_before.etag()
    assert near_after.version[1] > near_before.version[1]
    assert far_after.etag() == far_before.etag()
    with db.connect() as conn:
        tile = geo_tiles.build_tile(conn, geo_tiles.TileCache(), near_after)
    shown = {f["code"]: f for f in decode_mvt(tile)["compounds"]}
    assert shown[near]["lead_department"] == "住建局（测试）"


def test_a_moved_compound_stales_both_places(db):
    moved, there = two_far_compounds(db)
    old_place, new_place = key(db, moved), key(db, there)
    x, y = compound_tile(db, moved)
    edit_elsewhere(
        db,
        "UPDATE compound SET geom = ST_Translate(geom, "
        "(SELECT ST_X(ST_Centroid(geom)) FROM compound WHERE code = %(there)s) - "
        "ST_X(ST_Centroid(geom)), "
        "(SELECT ST_Y(ST_Centroid(geom)) FROM compound WHERE code = %(there)s) - "
        "ST_Y(ST_Centroid(geom))) WHERE code = %(moved)s",
        moved=moved,
        there=there,
    )
    with db.connect() as conn:
        left = geo_tiles.tile_key(conn, "compounds", COUNTY, Z, x, y)
        tile = geo_tiles.build_tile(conn, geo_tiles.TileCache(), left)
        assert moved not in {f["code"] for f in decode_mvt(tile).get("compounds", [])}
    assert left.etag() != old_place.etag()
    assert key(db, there).etag() != new_place.etag()


def test_an_edit_elsewhere_keeps_etags_over_http(db):
    near, far = two_far_compounds(db)
    running = Server(create_app(Settings(), db))

    def url(code: str, query: str = "") -> str:
        x, y = compound_tile(db, code)
        return f"{running.base}/tiles/compounds/{Z}/{x}/{y}.mvt?county={COUNTY}{query}"

    try:
        near_tag = httpx.get(url(near)).headers["etag"]
        far_tag = httpx.get(url(far)).headers["etag"]
        edit_elsewhere(db, "UPDATE compound SET name = name || '（改）' WHERE code = %(c)s", c=near)
        edit_elsewhere(db, "UPDATE county SET name = name WHERE code = %(c)s", c=COUNTY)
        assert eventually(lambda: httpx.get(url(near)).headers["etag"] != near_tag)
        again = httpx.get(url(far), headers={"If-None-Match": far_tag})
        assert again.status_code == 304  # nothing changed there: the browser keeps its tile

        # a filter may reach anywhere (a township, a planned area): any edit makes a new tag
        filtered = url(far, "&status=stalled&status=not_started&status=in_progress")
        tag = httpx.get(filtered).headers["etag"]
        edit_elsewhere(db, "UPDATE compound SET name = name WHERE code = %(c)s", c=near)
        assert eventually(lambda: httpx.get(filtered).headers["etag"] != tag)
    finally:
        running.stop()


def test_the_count_and_extent_follow_compound_edits_only(db):
    def changes() -> geo_tiles.CompoundChanges:
        with db.connect() as conn:
            return geo_tiles.compound_changes(conn, COUNTY, data_version(conn, COUNTY))

    code, _ = two_far_compounds(db)
    before = changes()
    edit_elsewhere(
        db,
        "UPDATE ledger_entry SET lead_department = lead_department WHERE compound_id = "
        "(SELECT id FROM compound WHERE code = %(code)s)",
        code=code,
    )
    assert changes().compounds == before.compounds  # no need to count 100 000 outlines again
    edit_elsewhere(db, "UPDATE compound SET name = name WHERE code = %(code)s", code=code)
    assert changes().compounds > before.compounds


def test_the_version_comes_from_the_database_alone(db):
    near, _ = two_far_compounds(db)
    before = key(db, near).etag()
    memo_of(db).clear()  # another process: nothing in memory
    assert key(db, near).etag() == before


@pytest.mark.slow
def test_a_large_change_stales_every_tile(new_database):
    engine = make_engine(new_database("tile_cells_large"))
    upgrade(engine)
    load_county(engine, demo_county.generate(1200, 3), replace=True)
    try:
        with engine.connect() as conn:
            floor, revision = conn.execute(
                text("SELECT tiles_floor, revision FROM data_revision WHERE county_code = :c"),
                {"c": COUNTY},
            ).one()
            cells = conn.execute(text("SELECT count(*) FROM tile_cell_revision")).scalar_one()
        assert floor > 0 and cells == 0  # the load (1 200 rows at once) moved the floor
        with engine.connect() as conn:
            code = conn.execute(text("SELECT min(code) FROM compound")).scalar_one()
        before = key(engine, code)
        edit_elsewhere(
            engine, "UPDATE compound SET name = name WHERE county_code = %(c)s", c=COUNTY
        )
        after = key(engine, code)
        assert after.version[1] == revision + 1 and after.version[1] > before.version[1]
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM tile_cell_revision")).scalar_one() == 0
    finally:
        engine.dispose()
