"""Importing layers from files: formats, CRSs, encodings, repairs, refusals, all-or-nothing.

Input files are made here with GDAL's writers (pyogrio), literal GeoJSON / CSV / DXF text in
the encodings offices use, and zipfile — not with titlemap's own code. Each test imports into a
database of this module's own (the demo county loaded) and compares the whole database before
and after whenever something must be refused.
"""

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from datetime import date
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Transformer
from shapely.geometry import Polygon, box
from sqlalchemy import text
from sqlalchemy.orm import Session

from api.app import create_app
from geo import TitlemapError
from geo import demo as demo_county
from geo.core.codes import check_parcel_code
from geo.core.dates import EXCEL_SERIALS, parse_date
from geo.core.geometry import validity_words
from geo.core.settings import Settings
from geo.io.archive import Limits, check_zip
from geo.io.crs_guess import classify
from geo.io.importer import import_file
from geo.ledger.users import add_user

pytestmark = pytest.mark.filterwarnings("ignore:'crs' was not provided")
REPO = Path(__file__).resolve().parent.parent
COUNTY = "629901"
CENTRE = (104.1, 35.85)
TO_GK = Transformer.from_crs(4490, 4544, always_xy=True)  # zone 35, no prefix
TO_LONLAT = Transformer.from_crs(4544, 4490, always_xy=True)
TABLES = ("county", "township", "context_feature", "developer", "compound", "parcel",
          "compound_parcel", "planned_area", "complaint", "ledger_entry", "ledger_event",
          "app_user")  # fmt: skip


@pytest.fixture(scope="module")
def db(demo_database):
    with demo_database("import_layers") as engine:
        yield engine


def snapshot(engine) -> dict:
    """Row counts of every table and a digest of every code and geometry that can change."""
    with engine.connect() as conn:
        state = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}
        for table in ("compound", "parcel", "planned_area", "complaint", "township"):
            state[f"{table}#"] = conn.execute(
                text(
                    f"SELECT md5(string_agg(code || ':' || md5(ST_AsEWKB(geom)) || ':' "
                    f"|| md5(t::text), ',' ORDER BY code)) FROM {table} t"
                )
            ).scalar_one()
        state["county#"] = conn.execute(
            text("SELECT md5(string_agg(md5(ST_AsEWKB(geom)), ',' ORDER BY code)) FROM county")
        ).scalar_one()
    return state


def gk(lon: float, lat: float) -> tuple[float, float]:
    return TO_GK.transform(lon, lat)


def gk_square(dx: float, dy: float, size: float = 80.0, prefix: bool = False) -> Polygon:
    """A square `size` metres wide, `dx`/`dy` metres from the county centre, in GK zone 35."""
    x, y = gk(*CENTRE)
    x += dx + (35_000_000 if prefix else 0)
    return box(x + 0.0, y + dy, x + size, y + dy + size)


def lonlat_square(dx: float, dy: float, size: float = 80.0) -> Polygon:
    square = gk_square(dx, dy, size)
    return shapely.transform(square, lambda xy: list(zip(*TO_LONLAT.transform(*xy.T), strict=True)))


def compound_rows(prefix: str, count: int, spacing: float = 150.0) -> dict:
    return {
        "小区编号": [f"{prefix}-{k:03d}" for k in range(count)],
        "小区名称": [f"测试小区{k}号" for k in range(count)],
        "地址": [f"城关街道测试路{k}号" for k in range(count)],
        "所属乡镇": ["城关街道"] * count,
        "楼栋数": [k + 1 for k in range(count)],
        "已售套数": [100 + k for k in range(count)],
        "销售日期": ["2015年3月1日"] * count,
    }


def write_gpkg(path: Path, columns: dict, geoms, crs=4490) -> Path:
    pyogrio.write_dataframe(gpd.GeoDataFrame(columns, geometry=geoms, crs=crs), path,
                            driver="GPKG")  # fmt: skip
    return path


def count_code(engine, table: str, code: str) -> int:
    with engine.connect() as conn:
        return conn.execute(
            text(f"SELECT count(*) FROM {table} WHERE county_code = :c AND code = :k"),
            {"c": COUNTY, "k": code},
        ).scalar_one()


def refused_ids(report) -> list[str]:
    return [ident for ident, _ in report.refused]


# -- formats, CRSs, encodings --------------------------------------------------------------------


