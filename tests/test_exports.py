"""Compounds and parcels as GeoPackage / GeoJSON (geo.io.exports), and the export endpoints of
api/routers/ledger_files.py (map layers and the ledger as xlsx / CSV)."""

import io
import json
from datetime import date
from urllib.parse import unquote

import openpyxl
import pyogrio
import pytest
import shapely
from fastapi.testclient import TestClient

from geo.core.model import STATUS_LABELS, LedgerStatus
from geo.io.exports import COMPOUND_FIELDS, export_layer

COUNTY = "629901"


@pytest.fixture(scope="module")
def db(demo_database):
    with demo_database("exports_tests") as engine:
        yield engine


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("exports")


@pytest.fixture(scope="module")
def client(db):
    from api.app import create_app
    from api.routers import ledger_files
    from geo.core.settings import Settings

    app = create_app(Settings(), db)
    if not any(getattr(r, "path", None) == "/api/exports/ledger.xlsx" for r in app.routes):
        app.include_router(ledger_files.router)  # until api/app.py includes it
    return TestClient(app)


def expected_status(demo) -> dict[str, str]:
    on = dict(zip(demo.ledger.compound_code, demo.ledger.status, strict=True))
    return {code: on.get(code, "not_on_ledger") for code in demo.compounds.code}


@pytest.mark.parametrize("fmt", ["gpkg", "geojson"])
def test_compounds_carry_the_ledger_in_4490(db, demo, folder, fmt):
    path = export_layer(db, COUNTY, "compounds", folder / f"compounds.{fmt}")
    info = pyogrio.read_info(path)
    assert info["crs"] == "EPSG:4490"
    assert info["features"] == len(demo.compounds)
    assert info["geometry_type"] == "MultiPolygon"
    frame = pyogrio.read_dataframe(path).set_index("项目编号")
    status = expected_status(demo)
    assert frame["状态代码"].to_dict() == status
    labels = {s.value: label for s, label in STATUS_LABELS.items()} | {"not_on_ledger": "不在台账"}
    assert frame["化解状态"].to_dict() == {code: labels[s] for code, s in status.items()}
    ledger = demo.ledger.set_index("compound_code")
    assert (frame.loc[ledger.index, "问题房屋套数"] == ledger.units_task).all()
    assert (frame.loc[ledger.index, "转移登记套数"] == ledger.units_transferred).all()
    closed = ledger[ledger.status == LedgerStatus.CLOSED.value].index[0]
    # ISO text in the file (GDAL's GeoJSON reader turns it into a date again)
    assert str(frame.loc[closed, "销号日期"])[:10] == ledger.closed_on[closed].isoformat()
    # The shapes are the stored ones, lon/lat order (GeoJSON keeps 7 decimals, about 1 cm).
    drawn = demo.compounds.set_index("code").geometry
    for code in drawn.index[:20]:
        assert shapely.equals_exact(frame.geometry[code], drawn[code], tolerance=1e-6)
    minx, miny, _, _ = frame.total_bounds
    assert 103 < minx < 105 and 35 < miny < 37


