"""OGC API – Features under /ogc (api/routers/ogc.py, geo/ogc/): every endpoint through
TestClient against the demo county, CQL2 filters checked against the same rows filtered in
Python, CRS output checked against pyproj, and GDAL's own OAPIF client (ogrinfo, ogr2ogr)
against a real uvicorn server."""

import json
import subprocess
from datetime import date
from urllib.parse import parse_qs, urlsplit

import pyogrio
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Transformer
from shapely.geometry import box, shape
from sqlalchemy import text

from geo import TitlemapError
from geo.ogc.collections import COLLECTIONS
from geo.ogc.cql2 import cql2_sql
from geo.ogc.crs import parse_crs
from geo.ogc.params import Params
from geo.query.overlaps import overlap_rows
from tests.conftest import Server

COUNTY = "629901"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/{}"
EVIL = "<script>alert('x')</script>花园"
ITEMS = "/ogc/collections/compounds/items"


@pytest.fixture(scope="module")
def db(demo_database):
    with demo_database("ogc_tests") as engine:
        with engine.begin() as conn:  # a name a careless page would run as script
            conn.execute(
                text("UPDATE compound SET name = :n WHERE code = (SELECT min(code) FROM compound)"),
                {"n": EVIL},
            )
        yield engine


@pytest.fixture(scope="module")
def app(db):
    from api.app import create_app
    from geo.core.settings import Settings

    return create_app(Settings(county=COUNTY), db)


@pytest.fixture(scope="module")
def client(app):
    return TestClient(app)


@pytest.fixture(scope="module")
def every(client) -> dict[str, dict]:
    """All compounds (CRS84) by code, as the API gives them."""
    r = client.get(ITEMS, params={"limit": 10000})
    assert r.status_code == 200
    return {f["id"]: f for f in r.json()["features"]}


def scalar(db, sql: str, **params):
    with db.connect() as conn:
        return conn.execute(text(sql), {"c": COUNTY} | params).scalar()


def codes(db, where: str = "true", **params) -> set[str]:
    with db.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.code FROM compound c LEFT JOIN ledger_entry e ON e.compound_id = c.id "
                f"WHERE c.county_code = :c AND {where}"
            ),
            {"c": COUNTY} | params,
        )
        return {r[0] for r in rows}


def ids(response) -> set[str]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["numberReturned"] == len(body["features"])
    return {f["id"] for f in body["features"]}


def rel(body: dict, name: str) -> dict | None:
    return next((k for k in body["links"] if k["rel"] == name), None)


# --- landing page, conformance, collections -------------------------------------------------


def test_landing_page_links_the_api_the_conformance_and_the_collections(client):
    r = client.get("/ogc")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    rels = {k["rel"]: k["href"] for k in body["links"]}
    assert rels["service-desc"].endswith("/openapi.json")
    assert rels["conformance"].endswith("/ogc/conformance")
    assert rels["data"].endswith("/ogc/collections")
    assert client.get(urlsplit(rels["service-desc"]).path).status_code == 200


def test_conformance_declares_core_crs_and_cql2_text(client):
    conforms = client.get("/ogc/conformance").json()["conformsTo"]
    for part in ("ogcapi-features-1/1.0/conf/core", "ogcapi-features-1/1.0/conf/geojson",
                 "ogcapi-features-1/1.0/conf/html", "ogcapi-features-2/1.0/conf/crs",
                 "ogcapi-features-3/1.0/conf/filter", "cql2/1.0/conf/cql2-text",
                 "ogcapi-features-3/1.0/conf/queryables"):  # fmt: skip
        assert any(c.endswith(part) for c in conforms), part


def test_collections_list_crs_storage_crs_and_extent(client):
    body = client.get("/ogc/collections").json()
    found = {c["id"]: c for c in body["collections"]}
    assert set(found) == {"compounds", "parcels", "planned_areas", "complaints", "overlaps"}
    compounds = found["compounds"]
    assert compounds["storageCrs"] == EPSG.format(4490)
    assert compounds["crs"][0] == CRS84
    assert {EPSG.format(n) for n in (4490, 4326, 4544, 4523)} <= set(compounds["crs"])
    minx, miny, maxx, maxy = compounds["extent"]["spatial"]["bbox"][0]
    assert 103 < minx < maxx < 105 and 35 < miny < maxy < 37
    assert compounds["extent"]["temporal"]["interval"][0][0][:4].isdigit()
    assert "temporal" not in found["parcels"]["extent"]
    items = [k for k in compounds["links"] if k["rel"] == "items"]
    assert {k["type"] for k in items} == {"application/geo+json", "text/html"}
    single = client.get("/ogc/collections/complaints").json()
    assert single["id"] == "complaints" and single["itemType"] == "feature"
    assert client.get("/ogc/collections/nothing").status_code == 404


