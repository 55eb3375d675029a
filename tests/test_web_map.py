"""The web map (GET /): the page, its layers and tiles, and the page itself in headless Chromium.

The API tests check the map's data against the ledger; the browser tests (`slow`) drive the
page served by uvicorn on 127.0.0.1: the demo county renders, a click opens the card, a filter
changes what is drawn, the date changes the colours, search zooms to its result, the
parcel-check problem layer loads when switched on, a parcel click leads to its page — recording
every request the page makes (none may leave 127.0.0.1) and keeping screenshots in
test-artifacts/. A compound named like an HTML tag is shown as text and runs nothing.
"""

import json
import re
import time
from datetime import date
from pathlib import Path
from urllib.parse import urlparse

import folium
import httpx
import pytest
from fastapi.testclient import TestClient
from shapely.geometry import shape
from sqlalchemy import text

from api.app import create_app
from geo import TitlemapError
from geo.core.settings import Settings
from geo.query import tiles as geo_tiles
from maps.styles import PIECE_STYLES, STATUS_COLOURS
from maps.webmap import SCRIPTS, STATIC_DIR, Basemap
from tests.conftest import REPO, Server

ARTIFACTS = REPO / "test-artifacts"
XSS = '<img src=x onerror="window.__xss=1">'
XSS_DEVELOPER = "<script>window.__xss=2</script>开发公司"
XSS_PLANNED = '"><svg onload="window.__xss=3">片区'


def make_app(engine, basemap: Basemap | None = None):
    app = create_app(Settings(), engine)
    if not any(getattr(route, "path", None) == "/" for route in app.routes):
        from api.routers import web

        app.include_router(web.router)
    app.state.basemap = basemap or Basemap()
    return app


@pytest.fixture(scope="module")
def client(engine):
    return TestClient(make_app(engine))


@pytest.fixture(scope="module")
def everything(client):
    return client.get("/api/compounds", params={"limit": 10000}).json()["features"]


def props(features):
    return {f["properties"]["code"]: f["properties"] for f in features}


# -- the page and its files ----------------------------------------------------------------------


