"""Cities and the province above the county (issue 17): a province of four small demo counties
in a database of its own; the overview's figures against geo.ledger.stats, its roll-ups, who
reads which county (API, tiles, OGC) and the command line."""

import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.app import create_app
from geo import TitlemapError
from geo.core.codes import in_region, region_level, region_prefix
from geo.core.dates import today
from geo.core.rates import rate
from geo.core.settings import Settings
from geo.db.engine import make_engine
from geo.db.memo import memo_of
from geo.db.revisions import data_version
from geo.db.schema import upgrade
from geo.demo.province import generate_province, load_province
from geo.ledger.regions import add_region, county_outlines, overview, region_burndown, set_region
from geo.ledger.stats import burndown, rates
from geo.ledger.users import add_user, give_counties
from geo.query.tiles import tile_of
from tests.conftest import PASSWORD, app_role, run_cli, sign_in

PROVINCE, CITY, OTHER_CITY = "620000", "620100", "620200"
HOME, NEIGHBOUR = "620101", "620102"  # both in CITY; NEIGHBOUR's map is closed
COUNTIES = ["620101", "620102", "620201", "620202"]
ITEMS = "/ogc/collections/compounds/items"


@pytest.fixture(scope="module")
def province(head_database):
    engine = make_engine(head_database("titlemap_regions"))
    load_province(engine, generate_province(compounds=40))
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def tokens(province) -> dict[str, str]:
    """name → bearer token: a county viewer and editor of HOME, a city viewer, a city editor
    given NEIGHBOUR, a province viewer."""
    with province.begin() as conn:
        conn.execute(text("UPDATE county SET map_public = false WHERE code = :c"), {"c": NEIGHBOUR})
    people = {
        "县查看员": (HOME, None, "viewer"),
        "市查看员": (None, CITY, "viewer"),
        "市编辑": (None, CITY, "editor"),
        "省查看员": (None, PROVINCE, "viewer"),
    }
    issued = {}
    with Session(province) as session:
        for name, (county, region, role) in people.items():
            user, token = add_user(session, county, name, role, region=region)
            issued[name] = token
            if name == "市编辑":
                give_counties(session, user, [NEIGHBOUR])
        session.commit()
    return issued


@pytest.fixture(scope="module")
def client(cluster, province, tokens):
    app_db = app_role(cluster, province)  # the web app's own role: grants on the new tables
    yield TestClient(create_app(Settings(), app_db))
    app_db.dispose()


def bearer(tokens, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[name]}"}


# -- codes and regions -------------------------------------------------------------------------


def test_nesting_comes_from_the_codes():
    assert region_level("620000") == "province" and region_level("620100") == "city"
    assert region_level("620102") is None
    assert region_prefix("620000") == "62" and region_prefix("620100") == "6201"
    assert in_region("620102", "620100") and in_region("620102", "620000")
    assert in_region("620100", "620000") and not in_region("620201", "620100")


@pytest.mark.parametrize(
    ("code", "name", "target", "words"),
    [("620102", "某县", None, "县级代码"), ("990000", "某省", None, "不是省份代码"),
     ("62010", "某市", None, "6 位数字"), ("620300", "", None, "名称不能为空"),
     ("620300", "某市", "1.5", "0 到 1"), (CITY, "又一个", None, "已存在")],
)  # fmt: skip
def test_region_codes_names_and_targets_are_checked(province, code, name, target, words):
    with province.connect() as conn, pytest.raises(TitlemapError, match=words) as refused:
        add_region(conn, code, name, target)
    assert "\n" not in str(refused.value)


def test_the_database_refuses_a_user_of_no_county_and_no_region(province):
    with province.connect() as conn, pytest.raises(IntegrityError, match="user_home"):
        conn.execute(text("INSERT INTO app_user (name, role) VALUES ('无处', 'viewer')"))


# -- the overview ----------------------------------------------------------------------------