def test_queryables_are_a_json_schema_with_types_and_enums(client):
    r = client.get("/ogc/collections/compounds/queryables")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/schema+json")
    schema = r.json()
    props = schema["properties"]
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert props["geometry"]["format"] == "geometry-multipolygon"
    assert "stalled" in props["status"]["enum"]
    assert props["units_task"]["type"] == "integer"
    assert props["sold_on"] == {"title": props["sold_on"]["title"], "type": "string",
                                "format": "date"}  # fmt: skip
    assert props["overdue"]["type"] == "boolean"
    point = client.get("/ogc/collections/complaints/queryables").json()["properties"]
    assert point["geometry"]["format"] == "geometry-point"


# --- items: paging, counts, links -----------------------------------------------------------


def test_items_default_page_counts_and_links(client, db):
    r = client.get(ITEMS)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/geo+json")
    assert r.headers["content-crs"] == f"<{CRS84}>"
    body = r.json()
    total = scalar(db, "SELECT count(*) FROM compound WHERE county_code = :c")
    assert body["type"] == "FeatureCollection"
    assert body["numberMatched"] == total
    assert body["numberReturned"] == len(body["features"]) == 10
    assert body["timeStamp"].endswith("Z")
    assert rel(body, "next") is not None and rel(body, "prev") is None
    feature = body["features"][0]
    assert feature["id"] == feature["properties"]["code"]
    ledger = {"status", "status_label", "units_task", "first_rate", "blocker_labels",
              "lead_department", "supervising_leader", "deadline"}  # fmt: skip
    assert ledger <= set(feature["properties"])
    lon, lat = shape(feature["geometry"]).centroid.coords[0]
    assert 103 < lon < 105 and 35 < lat < 37  # CRS84: longitude first


