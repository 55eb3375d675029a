"""The land office's boundary coordinate TXT (界址点坐标交换格式): import, refusals, export.

The input files are written by hand: the ones in data/samples/ (GBK with CRLF, UTF-8 with a
BOM and full-width commas, Xi'an 1980 with and without 转换参数, swapped X/Y, a wrong 带号) and
literal text here. Their coordinates were projected once from demo-county positions with pyproj
and typed in. Everything imports into a database of this module's own (the demo county
loaded); whenever something must be refused, the whole database is compared before and after.
"""

import zipfile
from pathlib import Path

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import CRS, Transformer
from shapely.geometry import Polygon
from sqlalchemy import text
from sqlalchemy.orm import Session

from api.app import create_app
from geo import TitlemapError
from geo.core.model import LAND_USE_LABELS
from geo.core.settings import Settings
from geo.io.boundary_txt import parse
from geo.io.exports import export_layer
from geo.io.importer import import_file
from geo.io.layers import read_layer
from geo.io.registry import ImportOptions
from geo.ledger.users import add_user
from tests.conftest import run_cli

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "data" / "samples"
COUNTY = "629901"
GK = 4544  # the demo county's zone 35, no prefix
TO_GK = Transformer.from_crs(4490, GK, always_xy=True)
TABLES = ("county", "township", "compound", "parcel", "compound_parcel", "planned_area",
          "complaint", "ledger_entry", "ledger_event")  # fmt: skip


@pytest.fixture(scope="module")
def db(demo_database):
    with demo_database("boundary_txt") as engine:
        yield engine


@pytest.fixture(scope="module")
def db_url(db) -> str:
    return db.url.render_as_string(hide_password=False)


def snapshot(engine) -> dict:
    """Row counts of the tables an import can touch and a digest of parcels and compounds."""
    with engine.connect() as conn:
        state = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}
        for table in ("compound", "parcel"):
            state[f"{table}#"] = conn.execute(
                text(
                    f"SELECT md5(string_agg(code || md5(ST_AsEWKB(geom)) || md5(t::text), ',' "
                    f"ORDER BY code)) FROM {table} t"
                )
            ).scalar_one()
    return state


def gk_geometry(engine, table: str, code: str) -> shapely.Geometry:
    """A stored geometry in the county's GK metres (easting, northing)."""
    with engine.connect() as conn:
        wkb = conn.execute(
            text(f"SELECT ST_AsBinary(geom) FROM {table} WHERE county_code = :c AND code = :k"),
            {"c": COUNTY, "k": code},
        ).scalar_one()
    geom = shapely.from_wkb(bytes(wkb))
    return shapely.transform(geom, lambda xy: np.column_stack(TO_GK.transform(*xy.T)))


def gk_polygon(*rings: list[tuple[float, float]]) -> Polygon:
    """A polygon from rings typed as in the file: (X northing, Y easting)."""
    shells = [[(e, n) for n, e in ring] for ring in rings]
    return Polygon(shells[0], shells[1:])


def recorded_area(engine, code: str) -> float:
    with engine.connect() as conn:
        return float(
            conn.execute(
                text("SELECT recorded_area_m2 FROM parcel WHERE county_code = :c AND code = :k"),
                {"c": COUNTY, "k": code},
            ).scalar_one()
        )


def write_txt(path: Path, body: str, encoding: str = "gbk") -> Path:
    path.write_bytes(body.replace("\n", "\r\n").encode(encoding))
    return path


# -- import -----------------------------------------------------------------------------------