def test_page_is_small_and_loads_only_the_apps_own_files(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert len(response.content) < 40_000  # no features in the page, however big the county
    assert "示例县 登记难化解一张图" in page
    assets = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', page)
    assert any("leaflet.js" in a for a in assets) and any("titlemap/main.js" in a for a in assets)
    for asset in assets:
        if asset.startswith("data:"):
            continue
        assert asset.startswith("/static/"), asset
        assert client.get(asset).status_code == 200
    assert "cdn" not in page.lower()
    assert not re.search(r'(?:src|href)="(?:https?:)?//', page)
    # the module-level folium lists are left alone (other maps keep their defaults)
    assert any("cdn" in url for _, url in folium.Map.default_js)


def test_leaflet_is_vendored_with_its_licence():
    leaflet = STATIC_DIR / "vendor" / "leaflet"
    assert 't.version="1.9.' in (leaflet / "leaflet.js").read_text()
    assert "BSD 2-Clause" in (leaflet / "LICENSE").read_text()
    assert (leaflet / "images" / "layers.png").exists()


def test_static_files_are_cached_and_confined(client):
    response = client.get("/static/titlemap/core.js", params={"v": "x"})
    assert response.status_code == 200
    assert "immutable" in response.headers["cache-control"]
    assert response.headers["content-type"].startswith("text/javascript")
    for path in ("/static/../webmap.py", "/static/%2e%2e/webmap.py", "/static/nothing.js"):
        assert client.get(path).status_code == 404


def test_basemap_is_none_unless_configured(engine):
    assert Basemap.from_env({}) == Basemap()
    with pytest.raises(TitlemapError, match="TITLEMAP_TIANDITU_KEY"):
        Basemap.from_env({"TITLEMAP_BASEMAP": "tianditu"})
    with pytest.raises(TitlemapError, match="XYZ"):
        Basemap.from_env({"TITLEMAP_BASEMAP": "ftp://tiles/{z}"})
    plain = TestClient(make_app(engine)).get("/").text
    assert "tianditu" not in plain and "L.tileLayer" not in plain
    tianditu = Basemap.from_env({"TITLEMAP_BASEMAP": "tianditu", "TITLEMAP_TIANDITU_KEY": "abc123"})
    page = TestClient(make_app(engine, tianditu)).get("/").text
    assert "tianditu.gov.cn/vec_w/wmts" in page and "tk=abc123" in page
    assert "\\u5929\\u5730\\u56fe\\u6ce8\\u8bb0" in page  # 天地图注记, as JSON in the script
    xyz = Basemap.from_env({"TITLEMAP_BASEMAP": "http://10.0.0.5/tiles/{z}/{x}/{y}.png"})
    assert (
        "http://10.0.0.5/tiles/{z}/{x}/{y}.png" in TestClient(make_app(engine, xyz)).get("/").text
    )


def test_problem_layer_is_offered_but_off_and_in_the_legend(client):
    page = client.get("/").text
    assert "/api/checks/parcels/pieces.geojson" in page and '"/api/parcels"' in page
    # the layer is made and put in the layer control, but not added to the map
    made = re.search(r"var (\w+) = titlemap\.layer\(\s*\"problems\"", page)
    assert made and f"{made.group(1)}.addTo(" not in page
    assert re.search(r'"\\u5b97\\u5730\\u6838\\u67e5\\u95ee\\u9898 / parcel check problems"', page)
    for kind, style in PIECE_STYLES.items():
        assert f'data-piece="{kind}"' in page and style["label"] in page
        assert f'<pattern id="tm-piece-{kind}"' in page
    assert 'data-state-for="problems"' in page


# -- the map's data -------------------------------------------------------------------------------


def test_options_offer_what_the_filters_need(client, demo):
    options = client.get("/api/map/options").json()
    assert options["county"]["name"] == "示例县"
    assert len(options["townships"]) == 5
    assert {p["code"] for p in options["planned_areas"]} == set(demo.planned_areas.code)
    assert {"住建局", "自然资源局", "税务局"} <= set(options["lead_departments"])
    assert options["counts"]["compounds"] == len(demo.compounds)
    assert options["history_start"] == "2025-06-01"
    assert set(options["styles"]["status"]) == set(STATUS_COLOURS)


@pytest.mark.parametrize(
    ("params", "keep"),
    [
        ({"blocker": "taxes"}, lambda p: "taxes" in (p["blockers"] or [])),
        ({"lead_department": "自然资源局"}, lambda p: p["lead_department"] == "自然资源局"),
        ({"township": "629901002"}, lambda p: p["township"] == "城东街道"),
        ({"overdue": "true"}, lambda p: p["overdue"] is True),
        ({"overdue": "false"}, lambda p: p["overdue"] is not True),
        ({"q": "花园"}, lambda p: "花园" in p["name"]),
        ({"q": "XQ629901-001"}, lambda p: p["code"].startswith("XQ629901-001")),
    ],
)
def test_filters_keep_exactly_the_matching_compounds(client, everything, params, keep):
    expected = {code for code, p in props(everything).items() if keep(p)}
    body = client.get("/api/compounds", params=params | {"limit": 10000}).json()
    assert set(props(body["features"])) == expected
    assert body["numberMatched"] == len(expected) > 0
    summary = client.get("/api/compounds/summary", params=params).json()
    assert summary["compounds"] == len(expected)


def test_planned_area_filter_is_the_overlaps(client):
    overlaps = client.get("/api/overlaps", params={"geometry": "false"}).json()["features"]
    east = {f["properties"]["compound_code"] for f in overlaps
            if f["properties"]["planned_code"] == "GH-002"}  # fmt: skip
    body = client.get("/api/compounds", params={"planned_area": "GH-002", "limit": 10000}).json()
    assert set(props(body["features"])) == east and len(east) >= 20
    kinds = client.get("/api/compounds", params={"planned_kind": "district", "limit": 10000})
    assert set(props(kinds.json()["features"])) == east


@pytest.mark.parametrize("day", ["2025-06-20", "2025-10-01", "2026-05-31"])
def test_as_of_shows_the_ledger_as_the_history_stood(client, day):
    ledger = client.get("/api/ledger", params={"as_of": day}).json()["entries"]
    expected = {e["code"]: e["status"] for e in ledger}
    body = client.get("/api/compounds", params={"as_of": day, "limit": 10000}).json()
    got = props(body["features"])
    for code, p in got.items():
        assert p["status"] == expected.get(code, "not_on_ledger"), code
    summary = client.get("/api/compounds/summary", params={"as_of": day}).json()
    assert summary["compounds"] == len(got)
    assert summary["by_status"]["not_on_ledger"] == len(got) - len(expected)


def test_card_has_developer_ledger_history_and_rates(client, everything, demo):
    code = next(c for c, p in props(everything).items()
                if p["developer_credit_status"] == "blacklisted" and p["on_ledger"])  # fmt: skip
    card = client.get(f"/api/compounds/{code}/card").json()
    assert card["developer_blacklisted"] is True and card["developer_blacklist_reason"]
    ledger = card["ledger"]
    assert ledger["lead_department"] and ledger["plan"] and ledger["task_force_lead"]
    assert ledger["first_rate"] == pytest.approx(
        ledger["units_first_registered"] / ledger["units_task"], abs=1e-4
    )
    history = client.get(f"/api/ledger/{code}").json()["history"]
    assert [h["action"] for h in card["history"]] == [h["action"] for h in history]
    then = client.get(f"/api/compounds/{code}/card", params={"as_of": "2025-06-02"}).json()
    assert then["as_of_state"] is None or then["as_of_state"]["status"] == "not_started"
    assert client.get("/api/compounds/XQ-NONE/card").status_code == 404


def test_card_rates_agree_with_the_stats(client):
    rows = client.get("/api/stats", params={"by": "compound"}).json()["rows"]
    for row in rows[:40]:
        ledger = client.get(f"/api/compounds/{row['key']}/card").json()["ledger"]
        for rate in ("first_rate", "transfer_rate", "overall_rate"):
            assert ledger[rate] == pytest.approx(row[rate], abs=1e-4), (row["key"], rate)


@pytest.mark.parametrize("layer", ["planned", "parcels", "complaints", "context", "townships",
                                   "boundary"])  # fmt: skip
def test_layers_as_geojson(client, demo, layer):
    body = client.get(f"/api/layers/{layer}").json()
    frames = {"planned": demo.planned_areas, "parcels": demo.parcels,
              "complaints": demo.complaints, "context": demo.context,
              "townships": demo.townships, "boundary": demo.county}  # fmt: skip
    assert body["numberMatched"] == body["numberReturned"] == len(frames[layer])
    assert all(f["geometry"] for f in body["features"])


def test_complaints_outside_every_ledger_compound_are_flagged(client, everything):
    on_ledger = [shape(f["geometry"]) for f in everything if f["properties"]["on_ledger"]]
    features = client.get("/api/layers/complaints").json()["features"]
    for feature in features:
        point = shape(feature["geometry"])
        outside = not any(compound.intersects(point) for compound in on_ledger)
        assert feature["properties"]["outside_ledger"] == outside
    flagged = [f["properties"] for f in features if f["properties"]["outside_ledger"]]
    assert len(flagged) >= 3  # geo.demo plants 4 of 25, three in off-ledger compounds


def test_layers_are_limited_by_box_and_simplified_by_zoom(client):
    parcels = client.get("/api/layers/parcels").json()["features"]
    first = shape(parcels[0]["geometry"]).bounds
    box = f"{first[0]},{first[1]},{first[0] + 0.004},{first[1] + 0.004}"
    some = client.get("/api/layers/parcels", params={"bbox": box}).json()
    assert 0 < some["numberMatched"] < len(parcels)
    few = client.get("/api/layers/parcels", params={"limit": 5}).json()
    assert few["numberReturned"] == 5 and few["numberMatched"] == len(parcels)
    fine = client.get("/api/layers/boundary").json()["features"][0]["geometry"]
    coarse = client.get("/api/layers/boundary", params={"zoom": 8}).json()["features"][0]
    assert len(json.dumps(coarse["geometry"])) < len(json.dumps(fine)) / 2
    assert client.get("/api/layers/rivers").status_code == 404


# -- vector tiles --------------------------------------------------------------------------------


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def varints(data: bytes) -> list[int]:
    """Every varint of a packed field (a feature's tags, its geometry commands)."""
    values, pos = [], 0
    while pos < len(data):
        value, pos = _varint(data, pos)
        values.append(value)
    return values


def fields(data: bytes):
    """(field number, value) of a protobuf message, every wire type a vector tile uses."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            size, pos = _varint(data, pos)
            value, pos = data[pos : pos + size], pos + size
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        else:
            value, pos = data[pos : pos + 4], pos + 4
        yield field, value


def decode_mvt(data: bytes) -> dict[str, list[dict]]:
    """Layer name → feature properties (strings, ints and bools suffice here)."""
    layers = {}
    for field, layer in fields(data):
        if field != 3:
            continue
        name, keys, values, features = "", [], [], []
        for f, v in fields(layer):
            if f == 1:
                name = v.decode()
            elif f == 3:
                keys.append(v.decode())
            elif f == 4:
                for vf, vv in fields(v):
                    values.append(vv.decode() if vf == 1 else (bool(vv) if vf == 7 else vv))
            elif f == 2:
                features.append(v)
        decoded = []
        for feature in features:
            ints = varints(next((v for f, v in fields(feature) if f == 2), b""))
            decoded.append({keys[k]: values[v] for k, v in zip(ints[::2], ints[1::2], strict=True)})
        layers[name] = decoded
    return layers


def _town_tile(everything, z: int) -> tuple[int, int]:
    centre = shape(everything[0]["geometry"]).centroid
    return geo_tiles.tile_of(centre.x, centre.y, z)


def test_compound_tiles_carry_the_status_and_follow_the_filter(client, everything):
    x, y = _town_tile(everything, 12)
    url = f"/api/tiles/compounds/12/{x}/{y}.pbf"
    response = client.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    features = decode_mvt(response.content)["compounds"]
    statuses = {code: p["status"] for code, p in props(everything).items()}
    assert len(features) > 20
    assert all(f["status"] == statuses[f["code"]] for f in features)
    stalled = decode_mvt(client.get(url, params={"status": "stalled"}).content)["compounds"]
    assert {f["code"] for f in stalled} == {f["code"] for f in features if f["status"] == "stalled"}
    early = decode_mvt(client.get(url, params={"as_of": "2025-07-01"}).content)["compounds"]
    assert {f["code"] for f in early} == {f["code"] for f in features}
    assert sum(f["status"] == "not_on_ledger" for f in early) > sum(
        f["status"] == "not_on_ledger" for f in features
    )


def test_crowded_tiles_count_compounds_per_cell(client, everything, monkeypatch):
    monkeypatch.setattr(geo_tiles, "AGGREGATE_ABOVE", 10)
    client.app.state.tile_cache.clear()
    x, y = _town_tile(everything, 12)
    cells = decode_mvt(client.get(f"/api/tiles/compounds/12/{x}/{y}.pbf").content)["compounds"]
    assert cells and all(c["agg"] == 1 for c in cells)
    for cell in cells:
        assert cell["n"] == sum(cell.get(f"n_{s}", 0) for s in STATUS_COLOURS)
        assert cell[f"n_{cell['status']}"] == max(cell.get(f"n_{s}", 0) for s in STATUS_COLOURS)
    # A full cache drops tiles but keeps the zoom's marker (asked on every miss): a dropped
    # tile holding compounds is counted again, never answered empty.
    cache = client.app.state.tile_cache
    for key in [k for k in cache.items if not (isinstance(k, tuple) and k[0] == "zoom")]:
        cache._drop(key)
    again = decode_mvt(client.get(f"/api/tiles/compounds/12/{x}/{y}.pbf").content)["compounds"]
    assert sorted(c["n"] for c in again) == sorted(c["n"] for c in cells)
    monkeypatch.setattr(geo_tiles, "AGGREGATE_ABOVE", 4000)
    detail = decode_mvt(client.get(f"/api/tiles/compounds/12/{x}/{y}.pbf").content)["compounds"]
    # every compound counted once, by the tile holding the centre of its box
    assert sum(c["n"] for c in cells) <= len(detail)


@pytest.mark.parametrize("layer", ["parcels", "planned", "complaints", "townships", "context",
                                   "boundary"])  # fmt: skip
def test_every_layer_comes_as_tiles(client, everything, layer):
    x, y = _town_tile(everything, 13)
    layers = decode_mvt(client.get(f"/api/tiles/{layer}/13/{x}/{y}.pbf").content)
    assert layers[layer]


def test_bad_tiles_are_refused(client):
    assert client.get("/api/tiles/compounds/3/9/0.pbf").status_code == 422
    assert client.get("/api/tiles/lakes/3/1/1.pbf").status_code == 404
    assert client.get("/api/tiles/compounds/3/1/1.pbf", params={"blocker": "x"}).status_code == 422


# -- in the browser --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(engine):
    running = Server(make_app(engine))
    yield running
    running.stop()


class MapPage:
    """A page that records every request it makes and knows the titlemap app."""

    def __init__(self, browser, base: str):
        self.page = browser.new_page(viewport={"width": 1280, "height": 800})
        self.base = base
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def open(self):
        self.page.goto(self.base + "/")
        self.wait()
        return self

    def wait(self, timeout: float = 20_000):
        self.until("window.titlemap && titlemap.app && titlemap.app.idle()", timeout)

    def until(self, expression: str, timeout: float = 30_000) -> None:
        """Wait until `expression` is true in the page. Not wait_for_function: Playwright
        evaluates its string with eval, which the page's Content-Security-Policy forbids."""
        deadline = time.monotonic() + timeout / 1000
        while not self.page.evaluate(f"!!({expression})"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"still false after {timeout / 1000:.0f} s: {expression}")
            self.page.wait_for_timeout(50)

    def js(self, expression: str):
        return self.page.evaluate(expression)

    def drawn(self) -> dict[str, str]:
        return self.js("titlemap.app.drawn().codes")

    def colours(self) -> dict[str, int]:
        """Pixels of each status colour in the drawn compound tiles."""
        return self.js(
            """(() => {
              const want = WANT, counts = {};
              Object.keys(want).forEach(s => counts[s] = 0);
              const rgb = Object.fromEntries(Object.entries(want).map(([s, hex]) =>
                [s, [1, 3, 5].map(i => parseInt(hex.slice(i, i + 2), 16))]));
              document.querySelectorAll('.leaflet-tm-compounds-pane canvas').forEach(c => {
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                for (let i = 0; i < d.length; i += 4) {
                  if (d[i + 3] < 150) continue;
                  for (const s in rgb) {
                    const [r, g, b] = rgb[s];
                    if (Math.abs(d[i] - r) < 3 && Math.abs(d[i + 1] - g) < 3
                        && Math.abs(d[i + 2] - b) < 3) { counts[s]++; break; }
                  }
                }
              });
              return counts;
            })()""".replace("WANT", json.dumps(STATUS_COLOURS))
        )

    def centre_on(self, lon: float, lat: float, zoom: int = 17):
        self.js(f"titlemap.app.map.setView([{lat}, {lon}], {zoom}, {{animate: false}}) && 1")
        self.page.wait_for_timeout(100)
        self.wait()

    def screenshot(self, name: str):
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"web_map_{name}.png"))

    def check_offline(self):
        """No request left 127.0.0.1 and nothing failed in the page."""
        assert self.requests
        for url in self.requests:
            parsed = urlparse(url)
            assert parsed.scheme in ("data", "blob") or parsed.hostname == "127.0.0.1", url
        assert not self.errors


