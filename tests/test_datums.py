"""Old datums (Xi'an 1980 / Beijing 1954 with seven parameters) and GCJ-02, against pyproj and
published points; the GCJ-02 offset warning on demo compounds shifted the way Gaode draws them.
"""

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
from pyproj import CRS, Transformer
from shapely.geometry import box
from sqlalchemy import text

from geo import TitlemapError
from geo.core.crs import CGCS2000_GEOD
from geo.io.datums import (
    BEIJING54,
    XIAN80,
    Helmert,
    datum_of,
    gcj02_to_wgs84,
    gk_crs,
    old_datum_transformer,
    parse_helmert,
    settings_helmert,
    to_gcj02_geometries,
    wgs84_to_gcj02,
)
from geo.io.importer import import_file

COUNTY = "629901"
TO_GK = Transformer.from_crs(4490, 4544, always_xy=True)
PARAMETERS = (-12.345, 85.678, 33.210, 0.456, -1.234, 2.567, -3.21)


def gk(geom):
    return shapely.transform(geom, lambda xy: np.column_stack(TO_GK.transform(*xy.T)))


# -- GCJ-02 ----------------------------------------------------------------------------------


def test_gcj02_forward_matches_a_published_point():
    # coord-convert's README: wgs2gcj(120, 40) → 120.00567568355486, 40.0013047896019
    lon, lat = wgs84_to_gcj02(120.0, 40.0)
    assert lon[0] == pytest.approx(120.00567568355486, abs=1e-9)
    assert lat[0] == pytest.approx(40.0013047896019, abs=1e-9)
    back_lon, back_lat = gcj02_to_wgs84(120.00567568355486, 40.0013047896019)
    assert (back_lon[0], back_lat[0]) == pytest.approx((120.0, 40.0), abs=1e-9)


def test_gcj02_inverse_is_exact_to_a_millimetre_across_china():
    lon, lat = np.meshgrid(np.linspace(74, 134, 31), np.linspace(18, 53, 36))
    lon, lat = lon.ravel(), lat.ravel()
    shifted = wgs84_to_gcj02(lon, lat)
    back_lon, back_lat = gcj02_to_wgs84(*shifted)
    _, _, error = CGCS2000_GEOD.inv(lon, lat, back_lon, back_lat)
    assert error.max() < 0.001  # the stated accuracy of the inverse (against the forward)
    _, _, offset = CGCS2000_GEOD.inv(lon, lat, *shifted)
    assert 10 < offset.min() and offset.max() < 1000  # the tens to hundreds of metres it moves


def test_gcj02_offset_at_the_demo_county_is_a_few_hundred_metres():
    lon, lat = wgs84_to_gcj02(104.1, 35.85)
    _, _, metres = CGCS2000_GEOD.inv(104.1, 35.85, lon[0], lat[0])
    assert 50 < metres < 700


# -- seven parameters --------------------------------------------------------------------------


def test_parameters_in_the_shapes_offices_write_them():
    expected = Helmert(*PARAMETERS)
    assert parse_helmert("-12.345,85.678,33.210,0.456,-1.234,2.567,-3.21") == expected
    assert parse_helmert(" -12.345，85.678，33.210，0.456，-1.234，2.567，-3.21 ") == expected
    assert parse_helmert("-12.345 85.678 33.21 0.456 -1.234 2.567 -3.21") == expected
    factor = parse_helmert("1,2,3,0,0,0,1.0000034")  # a scale factor, not ppm
    assert factor.ppm == pytest.approx(3.4)
    assert parse_helmert("1,2,3,0,0,0,1").ppm == 1.0  # plainly ppm
    assert parse_helmert(",,,,,,") is None and parse_helmert("0,0,0,0,0,0,0") is None
    with pytest.raises(TitlemapError, match="缺少 rx,ry,rz,k"):
        parse_helmert("1,2,3")
    with pytest.raises(TitlemapError, match="无法识别"):
        parse_helmert("1,2,3,a,5,6,7")
    with pytest.raises(TitlemapError, match="position_vector"):
        parse_helmert("1,2,3,4,5,6,7", "bursa")