def test_gbk_file_with_three_parcels_and_a_hole_imports_exactly(db):
    report = import_file(db, SAMPLES / "宗地界址点_三地块含内环_GBK.txt", COUNTY, "parcels")
    assert report.committed and report.added == 3 and not report.refused, report.lines()
    assert report.crs == "EPSG:4544"
    assert any("GBK" in n and "3 个地块" in n for n in report.notes)
    assert any("公顷" in n for n in report.notes)
    first = gk_geometry(db, "parcel", "629901090090GB00001")
    expected = gk_polygon([(3962060, 425000), (3962060, 425100), (3962000, 425100),
                           (3962000, 425000)])  # fmt: skip
    assert first.hausdorff_distance(expected) < 0.001
    holed = gk_geometry(db, "parcel", "629901090090GB00002")
    assert len(holed.geoms) == 1 and len(holed.geoms[0].interiors) == 1
    assert holed.area == pytest.approx(11_875.0, abs=0.01)  # 12 000 + 475 bump − 600 hole
    hole = Polygon(holed.geoms[0].interiors[0])
    typed_hole = gk_polygon([(3962070, 425250), (3962070, 425270), (3962040, 425270),
                             (3962040, 425250)])  # fmt: skip
    assert hole.hausdorff_distance(typed_hole) < 0.001
    odd = gk_geometry(db, "parcel", "629901090090GB00003")
    typed = gk_polygon([(3962010.123, 425400.456), (3962080.789, 425410.111),
                        (3962075.500, 425480.250), (3962005.000, 425470.000)])  # fmt: skip
    assert odd.hausdorff_distance(typed) < 0.001
    assert recorded_area(db, "629901090090GB00002") == pytest.approx(11_875.0)  # 1.1875 公顷
    assert recorded_area(db, "629901090090GB00003") == pytest.approx(4_981.0)
    again = import_file(db, SAMPLES / "宗地界址点_三地块含内环_GBK.txt", COUNTY, "parcels")
    assert again.committed and again.unchanged == 3 and again.added == again.updated == 0


def test_utf8_bom_full_width_commas_zone_prefix_and_square_metres(db):
    report = import_file(db, SAMPLES / "宗地界址点_带号前缀_UTF8.txt", COUNTY, "parcels")
    assert report.committed and report.added == 2, report.lines()
    notes = " ".join(report.notes)
    assert "UTF-8" in notes and "前缀 35" in notes and "平方米" in notes and "闭合" in notes
    square = gk_geometry(db, "parcel", "629901090090GB00004")
    assert square.area == pytest.approx(4000.0, abs=0.01)
    assert square.bounds == pytest.approx((425600, 3962000, 425680, 3962050), abs=0.001)
    two_parts = gk_geometry(db, "parcel", "629901090090GB00005")  # 圈号 2 outside 圈号 1
    assert len(two_parts.geoms) == 2 and two_parts.area == pytest.approx(3200.0, abs=0.01)
    assert recorded_area(db, "629901090090GB00005") == pytest.approx(3200.0)


def test_swapped_xy_is_refused_and_nothing_changes(db):
    before = snapshot(db)
    with pytest.raises(TitlemapError, match="X/Y 似乎颠倒") as refused:
        import_file(db, SAMPLES / "宗地界址点_XY颠倒_GBK.txt", COUNTY, "parcels")
    assert "第 9 行" in str(refused.value) and "--trust coordinates" in str(refused.value)
    assert snapshot(db) == before
    trusted = import_file(db, SAMPLES / "宗地界址点_XY颠倒_GBK.txt", COUNTY, "parcels",
                          trust="coordinates")  # fmt: skip
    assert trusted.committed and trusted.added == 1
    assert any("交换了 X/Y" in n for n in trusted.notes)
    geom = gk_geometry(db, "parcel", "629901090090GB00007")
    assert geom.bounds == pytest.approx((425000, 3962100, 425100, 3962160), abs=0.001)


def test_zone_in_header_against_coordinates_needs_trust(db):
    path = SAMPLES / "宗地界址点_带号与坐标不符_GBK.txt"
    before = snapshot(db)
    with pytest.raises(TitlemapError, match="文件头与坐标不一致") as refused:
        import_file(db, path, COUNTY, "parcels")
    assert "带号=36" in str(refused.value) and "--trust header" in str(refused.value)
    assert snapshot(db) == before
    # Trusting the header puts it 3° east, outside the county: refused feature, nothing written.
    header = import_file(db, path, COUNTY, "parcels", trust="header")
    assert not header.committed and "超出本县范围" in header.refused[0][1]
    assert header.crs == "EPSG:4545"
    assert snapshot(db) == before
    trusted = import_file(db, path, COUNTY, "parcels", trust="coordinates")
    assert trusted.committed and trusted.added == 1 and trusted.crs == "EPSG:4544"
    geom = gk_geometry(db, "parcel", "629901090090GB00008")
    assert geom.bounds == pytest.approx((425000, 3962200, 425100, 3962260), abs=0.001)