@pytest.fixture
def map_page(browser, server):
    page = MapPage(browser, server.base)
    yield page
    page.check_offline()
    page.page.close()


@pytest.mark.slow
def test_scripts_load_in_order_without_errors(browser, server, client):
    """titlemap's scripts come after Leaflet and mvt.js in SCRIPTS' order (each uses what the
    earlier ones put on the namespace), all of static/titlemap's, each served by the app; in
    Chromium they add no global but `titlemap` and the page raises no error."""
    page_ = client.get("/").text
    sources = [urlparse(s).path for s in re.findall(r'<script[^>]+src="([^"]+)"', page_)]
    own = [s for s in sources if s.startswith("/static/titlemap/")]
    assert own == ["/static/titlemap/mvt.js"] + [f"/static/titlemap/{n}.js" for n in SCRIPTS]
    assert sources.index("/static/vendor/leaflet/leaflet.js") < sources.index(own[0])
    assert {p.name for p in (STATIC_DIR / "titlemap").glob("*.js")} == {Path(s).name for s in own}
    for source in own:
        response = client.get(source)
        assert response.status_code == 200, source
        assert response.headers["content-type"].startswith("text/javascript")
        # each of ours says first what it holds (mvt.js, the decoder, came before)
        name = Path(source).name
        assert name == "mvt.js" or response.text.startswith(f"// {name} — "), source
    page = MapPage(browser, server.base)
    console: list[str] = []
    page.page.on(
        "console",
        lambda m: console.append(f"{m.text} {m.location}") if m.type == "error" else None,
    )
    try:
        page.open()
        fetched = [urlparse(u).path for u in page.requests]
        assert [s for s in fetched if s in own] == own
        assert page.js("['start', 'layer', 'ready'].every(f => typeof titlemap[f] === 'function')")
        assert page.js("Object.keys(titlemap.app.layers).length") >= 8
        assert not page.errors and not console, page.errors + console
        # the scripts alone, on a page of the app's without them: no global but `titlemap`
        # (Chromium asks this page, not the map's, for /favicon.ico: a 404 that is no error of ours)
        page.page.route("**/favicon.ico", lambda route: route.fulfill(status=204))
        page.page.goto(f"{server.base}/api/map/options")
        page.page.add_script_tag(url="/static/vendor/leaflet/leaflet.js")
        before = set(page.js("Object.keys(window)"))
        for source in own:
            page.page.add_script_tag(url=source)
        assert set(page.js("Object.keys(window)")) - before == {"titlemap"}
        assert page.js("typeof titlemap.start") == "function"
        assert not page.errors and not console, page.errors + console
        page.check_offline()
    finally:
        page.page.close()


