"""GET /api/checks/parcels (JSON, xlsx, GeoJSON pieces) and the parcel page /parcels/{code}."""

import json
import re
from io import BytesIO
from urllib.parse import unquote

import openpyxl
import pytest
from fastapi.testclient import TestClient
from shapely.geometry import Point, shape
from sqlalchemy import text
from test_checks import HAND, build_handmade
from typer.testing import CliRunner

from api.app import create_app
from api.routers import checks
from cli.checks import check_app
from geo.core.settings import Settings, get_settings
from maps.styles import PIECE_STYLES

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


def test_reports_are_kept_until_the_data_changes(client, engine):
    first = client.get("/api/checks/parcels").json()
    assert client.get("/api/checks/parcels").json() == first  # the kept report
    area = {p["parcel"] for p in first["problems"] if p["check"] == "area"}
    with engine.connect() as conn:
        code, recorded = conn.execute(text(
            "SELECT code, recorded_area_m2 FROM parcel WHERE county_code = '629901' "
            "AND NOT (code = ANY(:bad)) ORDER BY code LIMIT 1"), {"bad": sorted(area)},
        ).one()  # fmt: skip
    change = "UPDATE parcel SET recorded_area_m2 = :a WHERE county_code = '629901' AND code = :c"
    with engine.begin() as conn:
        conn.execute(text(change), {"a": recorded * 2, "c": code})
    try:
        again = client.get("/api/checks/parcels").json()
        assert code in {p["parcel"] for p in again["problems"] if p["check"] == "area"}
    finally:
        with engine.begin() as conn:
            conn.execute(text(change), {"a": recorded, "c": code})
    assert client.get("/api/checks/parcels").json()["problems"] == first["problems"]


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
        assert props["area_m2"] > 1 and props["problems"]
        # the one palette (maps.styles), the reasons in words, a point inside for a pin
        style = PIECE_STYLES[props["kind"]]
        assert (props["colour"], props["hatch"]) == (style["colour"], style["hatch"])
        assert props["label"] == style["label"] and props["reasons"]
        assert shape(feature["geometry"]).buffer(1e-9).contains(Point(props["lon"], props["lat"]))
        assert props["links"] == [f"/parcels/{c}?county=629901" for c in props["parcels"]]
    overlaps = [f for f in layer["features"] if f["properties"]["kind"] == "overlap"]
    assert len(overlaps) == 3
    for feature in overlaps:
        props = feature["properties"]
        assert len(props["parcels"]) == 2 and all(c in props["reasons"][0] + props["reasons"][1]
                                                  for c in props["parcels"])  # fmt: skip
        page = client.get(props["links"][0])
        assert page.status_code == 200 and "宗地重叠" in page.text and "不通过" in page.text


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


def test_parcel_page_draws_pieces_in_the_maps_styles(client, report):
    beyond = next(p for p in report["problems"] if p["check"] == "beyond")
    page = client.get(f"/parcels/{beyond['related'][0]}").text
    assert 'class="piece piece-beyond"' in page and 'fill="url(#piece-beyond)"' in page
    for kind, style in PIECE_STYLES.items():  # the legend holds every kind's pattern
        assert f'<pattern id="piece-{kind}"' in page and style["colour"] in page
        assert style["label"] in page


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
    assert "&amp;" in page and "&#34;小区&#34;" in page
    search = client.get("/parcels", params={"code": '"><script>x</script>'})
    assert search.status_code == 404 and "<script" not in search.text
    assert 'value="&#34;&gt;&lt;script&gt;x&lt;/script&gt;"' in search.text  # the box keeps it


HOSTILE = "<script>alert(1)</script>\"'&"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&#39;&amp;"


def test_hostile_land_use_and_compound_name_are_shown_as_text(hand_db, hand_client):
    """What the database holds reaches the parcel page only as text: the land use in the
    figures, the compound's name in the figures and in the drawing's tooltip."""
    engine, hand, _ = hand_db
    client, _ = hand_client
    change = "UPDATE parcel SET land_use = :u WHERE county_code = :c AND code = :p"
    with engine.begin() as conn:
        conn.execute(text(change), {"u": HOSTILE, "c": HAND, "p": hand.parcels["O1"]})
    try:
        page = client.get(f"/parcels/{hand.parcels['O1']}").text
    finally:
        with engine.begin() as conn:
            conn.execute(text(change), {"u": "0701", "c": HAND, "p": hand.parcels["O1"]})
    assert "<script" not in page and f"<td>{ESCAPED}</td>" in page  # 地类
    name = "&lt;script&gt;alert(&#34;宗地&#34;)&lt;/script&gt;花园 &amp; &#34;小区&#34;"
    assert f'<span class="code">{hand.compounds["O"]}</span> {name}' in page
    assert f"<title>{hand.compounds['O']} {name}</title>" in page