def test_zone_prefix_against_header_zone_needs_trust(db, tmp_path):
    path = write_txt(
        tmp_path / "prefix.txt",
        """[属性描述]
坐标系=2000国家大地坐标系
几度分带=3
带号=36
[地块坐标]
5,0.3000,629901090090GB00009,,面,,,,@
J1,1,3962330.000,35425000.000
J2,1,3962330.000,35425060.000
J3,1,3962280.000,35425060.000
J4,1,3962280.000,35425000.000
J1,1,3962330.000,35425000.000
""",
    )
    before = snapshot(db)
    with pytest.raises(TitlemapError, match="前缀为 35"):
        import_file(db, path, COUNTY, "parcels")
    with pytest.raises(TitlemapError, match="header or coordinates"):
        import_file(db, path, COUNTY, "parcels", trust="maybe")
    assert snapshot(db) == before
    report = import_file(db, path, COUNTY, "parcels", trust="coordinates")
    assert report.committed and report.added == 1
    assert gk_geometry(db, "parcel", "629901090090GB00009").area == pytest.approx(3000, abs=0.01)


XIAN80 = CRS.from_proj4(
    "+proj=tmerc +lat_0=0 +lon_0=105 +k=1 +x_0=500000 +y_0=0 +a=6378140 +rf=298.257 "
    "+towgs84=-12.345,85.678,33.210,0.456,-1.234,2.567,-3.21 +units=m +no_defs"
)
XIAN_POINTS = [(3963101.569, 424921.144), (3963117.069, 424951.145), (3963101.569, 425021.146),
               (3963021.568, 425021.146), (3963021.568, 424921.144)]  # fmt: skip


def expected_from_xian() -> Polygon:
    """The Xi'an sample's points moved by pyproj's own +towgs84 (position vector), in GK."""
    to_wgs84 = Transformer.from_crs(XIAN80, CRS.from_epsg(4326), always_xy=True)
    lon, lat = to_wgs84.transform([e for _, e in XIAN_POINTS], [n for n, _ in XIAN_POINTS])
    return Polygon(np.column_stack(TO_GK.transform(lon, lat)))


def test_xian80_with_parameters_in_the_header_matches_pyproj(db):
    report = import_file(db, SAMPLES / "宗地界址点_西安80_含转换参数_GBK.txt", COUNTY, "parcels")
    assert report.committed and report.added == 1, report.lines()
    assert any("7 参数" in n and "position_vector" in n for n in report.notes)
    geom = gk_geometry(db, "parcel", "629901090090GB00006")
    assert same_vertices(geom.geoms[0], expected_from_xian())  # every vertex within 1 mm
    # and it lands where the survey meant it, to the millimetres the sample was rounded to
    first = np.asarray(geom.geoms[0].exterior.coords)[0]
    assert first == pytest.approx((425000.0, 3963080.0), abs=0.002)


def test_xian80_without_parameters_is_refused_naming_what_is_missing(db):
    path = SAMPLES / "宗地界址点_西安80_无转换参数_GBK.txt"
    before = snapshot(db)
    with pytest.raises(TitlemapError) as refused:
        import_file(db, path, COUNTY, "parcels")
    message = str(refused.value)
    for word in ("西安", "dx,dy,dz,rx,ry,rz,k", "转换参数", "--parameters",
                 "TITLEMAP_DATUM_PARAMETERS", "第 5 行"):  # fmt: skip
        assert word in message, message
    assert snapshot(db) == before
    with pytest.raises(TitlemapError, match="缺少 rz,k"):
        import_file(db, path, COUNTY, "parcels", parameters="1,2,3,0.1,0.2")
    assert snapshot(db) == before


def test_xian80_parameters_given_by_the_caller(db_url, db, tmp_path):
    text_value = (SAMPLES / "宗地界址点_西安80_无转换参数_GBK.txt").read_bytes().decode("gbk")
    path = write_txt(tmp_path / "x.txt", text_value.replace("GB00006", "GB00010").replace(
        "\r\n", "\n"))  # fmt: skip
    result = run_cli("import", str(path), "--layer", "parcels", "--parameters",
                     "-12.345，85.678，33.210，0.456，-1.234，2.567，-3.21",
                     env={"DATABASE_URL": db_url})  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "--parameters" in result.stdout and "已写入数据库" in result.stdout
    geom = gk_geometry(db, "parcel", "629901090090GB00010")
    assert same_vertices(geom.geoms[0], expected_from_xian())