def test_overview_rows_and_totals_are_the_counties_stats(province):
    with province.connect() as conn:
        figures = overview(conn, PROVINCE)
        own = {county: rates(conn, county)[0] for county in COUNTIES}
    rows = {row["code"]: row for row in figures["counties"]}
    assert sorted(rows) == COUNTIES and figures["withheld"] == 0
    for county, stats in own.items():
        for field in ("compounds", "closed", "units_task", "units_first_registered",
                      "units_transferred", "units_sold", "first_rate", "transfer_rate",
                      "overall_rate", "target_rate", "meets_target"):  # fmt: skip
            assert rows[county][field] == stats[field], (county, field)
    assert len({row["overall_rate"] for row in rows.values()}) > 1  # the seeds differ
    totals = figures["totals"]
    for field in ("units_task", "units_first_registered", "units_transferred", "units_sold"):
        assert totals[field] == sum(stats[field] for stats in own.values())
    task = totals["units_task"]
    assert totals["transfer_rate"] == rate(totals["units_transferred"], task)
    registered = sum(s["units_sold"] - s["units_task"] + s["units_transferred"]
                     for s in own.values())  # fmt: skip
    assert totals["overall_rate"] == rate(registered, totals["units_sold"])  # basis "sold"
    ranked = [row["overall_rate"] for row in figures["counties"]]
    assert ranked == sorted(ranked, reverse=True)
    assert figures["counties"][0]["rank"] == 1


def test_a_city_overview_holds_its_own_counties_and_its_target(province):
    with province.connect() as conn:
        set_region(conn, OTHER_CITY, {"target_rate": "99%", "target_deadline": "2027-06-30"})
        try:
            figures = overview(conn, OTHER_CITY)
        finally:
            set_region(conn, OTHER_CITY, {"target_rate": "", "target_deadline": ""})
    assert [row["code"] for row in sorted(figures["counties"], key=lambda r: r["code"])] == [
        "620201", "620202"]  # fmt: skip
    assert all(row["target_rate"] == 0.99 and not row["meets_target"]
               for row in figures["counties"])  # fmt: skip
    assert figures["totals"]["meets_target"] is False


def test_the_rollup_is_read_while_fresh_and_recomputed_after_an_edit(province):
    with province.connect() as conn:
        overview(conn, CITY)  # computes what is not fresh, keeps it
        again = overview(conn, CITY)
    assert all(row["from_rollup"] for row in again["counties"])
    with province.begin() as conn:  # an edit of one county moves its data revision
        conn.execute(text(
            "UPDATE ledger_entry SET units_transferred = units_first_registered "
            "WHERE id = (SELECT min(id) FROM ledger_entry WHERE county_code = :c "
            "AND units_transferred < units_first_registered)"), {"c": HOME})  # fmt: skip
    with province.connect() as conn:
        after = {row["code"]: row for row in overview(conn, CITY)["counties"]}
        now = rates(conn, HOME)[0]
        stored = conn.execute(text("SELECT figures FROM county_rollup WHERE county_code = :c"),
                              {"c": HOME}).scalar_one()  # fmt: skip
    assert not after[HOME]["from_rollup"] and after[NEIGHBOUR]["from_rollup"]
    assert after[HOME]["units_transferred"] == now["units_transferred"]
    assert stored["units_transferred"] == now["units_transferred"]
    with province.connect() as conn:
        assert overview(conn, CITY)["counties"][0]["from_rollup"]


def test_the_rollups_are_kept_fresh_in_the_background_while_serving(cluster, province):
    # The province's first overview of a day would otherwise compute every county (24 s for
    # a hundred): the served app refreshes stale roll-ups on its own thread.
    with province.begin() as conn:
        conn.execute(text("DELETE FROM county_rollup"))
    app_db = app_role(cluster, province)
    app = create_app(Settings(rollup_refresh_s=0.3), app_db)
    try:
        with TestClient(app):
            keeper = app.state.rollups
            deadline = time.monotonic() + 120
            while keeper.refreshed < len(COUNTIES) and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(1)  # more rounds: a fresh row is not computed again
        assert keeper.refreshed == len(COUNTIES)
    finally:
        app_db.dispose()
    with province.connect() as conn:
        assert all(row["from_rollup"] for row in overview(conn, PROVINCE)["counties"])


def test_a_past_day_is_computed_from_the_history_not_kept(province):
    with province.connect() as conn:
        day = conn.execute(text("SELECT min(at)::date + 60 FROM ledger_event")).scalar_one()
        past = {row["code"]: row for row in overview(conn, CITY, as_of=day)["counties"]}
        then = rates(conn, HOME, as_of=day)[0]
    assert past[HOME]["units_transferred"] == then["units_transferred"]
    assert not past[HOME]["from_rollup"]