def test_geopackage_in_4490_adds_then_reimport_changes_nothing(db, tmp_path, demo):
    geoms = [lonlat_square(-6000 + 150 * k, 5200) for k in range(5)]
    columns = compound_rows("GP", 5) | {"开发企业": [demo.developers.name.iloc[0]] * 5}
    path = write_gpkg(tmp_path / "小区.gpkg", columns, geoms)
    report = import_file(db, path, COUNTY, "compounds")
    assert report.committed and report.ok
    assert (report.added, report.updated, report.unchanged) == (5, 0, 0)
    assert report.crs == "EPSG:4490"
    assert report.columns["code"] == "小区编号" and report.columns["township"] == "所属乡镇"
    with db.connect() as conn:
        row = conn.execute(
            text(
                "SELECT c.name, c.buildings, c.units_sold, c.sold_on, t.name AS township, "
                "d.credit_code, ST_GeometryType(c.geom) AS kind, ST_SRID(c.geom) AS srid "
                "FROM compound c JOIN township t ON t.id = c.township_id "
                "JOIN developer d ON d.id = c.developer_id WHERE c.code = 'GP-002'"
            )
        ).one()
    assert row.name == "测试小区2号" and row.buildings == 3 and row.units_sold == 102
    assert str(row.sold_on) == "2015-03-01" and row.township == "城关街道"
    assert row.credit_code == demo.developers.credit_code.iloc[0]
    assert (row.kind, row.srid) == ("ST_MultiPolygon", 4490)

    again = import_file(db, path, COUNTY, "compounds")
    assert (again.added, again.updated, again.unchanged) == (0, 0, 5)
    assert all(count_code(db, "compound", f"GP-{k:03d}") == 1 for k in range(5))

    # A corrected file: one outline moved 30 m, one name fixed; the rest as before.
    geoms[1] = lonlat_square(-6000 + 150 + 30, 5200)
    columns["小区名称"][3] = "测试小区三号（更正）"
    fixed = write_gpkg(tmp_path / "小区-更正.gpkg", columns, geoms)
    corrected = import_file(db, fixed, COUNTY, "compounds")
    assert (corrected.added, corrected.updated, corrected.unchanged) == (0, 2, 3)
    with db.connect() as conn:
        stored = shapely.from_wkb(
            conn.execute(text("SELECT ST_AsBinary(geom) FROM compound WHERE code = 'GP-001'"))
            .scalar_one()
        )  # fmt: skip
        name = conn.execute(text("SELECT name FROM compound WHERE code = 'GP-003'")).scalar_one()
    assert stored.equals(shapely.MultiPolygon([geoms[1]]))
    assert name == "测试小区三号（更正）"


def test_demo_geopackage_reimports_unchanged_layer_by_layer(db, demo, tmp_path):
    # The demo GeoPackage holds every layer: each is picked by its name.
    gpkg, _ = demo_county.write(demo, tmp_path)
    sizes = {"compounds": len(demo.compounds), "parcels": len(demo.parcels),
             "planned": len(demo.planned_areas), "complaints": len(demo.complaints),
             "townships": len(demo.townships), "boundary": 1}  # fmt: skip
    for layer, size in sizes.items():
        report = import_file(db, gpkg, COUNTY, layer)
        assert report.ok, (layer, report.lines())
        assert (report.added, report.updated, report.unchanged) == (0, 0, size), layer


def test_blank_cells_keep_what_the_database_holds(db, tmp_path):
    geoms = [lonlat_square(-6000, 5600)]
    write_gpkg(tmp_path / "a.gpkg", compound_rows("BL", 1), geoms)
    import_file(db, tmp_path / "a.gpkg", COUNTY, "compounds")
    # An outline-only file (code and geometry) updates the geometry and keeps the rest.
    moved = [lonlat_square(-5990, 5600)]
    write_gpkg(tmp_path / "b.gpkg", {"code": ["BL-000"]}, moved)
    report = import_file(db, tmp_path / "b.gpkg", COUNTY, "compounds")
    assert (report.added, report.updated) == (0, 1)
    with db.connect() as conn:
        name = conn.execute(text("SELECT name FROM compound WHERE code = 'BL-000'")).scalar_one()
    assert name == "测试小区0号"


def zip_shapefile(folder: Path, name: str, frame: gpd.GeoDataFrame, keep_cpg: bool) -> Path:
    shp = folder / f"{name}.shp"
    pyogrio.write_dataframe(frame, shp, driver="ESRI Shapefile", encoding="GBK")
    archive = folder / f"{name}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        for part in sorted(folder.glob(f"{name}.*")):
            if part.suffix == ".zip" or (part.suffix == ".cpg" and not keep_cpg):
                continue
            out.write(part, f"宗地数据/{part.name}")
    return archive


def test_shapefile_zip_in_gbk_with_cpg_parcels_in_hectares(db, tmp_path, demo):
    compound = demo.compounds.code.iloc[0]
    frame = gpd.GeoDataFrame(
        {
            "宗地代码": ["629901001009GB00901", "629901001009GB00902"],
            "面积公顷": [1.2345, 0.5],
            "土地用途": ["城镇住宅用地", "城镇住宅用地"],
            "权利性质": ["出让", "划拨"],
            "小区编号": [compound, ""],
        },
        geometry=[gk_square(-7000, 6000), gk_square(-6800, 6000)],
        crs=4544,
    )
    path = zip_shapefile(tmp_path, "宗地", frame, keep_cpg=True)
    with zipfile.ZipFile(path) as archive:
        assert any(n.endswith(".cpg") for n in archive.namelist())
    report = import_file(db, path, COUNTY, "parcels")
    assert report.ok and report.added == 2
    assert report.crs == "EPSG:4544" and "文件自带" in report.crs_note
    assert any(".cpg" in note for note in report.notes)
    with db.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT p.code, p.recorded_area_m2, p.land_use, p.right_type, c.code AS compound "
                "FROM parcel p LEFT JOIN compound_parcel cp ON cp.parcel_id = p.id "
                "LEFT JOIN compound c ON c.id = cp.compound_id "
                "WHERE p.code LIKE '629901001009GB009%' ORDER BY p.code"
            )
        ).all()
    assert [float(r.recorded_area_m2) for r in rows] == [12345.0, 5000.0]
    assert rows[0].land_use == "城镇住宅用地" and rows[1].right_type == "划拨"
    assert rows[0].compound == compound and rows[1].compound is None
    again = import_file(db, path, COUNTY, "parcels")
    assert (again.added, again.updated, again.unchanged) == (0, 0, 2)
    # Linking the second parcel too is an update, though the parcel row itself is unchanged.
    frame["小区编号"] = [compound, compound]
    relinked = import_file(db, zip_shapefile(tmp_path, "宗地2", frame, True), COUNTY, "parcels")
    assert (relinked.added, relinked.updated, relinked.unchanged) == (0, 1, 1)