def test_lines_that_are_neither_points_nor_parcels_are_named(db, tmp_path):
    path = write_txt(
        tmp_path / "bad.txt",
        """[属性描述]
坐标系=2000国家大地坐标系
带号=35
[地块坐标]
4,0.1,629901090090GB00011,,面,,,,@
J1,1,3962400.000,425000.000
J2,1,3962400.000,425050
J3,1,三九六二,425050.000
""",
        "utf-8",
    )
    before = snapshot(db)
    with pytest.raises(TitlemapError, match="第 8 行无法识别"):
        import_file(db, path, COUNTY, "parcels")
    assert snapshot(db) == before


def test_a_txt_that_is_not_a_coordinate_file_is_not_taken_for_one(db, tmp_path):
    readme = tmp_path / "说明.txt"
    readme.write_text("这是一份说明，不是坐标文件。\n", encoding="utf-8")
    with pytest.raises(TitlemapError, match="不支持的文件类型"):
        import_file(db, readme, COUNTY, "parcels")


def test_compounds_take_code_and_name_from_the_parcel_line(db, tmp_path):
    path = write_txt(
        tmp_path / "xq.txt",
        """[属性描述]
坐标系=2000国家大地坐标系
几度分带=3
带号=35
[地块坐标]
5,0.4000,TXT-XQ-1,勘测定界小区,面,,城镇住宅用地,0701,@
J1,1,3962560.000,425000.000
J2,1,3962560.000,425080.000
J3,1,3962510.000,425080.000
J4,1,3962510.000,425000.000
J1,1,3962560.000,425000.000
""",
    )
    report = import_file(db, path, COUNTY, "compounds")
    assert report.committed and report.added == 1, report.lines()
    with db.connect() as conn:
        name = conn.execute(text("SELECT name FROM compound WHERE code = 'TXT-XQ-1'")).scalar_one()
    assert name == "勘测定界小区"


# -- export and the round trip ----------------------------------------------------------------


def read_points(path: Path) -> dict[str, shapely.Geometry]:
    """Polygons per 地块编号 read straight from a file (GK metres, x = easting)."""
    layer = read_layer(path, "parcels", county_epsg=GK, options=ImportOptions(county_lon=104.1))
    return dict(zip(layer.frame["code"], layer.frame.geometry, strict=True))


def vertex_gap(a: shapely.Geometry, b: shapely.Geometry) -> float:
    """How far the farthest vertex of either is from the nearest vertex of the other (whatever
    a ring's start or direction); infinite when they differ in parts, rings or vertices."""
    shape = [shapely.get_num_geometries(a), shapely.get_num_interior_rings(shapely.get_parts(a))]
    other = [shapely.get_num_geometries(b), shapely.get_num_interior_rings(shapely.get_parts(b))]
    ca, cb = shapely.get_coordinates(a), shapely.get_coordinates(b)
    if len(ca) != len(cb) or shape[0] != other[0] or sorted(shape[1]) != sorted(other[1]):
        return float("inf")
    return float(shapely.hausdorff_distance(shapely.multipoints(ca), shapely.multipoints(cb)))


def same_vertices(a: shapely.Geometry, b: shapely.Geometry, tolerance: float = 0.001) -> bool:
    """Every vertex of `a` within `tolerance` of the matching vertex of `b`."""
    return vertex_gap(a, b) <= tolerance


def test_txt_to_database_to_txt_is_exact_to_the_millimetre(db, tmp_path):
    source = SAMPLES / "宗地界址点_三地块含内环_GBK.txt"
    import_file(db, source, COUNTY, "parcels")
    codes = [f"629901090090GB0000{k}" for k in (1, 2, 3)]
    out = export_layer(db, COUNTY, "parcels", tmp_path / "out.txt", codes=codes)
    raw = out.read_bytes()
    body = raw.decode("gbk")  # GBK by default
    assert body.startswith("[属性描述]\r\n") and "坐标系=2000国家大地坐标系" in body
    assert "带号=35\r\n" in body and "几度分带=3" in body and "[地块坐标]" in body
    assert ",1.1875,629901090090GB00002," in body and "J6,2," in body  # hole as 圈号 2
    original, again = read_points(source), read_points(out)
    assert set(again) == set(codes)
    for code in codes:
        assert same_vertices(original[code], again[code], 0.0005), code
    lines = [line for line in body.splitlines() if line.startswith("J")]
    assert all(len(line.split(",")[2].split(".")[1]) == 3 for line in lines)  # mm
    utf8 = export_layer(db, COUNTY, "parcels", tmp_path / "u.txt", codes=codes[:1], utf8=True)
    assert "示例县" in utf8.read_text("utf-8")


