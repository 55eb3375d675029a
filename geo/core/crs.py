"""Coordinate reference systems: EPSG:4490 for storage, the county's Gauss-Krüger zone to measure.

CGCS2000 3-degree Gauss-Krüger zone n has its central meridian at 3n°E; EPSG numbers it
4513 + (n − 25) with the zone number in the false easting (e.g. 35 500 000 m) and
4534 + (n − 25) without (500 000 m). China spans zones 25 (75°E) to 45 (135°E).
"""

import numpy as np
import shapely
from pyproj import CRS, Geod, Transformer
from shapely import Geometry

from geo import TitlemapError

STORAGE_EPSG = 4490
FIRST_ZONE, LAST_ZONE = 25, 45
CGCS2000_GEOD = Geod(ellps="GRS80")  # CGCS2000's ellipsoid differs from GRS80 by < 0.1 mm


def gk_zone(longitude: float) -> int:
    """The 3-degree zone whose central meridian is nearest to `longitude`."""
    zone = int(longitude / 3 + 0.5)
    if not FIRST_ZONE <= zone <= LAST_ZONE:
        raise TitlemapError(
            f"经度 {longitude:.4f}° 不在中国 3 度带 (75°–135°E) / longitude outside China's zones"
        )
    return zone


def gk_epsg(longitude: float, zone_prefix: bool = False) -> int:
    """EPSG code of the CGCS2000 3-degree GK zone at `longitude`."""
    offset = gk_zone(longitude) - FIRST_ZONE
    return (4513 if zone_prefix else 4534) + offset


def zone_of_epsg(epsg: int) -> tuple[int, bool]:
    """(zone, has_prefix) for a CGCS2000 3-degree GK EPSG code."""
    if 4513 <= epsg <= 4533:
        return epsg - 4513 + FIRST_ZONE, True
    if 4534 <= epsg <= 4554:
        return epsg - 4534 + FIRST_ZONE, False
    raise TitlemapError(f"EPSG:{epsg} 不是 CGCS2000 3 度带 / not a CGCS2000 3-degree GK zone")


def measuring_epsg(longitude: float, override: int | None = None) -> int:
    """The EPSG in which a county measures: its configured zone, else the one at its longitude."""
    if override is not None:
        zone_of_epsg(override)
        return override
    return gk_epsg(longitude)


def transformer(source: int, target: int) -> Transformer:
    # always_xy: EPSG defines GK with northing first; we keep x = easting/longitude everywhere.
    return Transformer.from_crs(CRS.from_epsg(source), CRS.from_epsg(target), always_xy=True)


def reproject(geom: Geometry, source: int, target: int) -> Geometry:
    """`geom` (or an array of them) from EPSG `source` to `target`, x first."""
    move = transformer(source, target)
    return shapely.transform(geom, lambda xy: np.column_stack(move.transform(xy[:, 0], xy[:, 1])))


def to_projected(geom: Geometry, epsg: int) -> Geometry:
    return reproject(geom, STORAGE_EPSG, epsg)


def to_storage(geom: Geometry, epsg: int) -> Geometry:
    return reproject(geom, epsg, STORAGE_EPSG)


def area_m2(geom: Geometry, epsg: int) -> float:
    """Planar area in the county's GK zone (what a surveyor's plan shows)."""
    return to_projected(geom, epsg).area


def length_m(geom: Geometry, epsg: int) -> float:
    return to_projected(geom, epsg).length


def geodesic_area_m2(geom: Geometry) -> float:
    """Area on the CGCS2000 ellipsoid, for checking planar figures."""
    return abs(CGCS2000_GEOD.geometry_area_perimeter(geom)[0])


def sql_area(column: str, epsg: int) -> str:
    """SQL for the GK-zone area of a 4490 geometry column (PostGIS does the work)."""
    return f"ST_Area(ST_Transform({column}, {int(epsg)}))"
