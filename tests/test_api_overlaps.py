"""GET /api/overlaps and /api/overlaps.xlsx: compounds × planned areas, measured in PostGIS.

The expected areas are computed here without PostGIS, from the demo frames: shapely for the
geometry, pyproj for CGCS2000 → Gauss-Krüger zone 35 (EPSG:4544). Planned areas are densified
to 0.0005° first, as geo.query.overlaps does: their edges are straight in lon/lat as stored.
"""

import io

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from pyproj import Transformer
from shapely.geometry import shape

from api.app import create_app
from geo.core.crs import CGCS2000_GEOD, geodesic_area_m2
from geo.core.model import PLANNED_AREA_LABELS
from geo.core.settings import Settings
from geo.query.overlaps import COLUMNS, DENSIFY_DEG

GK = Transformer.from_crs(4490, 4544, always_xy=True)
KIND_LABELS = {k.value: v for k, v in PLANNED_AREA_LABELS.items()}


def _app(engine):
    app = create_app(Settings(), engine)
    if not any(getattr(route, "path", None) == "/api/overlaps" for route in app.routes):
        from api.routers import web

        app.include_router(web.router)
    return app


@pytest.fixture(scope="module")
def client(engine):
    return TestClient(_app(engine))


def _gk(geoms):
    def move(xy):
        return np.column_stack(GK.transform(xy[:, 0], xy[:, 1]))

    return shapely.transform(np.asarray(geoms, dtype=object), move)


@pytest.fixture(scope="module")
def expected(demo):
    """{(compound code, planned code): (overlap m², compound m², kind)} computed without PostGIS."""
    compounds = demo.compounds
    planned = demo.planned_areas
    c_gk = _gk(compounds.geometry.values)
    p_gk = _gk(shapely.segmentize(planned.geometry.values, DENSIFY_DEG))
    found = {}
    for i, compound in enumerate(c_gk):
        for j, area in enumerate(p_gk):
            piece = compound.intersection(area)
            if piece.area > 0:
                key = (compounds.code.iloc[i], planned.code.iloc[j])
                found[key] = (piece.area, compound.area, planned.kind.iloc[j])
    return found


@pytest.fixture(scope="module")
def everything(client):
    response = client.get("/api/overlaps")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/geo+json")
    return response.json()


def test_every_overlap_matches_an_independent_computation(everything, expected):
    rows = {(f["properties"]["compound_code"], f["properties"]["planned_code"]): f["properties"]
            for f in everything["features"]}  # fmt: skip
    assert set(rows) == set(expected)
    assert everything["numberMatched"] == len(expected) > 150  # the planning area holds all
    assert everything["gk_epsg"] == 4544
    for key, (overlap, whole, kind) in expected.items():
        row = rows[key]
        assert row["overlap_m2"] == pytest.approx(overlap, abs=0.01, rel=1e-6)
        assert row["compound_m2"] == pytest.approx(whole, abs=0.01, rel=1e-6)
        assert row["percent"] == pytest.approx(100 * overlap / whole, abs=0.006)
        assert row["kind"] == kind
        assert row["kind_label"] == KIND_LABELS[kind]


def test_partial_overlaps_are_there_not_only_whole_compounds(expected):
    # planned roads and green space cut compounds (geo.demo plants about ten)
    cut = {k for k, (overlap, whole, kind) in expected.items() if overlap < whole - 1}
    kinds = {expected[k][2] for k in cut}
    assert len(cut) >= 8
    assert {"planned_road", "green_space"} <= kinds


def test_pieces_are_the_intersections(everything):
    for feature in everything["features"]:
        props = feature["properties"]
        piece = shape(feature["geometry"])
        assert piece.geom_type in ("Polygon", "MultiPolygon")
        # planar GK area vs the ellipsoid: the zone's scale error here is below 0.05 %; the
        # pieces travel with 7 decimals (≈ 1 cm), which matters for a thin strip
        perimeter = CGCS2000_GEOD.geometry_area_perimeter(piece)[1]
        assert geodesic_area_m2(piece) == pytest.approx(
            props["overlap_m2"], rel=5e-4, abs=0.02 * perimeter
        )


def test_kind_and_status_filters(client, everything):
    wanted = [
        f["properties"] for f in everything["features"]
        if f["properties"]["kind"] in ("district", "planned_road")
        and f["properties"]["status"] == "stalled"
    ]  # fmt: skip
    response = client.get(
        "/api/overlaps",
        params=[("kind", "district"), ("kind", "planned_road"), ("status", "stalled"),
                ("geometry", "false")],
    )  # fmt: skip
    assert response.status_code == 200
    got = [f["properties"] for f in response.json()["features"]]
    assert all(f["geometry"] is None for f in response.json()["features"])
    assert got == wanted
    assert len(got) >= 5  # 城东片区 is mostly stuck (geo.demo)


def test_bbox_keeps_the_compounds_in_the_box(client, everything):
    pieces = [shape(f["geometry"]) for f in everything["features"]]
    minx = min(p.bounds[0] for p in pieces)
    miny = min(p.bounds[1] for p in pieces)
    box = (minx, miny, minx + 0.02, miny + 0.02)
    response = client.get("/api/overlaps", params={"bbox": ",".join(map(str, box))})
    codes = {f["properties"]["compound_code"] for f in response.json()["features"]}
    assert 0 < len(codes) < len({f["properties"]["compound_code"] for f in everything["features"]})


def test_xlsx_has_chinese_headers_and_the_same_rows(client, everything):
    response = client.get("/api/overlaps.xlsx")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert "filename*=UTF-8''" in response.headers["content-disposition"]
    sheet = load_workbook(io.BytesIO(response.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert "重叠面积表" in rows[0][0]
    assert "EPSG:4544" in rows[1][0]
    assert list(rows[2]) == [header for _, header, _ in COLUMNS]
    body, total = rows[3:-1], rows[-1]
    assert len(body) == everything["numberMatched"]
    api = [f["properties"] for f in everything["features"]]
    for line, props in zip(body, api, strict=True):
        assert dict(zip([key for key, _, _ in COLUMNS], line, strict=True)) == {
            key: props[key] for key, _, _ in COLUMNS
        }
    assert total[0] == "合计"
    assert total[7] == pytest.approx(sum(p["overlap_m2"] for p in api), abs=0.01)


def test_the_card_lists_the_compounds_overlaps(client, everything):
    row = next(f["properties"] for f in everything["features"] if f["properties"]["percent"] < 99)
    card = client.get(f"/api/compounds/{row['compound_code']}/card").json()
    mine = {(o["planned_code"], o["overlap_m2"]) for o in card["overlaps"]}
    assert (row["planned_code"], row["overlap_m2"]) in mine


@pytest.mark.parametrize(
    ("params", "words"),
    [({"kind": "lake"}, "unknown planned kind"), ({"bbox": "1,2"}, "bbox"),
     ({"status": "lost"}, "unknown status"), ({"county": "999999"}, "no such county")],
)  # fmt: skip
def test_bad_parameters_get_a_clear_message(client, params, words):
    for path in ("/api/overlaps", "/api/overlaps.xlsx"):
        if path.endswith("xlsx") and "bbox" in params:
            continue
        response = client.get(path, params=params)
        assert response.status_code == 422
        assert words in response.json()["detail"]
