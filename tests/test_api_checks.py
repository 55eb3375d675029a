"""GET /api/checks/parcels (JSON, xlsx, GeoJSON pieces) and the parcel page /parcels/{code}."""

import json
import re
from io import BytesIO
from urllib.parse import unquote

import openpyxl
import pytest
from fastapi.testclient import TestClient
from test_checks import HAND, build_handmade
from typer.testing import CliRunner

from api.app import create_app
from api.checks_cli import check_app
from api.routers import checks
from geo.settings import Settings, get_settings

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def app_for(engine, county: str = "629901"):
    app = create_app(Settings(county=county), engine)
    if not any(getattr(route, "path", "") == "/api/checks/parcels" for route in app.routes):
        app.include_router(checks.router)  # until api/app.py includes it
    return app


@pytest.fixture(scope="module")
def client(engine):
    return TestClient(app_for(engine))


@pytest.fixture(scope="module")
def report(client):
    response = client.get("/api/checks/parcels")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


@pytest.fixture(scope="module")
def hand_db(new_database):
    url = new_database("titlemap_api_checks_hand")
    engine, hand = build_handmade(url)
    yield engine, hand, url
    engine.dispose()


@pytest.fixture(scope="module")
def hand_client(hand_db):
    engine, hand, _ = hand_db
    return TestClient(app_for(engine, HAND)), hand


def test_report_summary_names_zone_tolerances_and_counts(report):
    summary = report["summary"]
    assert summary["county"] == "629901" and summary["gk_epsg"] == 4544
    assert "EPSG:4544" in summary["crs"]
    assert summary["tolerances"]["area_tolerance"] == 0.01
    assert summary["tolerances"]["overlap_tolerance_m2"] == 1.0
    counts = {check: item["count"] for check, item in summary["problems_by_check"].items()}
    assert counts["compound_no_parcel"] == 4 and counts["beyond"] == 4
    assert counts["overlap"] == 6 and counts["area"] == 9 and counts["orphan_parcel"] == 2
    assert counts["gap"] == 0 and counts["parcel_code"] == 0
    assert summary["checked"]["parcels"] >= 280
    assert len(report["problems"]) == summary["problems"]
    first = report["problems"][0]
    assert {"id", "check", "check_label", "parcel", "reason", "lon", "lat"} <= set(first)


def test_report_filters_by_check_and_takes_tolerances(client):
    only = client.get("/api/checks/parcels", params={"check": ["overlap", "beyond"]}).json()
    assert {p["check"] for p in only["problems"]} == {"overlap", "beyond"}
    loose = client.get("/api/checks/parcels", params={"area_tolerance": 0.2}).json()
    assert loose["summary"]["tolerances"]["area_tolerance"] == 0.2
    assert loose["summary"]["problems_by_check"]["area"]["count"] == 0
    assert client.get("/api/checks/parcels", params={"check": "nonsense"}).status_code == 422
    assert client.get("/api/checks/parcels", params={"area_tolerance": 2}).status_code == 422
    assert client.get("/api/checks/parcels", params={"gap_width_m": 0}).status_code == 422
    missing = client.get("/api/checks/parcels", params={"county": "999999"})
    assert missing.status_code == 404 and "999999" in missing.json()["detail"]