def test_shapefile_zip_in_gbk_without_cpg_or_prj_with_zone_prefix(db, tmp_path):
    frame = gpd.GeoDataFrame(
        {"项目编号": ["SHP-1", "SHP-2"], "项目名称": ["滨河花园", "锦绣家园"]},
        geometry=[gk_square(-7000, 6400, prefix=True), gk_square(-6800, 6400, prefix=True)],
        crs=None,
    )
    path = zip_shapefile(tmp_path, "项目", frame, keep_cpg=False)
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    assert not any(n.endswith((".cpg", ".prj")) for n in names)
    report = import_file(db, path, COUNTY, "compounds")
    assert report.ok and report.added == 2
    assert report.crs == "EPSG:4523"
    assert "带号" in report.crs_note and "文件未声明坐标系" in report.crs_note
    assert any("GB18030" in note for note in report.notes)
    with db.connect() as conn:
        name = conn.execute(text("SELECT name FROM compound WHERE code = 'SHP-2'")).scalar_one()
    assert name == "锦绣家园"


def test_geojson_in_wgs84_planned_areas_by_chinese_kind(db, tmp_path):
    features = [
        {
            "type": "Feature",
            "properties": {"编号": f"GJ-{k}", "类型": kind, "名称": f"测试片区{k}"},
            "geometry": shapely.geometry.mapping(lonlat_square(-8000 + 400 * k, 7000, 300)),
        }
        for k, kind in enumerate(["城市更新片区", "规划绿地", "planned_road"])
    ]
    path = tmp_path / "片区.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features},
                               ensure_ascii=False), "utf-8")  # fmt: skip
    report = import_file(db, path, COUNTY, "planned")
    assert report.ok and report.added == 3
    assert report.crs == "EPSG:4326" and "WGS84" in report.crs_note
    with db.connect() as conn:
        kinds = conn.execute(
            text("SELECT kind FROM planned_area WHERE code LIKE 'GJ-%' ORDER BY code")
        ).scalars()
        assert list(kinds) == ["urban_renewal", "green_space", "planned_road"]


def test_gauss_kruger_without_prefix_and_without_crs_is_inferred(db, tmp_path):
    # Old-style GeoJSON with projected metres and no "crs" member (GDAL then claims WGS84).
    features = [
        {
            "type": "Feature",
            "properties": {"code": "GK-1", "name": "无带号小区"},
            "geometry": shapely.geometry.mapping(gk_square(-7000, 6800)),
        }
    ]
    path = tmp_path / "gk.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), "utf-8")
    report = import_file(db, path, COUNTY, "compounds")
    assert report.ok and report.added == 1
    assert report.crs == "EPSG:4544"
    assert "不带带号" in report.crs_note
    with db.connect() as conn:
        lon, lat = conn.execute(
            text("SELECT ST_X(ST_Centroid(geom)), ST_Y(ST_Centroid(geom)) FROM compound "
                 "WHERE code = 'GK-1'")
        ).one()  # fmt: skip
    x, y = gk(lon, lat)
    expected = gk_square(-7000, 6800).centroid
    assert abs(x - expected.x) < 0.01 and abs(y - expected.y) < 0.01


def test_swapped_axes_are_refused_and_change_nothing(db, tmp_path):
    before = snapshot(db)
    x, y = gk(*CENTRE)
    csv_text = f"投诉编号,受理日期,投诉内容,X,Y\nSW-1,2025-01-02,测试,{y:.2f},{x:.2f}\n"
    path = tmp_path / "swapped.csv"
    path.write_bytes(csv_text.encode("gbk"))
    with pytest.raises(TitlemapError, match="颠倒"):
        import_file(db, path, COUNTY, "complaints")
    # The same in a file that declares its CRS: still refused, never swapped silently.
    square = gk_square(0, 0)
    flipped = shapely.transform(square, lambda xy: xy[:, ::-1])
    write_gpkg(tmp_path / "flipped.gpkg", {"code": ["SW-2"], "name": ["x"]}, [flipped], 4544)
    with pytest.raises(TitlemapError, match="axes appear swapped"):
        import_file(db, tmp_path / "flipped.gpkg", COUNTY, "compounds")
    assert snapshot(db) == before