def test_parcel_page_keeps_its_layout(client, report):
    """The page's frame: Chinese, its own CSS, the search box and the county's xlsx."""
    code = report["problems"][0]["parcel"]
    page = client.get(f"/parcels/{code}").text
    assert page.startswith("<!DOCTYPE html>") and '<html lang="zh-CN">' in page
    assert f"<title>宗地核查 {code}</title>" in page and ".badge{" in page
    assert f'<input type="text" name="code" value="{code}"' in page
    assert 'href="/api/checks/parcels.xlsx?county=629901">全县问题清单（xlsx）</a>' in page
    for heading in ("宗地信息", "核查结果", "相邻宗地", "核查依据"):
        assert f"<h2>{heading}</h2>" in page
    assert '<p class="legend"><span><i style="background:#4a90d9"></i>本宗地</span>' in page


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


# -- finding parcels for the web map (search box, compound card) --------------------------------


def test_find_parcels_by_code_prefix(client, demo):
    codes = sorted(demo.parcels["code"])
    body = client.get("/api/parcels", params={"q": codes[0]}).json()
    assert body["numberMatched"] == body["numberReturned"] == 1
    feature = body["features"][0]
    props = feature["properties"]
    row = demo.parcels.set_index("code").loc[codes[0]]
    assert props["code"] == codes[0] and props["land_use"] == row["land_use"]
    assert props["recorded_area_m2"] == pytest.approx(row["recorded_area_m2"])
    assert props["drawn_area_m2"] > 0 and props["land_use_label"] == "城镇住宅用地"
    assert props["page"] == f"/parcels/{codes[0]}?county=629901"
    drawn = shape(feature["geometry"])
    assert drawn.hausdorff_distance(row["geometry"]) < 1e-6  # 7 decimals of a degree
    assert drawn.contains(Point(props["lon"], props["lat"]))
    assert feature["bbox"] == pytest.approx(list(drawn.bounds))
    linked = set(demo.compound_parcels.query("parcel_code == @codes[0]").compound_code)
    assert set((props["compound_codes"] or "").split(",")) - {""} == linked
    prefix = codes[0][:15]
    expected = [c for c in codes if c.startswith(prefix)]
    some = client.get("/api/parcels", params={"q": prefix.lower(), "limit": 3}).json()
    assert some["numberMatched"] == len(expected) > 3
    assert [f["properties"]["code"] for f in some["features"]] == expected[:3]
    unit = client.get("/api/parcels", params={"q": codes[5] + "F00010001"}).json()
    assert [f["properties"]["code"] for f in unit["features"]] == [codes[5]]


def test_find_parcels_of_a_compound(client, demo):
    links = demo.compound_parcels
    compound = links.compound_code.value_counts().index[0]  # the one with most parcels
    body = client.get("/api/parcels", params={"compound": compound}).json()
    got = [f["properties"]["code"] for f in body["features"]]
    assert got == sorted(links.query("compound_code == @compound").parcel_code) and len(got) >= 2
    assert all(compound in f["properties"]["compound_codes"] for f in body["features"])
    none = client.get("/api/parcels", params={"compound": "XQ-NONE"}).json()
    assert none["numberMatched"] == 0 and none["features"] == []


@pytest.mark.parametrize(
    ("params", "status", "words"),
    [
        ({}, 422, "compound"),
        ({"q": "629901", "limit": 0}, 422, ""),
        ({"q": "629901", "county": "999999"}, 404, "999999"),
    ],
)
def test_find_parcels_refuses_what_it_cannot_answer(client, params, status, words):
    response = client.get("/api/parcels", params=params)
    assert response.status_code == status
    assert words in json.dumps(response.json(), ensure_ascii=False)


@pytest.mark.parametrize("q", ["6299%", "62990_", "'; DROP TABLE parcel; --", "%"])
def test_a_search_is_taken_literally(client, q):
    # survey plots keep their own numbers (滨河安置小区-1), so any text may be searched; LIKE's
    # wildcards and SQL in it match nothing
    response = client.get("/api/parcels", params={"q": q})
    assert response.status_code == 200 and response.json()["features"] == []
    assert client.get("/api/parcels", params={"q": "6299"}).json()["features"]  # still there


def test_parcel_links_quote_the_code():
    assert (
        checks._page_url("6299/../X?Y #", "629901")
        == "/parcels/6299%2F..%2FX%3FY%20%23?county=629901"
    )