def test_county_parameters_per_datum_from_the_setting():
    setting = "xian80=1,2,3,0.1,0.2,0.3,4;beijing54=10,20,30,1,2,3,40"
    assert settings_helmert(setting, XIAN80, "position_vector").dx == 1
    assert settings_helmert(setting, BEIJING54, "coordinate_frame").dx == 10
    assert settings_helmert("西安80=5,5,5,0,0,0,1", BEIJING54, "position_vector") is None
    assert settings_helmert("5,5,5,0,0,0,1", BEIJING54, "position_vector").dx == 5
    assert datum_of("1954北京坐标系") is BEIJING54 and datum_of("Xian 1980") is XIAN80


def old_gk_points() -> tuple[np.ndarray, np.ndarray]:
    return np.array([424921.144, 425500.0, 440000.0]), np.array([3963101.569, 3950000.0, 3990000.0])


@pytest.mark.parametrize("datum,ellipsoid", [(XIAN80, "+a=6378140 +rf=298.257"),
                                             (BEIJING54, "+ellps=krass")])  # fmt: skip
def test_helmert_pipeline_matches_pyproj_towgs84(datum, ellipsoid):
    """+towgs84 is PROJ's own position-vector Helmert: ours must agree to the millimetre."""
    x, y = old_gk_points()
    theirs_crs = CRS.from_proj4(
        f"+proj=tmerc +lat_0=0 +lon_0=105 +k=1 +x_0=500000 +y_0=0 {ellipsoid} "
        f"+towgs84={','.join(map(str, PARAMETERS))} +units=m +no_defs"
    )
    lon, lat = Transformer.from_crs(theirs_crs, 4326, always_xy=True).transform(x, y)
    ours = old_datum_transformer(gk_crs(datum, 105), datum, Helmert(*PARAMETERS))
    our_lon, our_lat = ours(x, y)
    _, _, gap = CGCS2000_GEOD.inv(lon, lat, our_lon, our_lat)
    assert gap.max() < 0.001
    # The coordinate-frame convention is the same with the rotations' signs reversed.
    frame = Helmert(*PARAMETERS[:3], *(-r for r in PARAMETERS[3:6]), PARAMETERS[6],
                    "coordinate_frame")  # fmt: skip
    frame_lon, frame_lat = old_datum_transformer(gk_crs(datum, 105), datum, frame)(x, y)
    _, _, same = CGCS2000_GEOD.inv(our_lon, our_lat, frame_lon, frame_lat)
    assert same.max() < 0.001
    # and the convention matters: the same numbers read the other way land elsewhere
    other = Helmert(*PARAMETERS, "coordinate_frame")
    moved_lon, moved_lat = old_datum_transformer(gk_crs(datum, 105), datum, other)(x, y)
    _, _, apart = CGCS2000_GEOD.inv(our_lon, our_lat, moved_lon, moved_lat)
    assert apart.min() > 0.1


# -- imports with a database -------------------------------------------------------------------


@pytest.fixture(scope="module")
def db(demo_database):
    with demo_database("datums") as engine:
        yield engine