DXF_HEADER = "  0\nSECTION\n  2\nHEADER\n  9\n$ACADVER\n  1\nAC1015\n  9\n$DWGCODEPAGE\n  3\nANSI_936\n  0\nENDSEC\n"  # noqa: E501


def dxf_polyline(points, layer="小区红线") -> str:
    body = f"  0\nLWPOLYLINE\n  8\n{layer}\n 90\n{len(points)}\n 70\n1\n"
    return body + "".join(f" 10\n{x:.3f}\n 20\n{y:.3f}\n" for x, y in points)


def dxf_text(x, y, value, layer="注记") -> str:
    return f"  0\nTEXT\n  8\n{layer}\n 10\n{x:.3f}\n 20\n{y:.3f}\n 40\n3.0\n  1\n{value}\n"


def test_dxf_closed_polylines_with_text_labels(db, tmp_path):
    entities = []
    for k in range(3):
        square = gk_square(-7400 + 150 * k, 7200)
        entities.append(dxf_polyline(list(square.exterior.coords)[:-1]))
        c = square.centroid
        entities.append(dxf_text(c.x, c.y + 10, f"DXF-{k}"))
        entities.append(dxf_text(c.x, c.y - 10, f"图纸小区{k}"))
    entities.append("  0\nLINE\n  8\n道路\n 10\n0\n 20\n0\n 11\n1\n 21\n1\n")  # ignored
    body = DXF_HEADER + "  0\nSECTION\n  2\nENTITIES\n" + "".join(entities)
    body += "  0\nENDSEC\n  0\nEOF\n"
    path = tmp_path / "红线图.dxf"
    path.write_bytes(body.encode("gbk"))
    report = import_file(db, path, COUNTY, "compounds")
    assert report.ok and report.added == 3, report.lines()
    assert report.crs == "EPSG:4544"
    with db.connect() as conn:
        names = conn.execute(
            text("SELECT name FROM compound WHERE code LIKE 'DXF-%' ORDER BY code")
        ).scalars()
        assert list(names) == ["图纸小区0", "图纸小区1", "图纸小区2"]


def test_csv_of_complaint_points_in_gbk(db, tmp_path):
    # As exported from a ledger sheet: a title row, a quoted cell, a 合计 row, a sign-off line.
    lines = ["示例县留言投诉台账,,,,,", "投诉编号,受理日期,来源,投诉内容,经度,纬度"]
    for k in range(4):
        lon, lat = TO_LONLAT.transform(*gk_square(-5000 + 100 * k, 4000).centroid.coords[0])
        lines.append(
            f'CSV-{k},2025年3月{k + 1}日,12345热线,"小区{k}号楼反映办证难，盼解决",'
            f"{lon:.7f},{lat:.7f}"
        )
    lines += ["", "合计,4 件,,,,", "制表人：王建国"]
    path = tmp_path / "投诉.csv"
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("gbk"))
    report = import_file(db, path, COUNTY, "complaints")
    assert report.ok and report.added == 4
    assert any("GB18030" in note for note in report.notes)
    with db.connect() as conn:
        row = conn.execute(
            text("SELECT received_on, source, text, ST_GeometryType(geom) AS kind FROM complaint "
                 "WHERE code = 'CSV-2'")
        ).one()  # fmt: skip
    assert str(row.received_on) == "2025-03-03" and row.source == "12345热线"
    assert row.text == "小区2号楼反映办证难，盼解决" and row.kind == "ST_Point"


# -- repairs and refusals ------------------------------------------------------------------------


def test_bow_tie_is_repaired_and_reported(db, tmp_path):
    x, y = gk(*CENTRE)
    x, y = x - 4000, y + 4500
    tie = Polygon([(x, y), (x + 100, y + 100), (x + 100, y), (x, y + 100)])
    assert not tie.is_valid
    write_gpkg(tmp_path / "tie.gpkg", {"code": ["TIE-1"], "name": ["蝴蝶小区"]}, [tie], 4544)
    report = import_file(db, tmp_path / "tie.gpkg", COUNTY, "compounds")
    assert report.committed and report.added == 1
    assert report.repaired and report.repaired[0][0] == "TIE-1"
    assert "自相交" in report.repaired[0][1]
    assert any("TIE-1" in line and "修复" in line for line in report.lines())
    with db.connect() as conn:
        valid, parts = conn.execute(
            text("SELECT ST_IsValid(geom), ST_NumGeometries(geom) FROM compound "
                 "WHERE code = 'TIE-1'")
        ).one()  # fmt: skip
    assert valid and parts == 2


def far_file(tmp_path: Path, prefix: str) -> Path:
    geoms = [lonlat_square(-3000 + 150 * k, -4000) for k in range(3)]
    geoms.append(lonlat_square(50_000, -4000))  # 50 km east of the centre: outside
    columns = {"code": [f"{prefix}-{k}" for k in range(4)], "name": ["甲", "乙", "丙", "远方"]}
    return write_gpkg(tmp_path / f"{prefix}.gpkg", columns, geoms)