def test_geojson_names_its_crs_and_english_fields(db, demo, folder):
    path = export_layer(db, COUNTY, "compounds", folder / "en.geojson", names="en")
    data = json.loads(path.read_text("utf-8"))
    assert data["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::4490"
    properties = data["features"][0]["properties"]
    assert list(properties) == [en for en, _ in COMPOUND_FIELDS]
    lon, lat = data["features"][0]["geometry"]["coordinates"][0][0][0]
    assert 103 < lon < 105 and 35 < lat < 37


@pytest.mark.parametrize("fmt", ["gpkg", "geojson"])
def test_parcels_list_their_compounds(db, demo, folder, fmt):
    path = export_layer(db, COUNTY, "parcels", folder / f"parcels.{fmt}", names="en")
    info = pyogrio.read_info(path)
    assert info["crs"] == "EPSG:4490" and info["features"] == len(demo.parcels)
    frame = pyogrio.read_dataframe(path).set_index("code")
    links = demo.compound_parcels.groupby("parcel_code").compound_code.apply(
        lambda codes: "、".join(sorted(codes))
    )
    assert frame.compound_codes.dropna().to_dict() == links.to_dict()
    owed = (frame.premium_due - frame.premium_paid).clip(lower=0)
    assert (abs(frame.premium_owed - owed) < 0.01).all()
    status = expected_status(demo)
    shared = frame.dropna(subset=["compound_codes"])
    for _, row in shared.iterrows():
        assert row.status.split(",") == [status[c] for c in row.compound_codes.split("、")]


def test_progress_and_bad_requests(db, folder):
    seen = []
    export_layer(db, COUNTY, "compounds", folder / "p.gpkg", progress=lambda *a: seen.append(a))
    assert seen[0][0] == "query" and seen[-1][0] == "write" and seen[-1][1] == seen[-1][2] > 0
    from geo import TitlemapError

    with pytest.raises(TitlemapError):
        export_layer(db, COUNTY, "roads", folder / "roads.gpkg")
    with pytest.raises(TitlemapError):
        export_layer(db, COUNTY, "compounds", folder / "x.shp")
    with pytest.raises(TitlemapError):
        export_layer(db, "000000", "compounds", folder / "none.gpkg")


def test_export_again_overwrites(db, demo, folder):
    path = folder / "twice.gpkg"
    export_layer(db, COUNTY, "parcels", path)
    export_layer(db, COUNTY, "parcels", path)
    assert pyogrio.list_layers(path).tolist() == [["parcels", "MultiPolygon"]]
    assert pyogrio.read_info(path)["features"] == len(demo.parcels)


# -- endpoints -------------------------------------------------------------------------------------


def file_name(response) -> str:
    disposition = response.headers["content-disposition"]
    return unquote(disposition.split("filename*=utf-8''")[-1])


@pytest.mark.parametrize("layer", ["compounds", "parcels"])
@pytest.mark.parametrize("fmt", ["gpkg", "geojson"])
def test_layer_endpoints(client, demo, folder, layer, fmt):
    response = client.get(f"/api/exports/{layer}.{fmt}")
    assert response.status_code == 200, response.text
    assert file_name(response).startswith("示例县") and file_name(response).endswith(f".{fmt}")
    path = folder / f"api-{layer}.{fmt}"
    path.write_bytes(response.content)
    info = pyogrio.read_info(path)
    assert info["crs"] == "EPSG:4490"
    assert info["features"] == len(getattr(demo, layer))


def test_layer_endpoint_english_names_and_unknown_layer(client):
    response = client.get("/api/exports/compounds.geojson", params={"names": "en"})
    assert response.headers["content-type"].startswith("application/geo+json")
    assert "status_label" in response.json()["features"][0]["properties"]
    assert client.get("/api/exports/roads.gpkg").status_code == 422
    assert client.get("/api/exports/compounds.gpkg", params={"county": "000000"}).status_code == 404


def test_ledger_xlsx_endpoint(client, demo):
    response = client.get("/api/exports/ledger.xlsx")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert file_name(response).startswith("示例县化解台账_")
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    assert "示例县" in sheet["A1"].value
    assert f"截至日期：{date.today().year}年" in sheet["A2"].value
    total = next(r for r in sheet.iter_rows(values_only=True) if r[0] == "合计")
    header = [c.value for c in sheet[3]]
    assert total[header.index("问题房屋套数")] == demo.ledger.units_task.sum()


def test_ledger_csv_endpoint(client, demo):
    utf8 = client.get("/api/exports/ledger.csv")
    assert utf8.status_code == 200 and utf8.content.startswith(b"\xef\xbb\xbf")
    assert "charset=utf-8" in utf8.headers["content-type"]
    lines = utf8.content.decode("utf-8-sig").splitlines()
    assert lines[0].split(",")[:4] == ["序号", "台账编号", "项目编号", "项目名称"]
    assert len(lines) == len(demo.ledger) + 1
    gbk = client.get("/api/exports/ledger.csv", params={"encoding": "gbk"})
    assert gbk.content.decode("gbk").splitlines() == lines
    assert client.get("/api/exports/ledger.csv", params={"county": "000000"}).status_code == 404