def test_burndown_and_outlines(province):
    with province.connect() as conn:
        burn = region_burndown(conn, CITY, [HOME])
        shapes = county_outlines(conn, COUNTIES)
    assert [c["code"] for c in burn["counties"]] == [HOME] and burn["withheld"] == 1
    assert burn["counties"][0]["series"][-1]["open_units"] >= 0
    assert [f["id"] for f in shapes["features"]] == COUNTIES
    assert all(f["geometry"]["type"] in ("Polygon", "MultiPolygon") for f in shapes["features"])


def test_a_countys_burndown_is_kept_until_its_data_moves(province):
    with province.connect() as conn:
        first = region_burndown(conn, CITY, [HOME])["counties"][0]["series"]
        key = ("burndown", HOME, data_version(conn, HOME), today())
        assert memo_of(province).get(key) is first  # kept: the next view reads it
        assert region_burndown(conn, CITY, [HOME])["counties"][0]["series"] is first
    with province.begin() as conn:  # an edit moves the county's revision: computed again
        conn.execute(text("UPDATE ledger_entry SET plan = coalesce(plan, '') || '。' "
                          "WHERE id = (SELECT min(id) FROM ledger_entry WHERE county_code = :c)"),
                     {"c": HOME})  # fmt: skip
    with province.connect() as conn:
        again = region_burndown(conn, CITY, [HOME])["counties"][0]["series"]
        assert again is not first and again == burndown(conn, HOME)


# -- who reads which county ---------------------------------------------------------------------


def reads(client, county: str, headers: dict) -> list[int]:
    """Compounds, a tile and OGC items of `county`, as `headers` asks."""
    with client.app.state.engine.connect() as conn:
        lon, lat = conn.execute(
            text("SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Collect(geom)) AS c "
                 "FROM compound WHERE county_code = :c) x"), {"c": county}).one()  # fmt: skip
    x, y = tile_of(lon, lat, 12)
    urls = [f"/api/compounds?county={county}&limit=1",
            f"/api/tiles/compounds/12/{x}/{y}.pbf?county={county}",
            f"{ITEMS}?county={county}&limit=1"]  # fmt: skip
    return [client.get(url, headers=headers).status_code for url in urls]


def test_a_county_user_does_not_read_a_neighbours_closed_county(client, tokens):
    county = bearer(tokens, "县查看员")
    assert set(reads(client, HOME, county)) <= {200, 204}
    assert all(status in (403, 404) for status in reads(client, NEIGHBOUR, county))
    seen = client.get(f"/api/regions/{CITY}/overview", headers=county).json()
    assert [row["code"] for row in seen["counties"]] == [HOME] and seen["withheld"] == 1
    assert client.get(f"/api/regions/{CITY}/overview").json()["withheld"] == 1  # anonymous
    listed = {r["code"]: r for r in client.get("/api/regions", headers=county).json()["regions"]}
    assert listed[CITY]["readable"] == 1 and listed[CITY]["counties"] == 2


def test_a_city_user_reads_all_its_counties_and_writes_none_not_given(client, tokens):
    city = bearer(tokens, "市查看员")
    for county in (HOME, NEIGHBOUR):
        assert set(reads(client, county, city)) <= {200, 204}, county
    seen = client.get(f"/api/regions/{CITY}/overview", headers=city).json()
    assert sorted(row["code"] for row in seen["counties"]) == [HOME, NEIGHBOUR]
    assert seen["withheld"] == 0

    editor = bearer(tokens, "市编辑")
    for county, allowed in ((HOME, False), (NEIGHBOUR, True)):
        entries = client.get(f"/api/ledger?county={county}", headers=editor).json()["entries"]
        code = entries[0]["code"]
        found = client.get(f"/api/ledger/{code}?county={county}", headers=editor).json()
        patched = client.patch(
            f"/api/ledger/{code}?county={county}", headers=editor,
            json={"version": found["version"],
                  "changes": {"next_step": "市里督办 / the city follows up"}},
        )  # fmt: skip
        assert patched.status_code == (200 if allowed else 403), patched.text
    assert client.get("/api/me", headers=editor).json()["region"] == CITY