@pytest.mark.slow
def test_demo_county_renders(map_page, client, everything):
    page = map_page.open()
    first = page.js("titlemap.app.timing.firstRender")
    assert 0 < first < 10_000
    drawn = page.drawn()
    statuses = {code: p["status"] for code, p in props(everything).items()}
    assert drawn == statuses  # all 150, each in its ledger colour
    colours = page.colours()
    assert sum(1 for n in colours.values() if n > 50) >= 5, colours
    legend = page.page.inner_text("#titlemap-legend")
    assert "停滞" in legend and "\n片区\n" in legend and "台账外投诉" in legend  # kinds, not areas
    summary = client.get("/api/compounds/summary").json()
    assert page.page.inner_text('[data-count="stalled"]') == str(summary["by_status"]["stalled"])
    complaints = page.js(
        "Object.values(titlemap.app.layers.complaints._layers).map(l => l.feature.properties"
        ".outside_ledger)"
    )
    flagged = client.get("/api/layers/complaints").json()["features"]
    assert len(complaints) == len(flagged)
    assert sum(complaints) == sum(f["properties"]["outside_ledger"] for f in flagged) >= 3
    overlaps = page.js("Object.keys(titlemap.app.layers.overlaps._layers).length")
    assert overlaps > 20
    control = page.page.inner_text(".leaflet-control-layers-list")
    for name in ("小区（按化解状态）", "规划片区", "重叠部分", "宗地", "留言投诉", "县界"):
        assert name in control
    assert "请放大" not in page.page.inner_text(".tm-panel")
    page.screenshot("county")