def count(engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def stored(engine, table: str, code: str):
    with engine.connect() as conn:
        wkb = conn.execute(
            text(f"SELECT ST_AsBinary(geom) FROM {table} WHERE code = :k"), {"k": code}
        ).scalar_one()
    return shapely.from_wkb(bytes(wkb))


def xian_gpkg(path: Path) -> tuple[Path, shapely.Geometry]:
    """A GeoPackage declaring Xi'an 1980 GK CM 105E (EPSG:2380), and where pyproj's +towgs84
    puts it."""
    square = box(424900.0, 3963300.0, 424980.0, 3963380.0)
    frame = gpd.GeoDataFrame({"code": ["X80-GPKG"], "name": ["西安80小区"]}, geometry=[square],
                             crs=2380)  # fmt: skip
    pyogrio.write_dataframe(frame, path, driver="GPKG")
    towgs84 = CRS.from_proj4(
        "+proj=tmerc +lat_0=0 +lon_0=105 +k=1 +x_0=500000 +y_0=0 +a=6378140 +rf=298.257 "
        f"+towgs84={','.join(map(str, PARAMETERS))} +units=m +no_defs"
    )
    move = Transformer.from_crs(towgs84, 4326, always_xy=True)
    return path, shapely.transform(square, lambda xy: np.column_stack(move.transform(*xy.T)))


def test_xian80_geopackage_needs_parameters_and_then_lands_where_pyproj_says(db, tmp_path):
    path, expected = xian_gpkg(tmp_path / "xian.gpkg")
    before = count(db, "compound")
    with pytest.raises(TitlemapError, match="西安80") as refused:
        import_file(db, path, COUNTY, "compounds")
    assert "TITLEMAP_DATUM_PARAMETERS" in str(refused.value)
    assert count(db, "compound") == before
    report = import_file(db, path, COUNTY, "compounds",
                         parameters=",".join(map(str, PARAMETERS)))  # fmt: skip
    assert report.committed and report.added == 1, report.lines()
    assert "--parameters" in report.crs_note
    assert gk(stored(db, "compound", "X80-GPKG")).hausdorff_distance(gk(expected)) < 0.001


def test_county_parameters_come_from_the_caller(db, tmp_path):
    """The CLI and the API pass the setting TITLEMAP_DATUM_PARAMETERS in; the importer reads
    no settings of its own."""
    path, expected = xian_gpkg(tmp_path / "xian.gpkg")
    frame = gpd.read_file(path)
    frame["code"] = ["X80-SETTING"]
    pyogrio.write_dataframe(frame, path, driver="GPKG")
    setting = "xian80=" + ",".join(map(str, PARAMETERS))
    report = import_file(db, path, COUNTY, "compounds", datum_parameters=setting)
    assert report.committed and "TITLEMAP_DATUM_PARAMETERS" in report.crs_note
    assert gk(stored(db, "compound", "X80-SETTING")).hausdorff_distance(gk(expected)) < 0.001


def demo_compounds(engine, n: int = 12) -> list[tuple[str, shapely.Geometry]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT code, ST_AsBinary(geom) FROM compound WHERE code LIKE 'XQ%' "
                 "ORDER BY code LIMIT :n"), {"n": n},
        ).all()  # fmt: skip
    return [(code, shapely.from_wkb(bytes(wkb))) for code, wkb in rows]


def geojson(path: Path, features: list[tuple[str, shapely.Geometry]]) -> Path:
    collection = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"code": code, "name": f"描图小区{k}"},
             "geometry": json.loads(shapely.to_geojson(geom))}
            for k, (code, geom) in enumerate(features)
        ],
    }  # fmt: skip
    path.write_text(json.dumps(collection, ensure_ascii=False), encoding="utf-8")
    return path


def test_gcj02_traced_compounds_are_warned_about_and_corrected(db, tmp_path):
    originals = demo_compounds(db)
    traced = [(f"GD-{k}", to_gcj02_geometries(geom)) for k, (_, geom) in enumerate(originals)]
    path = geojson(tmp_path / "gaode.geojson", traced)
    corrected = import_file(db, path, COUNTY, "compounds", gcj02=True)
    assert corrected.committed and corrected.added == len(originals), corrected.lines()
    assert not corrected.warnings and "GCJ-02" in corrected.crs_note
    for k, (_, geom) in enumerate(originals):
        assert gk(stored(db, "compound", f"GD-{k}")).hausdorff_distance(gk(geom)) < 0.001
    shifted = [(f"GX-{k}", geom) for k, (_, geom) in enumerate(traced)]
    report = import_file(db, geojson(tmp_path / "again.geojson", shifted), COUNTY, "compounds")
    assert len(report.warnings) == 1, report.lines()
    warning = report.warnings[0]
    assert "GCJ-02" in warning and "--gcj02" in warning and "米" in warning
    assert any(w.startswith("警告 / warning:") for w in report.lines())
    assert report.to_dict()["warnings"] == [warning]


def test_data_in_place_is_not_warned_about(db, tmp_path):
    copies = [(f"OK-{k}", geom) for k, (_, geom) in enumerate(demo_compounds(db))]
    report = import_file(db, geojson(tmp_path / "ok.geojson", copies), COUNTY, "compounds")
    assert report.committed and not report.warnings, report.lines()