@pytest.mark.parametrize("path", ["/api/checks/parcels.xlsx", "/api/checks/parcels?format=xlsx"])
def test_problem_list_as_xlsx_with_chinese_headers(client, report, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == XLSX
    disposition = response.headers["content-disposition"]
    assert "示例县宗地核查问题清单.xlsx" in unquote(disposition)
    book = openpyxl.load_workbook(BytesIO(response.content))
    sheet = book["问题清单"]
    assert [c.value for c in sheet[3]][:4] == ["序号", "问题编号", "核查项", "宗地代码"]
    assert "EPSG:4544" in sheet["A2"].value and "1.00%" in sheet["A2"].value
    assert sheet.max_row - 3 == report["summary"]["problems"]
    totals = dict(book["汇总"].iter_rows(min_row=2, values_only=True))
    assert totals["投影 EPSG"] == 4544


def test_pieces_layer_for_the_map(client):
    response = client.get("/api/checks/parcels/pieces.geojson")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/geo+json")
    layer = response.json()
    assert layer["type"] == "FeatureCollection" and layer["summary"]["gk_epsg"] == 4544
    assert "4490" in layer["crs"]["properties"]["name"]
    kinds = {f["properties"]["kind"] for f in layer["features"]}
    assert kinds == {"overlap", "beyond", "planned"}  # the demo plants no gap
    for feature in layer["features"]:
        props = feature["properties"]
        assert feature["geometry"]["type"] in ("Polygon", "MultiPolygon")
        assert props["area_m2"] > 1 and props["colour"].startswith("#") and props["problems"]
        assert all(link.startswith("/parcels/") for link in props["links"])
    overlaps = [f for f in layer["features"] if f["properties"]["kind"] == "overlap"]
    assert len(overlaps) == 3


def test_parcel_page_shows_map_figures_and_every_check(client, report):
    overlap = next(p for p in report["problems"] if p["check"] == "overlap")
    response = client.get(f"/parcels/{overlap['parcel']}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert overlap["parcel"] in page and "<svg" in page and "示意图" in page
    assert re.search(r">\d+ m</text>", page)  # the scale bar
    assert "不通过" in page and "通过" in page and "宗地重叠" in page
    assert overlap["related"][0] in page  # the other parcel: named and linked
    assert f'href="/parcels/{overlap["related"][0]}' in page
    assert "EPSG:4544" in page and "面积容差 1.00%" in page
    for label in ("宗地代码", "面积核对", "宗地间缝隙", "小区超出宗地", "压占规划道路或绿地",
                  "欠缴土地出让金", "宗地未关联小区"):  # fmt: skip
        assert label in page
    # No external resources: no scripts, no remote URLs (only the SVG namespace).
    assert "<script" not in page
    assert re.findall(r"https?://[^\"' )]+", page) == ["http://www.w3.org/2000/svg"]


def test_parcel_page_for_a_clean_parcel(client, demo, report):
    flagged = {p["parcel"] for p in report["problems"]}
    flagged |= {c for p in report["problems"] if p["check"] == "beyond" for c in p["related"]}
    clean = next(code for code in demo.parcels["code"] if code not in flagged)
    page = client.get(f"/parcels/{clean}").text
    assert 'class="fail"' not in page and 'class="badge b-fail"' not in page
    assert 'class="pass"' in page and 'class="badge b-pass"' in page


def test_hostile_names_are_escaped(hand_client):
    client, hand = hand_client
    page = client.get(f"/parcels/{hand.parcels['O1']}").text
    assert "<script" not in page and "&lt;script&gt;" in page
    assert "&amp;" in page and "&quot;小区&quot;" in page
    search = client.get("/parcels", params={"code": '"><script>x</script>'})
    assert search.status_code == 404 and "<script" not in search.text


def test_handmade_pages_say_why(hand_client):
    client, hand = hand_client
    gap = client.get(f"/parcels/{hand.parcels['D1']}").text
    assert "缝隙" in gap and hand.parcels["D2"] in gap and "不通过" in gap
    beyond = client.get(f"/parcels/{hand.parcels['E1']}").text
    assert "超出其宗地" in beyond and "东侧" in beyond
    bow = client.get(f"/parcels/{hand.parcels['L1']}").text
    assert "自相交" in bow
    layer = client.get("/api/checks/parcels/pieces.geojson").json()
    assert {f["properties"]["kind"] for f in layer["features"]} == {"overlap", "gap", "beyond",
                                                                   "planned"}  # fmt: skip


def test_search_by_code(client, hand_client):
    code = "629901001003GB00002"
    found = client.get("/parcels", params={"code": code}, follow_redirects=False)
    assert found.status_code == 303 and found.headers["location"].startswith(f"/parcels/{code}")
    unit = client.get("/parcels", params={"code": code + "F00010001"}, follow_redirects=False)
    assert unit.status_code == 303 and f"/parcels/{code}" in unit.headers["location"]
    wrong = client.get("/parcels", params={"code": "629901001003GI00002"})
    assert wrong.status_code == 404 and "第 14 位" in wrong.text
    partial = client.get("/parcels", params={"code": "629901001003GB0000"})
    assert partial.status_code == 404 and f'href="/parcels/{code}' in partial.text
    blank = client.get("/parcels")
    assert blank.status_code == 200 and 'name="code"' in blank.text
    assert client.get("/parcels/629901001003GB99999").status_code == 404


def test_a_click_on_the_map_opens_the_parcel(client, demo):
    row = demo.parcels.iloc[10]
    point = row.geometry.representative_point()
    response = client.get("/parcels/at", params={"lon": point.x, "lat": point.y},
                          follow_redirects=False)  # fmt: skip
    assert response.status_code == 303
    assert response.headers["location"].startswith(f"/parcels/{row['code']}")
    nowhere = client.get("/parcels/at", params={"lon": 110, "lat": 30})
    assert nowhere.status_code == 404


@pytest.fixture
def cli_env(hand_db, monkeypatch):
    _, hand, url = hand_db
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("TITLEMAP_COUNTY", HAND)
    monkeypatch.setenv("COLUMNS", "160")
    get_settings.cache_clear()
    yield hand
    get_settings.cache_clear()


def test_cli_check_parcels_writes_xlsx_and_geojson(cli_env, tmp_path):
    result = CliRunner().invoke(
        check_app,
        ["parcels", "--xlsx", str(tmp_path / "问题清单.xlsx"), "--geojson",
         str(tmp_path / "pieces.geojson"), "--json", str(tmp_path / "report.json"),
         "--area-tolerance", "0.012", "--workers", "2"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = result.output
    assert "手工县" in out and "EPSG:4544" in out and "1.20%" in out
    assert "宗地重叠 / overlap" in out and "忽略的重叠碎片" in out
    book = openpyxl.load_workbook(tmp_path / "问题清单.xlsx")
    assert [c.value for c in book["问题清单"][3]][:3] == ["序号", "问题编号", "核查项"]
    layer = json.loads((tmp_path / "pieces.geojson").read_text(encoding="utf-8"))
    assert layer["summary"]["tolerances"]["area_tolerance"] == 0.012
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    checks_found = {p["check"] for p in report["problems"]}
    assert "area" not in checks_found  # 1.05 % is within 1.2 %
    assert {"overlap", "gap", "beyond", "planned"} <= checks_found


def test_cli_check_one_parcel(cli_env):
    result = CliRunner().invoke(check_app, ["parcel", cli_env.parcels["D1"]])
    assert result.exit_code == 0, result.output
    assert "不通过" in result.output and "缝隙" in result.output and "EPSG:4544" in result.output