@pytest.mark.slow
def test_a_click_opens_the_card(map_page, client, everything):
    overdue = [p for p in props(everything).values() if p["overdue"]]
    chosen = next((p for p in overdue if p["developer_credit_status"] == "blacklisted"), overdue[0])
    geometry = next(f["geometry"] for f in everything if f["properties"]["code"] == chosen["code"])
    point = shape(geometry).representative_point()
    page = map_page.open()
    page.centre_on(point.x, point.y)
    page.page.mouse.move(640, 400)
    page.page.wait_for_selector(".tm-tip .tm-tip-name")
    assert page.page.inner_text(".tm-tip .tm-tip-name") == chosen["name"]
    page.page.mouse.click(640, 400)
    page.page.wait_for_selector(".tm-card:not([hidden]) .tm-card-name")
    page.wait()
    card = page.page.locator(".tm-card")
    assert card.locator(".tm-card-name").inner_text() == chosen["name"]
    text_ = card.inner_text()
    assert chosen["developer"] in text_ and "已逾期" in text_
    if chosen["developer_credit_status"] == "blacklisted":
        assert "失信名单" in text_
    entry = client.get(f"/api/ledger/{chosen['code']}").json()
    for field in ("lead_department", "task_force_lead"):
        assert entry[field] in text_
    assert card.locator(".tm-history li").count() == len(entry["history"])
    assert "首次登记" in text_ and "转移登记" in text_ and "总体登记率" in text_
    page.screenshot("card")
    page.page.click(".tm-close")
    assert card.get_attribute("hidden") is not None


@pytest.mark.slow
def test_a_filter_changes_what_is_shown(map_page, client, everything):
    page = map_page.open()
    page.page.locator(".tm-statuses label", has_text="停滞").click()
    page.page.wait_for_timeout(50)
    page.wait()
    stalled = {c for c, p in props(everything).items() if p["status"] == "stalled"}
    drawn = page.drawn()
    assert set(drawn) == stalled and set(drawn.values()) == {"stalled"}
    assert f"符合条件的小区 {len(stalled)} 个" in page.page.inner_text(".tm-summary")
    colours = page.colours()
    assert colours["stalled"] > 100 and colours["closed"] == colours["in_progress"] == 0
    page.screenshot("filter_stalled")
    page.page.select_option("select[name=planned_area]", "GH-002")  # 城东片区
    page.wait()
    params = {"status": "stalled", "planned_area": "GH-002"}
    east = props(client.get("/api/compounds", params=params).json()["features"])
    assert set(page.drawn()) == set(east) and 0 < len(east) < len(stalled)
    link = page.page.get_attribute(".tm-link", "href")
    assert "status=stalled" in link and "planned_area=GH-002" in link
    assert client.get(link).status_code == 200  # the xlsx of what is shown
    page.page.click("text=清除筛选")
    page.wait()
    assert len(page.drawn()) == len(everything)


@pytest.mark.slow
def test_the_date_changes_the_colours(map_page, client):
    page = map_page.open()
    before = page.colours()
    page.page.fill("input[name=as_of]", "2025-08-01")
    page.page.wait_for_timeout(50)
    page.wait()
    entries = client.get("/api/ledger", params={"as_of": "2025-08-01"}).json()["entries"]
    then = {e["code"]: e["status"] for e in entries}
    drawn = page.drawn()
    assert drawn == {code: then.get(code, "not_on_ledger") for code in drawn}
    after = page.colours()
    assert after != before
    assert after["closed"] < before["closed"] and after["not_on_ledger"] > before["not_on_ledger"]
    assert "2025年8月1日" in page.page.inner_text(".tm-summary")
    assert "截至 2025年8月1日" in page.page.inner_text(".tm-figures")
    page.screenshot("as_of_2025_08_01")