def test_feature_outside_the_county_is_refused_and_nothing_changes(db, tmp_path):
    before = snapshot(db)
    report = import_file(db, far_file(tmp_path, "FAR"), COUNTY, "compounds")
    assert not report.committed
    assert refused_ids(report) == ["FAR-3"]
    assert "超出本县范围" in report.refused[0][1] and "km" in report.refused[0][1]
    assert report.added == report.updated == 0
    assert snapshot(db) == before
    assert any("未写入" in line for line in report.lines())


def test_partial_commits_the_good_features(db, tmp_path):
    report = import_file(db, far_file(tmp_path, "PART"), COUNTY, "compounds", partial=True)
    assert report.committed and report.added == 3
    assert refused_ids(report) == ["PART-3"]
    assert count_code(db, "compound", "PART-0") == 1
    assert count_code(db, "compound", "PART-3") == 0


def test_duplicate_codes_are_refused_with_both_rows(db, tmp_path):
    before = snapshot(db)
    geoms = [lonlat_square(-3000 + 150 * k, -4400) for k in range(3)]
    columns = {"code": ["DUP-1", "DUP-2", "DUP-1"], "name": ["一", "二", "三"]}
    report = import_file(db, write_gpkg(tmp_path / "dup.gpkg", columns, geoms), COUNTY,
                         "compounds")  # fmt: skip
    assert refused_ids(report) == ["DUP-1", "DUP-1"]
    assert "要素 1" in report.refused[0][1] and "要素 3" in report.refused[0][1]
    assert snapshot(db) == before


def test_missing_code_unknown_reference_and_bad_values_are_refused(db, tmp_path):
    before = snapshot(db)
    geoms = [lonlat_square(-3000 + 150 * k, -4800) for k in range(4)]
    columns = {
        "code": ["BAD-1", None, "BAD-3", "BAD-4"],
        "name": ["一", "二", "三", "四"],
        "乡镇": ["城关街道", "城关街道", "不存在乡", "城关街道"],
        "入住日期": ["2019-05-01", "2019-05-01", "2019-05-01", "去年"],
    }
    report = import_file(db, write_gpkg(tmp_path / "bad.gpkg", columns, geoms), COUNTY,
                         "compounds")  # fmt: skip
    why = dict(report.refused)
    assert set(why) == {"要素 2", "BAD-3", "BAD-4"}
    assert "缺少编号" in why["要素 2"] and "不存在乡" in why["BAD-3"] and "日期" in why["BAD-4"]
    assert snapshot(db) == before


def test_parcel_codes_the_checks_would_flag_are_refused_alike(db, tmp_path):
    """Drift: the import's own pattern took GA (state ownership with a collective-only kind)
    and sequence 00000, which the parcel checks then flagged; now both use geo.core.codes."""
    before = snapshot(db)
    codes = ["629901001001GA00001", "629901001001GB00000"]
    geoms = [lonlat_square(-3000 + 200 * k, -6400) for k in range(2)]
    path = write_gpkg(tmp_path / "codes.gpkg", {"宗地代码": codes}, geoms)
    report = import_file(db, path, COUNTY, "parcels")
    assert not report.committed and len(report.refused) == 2, report.lines()
    for (_, why), code in zip(report.refused, codes, strict=True):
        failures = check_parcel_code(code, COUNTY)
        assert failures and all(f.zh in why for f in failures), why
    assert snapshot(db) == before


def compound_geojson(path: Path, rows: list[dict]) -> Path:
    """Compounds as literal GeoJSON (numbers stay numbers), 150 m apart north of the centre."""
    features = [
        {"type": "Feature", "properties": row,
         "geometry": json.loads(shapely.to_geojson(lonlat_square(-6000 + 150 * k, 6200)))}
        for k, row in enumerate(rows)
    ]  # fmt: skip
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), "utf-8")
    return path


def test_excel_serial_days_are_read_as_parse_date_reads_them(db, tmp_path):
    """Drift: the import took serials in 10 001–79 999 and the ledger sheet 20 000–80 000;
    both now read dates by geo.core.dates.parse_date. A .dbf's 20240501 stays a date."""
    serials = [EXCEL_SERIALS[0], 15_000, 19_999, 45_000]
    rows = [{"code": f"XL-{k}", "name": f"序列日期{k}", "销售日期": serial}
            for k, serial in enumerate(serials)]  # fmt: skip
    rows.append({"code": "XL-D", "name": "数字日期", "销售日期": 20240501})
    report = import_file(db, compound_geojson(tmp_path / "serials.geojson", rows), COUNTY,
                         "compounds")  # fmt: skip
    assert report.committed and report.ok, report.lines()
    with db.connect() as conn:
        stored = dict(conn.execute(text(
            "SELECT code, sold_on FROM compound WHERE code LIKE 'XL-%'")).all())  # fmt: skip
    assert [stored[f"XL-{k}"] for k in range(len(serials))] == [parse_date(s) for s in serials]
    assert stored["XL-D"] == date(2024, 5, 1)