def test_demo_parcels_exported_and_imported_into_a_fresh_database(db, demo_database, tmp_path):
    out = export_layer(db, COUNTY, "parcels", tmp_path / "demo.txt", "boundary-txt")
    with db.connect() as conn:
        stored = {
            code: shapely.from_wkb(bytes(wkb))
            for code, wkb in conn.execute(
                text("SELECT code, ST_AsBinary(geom) FROM parcel WHERE county_code = :c"),
                {"c": COUNTY},
            )
        }  # fmt: skip
    with demo_database("boundary_txt_fresh") as fresh:
        with fresh.begin() as conn:
            conn.execute(text("DELETE FROM parcel"))
        report = import_file(fresh, out, COUNTY, "parcels")
        assert report.committed and report.added == len(stored) > 250, report.lines()
        worst = 0.0
        for code, geom in stored.items():
            back = gk_geometry(fresh, "parcel", code)
            there = shapely.transform(geom, lambda xy: np.column_stack(TO_GK.transform(*xy.T)))
            assert same_vertices(there, back), code
            worst = max(worst, vertex_gap(there, back))
        assert worst <= 0.0005 * 2**0.5 + 1e-6  # rounding each axis to the mm, nothing more
        uses = "SELECT code, land_use FROM parcel WHERE county_code = :c AND land_use IS NOT NULL"
        with db.connect() as conn, fresh.connect() as again:
            before = dict(conn.execute(text(uses), {"c": COUNTY}).all())
            assert before and dict(again.execute(text(uses), {"c": COUNTY}).all()) == before


def test_export_by_township_and_unknown_codes(db, tmp_path):
    with db.connect() as conn:
        township, expected = conn.execute(
            text("SELECT t.name, count(*) FROM compound c JOIN township t ON t.id = c.township_id "
                 "GROUP BY t.name ORDER BY count(*) DESC LIMIT 1")
        ).one()  # fmt: skip
    out = export_layer(db, COUNTY, "compounds", tmp_path / "t.txt", township=township)
    doc = parse(out.read_bytes().decode("gbk"))
    assert len(doc.parcels) == expected
    assert all(p.values["地块名称"] for p in doc.parcels)
    with pytest.raises(TitlemapError, match="没有这些编号"):
        export_layer(db, COUNTY, "parcels", tmp_path / "x.txt", codes=["629901999999GB99999"])
    with pytest.raises(TitlemapError, match="没有这个乡镇"):
        export_layer(db, COUNTY, "parcels", tmp_path / "x.txt", township="不存在乡")
    gpkg = export_layer(db, COUNTY, "compounds", tmp_path / "t.gpkg", township=township)
    assert gpkg.stat().st_size > 0


def test_cli_export_boundary_txt(db_url, tmp_path):
    out = tmp_path / "cli.txt"
    codes = "629901090090GB00001,629901090090GB00003"
    result = run_cli("export", "parcels", str(out), "--format", "boundary-txt", "--codes", codes,
                     env={"DATABASE_URL": db_url})  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    doc = parse(out.read_bytes().decode("gbk"))
    assert [p.values["地块编号"] for p in doc.parcels] == [
        "629901090090GB00001", "629901090090GB00003"
    ]  # fmt: skip
    assert doc.header["带号"] == "35" and doc.header["投影类型"] == "高斯克吕格"


# -- the API ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(db):
    return TestClient(create_app(Settings(), db))


@pytest.fixture(scope="module")
def editor(db):
    with Session(db) as session:
        _, token = add_user(session, COUNTY, "boundary-editor", "editor")
        session.commit()
    return {"Authorization": f"Bearer {token}"}