@pytest.mark.slow
def test_search_zooms_to_the_result(map_page, everything):
    target = everything[42]["properties"]
    page = map_page.open()
    page.page.fill(".tm-search", target["code"])
    page.page.wait_for_selector(".tm-result")
    assert page.page.inner_text(".tm-result .tm-result-name") == target["name"]
    page.page.click(".tm-result")
    page.page.wait_for_selector(".tm-card:not([hidden]) .tm-card-name")
    page.page.wait_for_timeout(100)
    page.wait()
    assert page.page.inner_text(".tm-card-name") == target["name"]
    assert page.js("titlemap.app.map.getZoom()") >= 15
    centre = page.js("(() => { const c = titlemap.app.map.getBounds(); return [c.getWest(), "
                     "c.getSouth(), c.getEast(), c.getNorth()]; })()")  # fmt: skip
    inner = shape(everything[42]["geometry"]).representative_point()
    assert centre[0] < inner.x < centre[2] and centre[1] < inner.y < centre[3]
    # parcels are drawn from zoom 15 on
    assert page.js("Object.keys(titlemap.app.layers.parcels._layers).length") > 0
    page.screenshot("search")


@pytest.fixture(scope="module")
def xss_server(demo_database, demo):
    """A county of its own whose names are HTML: what the map must show as text."""
    code = demo.compounds.code.iloc[0]
    with demo_database("titlemap_web_xss") as engine:
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE compound SET name = :n WHERE code = :c"), {"n": XSS, "c": code}
            )
            conn.execute(
                text("UPDATE developer SET name = :n WHERE id = (SELECT developer_id FROM "
                     "compound WHERE code = :c)"), {"n": XSS_DEVELOPER, "c": code})  # fmt: skip
            conn.execute(text("UPDATE planned_area SET name = :n"), {"n": XSS_PLANNED})
            conn.execute(text("UPDATE complaint SET text = :n"), {"n": XSS})
            conn.execute(text("UPDATE township SET name = :n"), {"n": XSS_PLANNED})
        running = Server(make_app(engine))
        yield running, code
        running.stop()


@pytest.mark.slow
def test_html_in_names_is_shown_as_text(browser, xss_server):
    server, code = xss_server
    page = MapPage(browser, server.base).open()
    try:
        page.page.fill(".tm-search", "<img")
        page.page.wait_for_selector(".tm-result")
        assert page.page.inner_text(".tm-result .tm-result-name") == XSS
        page.page.click(".tm-result")
        page.page.wait_for_selector(".tm-card:not([hidden]) .tm-card-name")
        page.page.wait_for_timeout(100)
        page.wait()
        assert page.page.inner_text(".tm-card-name") == XSS
        assert XSS_DEVELOPER in page.page.inner_text(".tm-card-developer")
        assert XSS_PLANNED in page.page.inner_text(".tm-card .tm-list")
        # the tooltip over the compound
        found = httpx.get(f"{server.base}/api/compounds", params={"code": code}).json()
        inner = shape(found["features"][0]["geometry"]).representative_point()
        x, y = page.js(
            f"(() => {{ const p = titlemap.app.map.latLngToContainerPoint([{inner.y}, {inner.x}]);"
            " return [p.x, p.y]; })()"
        )
        page.page.mouse.move(x - 1, y - 1)
        page.page.mouse.move(x, y)
        page.page.wait_for_selector(".tm-tip .tm-tip-name")
        assert page.page.inner_text(".tm-tip .tm-tip-name") == XSS
        options = page.page.inner_text("select[name=planned_area]")
        assert XSS_PLANNED in options
        # a planned-area name in a problem piece's popup
        layer = httpx.get(f"{server.base}/api/checks/parcels/pieces.geojson", timeout=60).json()
        planned = next(f["properties"] for f in layer["features"]
                       if f["properties"]["kind"] == "planned")  # fmt: skip
        switch_problems(page)
        page.until("titlemap.app.layers.problems.state === 'loaded'")
        page.centre_on(planned["lon"], planned["lat"], 19)
        click_at(page, planned["lon"], planned["lat"])
        popup = page.page.wait_for_selector(".tm-piece-popup .tm-piece")
        assert XSS_PLANNED in popup.inner_text()
        page.page.fill("input[name=as_of]", date(2026, 1, 5).isoformat())
        page.wait()
        assert page.js("window.__xss") is None
        assert (
            page.page.locator(
                ".tm-card img, .tm-results img, .tm-tip img, .leaflet-popup img, svg[onload]"
            ).count()
            == 0
        )
        assert not [u for u in page.requests if urlparse(u).path.rstrip("/").endswith("/x")]
        page.screenshot("names_as_text")
        page.check_offline()
    finally:
        page.page.close()


# -- parcels and the parcel-check problem layer, in the browser ------------------------------------


@pytest.fixture(scope="module")
def pieces(client):
    return client.get("/api/checks/parcels/pieces.geojson").json()["features"]


def switch_problems(page: MapPage):
    """Switch the problem layer on or off the way a user does: in the layer control."""
    page.page.hover(".leaflet-control-layers")
    page.page.locator(".leaflet-control-layers-overlays label", has_text="宗地核查问题").click()
    page.page.mouse.move(640, 700)


def piece_pixels(page: MapPage) -> dict[str, int]:
    """Pixels of each piece kind's colour on the problem layer's canvas."""
    want = {kind: style["colour"] for kind, style in PIECE_STYLES.items()}
    return page.js(
        """(() => {
          const want = WANT, counts = {};
          const rgb = Object.fromEntries(Object.entries(want).map(([k, hex]) =>
            [k, [1, 3, 5].map(i => parseInt(hex.slice(i, i + 2), 16))]));
          Object.keys(want).forEach(k => counts[k] = 0);
          document.querySelectorAll('.leaflet-tm-problems-pane canvas').forEach(c => {
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            for (let i = 0; i < d.length; i += 4) {
              if (d[i + 3] < 150) continue;
              for (const k in rgb) {
                const [r, g, b] = rgb[k];
                if (Math.abs(d[i] - r) < 4 && Math.abs(d[i + 1] - g) < 4
                    && Math.abs(d[i + 2] - b) < 4) { counts[k]++; break; }
              }
            }
          });
          return counts;
        })()""".replace("WANT", json.dumps(want))
    )