def test_a_region_editor_given_no_county_imports_nowhere(client, province):
    with Session(province) as session:
        _, token = add_user(session, None, "市编辑无县", "editor", region=CITY)
        session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    for answer in (
        client.patch("/api/parcels/某地块-1", json={"code": "620101001001GB00999"},
                     headers=headers),
        client.post("/api/imports", headers=headers, data={"layer": "compounds"},
                    files={"file": ("a.geojson", b"{}")}),
    ):  # fmt: skip
        assert answer.status_code == 403 and "授予它的一个县" in answer.json()["detail"]


def test_a_province_user_reads_the_province_overview(client, tokens):
    whole = bearer(tokens, "省查看员")
    seen = client.get(f"/api/regions/{PROVINCE}/overview", headers=whole)
    assert seen.status_code == 200
    assert sorted(row["code"] for row in seen.json()["counties"]) == COUNTIES
    assert seen.json()["withheld"] == 0
    shapes = client.get(f"/api/regions/{PROVINCE}/counties.geojson", headers=whole).json()
    assert {f["properties"]["code"] for f in shapes["features"]} == set(COUNTIES)
    assert all("overall_rate" in f["properties"] for f in shapes["features"])
    burn = client.get(f"/api/regions/{PROVINCE}/burndown?until=2026-11-28", headers=whole)
    assert burn.status_code == 200 and len(burn.json()["counties"]) == 4
    missing = client.get("/api/regions/630000/overview", headers=whole)
    assert missing.status_code == 404 and "没有这个省/市" in missing.json()["detail"]
    assert client.get(f"/api/regions/{PROVINCE}/overview?as_of=1800-01-01").status_code == 422


def test_a_region_admin_signs_in_and_is_sent_to_the_command_line_for_users(client, province):
    with Session(province) as session:
        add_user(session, None, "市管理员", "admin", region=CITY, password=PASSWORD,
                 with_token=False)  # fmt: skip
        with pytest.raises(TitlemapError, match="no such region"):
            add_user(session, None, "无市", "viewer", region="629900")
        session.commit()
    browser = TestClient(client.app)
    sign_in(browser, "市管理员")
    me = browser.get("/api/me").json()
    assert me["region"] == CITY and me["county"] is None and me["counties"] == []
    page = browser.get("/admin/users")
    assert page.status_code == 403 and "titlemap user list --county 620100" in page.text


# -- the command line and the migration -----------------------------------------------------------


def test_region_add_list_show_on_the_command_line(province):
    env = {"DATABASE_URL": province.url.render_as_string(hide_password=False), "COLUMNS": "200"}
    added = run_cli("region", "add", "620300", "示例市", "--target", "0.85", env=env)
    assert added.returncode == 0, added.stderr
    assert "85.00%" in added.stdout
    refused = run_cli("region", "add", "620301", "某县", env=env)
    assert refused.returncode == 1 and "县级代码" in refused.stderr
    listed = run_cli("region", "list", env=env)
    assert listed.returncode == 0 and "示例市" in listed.stdout and CITY in listed.stdout
    shown = run_cli("region", "show", PROVINCE, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "总体登记率" in shown.stdout and "合计" in shown.stdout
    assert all(county in shown.stdout for county in COUNTIES)
    user = run_cli("user", "add", "市里的人", "--region", CITY, "--role", "viewer", env=env)
    assert user.returncode == 0 and CITY in user.stdout, user.stderr


def test_the_migration_keeps_the_users_of_an_existing_database(new_database):
    engine = make_engine(new_database("titlemap_regions_migration"))
    try:
        upgrade(engine, "0009")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO county (code, name, target_rate) VALUES ('629901', '示例县', 0.9)"
                )
            )
            conn.execute(text("INSERT INTO app_user (county_code, name, role) "
                              "VALUES ('629901', '老用户', 'admin')"))  # fmt: skip
        upgrade(engine)
        with engine.connect() as conn:
            kept = conn.execute(text("SELECT county_code, region_code FROM app_user")).one()
        assert tuple(kept) == ("629901", None)
    finally:
        engine.dispose()