def test_api_takes_trust_and_parameters(db, client, editor, tmp_path):
    text_value = (SAMPLES / "宗地界址点_带号与坐标不符_GBK.txt").read_bytes()
    path = tmp_path / "api.txt"
    path.write_bytes(text_value.replace(b"GB00008", b"GB00012"))
    before = snapshot(db)

    def send(**fields):
        with path.open("rb") as handle:
            return client.post("/api/imports", headers=editor, data={"layer": "parcels", **fields},
                               files={"file": ("地块.txt", handle, "text/plain")})  # fmt: skip

    refused = send()
    assert refused.status_code == 422 and "--trust" in refused.json()["detail"]
    assert snapshot(db) == before
    answer = send(trust="coordinates")
    assert answer.status_code == 200, answer.text
    assert answer.json()["added"] == 1 and answer.json()["source"] == "地块.txt"
    xian = SAMPLES / "宗地界址点_西安80_无转换参数_GBK.txt"
    path.write_bytes(xian.read_bytes().replace(b"GB00006", b"GB00013"))
    assert "TITLEMAP_DATUM_PARAMETERS" in send().json()["detail"]
    given = send(parameters="-12.345,85.678,33.210,0.456,-1.234,2.567,-3.21")
    assert given.status_code == 200 and given.json()["added"] == 1


def test_api_passes_the_countys_parameters_from_its_settings(db, editor, tmp_path):
    """The importer reads no settings: the API hands it TITLEMAP_DATUM_PARAMETERS."""
    setting = "xian80=-12.345,85.678,33.210,0.456,-1.234,2.567,-3.21"
    county_client = TestClient(create_app(Settings(datum_parameters=setting), db))
    xian = SAMPLES / "宗地界址点_西安80_无转换参数_GBK.txt"
    path = tmp_path / "county.txt"
    path.write_bytes(xian.read_bytes().replace(b"GB00006", b"GB00015"))
    with path.open("rb") as handle:
        answer = county_client.post(
            "/api/imports", headers=editor, data={"layer": "parcels"},
            files={"file": ("西安80.txt", handle, "text/plain")},
        )  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert "TITLEMAP_DATUM_PARAMETERS" in " ".join(answer.json()["notes"])


def test_six_degree_zone_and_a_zip_with_a_readme(db, tmp_path):
    """几度分带=6, 带号=18 (central meridian 105°E, like 3-degree zone 35), zipped with a note."""
    body = """[属性描述]
坐标系=2000国家大地坐标系
几度分带=6
投影类型=高斯克吕格
计量单位=米
带号=18
[地块坐标]
5,0.2500,629901090090GB00014,,面,,,0701,@
J1,1,3962650.000,425000.000
J2,1,3962650.000,425050.000
J3,1,3962600.000,425050.000
J4,1,3962600.000,425000.000
J1,1,3962650.000,425000.000
"""
    archive = tmp_path / "报备.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("说明.txt", "本压缩包含一个地块。\n".encode("gbk"))
        out.writestr("地块坐标.txt", body.replace("\n", "\r\n").encode("gbk"))
    report = import_file(db, archive, COUNTY, "parcels")
    assert report.committed and report.added == 1, report.lines()
    assert report.crs == "EPSG:4507" and any("6 度带第 18 带" in n for n in report.notes)
    geom = gk_geometry(db, "parcel", "629901090090GB00014")
    assert geom.bounds == pytest.approx((425000, 3962600, 425050, 3962650), abs=0.001)


def test_api_exports_chosen_parcels_as_boundary_txt(db, client):
    with db.connect() as conn:
        codes = conn.execute(
            text("SELECT code FROM parcel WHERE county_code = :c ORDER BY code LIMIT 3"),
            {"c": COUNTY},
        ).scalars().all()  # fmt: skip
    answer = client.get("/api/exports/parcels.txt", params={"codes": ",".join(codes)})
    assert answer.status_code == 200, answer.text
    assert "gb18030" in answer.headers["content-type"]
    assert ".txt" in answer.headers["content-disposition"]
    doc = parse(answer.content.decode("gbk"))
    assert sorted(p.values["地块编号"] for p in doc.parcels) == sorted(codes)
    for parcel in doc.parcels:  # the code and its name, as land offices write both
        if parcel.values["地类编码"] in LAND_USE_LABELS:
            assert parcel.values["地块用途"] == LAND_USE_LABELS[parcel.values["地类编码"]]
    utf8 = client.get("/api/exports/parcels.txt", params={"codes": codes[0], "utf8": "true"})
    assert utf8.status_code == 200 and "[地块坐标]" in utf8.content.decode("utf-8")
    unknown = client.get("/api/exports/parcels.txt", params={"codes": "629901999999GB99999"})
    assert unknown.status_code == 422 and "没有这些编号" in unknown.json()["detail"]