def click_at(page: MapPage, lon: float, lat: float):
    x, y = page.js(
        f"(() => {{ const p = titlemap.app.map.latLngToContainerPoint([{lat}, {lon}]);"
        " return [p.x, p.y]; })()"
    )
    page.page.mouse.move(x - 2, y - 2)
    page.page.mouse.move(x, y)
    page.page.mouse.click(x, y)


@pytest.mark.slow
def test_problem_layer_loads_when_switched_on_and_links_to_parcels(map_page, pieces):
    page = map_page
    held = []
    page.page.route("**/api/checks/parcels/pieces.geojson*", lambda route: held.append(route))
    page.open()
    assert not held  # nothing is computed until the layer is switched on
    switch_problems(page)
    busy = page.page.wait_for_selector('[data-notice="problems"].tm-notice-busy')
    assert "计算中" in busy.inner_text()
    assert "计算中" in page.page.inner_text('[data-state-for="problems"]')
    assert len(held) == 1
    held[0].continue_()
    page.until("titlemap.app.layers.problems.state === 'loaded'")
    page.wait()
    drawn = page.js("titlemap.app.layers.problems.shapes.getLayers().length")
    assert drawn == len(pieces) > 0
    notice = page.page.inner_text('[data-notice="problems"]')
    assert f"{len(pieces)} 处" in notice and "计算中" not in notice
    pixels = piece_pixels(page)  # the county view: each piece marked by a pin in its colour
    kinds = {f["properties"]["kind"] for f in pieces}
    assert all(pixels[kind] > 10 for kind in kinds), pixels
    page.screenshot("problems_county")
    # zoomed in: the pieces themselves, a click says what one is and links to its parcels
    overlap = next(f["properties"] for f in pieces if f["properties"]["kind"] == "overlap")
    page.centre_on(overlap["lon"], overlap["lat"], 19)
    assert piece_pixels(page)["overlap"] > 200
    click_at(page, overlap["lon"], overlap["lat"])
    popup = page.page.wait_for_selector(".tm-piece-popup .tm-piece")
    text_ = popup.inner_text()
    assert "宗地重叠" in text_ and "平方米" in text_
    assert f"{overlap['area_m2']:,.2f}".rstrip("0").rstrip(".") in text_
    assert all(code in text_ for code in overlap["parcels"])
    assert page.page.locator(".tm-card:not([hidden])").count() == 0  # not the compound's card
    links = page.page.locator(".tm-piece-popup a.tm-parcel-link")
    assert links.count() == 2
    page.screenshot("problems_piece")
    first = overlap["parcels"][0]
    assert links.first.get_attribute("href") == f"/parcels/{first}?county=629901"
    links.first.click()
    page.page.wait_for_url(f"**/parcels/{first}?county=629901")
    body = page.page.inner_text("body")
    assert "核查结果" in body and "宗地重叠" in body and "不通过" in body
    assert overlap["parcels"][1] in body
    assert page.page.locator("svg path.piece-overlap").count() >= 1  # drawn in the map's style
    page.screenshot("parcel_page_from_piece")


@pytest.mark.slow
def test_problem_layer_says_when_it_fails_and_retries(map_page, pieces):
    page = map_page

    def fail(route):
        route.fulfill(status=500, content_type="application/json",
                      body=json.dumps({"detail": "数据库忙 / database busy"}))  # fmt: skip

    page.page.route("**/api/checks/parcels/pieces.geojson*", fail)
    page.open()
    switch_problems(page)
    error = page.page.wait_for_selector('[data-notice="problems"].tm-notice-error')
    assert "加载失败" in error.inner_text() and "数据库忙" in error.inner_text()
    assert "加载失败" in page.page.inner_text('[data-state-for="problems"]')
    page.page.unroute("**/api/checks/parcels/pieces.geojson*")
    switch_problems(page)  # off
    assert page.page.locator('[data-notice="problems"]').count() == 0
    switch_problems(page)  # on again: asked for again
    page.until("titlemap.app.layers.problems.state === 'loaded'")
    assert page.js("titlemap.app.layers.problems.shapes.getLayers().length") == len(pieces)
    page.screenshot("problems_retried")


@pytest.mark.slow
def test_a_parcel_click_opens_its_figures_and_page(map_page, client, report_problems):
    orphan = next(p["parcel"] for p in report_problems if p["check"] == "orphan_parcel")
    found = client.get("/api/parcels", params={"q": orphan}).json()["features"][0]
    props_ = found["properties"]
    page = map_page.open()
    page.centre_on(props_["lon"], props_["lat"], 17)
    click_at(page, props_["lon"], props_["lat"])
    popup = page.page.wait_for_selector(".tm-parcel-popup .tm-parcel")
    assert popup.query_selector(".tm-parcel-code").inner_text() == orphan
    text_ = popup.inner_text()
    assert "未关联小区" in text_ and "登记面积" in text_ and "城镇住宅用地" in text_
    link = page.page.locator(".tm-parcel-popup a.tm-parcel-link")
    assert link.inner_text() == "查看宗地核查 / open parcel checks"
    page.screenshot("parcel_popup")
    link.click()
    page.page.wait_for_url(f"**/parcels/{orphan}?county=629901")
    body = page.page.inner_text("body")
    assert "核查结果" in body and "宗地未关联小区" in body and "不通过" in body