def test_an_unrepairable_bow_tie_is_refused_in_the_checks_words(db, tmp_path):
    """Drift: the import's refusal gave GEOS's English only and its repairs its own words;
    both now say what geo.core.geometry.validity_words says (as the parcel checks do)."""
    before = snapshot(db)
    x, y = gk(*CENTRE)
    x, y = x - 4000, y + 6000
    folded = Polygon([(x, y), (x + 100, y + 100), (x + 200, y), (x + 100, y + 100), (x, y)])
    hole = Polygon([(x, y + 300), (x + 100, y + 300), (x + 100, y + 400), (x, y + 400)],
                   [[(x + 200, y + 300), (x + 250, y + 300), (x + 250, y + 350),
                     (x + 200, y + 350)]])  # fmt: skip
    path = write_gpkg(tmp_path / "shapes.gpkg",
                      {"code": ["FOLD-1", "HOLE-1"], "name": ["折叠", "外洞"]}, [folded, hole],
                      4544)  # fmt: skip
    report = import_file(db, path, COUNTY, "compounds")
    assert refused_ids(report) == ["FOLD-1"] and not report.committed, report.lines()
    words = validity_words(shapely.is_valid_reason(folded)).split(" / ")[0]
    assert words == "自相交" and f"{words} / Self-intersection" in report.refused[0][1]
    assert report.repaired[0][0] == "HOLE-1"
    hole_words = validity_words(shapely.is_valid_reason(hole)).split(" / ")[0]
    assert report.repaired[0][1].startswith(f"{hole_words} / Hole lies outside shell")
    assert snapshot(db) == before


def test_wrong_parcel_code_and_old_datum_are_refused(db, tmp_path):
    before = snapshot(db)
    frame = {"宗地代码": ["62990100100GB1", "620123001001GB00001"]}
    geoms = [lonlat_square(-3000, -5200), lonlat_square(-2800, -5200)]
    report = import_file(db, write_gpkg(tmp_path / "p.gpkg", frame, geoms), COUNTY, "parcels")
    assert report.refused[0][1].startswith("宗地代码 62990100100GB1 有误")
    assert "宗地代码应为 19 位" in report.refused[0][1]
    assert "县级行政区划代码应为本县 629901，实为 620123" in report.refused[1][1]
    write_gpkg(tmp_path / "xian80.gpkg", {"code": ["X80"]}, [gk_square(0, 0)], 2383)
    with pytest.raises(TitlemapError, match="西安80"):
        import_file(db, tmp_path / "xian80.gpkg", COUNTY, "compounds")
    assert snapshot(db) == before


# -- unsafe and broken files ---------------------------------------------------------------------


def test_zip_with_parent_path_is_refused(db, tmp_path):
    before = snapshot(db)
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as out:
        out.writestr("ok.geojson", '{"type": "FeatureCollection", "features": []}')
        out.writestr("../evil.geojson", "{}")
    with pytest.raises(TitlemapError, match="不安全的路径"):
        import_file(db, path, COUNTY, "compounds")
    assert not (tmp_path.parent / "evil.geojson").exists()
    assert snapshot(db) == before


def test_zip_bomb_is_refused_before_extracting(db, tmp_path, monkeypatch):
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        with out.open("宗地.geojson", "w") as entry:
            chunk = b" " * (1024 * 1024)
            for _ in range(64):
                entry.write(chunk)
    assert path.stat().st_size < 1024 * 1024
    extracted = []
    monkeypatch.setattr(zipfile.ZipFile, "extract", lambda *a, **k: extracted.append(a))
    monkeypatch.setattr(zipfile.ZipFile, "open", _refuse_open(zipfile.ZipFile.open, extracted))
    started = time.monotonic()
    with pytest.raises(TitlemapError, match="压缩炸弹"):
        import_file(db, path, COUNTY, "parcels")
    assert time.monotonic() - started < 5
    assert not extracted
    # The total size alone is refused too, whatever the ratio.
    with pytest.raises(TitlemapError, match="解压后过大"):
        check_zip(path, Limits(unzipped_bytes=10 * 1024 * 1024, zip_ratio=1e9))


def _refuse_open(original, seen):
    def opened(self, name, mode="r", *args, **kwargs):
        if mode == "r":
            seen.append(name)
        return original(self, name, mode, *args, **kwargs)

    return opened


def test_truncated_geopackage_gives_a_clear_error(db, tmp_path):
    before = snapshot(db)
    geoms = [lonlat_square(-3000 + 150 * k, -5600) for k in range(50)]
    path = write_gpkg(tmp_path / "ok.gpkg", {"code": [f"TR-{k}" for k in range(50)]}, geoms)
    broken = tmp_path / "broken.gpkg"
    broken.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    with pytest.raises(TitlemapError, match=r"无法读取文件 broken\.gpkg"):
        import_file(db, broken, COUNTY, "compounds")
    garbage = tmp_path / "garbage.gpkg"
    garbage.write_bytes(b"this is not a geopackage at all\n" * 100)
    with pytest.raises(TitlemapError, match="无法读取文件"):
        import_file(db, garbage, COUNTY, "compounds")
    assert snapshot(db) == before