def test_an_uploaded_survey_keeps_its_plots_under_the_uploads_own_name(db, client, editor):
    """A survey without 项目名称 and without 宗地代码: over the API its plots are kept under the
    name the file was sent with (the server stores it as upload.txt), and the checks flag them."""
    body = """[属性描述]
坐标系=2000国家大地坐标系
几度分带=3
带号=35
[地块坐标]
5,0.4000,1,东岗安置地块,面,,城镇住宅用地,0701,@
J1,1,3962360.000,425000.000
J2,1,3962360.000,425080.000
J3,1,3962310.000,425080.000
J4,1,3962310.000,425000.000
J1,1,3962360.000,425000.000
"""
    sent = ("东岗勘测定界.txt", body.replace("\n", "\r\n").encode("gbk"), "text/plain")
    answer = client.post("/api/imports", headers=editor, data={"layer": "parcels"},
                         files={"file": sent})  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json()["added"] == 1 and "尚无宗地代码" in " ".join(answer.json()["notes"])
    assert recorded_area(db, "东岗勘测定界-1") == pytest.approx(4000)
    page = client.get("/parcels/东岗勘测定界-1", params={"county": COUNTY})
    assert page.status_code == 200 and "尚无宗地代码" in page.text
    # the map's search box finds it by its plot number, and % or _ in a search match literally
    found = client.get("/api/parcels", params={"q": "东岗勘测定界", "county": COUNTY})
    assert found.status_code == 200
    assert [f["properties"]["code"] for f in found.json()["features"]] == ["东岗勘测定界-1"]
    assert client.get("/api/parcels", params={"q": "%", "county": COUNTY}).json()["features"] == []
    search = client.get("/parcels", params={"code": " 东岗勘测定界-1 ", "county": COUNTY},
                        follow_redirects=False)  # fmt: skip
    assert search.status_code == 303 and "/parcels/%E4%B8%9C" in search.headers["location"]


def test_a_survey_plot_takes_its_parcel_code_later(db, db_url, client, editor):
    """The plot uploaded above gets its 宗地代码 from the registry: same row, same outline."""
    plot = "东岗勘测定界-1"
    with db.connect() as conn:
        before = conn.execute(text("SELECT id, ST_AsText(geom) FROM parcel WHERE code = :k"),
                              {"k": plot}).one()  # fmt: skip
    wrong = run_cli("parcel", "code", plot, "629901001001GA00077", env={"DATABASE_URL": db_url})
    assert wrong.returncode == 1 and len(wrong.stderr.strip().splitlines()) == 1
    assert "宗地代码" in wrong.stderr
    taken = client.patch(f"/api/parcels/{plot}", json={"code": "629901001001GB00001"},
                         headers=editor)  # fmt: skip
    assert taken.status_code == 422 and "已被另一宗地使用" in taken.json()["detail"]
    assert (
        client.patch(f"/api/parcels/{plot}", json={"code": "629901001001GB99977"}).status_code
        == 401
    )
    done = client.patch(f"/api/parcels/{plot}", json={"code": "629901001001gb99977"},
                        headers=editor)  # fmt: skip
    assert done.status_code == 200 and done.json() == {"old": plot, "new": "629901001001GB99977"}
    with db.connect() as conn:
        after = conn.execute(text("SELECT id, ST_AsText(geom) FROM parcel WHERE code = :k"),
                             {"k": "629901001001GB99977"}).one()  # fmt: skip
    assert tuple(after) == tuple(before)
    again = client.patch(f"/api/parcels/{plot}", json={"code": "629901001001GB99978"},
                         headers=editor)  # fmt: skip
    assert again.status_code == 422 and "没有宗地" in again.json()["detail"]
