"""Gauss-Krüger zones and measured areas."""

import pytest
from sqlalchemy import text

from geo import TitlemapError
from geo.core.crs import (
    area_m2,
    geodesic_area_m2,
    gk_epsg,
    gk_zone,
    measuring_epsg,
    to_projected,
    to_storage,
    zone_of_epsg,
)


@pytest.mark.parametrize(
    ("lon", "zone", "prefixed", "plain"),
    [
        (104.1, 35, 4523, 4544),  # the demo county, Lanzhou's zone (CM 105°E)
        (103.49, 34, 4522, 4543),
        (103.51, 35, 4523, 4544),
        (75.2, 25, 4513, 4534),
        (134.9, 45, 4533, 4554),
        (116.4, 39, 4527, 4548),  # Beijing, CM 117°E
    ],
)
def test_zone_and_epsg_from_longitude(lon, zone, prefixed, plain):
    assert gk_zone(lon) == zone
    assert gk_epsg(lon, zone_prefix=True) == prefixed
    assert gk_epsg(lon) == plain
    assert zone_of_epsg(plain) == (zone, False)
    assert zone_of_epsg(prefixed) == (zone, True)


@pytest.mark.parametrize("lon", [10.0, 140.0])
def test_longitude_outside_china_is_refused(lon):
    with pytest.raises(TitlemapError, match="75°–135°E"):
        gk_zone(lon)


def test_configured_zone_overrides_and_is_checked():
    assert measuring_epsg(104.1, override=4543) == 4543
    with pytest.raises(TitlemapError):
        measuring_epsg(104.1, override=3857)


def test_projection_round_trip_is_millimetre_exact(demo):
    polygon = demo.compounds.geometry.iloc[0]
    back = to_storage(to_projected(polygon, 4544), 4544)
    assert back.equals_exact(polygon, tolerance=1e-9)


def test_python_areas_agree_with_geodesic_within_a_tenth_of_a_percent(demo):
    for polygon in demo.compounds.geometry:
        planar, geodesic = area_m2(polygon, 4544), geodesic_area_m2(polygon)
        assert abs(planar - geodesic) / geodesic < 0.001


def test_postgis_areas_agree_with_pyproj_geodesic_within_a_tenth_of_a_percent(engine, demo):
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT code, ST_Area(ST_Transform(geom, 4544)) FROM compound")
        ).all()
    measured = dict(rows)
    assert len(measured) == len(demo.compounds) >= 150
    for code, polygon in zip(demo.compounds.code, demo.compounds.geometry, strict=True):
        geodesic = geodesic_area_m2(polygon)
        assert abs(measured[code] - geodesic) / geodesic < 0.001, code
