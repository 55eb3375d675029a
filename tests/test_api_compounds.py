"""GET /api/compounds: GeoJSON of compounds with their ledger status."""

import pytest
from fastapi.testclient import TestClient
from shapely.geometry import box, shape
from sqlalchemy import text

from api.app import create_app
from geo.core.crs import geodesic_area_m2
from geo.core.settings import Settings
from geo.query.compounds import STATUS_FILTER_VALUES


@pytest.fixture(scope="module")
def client(engine):
    return TestClient(create_app(Settings(), engine))


@pytest.fixture(scope="module")
def everything(client):
    response = client.get("/api/compounds", params={"limit": 10000})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/geo+json")
    return response.json()


def test_all_demo_compounds_come_with_a_ledger_status(everything, demo):
    features = everything["features"]
    assert len(features) == everything["numberMatched"] == len(demo.compounds) >= 150
    on_ledger = set(demo.ledger.compound_code)
    for feature in features:
        props = feature["properties"]
        assert props["status"] in STATUS_FILTER_VALUES
        assert props["status_label"]
        assert props["on_ledger"] == (props["code"] in on_ledger)
        assert feature["geometry"]["type"] == "MultiPolygon"


def test_statuses_match_the_ledger(everything, engine):
    # the ledger as it is now (other test modules edit the shared demo county's entries)
    with engine.connect() as conn:
        expected = dict(conn.execute(text(
            "SELECT c.code, e.status FROM ledger_entry e JOIN compound c ON c.id = e.compound_id"
        )).all())  # fmt: skip
    for feature in everything["features"]:
        code = feature["properties"]["code"]
        assert feature["properties"]["status"] == expected.get(code, "not_on_ledger")


def test_reported_areas_agree_with_geodesic_areas(everything):
    for feature in everything["features"]:
        geodesic = geodesic_area_m2(shape(feature["geometry"]))
        assert abs(feature["properties"]["area_m2"] - geodesic) / geodesic < 0.001


def test_bbox_returns_exactly_the_compounds_it_touches(client, everything):
    boxes = [shape(f["geometry"]).bounds for f in everything["features"]]
    minx = min(b[0] for b in boxes)
    miny = min(b[1] for b in boxes)
    query = box(minx, miny, minx + 0.02, miny + 0.02)
    response = client.get("/api/compounds", params={"bbox": ",".join(map(str, query.bounds))})
    got = {f["properties"]["code"] for f in response.json()["features"]}
    expected = {
        f["properties"]["code"]
        for f in everything["features"]
        if box(*shape(f["geometry"]).bounds).intersects(query)
    }
    assert got == expected
    assert 0 < len(got) < len(everything["features"])


def test_status_filter_accepts_repeats_and_commas(client, everything):
    counts = {}
    for feature in everything["features"]:
        status = feature["properties"]["status"]
        counts[status] = counts.get(status, 0) + 1
    response = client.get("/api/compounds", params={"status": "stalled,closed"})
    statuses = [f["properties"]["status"] for f in response.json()["features"]]
    assert set(statuses) == {"stalled", "closed"}
    assert len(statuses) == counts["stalled"] + counts["closed"]
    repeated = client.get("/api/compounds", params=[("status", "stalled"), ("status", "closed")])
    assert repeated.json()["numberMatched"] == len(statuses)


def test_limit_and_offset_page_through_in_code_order(client, everything):
    codes = [f["properties"]["code"] for f in everything["features"]]
    page = client.get("/api/compounds", params={"limit": 10, "offset": 20}).json()
    assert [f["properties"]["code"] for f in page["features"]] == codes[20:30]
    assert page["numberReturned"] == 10
    assert page["numberMatched"] == len(codes)


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"bbox": "104,35"}, "bbox"),
        ({"bbox": "105,36,104,35"}, "bbox"),
        ({"status": "lost"}, "unknown status"),
        ({"county": "999999"}, "no such county"),
    ],
)
def test_bad_parameters_get_a_clear_message(client, params, words):
    response = client.get("/api/compounds", params=params)
    assert response.status_code == 422
    assert words in response.json()["detail"]


def test_limit_out_of_range_is_refused(client):
    assert client.get("/api/compounds", params={"limit": 0}).status_code == 422
    assert client.get("/api/compounds", params={"limit": 10**6}).status_code == 422