def test_next_links_walk_every_compound_once_and_keep_the_query(client, db):
    expected = codes(db, "coalesce(e.status, 'not_on_ledger') = 'stalled'")
    seen: list[str] = []
    url = f"{ITEMS}?status=stalled&limit=4&county={COUNTY}"
    pages = 0
    while url:
        body = client.get(url).json()
        assert body["numberMatched"] == len(expected)
        seen += [f["id"] for f in body["features"]]
        nxt = rel(body, "next")
        if nxt:
            query = parse_qs(urlsplit(nxt["href"]).query)
            assert query["status"] == ["stalled"] and query["county"] == [COUNTY]
            assert query["limit"] == ["4"]
        if pages:
            assert rel(body, "prev") is not None
        url = nxt["href"] if nxt else None
        pages += 1
    assert len(seen) == len(set(seen)) and set(seen) == expected
    assert pages == -(-len(expected) // 4)
    assert seen == sorted(seen)  # one stable order: the code


def test_limit_and_offset_are_checked(client):
    assert client.get(ITEMS, params={"limit": 0}).status_code == 400
    assert client.get(ITEMS, params={"limit": "x"}).status_code == 400
    assert client.get(ITEMS, params={"offset": -1}).status_code == 400
    big = client.get(ITEMS, params={"limit": 50000})  # more than the maximum: cut to it
    assert big.status_code == 200 and big.json()["numberReturned"] <= 10000
    r = client.get(ITEMS, params={"nonsense": 1})
    assert r.status_code == 400 and "nonsense" in r.json()["detail"]


def test_single_item_with_links_and_404(client, every):
    code = sorted(every)[3]
    r = client.get(f"{ITEMS}/{code}")
    assert r.status_code == 200
    assert r.headers["content-crs"] == f"<{CRS84}>"
    body = r.json()
    assert body["type"] == "Feature" and body["id"] == code
    assert body["properties"] == every[code]["properties"]
    assert rel(body, "collection")["href"].endswith("/ogc/collections/compounds")
    missing = client.get(f"{ITEMS}/XQ-NOPE")
    assert missing.status_code == 404 and "no such feature" in missing.json()["detail"]
    assert client.get(f"{ITEMS}/{code}", params={"crs": "EPSG:9999"}).status_code == 400


def test_other_collections_count_what_the_database_holds(client, db):
    for cid, table in (("parcels", "parcel"), ("planned_areas", "planned_area"),
                       ("complaints", "complaint")):  # fmt: skip
        body = client.get(f"/ogc/collections/{cid}/items", params={"limit": 10000}).json()
        total = scalar(db, f"SELECT count(*) FROM {table} WHERE county_code = :c")
        assert body["numberMatched"] == len(body["features"]) == total, cid
    with db.connect() as conn:
        rows = overlap_rows(conn, COUNTY)
    body = client.get("/ogc/collections/overlaps/items", params={"limit": 10000}).json()
    assert {f["id"] for f in body["features"]} == {
        f"{r['compound_code']}~{r['planned_code']}" for r in rows
    }
    one = body["features"][0]
    assert shape(one["geometry"]).area > 0
    outside = client.get("/ogc/collections/complaints/items", params={"outside_ledger": "true"})
    assert {f["properties"]["outside_ledger"] for f in outside.json()["features"]} == {True}
    assert outside.json()["numberMatched"] >= 1


# --- CRS (Part 2) ---------------------------------------------------------------------------


def first_ring(feature: dict) -> list[list[float]]:
    return feature["geometry"]["coordinates"][0][0]


def test_crs_4490_and_4326_are_lat_lon(client, every):
    code = sorted(every)[5]
    lonlat = first_ring(every[code])
    for epsg in (4490, 4326):
        r = client.get(f"{ITEMS}/{code}", params={"crs": EPSG.format(epsg)})
        assert r.headers["content-crs"] == f"<{EPSG.format(epsg)}>"
        latlon = first_ring(r.json())
        assert latlon == [[y, x] for x, y in lonlat]


@pytest.mark.parametrize("epsg", [4544, 4523])
def test_crs_gauss_kruger_is_northing_easting(client, every, epsg):
    r = client.get(ITEMS, params={"crs": EPSG.format(epsg), "limit": 20})
    assert r.status_code == 200
    assert r.headers["content-crs"] == f"<{EPSG.format(epsg)}>"
    move = Transformer.from_crs(4490, epsg, always_xy=True)
    for feature in r.json()["features"]:
        for (north, east), (lon, lat) in zip(
            first_ring(feature), first_ring(every[feature["id"]]), strict=True
        ):
            e, n = move.transform(lon, lat)
            assert abs(north - n) < 0.01 and abs(east - e) < 0.01
            assert 3_000_000 < north < 5_900_000  # northing first


def test_unknown_crs_is_refused_with_the_supported_list(client):
    r = client.get(ITEMS, params={"crs": EPSG.format(3857)})
    assert r.status_code == 400
    assert CRS84 in r.json()["detail"] and EPSG.format(4544) in r.json()["detail"]
    assert client.get(ITEMS, params={"bbox": "1,2,3,4", "bbox-crs": "EPSG:2000"}).status_code == 400
    assert parse_crs("[EPSG:4490]", 4544).uri == EPSG.format(4490)
    assert parse_crs("https://www.opengis.net/def/crs/EPSG/0/4544", 4544).north_first


def test_bbox_in_crs84_4490_and_gauss_kruger(client, every):
    shapes = {k: shape(f["geometry"]) for k, f in every.items()}
    xs = sorted(s.centroid.x for s in shapes.values())
    ys = sorted(s.centroid.y for s in shapes.values())
    minx, maxx = xs[len(xs) // 4], xs[len(xs) // 2]
    miny, maxy = ys[len(ys) // 4], ys[3 * len(ys) // 4]
    area = box(minx, miny, maxx, maxy)
    expected = {k for k, s in shapes.items() if s.intersects(area)}
    assert 0 < len(expected) < len(every)
    bbox = f"{minx},{miny},{maxx},{maxy}"
    assert ids(client.get(ITEMS, params={"bbox": bbox, "limit": 1000})) == expected
    latlon = f"{miny},{minx},{maxy},{maxx}"
    got = ids(client.get(ITEMS, params={"bbox": latlon, "bbox-crs": EPSG.format(4490),
                                        "limit": 1000}))  # fmt: skip
    assert got == expected
    # A Gauss-Krüger box (northing, easting) around one compound finds it, and only
    # compounds meeting the box.
    gk = client.get(ITEMS, params={"crs": EPSG.format(4544), "limit": 1000}).json()["features"]
    gk_shapes = {f["id"]: shapely.transform(shape(f["geometry"]), lambda c: c[:, ::-1])
                 for f in gk}  # fmt: skip
    target = sorted(gk_shapes)[7]
    e0, n0, e1, n1 = gk_shapes[target].bounds
    r = client.get(ITEMS, params={"bbox": f"{n0},{e0},{n1},{e1}", "bbox-crs": EPSG.format(4544)})
    found = ids(r)
    assert target in found
    near = {k for k, s in gk_shapes.items() if s.intersects(box(e0 - 1, n0 - 1, e1 + 1, n1 + 1))}
    assert found <= near
    assert client.get(ITEMS, params={"bbox": "1,2,3"}).status_code == 400
    assert client.get(ITEMS, params={"bbox": "3,2,1,4"}).status_code == 400


# --- property filters and datetime ----------------------------------------------------------


def test_property_filters_match_the_database(client, db, every):
    expected = codes(db, "coalesce(e.status, 'not_on_ledger') = 'stalled'")
    assert ids(client.get(ITEMS, params={"status": "stalled", "limit": 1000})) == expected
    township = next(iter(every.values()))["properties"]["township"]
    in_town = {k for k, f in every.items() if f["properties"]["township"] == township}
    assert ids(client.get(ITEMS, params={"township": township, "limit": 1000})) == in_town
    both = ids(client.get(ITEMS, params=[("status", "stalled"), ("status", "closed"),
                                         ("limit", 1000)]))  # fmt: skip
    assert both == codes(db, "e.status IN ('stalled', 'closed')")
    overdue = ids(client.get(ITEMS, params={"overdue": "true", "limit": 1000}))
    assert overdue == {k for k, f in every.items() if f["properties"]["overdue"]}
    assert client.get(ITEMS, params={"status": "nonsense"}).status_code == 400
    assert client.get(ITEMS, params={"units_task": "many"}).status_code == 400
    assert client.get(ITEMS, params={"overdue": "maybe"}).status_code == 400


def test_datetime_on_the_sale_date(client, db):
    got = ids(client.get(ITEMS, params={"datetime": "2010-01-01/2015-12-31", "limit": 1000}))
    assert got == codes(db, "c.sold_on BETWEEN '2010-01-01' AND '2015-12-31'")
    assert got
    before = ids(client.get(ITEMS, params={"datetime": "../2009-12-31", "limit": 1000}))
    assert before == codes(db, "c.sold_on <= '2009-12-31'")
    day = scalar(db, "SELECT min(sold_on) FROM compound WHERE county_code = :c")
    on_day = ids(client.get(ITEMS, params={"datetime": day.isoformat(), "limit": 1000}))
    assert on_day == codes(db, "c.sold_on = :d", d=day)
    stamp = ids(client.get(ITEMS, params={"datetime": f"{day.isoformat()}T03:00:00Z"}))
    assert stamp == on_day  # 11:00 in Beijing that day
    assert client.get(ITEMS, params={"datetime": "last week"}).status_code == 400
    assert client.get(ITEMS, params={"datetime": "2020-01-01/2010-01-01"}).status_code == 400
    r = client.get("/ogc/collections/parcels/items", params={"datetime": "2020-01-01"})
    assert r.status_code == 400 and "temporal" in r.json()["detail"]
    complaints = client.get("/ogc/collections/complaints/items",
                            params={"datetime": "2020-01-01/..", "limit": 1000})  # fmt: skip
    total = scalar(db, "SELECT count(*) FROM complaint WHERE county_code = :c "
                       "AND received_on >= '2020-01-01'")  # fmt: skip
    assert complaints.json()["numberMatched"] == total


# --- CQL2-text ------------------------------------------------------------------------------


def p(feature: dict, name: str):
    return feature["properties"][name]


CASES = [
    ("status = 'stalled' AND units_task > 10",
     lambda f: p(f, "status") == "stalled" and (p(f, "units_task") or 0) > 10),
    # AND binds before OR
    ("status = 'closed' OR status = 'stalled' AND units_task > 50",
     lambda f: p(f, "status") == "closed"
     or (p(f, "status") == "stalled" and (p(f, "units_task") or 0) > 50)),
    ("(status = 'closed' OR status = 'stalled') AND units_task > 50",
     lambda f: p(f, "status") in ("closed", "stalled") and (p(f, "units_task") or 0) > 50),
    ("NOT on_ledger = TRUE", lambda f: not p(f, "on_ledger")),
    ("name LIKE '%苑%'", lambda f: "苑" in p(f, "name")),
    ("name NOT LIKE '%苑%'", lambda f: "苑" not in p(f, "name")),
    ("status IN ('stalled', 'not_started')",
     lambda f: p(f, "status") in ("stalled", "not_started")),
    ("status NOT IN ('stalled')", lambda f: p(f, "status") != "stalled"),
    ("units_task BETWEEN 20 AND 60",
     lambda f: p(f, "units_task") is not None and 20 <= p(f, "units_task") <= 60),
    ("deadline IS NULL", lambda f: p(f, "deadline") is None),
    ("deadline IS NOT NULL AND overdue = true", lambda f: p(f, "overdue")),
    ("sold_on >= DATE('2010-01-01')", lambda f: p(f, "sold_on") >= "2010-01-01"),
    ("CASEI(developer_credit_status) = CASEI('BlackListed')",
     lambda f: p(f, "developer_credit_status") == "blacklisted"),
    ("units_transferred < units_first_registered",
     lambda f: p(f, "units_transferred") is not None
     and p(f, "units_transferred") < p(f, "units_first_registered")),
    ('"first_rate" >= 0.5 and lead_department = \'住建局\'',
     lambda f: (p(f, "first_rate") or 0) >= 0.5 and p(f, "lead_department") == "住建局"),
    ("name = 'it''s'", lambda f: p(f, "name") == "it's"),
]  # fmt: skip


@pytest.mark.parametrize(("cql", "keep"), CASES, ids=[c for c, _ in CASES])
def test_cql2_text_matches_the_same_filter_in_python(client, every, cql, keep):
    expected = {k for k, f in every.items() if keep(f)}
    r = client.get(ITEMS, params={"filter": cql, "filter-lang": "cql2-text", "limit": 1000})
    assert ids(r) == expected


def test_cql2_spatial_in_crs84_and_lat_lon(client, every):
    shapes = {k: shape(f["geometry"]) for k, f in every.items()}
    c = shapes[sorted(shapes)[10]].centroid
    minx, miny, maxx, maxy = c.x - 0.01, c.y - 0.008, c.x + 0.01, c.y + 0.008
    expected = {k for k, s in shapes.items() if s.intersects(box(minx, miny, maxx, maxy))}
    assert expected
    cql = f"S_INTERSECTS(geometry, BBOX({minx}, {miny}, {maxx}, {maxy}))"
    assert ids(client.get(ITEMS, params={"filter": cql, "limit": 1000})) == expected
    ring = [(minx, miny), (maxx, miny), (maxx, maxy), (minx, maxy), (minx, miny)]
    latlon = ", ".join(f"{y} {x}" for x, y in ring)
    r = client.get(ITEMS, params={"filter": f"S_INTERSECTS(geometry, POLYGON(({latlon})))",
                                  "filter-crs": EPSG.format(4490), "limit": 1000})  # fmt: skip
    assert ids(r) == expected
    point = f"S_INTERSECTS(geometry, POINT({c.x} {c.y})) AND status <> 'nothing'"
    assert sorted(shapes)[10] in ids(client.get(ITEMS, params={"filter": point}))
    within = f"S_WITHIN(geometry, BBOX({minx}, {miny}, {maxx}, {maxy}))"
    inside = {k for k, s in shapes.items() if s.within(box(minx, miny, maxx, maxy))}
    assert ids(client.get(ITEMS, params={"filter": within, "limit": 1000})) == inside


@pytest.mark.parametrize(
    ("cql", "says"),
    [
        ("status = ", "syntax"),
        ("status = 'stalled' extra", "unexpected"),
        ("nosuch = 1", "queryables"),
        ("units_task = 'ten'", "type mismatch"),
        ("sold_on > '2010-01-01'", "DATE("),
        ("T_AFTER(sold_on, DATE('2010-01-01'))", "not supported"),
        ("units_task + 1 > 3", "syntax"),
        ("S_INTERSECTS(geometry, POLYGON((1 2, 3)))", "WKT"),
        ("name = 'unterminated", "syntax"),
        ("(" * 100 + "status = 'x'" + ")" * 100, "nested"),
        ("status = NULL", "IS NULL"),
    ],
)
def test_cql2_errors_are_400_with_a_reason(client, cql, says):
    r = client.get(ITEMS, params={"filter": cql})
    assert r.status_code == 400, r.text
    assert says in r.json()["detail"]


def test_cql2_values_are_bound_never_spliced(client, db):
    evil = "name = 'x''; DROP TABLE compound; --'"
    r = client.get(ITEMS, params={"filter": evil})
    assert r.status_code == 200 and r.json()["numberMatched"] == 0
    assert scalar(db, "SELECT count(*) FROM compound WHERE county_code = :c") > 0
    params = Params()
    sql = cql2_sql("name = 'Robert''); --' OR units_task IN (1, 2)", COLLECTIONS["compounds"],
                   parse_crs(None, 4544), params)  # fmt: skip
    assert "Robert" not in sql and "--" not in sql
    assert list(params.values.values()) == ["Robert'); --", 1, 2]
    assert client.get(ITEMS, params={"filter": "status = 'x'",
                                     "filter-lang": "cql2-json"}).status_code == 400  # fmt: skip
    with pytest.raises(TitlemapError, match="queryables"):
        cql2_sql("geom_secret = 1", COLLECTIONS["compounds"], parse_crs(None, 4544), Params())


# --- HTML -------------------------------------------------------------------------------------


def test_html_by_accept_or_f_escapes_names_and_loads_no_script(client, every):
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    evil = next(k for k, f in every.items() if p(f, "name") == EVIL)
    pages = [
        client.get("/ogc", headers=browser),
        client.get("/ogc/conformance", params={"f": "html"}),
        client.get("/ogc/collections", headers=browser),
        client.get("/ogc/collections/compounds", headers=browser),
        client.get("/ogc/collections/compounds/queryables", params={"f": "html"}),
        client.get(ITEMS, params={"f": "html", "limit": 5}),
        client.get(f"{ITEMS}/{evil}", headers=browser),
    ]
    for r in pages:
        assert r.status_code == 200, r.url
        assert r.headers["content-type"].startswith("text/html")
        assert "<script" not in r.text.lower(), r.url  # no scripts at all, so none injected
        assert 'lang="zh-CN"' in r.text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;花园" in pages[5].text
    assert "&lt;script&gt;" in pages[6].text and "<svg" in pages[6].text
    assert "下一页" in pages[5].text  # the page links on
    assert client.get("/ogc", params={"f": "xml"}).status_code == 400
    assert client.get("/ogc", headers={"Accept": "application/json"}).json()["links"]


HOSTILE = "<script>alert(1)</script>\"'&"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&#39;&amp;"


def test_hostile_developer_and_land_use_are_shown_as_text(client, db):
    """A developer's name and a parcel's land use from the database, on the items pages and
    the item pages, are text: escaped, never markup."""
    with db.begin() as conn:
        developer, name, compound = conn.execute(text(
            "SELECT d.id, d.name, min(c.code) FROM developer d JOIN compound c "
            "ON c.developer_id = d.id WHERE d.county_code = :c "
            "GROUP BY d.county_code, d.id ORDER BY d.id LIMIT 1"), {"c": COUNTY}).one()  # fmt: skip
        parcel, land_use = conn.execute(text(
            "SELECT code, land_use FROM parcel WHERE county_code = :c ORDER BY code LIMIT 1"),
            {"c": COUNTY}).one()  # fmt: skip
        conn.execute(text("UPDATE developer SET name = :n WHERE id = :i"),
                     {"n": HOSTILE, "i": developer})  # fmt: skip
        conn.execute(text("UPDATE parcel SET land_use = :u WHERE county_code = :c AND code = :p"),
                     {"u": HOSTILE, "c": COUNTY, "p": parcel})  # fmt: skip
    quoted = HOSTILE.replace("'", "''")  # a CQL2 string doubles its quotes
    try:
        html = {"f": "html"}
        pages = [
            client.get(ITEMS, params=html | {"limit": 10000}),
            client.get(f"{ITEMS}/{compound}", params=html),
            client.get("/ogc/collections/parcels/items", params=html | {"limit": 10000}),
            client.get(f"/ogc/collections/parcels/items/{parcel}", params=html),
            client.get(ITEMS, params=html | {"filter": f"developer = '{quoted}'"}),
        ]
    finally:
        with db.begin() as conn:
            conn.execute(text("UPDATE developer SET name = :n WHERE id = :i"),
                         {"n": name, "i": developer})  # fmt: skip
            conn.execute(
                text("UPDATE parcel SET land_use = :u WHERE county_code = :c AND code = :p"),
                {"u": land_use, "c": COUNTY, "p": parcel},
            )
    for r in pages:
        assert r.status_code == 200, r.url
        assert "<script" not in r.text.lower(), r.url
    for r in pages[:4]:
        assert f"<td>{ESCAPED}</td>" in r.text, r.url
    assert compound in pages[4].text and "共 " in pages[4].text  # found by the hostile name


def test_landing_page_as_html_names_the_service_and_links_on(client):
    r = client.get("/ogc", params={"f": "html"})
    assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["vary"] == "Accept"
    page = r.text
    assert page.startswith("<!DOCTYPE html>") and '<html lang="zh-CN">' in page
    assert "<h1>titlemap 登记难化解一张图 — OGC API Features</h1>" in page
    assert "小区、宗地、规划片区、留言投诉及重叠分析" in page and "svg{border" in page
    assert '<nav><a href="http://testserver/ogc?f=html">OGC API</a></nav>' in page
    for href, title in (("/ogc/conformance", "符合的标准 / conformance"),
                        ("/ogc/collections", "数据集合 / collections"),
                        ("/openapi.json", "接口定义 / API definition")):  # fmt: skip
        assert f'<a href="http://testserver{href}">{title}</a>' in page
    assert '<a href="http://testserver/ogc?f=json">http://testserver/ogc?f=json</a>' in page


def test_county_is_carried_and_an_unknown_one_is_404(client):
    body = client.get("/ogc/collections", params={"county": COUNTY}).json()
    assert all(f"county={COUNTY}" in k["href"] for c in body["collections"] for k in c["links"])
    r = client.get(ITEMS, params={"county": "000000"})
    assert r.status_code == 404


# --- GDAL's own client against a real server --------------------------------------------------


@pytest.fixture(scope="module")
def server(app):
    running = Server(app)
    yield running
    running.stop()


def gdal(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_ogrinfo_lists_the_collections(server):
    r = gdal("/usr/bin/ogrinfo", "-ro", "-so", f"OAPIF:{server.base}/ogc")
    assert r.returncode == 0, r.stderr
    for cid in COLLECTIONS:
        assert f": {cid} (title:" in r.stdout, r.stdout
    one = gdal("/usr/bin/ogrinfo", "-ro", "-so", f"OAPIF:{server.base}/ogc", "complaints")
    assert one.returncode == 0 and "Geometry: Point" in one.stdout


@pytest.mark.slow
def test_gdal_types_fields_from_the_feature_schema(server, client):
    schema = client.get("/ogc/collections/compounds/schema")
    assert schema.headers["content-type"].startswith("application/schema+json")
    props = schema.json()["properties"]["properties"]["properties"]
    assert props["first_rate"]["type"] == "number" and props["deadline"]["format"] == "date"
    r = gdal("/usr/bin/ogrinfo", "--debug", "on", "-ro", "-so", f"OAPIF:{server.base}/ogc",
             "compounds")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "Using JSON schema" in r.stderr  # not guessed from the first ten features
    for field, kind in (("first_rate", "Real"), ("units_task", "Integer"), ("sold_on", "Date"),
                        ("overdue", "Integer(Boolean)"), ("name", "String")):  # fmt: skip
        assert f"{field}: {kind} " in r.stdout, field


@pytest.mark.slow
def test_gdal_date_where_is_refused_loudly_not_applied_to_the_wrong_field(server, tmp_path):
    """GDAL 3.6 sends any date -where as datetime=…T; filtering sold_on instead would be wrong."""
    out = tmp_path / "late.gpkg"
    r = gdal("/usr/bin/ogr2ogr", "-f", "GPKG", str(out), f"OAPIF:{server.base}/ogc",
             "-where", "deadline < '2026-01-01'", "compounds")  # fmt: skip
    assert r.returncode != 0
    assert "RFC 3339" in r.stderr


@pytest.mark.slow
@pytest.mark.parametrize("page_size", [None, 7])
def test_ogr2ogr_copies_every_compound_into_a_geopackage(server, db, tmp_path, page_size):
    out = tmp_path / "compounds.gpkg"
    options = ["-oo", f"PAGE_SIZE={page_size}"] if page_size else []
    r = gdal("/usr/bin/ogr2ogr", "-f", "GPKG", str(out), f"OAPIF:{server.base}/ogc", *options,
             "compounds")  # fmt: skip
    assert r.returncode == 0, r.stderr
    info = pyogrio.read_info(out, layer="compounds")
    total = scalar(db, "SELECT count(*) FROM compound WHERE county_code = :c")
    assert info["features"] == total
    assert info["crs"] == "EPSG:4326"  # GDAL 3.6 reads CRS84 (Part 2 CRS choice came in 3.7)
    frame = pyogrio.read_dataframe(out, layer="compounds")
    assert set(frame["code"]) == codes(db) and frame["code"].is_unique
    assert EVIL in set(frame["name"])  # text arrives as stored
    x, y = frame.geometry.iloc[0].centroid.coords[0]
    assert 103 < x < 105 and 35 < y < 37  # lon/lat, not swapped
    assert str(frame["sold_on"].dtype).startswith(("datetime", "object"))
    assert date.fromisoformat(str(frame["sold_on"].iloc[0])[:10])


@pytest.mark.slow
def test_ogr2ogr_filters_with_a_where_clause_and_a_spatial_filter(server, db, tmp_path, every):
    out = tmp_path / "stalled.gpkg"
    shapes = {k: shape(f["geometry"]) for k, f in every.items()}
    c = shapes[sorted(shapes)[20]].centroid
    minx, miny, maxx, maxy = c.x - 0.02, c.y - 0.02, c.x + 0.02, c.y + 0.02
    r = gdal("/usr/bin/ogr2ogr", "-f", "GPKG", str(out), f"OAPIF:{server.base}/ogc",
             "-where", "status = 'stalled'", "-spat", str(minx), str(miny), str(maxx), str(maxy),
             "compounds")  # fmt: skip
    assert r.returncode == 0, r.stderr
    got = set(pyogrio.read_dataframe(out)["code"])
    expected = {k for k, s in shapes.items() if p(every[k], "status") == "stalled"
                and s.intersects(box(minx, miny, maxx, maxy))}  # fmt: skip
    assert got == expected


def test_number_matched_follows_edits_to_the_data(client, db):
    """The count is kept per data revision: an edit to the ledger shows at once."""
    before = client.get(ITEMS, params={"status": "stalled"}).json()["numberMatched"]
    assert client.get(ITEMS, params={"status": "stalled"}).json()["numberMatched"] == before
    with db.begin() as conn:
        entry = conn.execute(
            text("SELECT id, status FROM ledger_entry WHERE county_code = :c "
                 "AND status = 'in_progress' ORDER BY id LIMIT 1"),
            {"c": COUNTY},
        ).one()  # fmt: skip
        conn.execute(text("UPDATE ledger_entry SET status = 'stalled' WHERE id = :i"),
                     {"i": entry.id})  # fmt: skip
    try:
        after = client.get(ITEMS, params={"status": "stalled"}).json()["numberMatched"]
        assert after == before + 1
    finally:
        with db.begin() as conn:
            conn.execute(text("UPDATE ledger_entry SET status = :s WHERE id = :i"),
                         {"s": entry.status, "i": entry.id})  # fmt: skip
    assert client.get(ITEMS, params={"status": "stalled"}).json()["numberMatched"] == before


def test_number_matched_follows_a_developer_blacklisted(client, db):
    """Developers are watched by the revision too: their credit status is a compound field."""
    params = {"developer_credit_status": "blacklisted"}
    before = client.get(ITEMS, params=params).json()["numberMatched"]
    with db.begin() as conn:
        developer, owned = conn.execute(
            text("SELECT d.id, count(c.id) FROM developer d JOIN compound c "
                 "ON c.developer_id = d.id WHERE d.county_code = :c "
                 "AND d.credit_status = 'normal' GROUP BY d.id ORDER BY d.id LIMIT 1"),
            {"c": COUNTY},
        ).one()  # fmt: skip
        conn.execute(text("UPDATE developer SET credit_status = 'blacklisted' WHERE id = :i"),
                     {"i": developer})  # fmt: skip
    try:
        assert client.get(ITEMS, params=params).json()["numberMatched"] == before + owned
    finally:
        with db.begin() as conn:
            conn.execute(text("UPDATE developer SET credit_status = 'normal' WHERE id = :i"),
                         {"i": developer})  # fmt: skip
    assert client.get(ITEMS, params=params).json()["numberMatched"] == before


def test_items_carry_an_etag_that_follows_the_data(client, db):
    first = client.get(ITEMS, params={"limit": 5})
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "no-cache"
    held = client.get(ITEMS, params={"limit": 5}, headers={"If-None-Match": etag})
    assert held.status_code == 304 and not held.content
    other = client.get(ITEMS, params={"limit": 6}, headers={"If-None-Match": etag})
    assert other.status_code == 200 and other.headers["etag"] != etag
    html = client.get(ITEMS, params={"limit": 5, "f": "html"}, headers={"If-None-Match": etag})
    assert html.status_code == 200  # another representation, another tag
    code = first.json()["features"][0]["id"]
    one = client.get(f"{ITEMS}/{code}")
    assert (
        client.get(f"{ITEMS}/{code}", headers={"If-None-Match": one.headers["etag"]}).status_code
        == 304
    )
    with db.begin() as conn:  # any change to the county's data: a new revision
        conn.execute(text("UPDATE compound SET name = name WHERE county_code = :c AND code = :k"),
                     {"c": COUNTY, "k": code})  # fmt: skip
    after = client.get(ITEMS, params={"limit": 5}, headers={"If-None-Match": etag})
    assert after.status_code == 200 and after.headers["etag"] != etag


def test_items_json_is_valid_and_ordered(client):
    raw = client.get(ITEMS, params={"limit": 30, "offset": 30}).text
    body = json.loads(raw)
    found = [f["id"] for f in body["features"]]
    assert found == sorted(found) and len(found) == 30