def test_given_crs_overrides_and_must_fit(db, tmp_path):
    write_gpkg(tmp_path / "given.gpkg", {"code": ["GIVEN-1"], "name": ["指定"]},
               [gk_square(-2000, -6400)], None)  # fmt: skip
    report = import_file(db, tmp_path / "given.gpkg", COUNTY, "compounds", crs="EPSG:4544")
    assert report.ok and report.crs == "EPSG:4544" and "指定" in report.crs_note
    with pytest.raises(TitlemapError, match="不符"):
        import_file(db, tmp_path / "given.gpkg", COUNTY, "compounds", crs="4490")
    with pytest.raises(TitlemapError, match="无法识别坐标系"):
        import_file(db, tmp_path / "given.gpkg", COUNTY, "compounds", crs="no such crs")


def test_unknown_crs_is_refused_with_the_ranges(db, tmp_path):
    write_gpkg(tmp_path / "odd.gpkg", {"code": ["ODD"]}, [box(10, 10, 20, 20)], None)
    with pytest.raises(TitlemapError, match="无法从坐标范围判断坐标系"):
        import_file(db, tmp_path / "odd.gpkg", COUNTY, "compounds")


def test_classify_coordinate_ranges():
    x, y = gk(*CENTRE)
    assert classify((104.0, 35.8, 104.2, 35.9)) == ("degrees", None)
    assert classify((35.8, 104.0, 35.9, 104.2))[0] == "swapped"
    assert classify((x, y, x + 100, y + 100)) == ("gk", None)
    assert classify((x + 35e6, y, x + 35e6 + 100, y + 100)) == ("gk_prefix", 35)
    assert classify((y, x, y + 100, x + 100))[0] == "swapped"
    assert classify((y, x + 35e6, y + 100, x + 35e6 + 100))[0] == "swapped"


# -- the boundary and townships of a county with no outline yet ----------------------------------


def test_boundary_layer_unions_features_then_townships_fit_inside(db, tmp_path):
    with db.begin() as conn:
        conn.execute(
            text("INSERT INTO county (code, name, gk_epsg, target_rate, overall_rate_basis) "
                 "VALUES ('629902', '另一县', 4544, 0.9, 'sold')")
        )  # fmt: skip
    west = gk_square(-20000, -10000, 10000)
    east = gk_square(-10000, -10000, 10000)
    write_gpkg(tmp_path / "县界.gpkg", {"名称": ["西半", "东半"]}, [west, east], 4544)
    report = import_file(db, tmp_path / "县界.gpkg", "629902", "boundary")
    assert report.committed and report.added == 1
    with db.connect() as conn:
        parts, area = conn.execute(
            text("SELECT ST_NumGeometries(geom), ST_Area(ST_Transform(geom, 4544)) FROM county "
                 "WHERE code = '629902'")
        ).one()  # fmt: skip
    assert parts == 1 and abs(area - 2e8) < 1e3
    again = import_file(db, tmp_path / "县界.gpkg", "629902", "boundary")
    assert again.unchanged == 1 and again.updated == 0

    towns = {"乡镇代码": ["629902001", "629902002", "629902003"],
             "乡镇名称": ["新城街道", "东关镇", "远山乡"]}  # fmt: skip
    shapes = [gk_square(-19000, -9000, 3000), gk_square(-9000, -9000, 3000),
              gk_square(30000, -9000, 3000)]  # fmt: skip
    write_gpkg(tmp_path / "乡镇.gpkg", towns, shapes, 4544)
    towns_report = import_file(db, tmp_path / "乡镇.gpkg", "629902", "townships", partial=True)
    assert towns_report.added == 2 and refused_ids(towns_report) == ["629902003"]
    with db.connect() as conn:
        kinds = conn.execute(
            text("SELECT kind FROM township WHERE county_code = '629902' ORDER BY code")
        ).scalars()
        assert list(kinds) == ["街道", "镇"]


# -- interrupted imports -------------------------------------------------------------------------