@pytest.mark.slow
def test_a_compound_click_lists_its_parcels_with_links(map_page, client, everything):
    compound = next(f for f in everything
                    if len(client.get("/api/parcels", params={"compound": f["properties"]["code"]})
                           .json()["features"]) >= 2)  # fmt: skip
    code = compound["properties"]["code"]
    parcels = client.get("/api/parcels", params={"compound": code}).json()["features"]
    chosen = parcels[-1]
    inner = shape(chosen["geometry"]).intersection(shape(compound["geometry"]))
    point = inner.representative_point()
    page = map_page.open()
    page.centre_on(point.x, point.y, 18)
    click_at(page, point.x, point.y)
    page.page.wait_for_selector(".tm-card:not([hidden]) .tm-parcel-list li")
    page.wait()
    card = page.page.locator(".tm-card")
    assert card.locator(".tm-card-name").inner_text() == compound["properties"]["name"]
    items = card.locator(".tm-parcel-list li")
    assert items.count() == len(parcels)
    # the parcel under the click first, marked, each with its link
    assert items.first.locator(".tm-parcel-code").inner_text() == chosen["properties"]["code"]
    assert "点击处" in items.first.inner_text()
    hrefs = card.locator(".tm-parcel-list a.tm-parcel-link").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))"
    )
    assert sorted(hrefs) == sorted(f"/parcels/{f['properties']['code']}?county=629901"
                                   for f in parcels)  # fmt: skip
    page.screenshot("card_parcels")
    items.first.locator("a.tm-parcel-link").click()
    page.page.wait_for_url(f"**/parcels/{chosen['properties']['code']}?county=629901")
    assert code in page.page.inner_text("body")


@pytest.mark.slow
def test_search_finds_a_parcel_by_code(map_page, client, demo):
    codes = sorted(demo.parcels["code"])
    target = codes[40]
    page = map_page.open()
    page.page.fill(".tm-search", target[:16])  # a prefix: several parcels offered
    page.page.wait_for_selector(".tm-result-parcel")
    offered = page.page.locator(".tm-result-parcel .tm-result-name").all_inner_texts()
    assert offered == [c for c in codes if c.startswith(target[:16])][:10] and len(offered) > 1
    page.page.fill(".tm-search", target + "F00010001")  # a 不动产单元代码 names its 宗地
    page.until(
        "document.querySelectorAll('.tm-result-parcel').length === 1 && "
        f"document.querySelector('.tm-result-parcel .tm-result-name').textContent === '{target}'"
    )
    page.page.click(".tm-result-parcel")
    popup = page.page.wait_for_selector(".tm-parcel-popup .tm-parcel")
    page.wait()
    assert popup.query_selector(".tm-parcel-code").inner_text() == target
    assert page.js("titlemap.app.map.getZoom()") >= 15
    found = client.get("/api/parcels", params={"q": target}).json()["features"][0]
    inner = shape(found["geometry"]).representative_point()
    box = page.js("(() => { const c = titlemap.app.map.getBounds(); return [c.getWest(), "
                  "c.getSouth(), c.getEast(), c.getNorth()]; })()")  # fmt: skip
    assert box[0] < inner.x < box[2] and box[1] < inner.y < box[3]
    page.screenshot("search_parcel")
    page.page.click(".tm-parcel-popup a.tm-parcel-link")
    page.page.wait_for_url(f"**/parcels/{target}?county=629901")
    assert "核查结果" in page.page.inner_text("body")


@pytest.fixture(scope="module")
def report_problems(client):
    return client.get("/api/checks/parcels").json()["problems"]


# -- counties: the chooser and the scale bar ---------------------------------------------------

XSS_COUNTY = '<img src=x onerror="window.__xss=4">县'


@pytest.fixture(scope="module")
def two_counties(demo_database, tmp_path_factory):
    """The demo county, 河谷县 brought in by the documented commands (tests/test_counties.py),
    and a third county named like HTML (no boundary yet): what the chooser offers."""
    from geo.ledger.counties import add_county
    from tests.test_counties import add_second_county, url_of

    with demo_database("web_two_counties") as engine:
        add_second_county(url_of(engine), tmp_path_factory.mktemp("web_second_county"))
        with engine.connect() as conn:
            add_county(conn, "629906", XSS_COUNTY)
        running = Server(make_app(engine))
        yield running
        running.stop()


@pytest.mark.slow
def test_scale_bar_is_metric_and_one_county_has_no_chooser(map_page):
    page = map_page.open()
    page.until("!!titlemap.app.options")  # the chooser would come with them
    assert page.page.locator(".leaflet-control-scale-line").count() == 1
    scale = page.page.inner_text(".leaflet-control-scale")
    assert re.fullmatch(r"\s*\d+\s*k?m\s*", scale), scale
    assert "ft" not in scale and "mi" not in scale
    assert page.page.locator("select[name=county]").count() == 0


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_county_chooser_switches_to_the_other_countys_map(browser, two_counties, demo):
    from tests.test_counties import SECOND, SECOND_COMPOUNDS, SECOND_NAME

    page = MapPage(browser, two_counties.base).open()
    try:
        chooser = page.page.wait_for_selector("select[name=county]")
        offered = page.page.locator("select[name=county] option").all_inner_texts()
        expected = ["示例县（629901）", f"{SECOND_NAME}（{SECOND}）", f"{XSS_COUNTY}（629906）"]
        assert offered == expected
        assert chooser.input_value() == "629901"
        assert set(page.drawn()) == set(demo.compounds.code)
        page.page.select_option("select[name=county]", SECOND)
        page.page.wait_for_url(f"**/?county={SECOND}")
        page.wait()
        assert set(page.drawn()) == set(SECOND_COMPOUNDS)
        assert page.page.title() == f"{SECOND_NAME} 登记难化解一张图"
        chooser = page.page.wait_for_selector("select[name=county]")
        assert chooser.input_value() == SECOND
        assert page.js("window.__xss") is None
        assert page.page.locator(".tm-panel img").count() == 0
        page.screenshot("second_county")
        page.check_offline()
    finally:
        page.page.close()