def big_file(folder: Path, prefix: str, count: int) -> Path:
    x0, y0 = gk(*CENTRE)
    side = int(count**0.5) + 1
    geoms = [
        box(x0 - 6000 + (k % side) * 40, y0 - 6000 + (k // side) * 40,
            x0 - 6000 + (k % side) * 40 + 30, y0 - 6000 + (k // side) * 40 + 30)
        for k in range(count)
    ]  # fmt: skip
    columns = {"code": [f"{prefix}-{k:06d}" for k in range(count)],
               "name": [f"批量{k}" for k in range(count)]}  # fmt: skip
    return write_gpkg(folder / f"{prefix}.gpkg", columns, geoms, 4544)


def test_exception_during_writing_leaves_nothing(db, tmp_path):
    path = big_file(tmp_path, "INT", 6000)
    before = snapshot(db)
    calls = []

    def progress(stage, done, total):
        calls.append((stage, done, total))
        if stage.startswith("写入") and done >= 4000:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_file(db, path, COUNTY, "compounds", progress=progress)
    assert any(stage.startswith("写入") for stage, _, _ in calls)
    assert snapshot(db) == before


CHILD = """
import sys, time
from geo.db.engine import make_engine
from geo.io.importer import import_file

def progress(stage, done, total):
    if stage.startswith("写入"):
        print("writing", done, flush=True)
        time.sleep(0.5)

import_file(make_engine(sys.argv[1]), sys.argv[2], "629901", "compounds", progress=progress)
print("finished", flush=True)
"""


def test_import_killed_half_way_leaves_nothing(db, tmp_path):
    path = big_file(tmp_path, "KILL", 20000)
    before = snapshot(db)
    url = db.url.render_as_string(hide_password=False)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, url, str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    try:
        first = child.stdout.readline()
        assert first.startswith("writing"), child.stderr.read()
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    # The server notices the dead client and rolls back; wait until its backend is gone.
    with db.connect() as conn:
        for _ in range(100):
            others = conn.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                     "AND pid <> pg_backend_pid() AND state <> 'idle'")
            ).scalar_one()  # fmt: skip
            if others == 0:
                break
            time.sleep(0.1)
    assert snapshot(db) == before
    # Nothing is left over or locked: the same file imports whole.
    report = import_file(db, path, COUNTY, "compounds")
    assert report.added == 20000 and report.committed


# -- the API -------------------------------------------------------------------------------------

try:
    import python_multipart  # noqa: F401  (uploads need it: a dependency of titlemap)

    HAS_MULTIPART = True
except ImportError:
    HAS_MULTIPART = False
needs_multipart = pytest.mark.skipif(not HAS_MULTIPART, reason="python-multipart not installed")


@pytest.fixture(scope="module")
def client(db):
    return TestClient(create_app(Settings(), db))


@pytest.fixture(scope="module")
def tokens(db):
    made = {}
    with Session(db) as session:
        for role in ("viewer", "editor"):
            _, made[role] = add_user(session, COUNTY, f"import-{role}", role)
        session.commit()
    return made


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def upload(client, token, path: Path, layer: str, **fields):
    with path.open("rb") as handle:
        return client.post(
            "/api/imports",
            files={"file": (path.name, handle, "application/octet-stream")},
            data={"layer": layer, **fields},
            headers=auth(token) if token else {},
        )


@needs_multipart
def test_api_viewer_is_forbidden_and_editor_imports(db, client, tokens, tmp_path):
    geoms = [lonlat_square(-2000 + 150 * k, -6000) for k in range(3)]
    path = write_gpkg(tmp_path / "api.gpkg", {"code": [f"API-{k}" for k in range(3)],
                                              "name": ["一", "二", "三"]}, geoms)  # fmt: skip
    before = snapshot(db)
    assert upload(client, None, path, "compounds").status_code == 401
    assert upload(client, tokens["viewer"], path, "compounds").status_code == 403
    assert snapshot(db) == before
    answer = upload(client, tokens["editor"], path, "compounds")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["added"] == 3 and body["committed"] and body["source"] == "api.gpkg"
    assert upload(client, tokens["editor"], path, "nonsense").status_code == 422


@needs_multipart
def test_api_refusals_are_422_with_the_report(db, client, tokens, tmp_path):
    path = far_file(tmp_path, "APIFAR")
    before = snapshot(db)
    answer = upload(client, tokens["editor"], path, "compounds")
    assert answer.status_code == 422
    body = answer.json()
    assert not body["committed"] and body["refused"][0]["id"] == "APIFAR-3"
    assert snapshot(db) == before
    partial = upload(client, tokens["editor"], path, "compounds", partial="true")
    assert partial.status_code == 200 and partial.json()["added"] == 3
    broken = tmp_path / "broken.gpkg"
    broken.write_bytes(b"SQLite format 3\x00" + b"\x00" * 500)
    bad = upload(client, tokens["editor"], broken, "compounds")
    assert bad.status_code == 422 and "无法读取" in bad.json()["detail"]


@needs_multipart
def test_api_upload_over_the_limit_is_413(client, tokens, tmp_path):
    client.app.state.import_limits = Limits(upload_bytes=50_000)
    try:
        path = tmp_path / "big.geojson"
        path.write_bytes(b" " * 200_000)
        assert upload(client, tokens["editor"], path, "compounds").status_code == 413
    finally:
        client.app.state.import_limits = None


def test_import_of_many_compounds_is_quick(db, tmp_path):
    path = big_file(tmp_path, "PERF", 20000)
    started = time.monotonic()
    report = import_file(db, path, COUNTY, "compounds")
    assert report.added == 20000
    assert time.monotonic() - started < 30
    again = import_file(db, path, COUNTY, "compounds")
    assert again.unchanged == 20000


@needs_multipart
def test_api_streamed_upload_without_length_is_cut_at_the_limit(client, tokens):
    client.app.state.import_limits = Limits(upload_bytes=50_000)
    boundary = "titlemap-test-boundary"

    def body():
        yield (f'--{boundary}\r\nContent-Disposition: form-data; name="layer"\r\n\r\n'
               "compounds\r\n").encode()  # fmt: skip
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            'filename="a.geojson"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        for _ in range(30):
            yield b" " * 10_000
        yield f"\r\n--{boundary}--\r\n".encode()

    try:
        answer = client.post(
            "/api/imports",
            content=body(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}",
                     **auth(tokens["editor"])},
        )  # fmt: skip
        assert answer.status_code == 413
        assert "上限" in answer.json()["detail"]
    finally:
        client.app.state.import_limits = None
