"""CRS for OGC API – Features Part 2: the URIs the API speaks, parsing them, axis order.

Output and `bbox-crs` / `filter-crs` in CRS84 (lon/lat, the default), EPSG:4490, EPSG:4326
(both lat/lon, the EPSG axis order) and the county's two Gauss-Krüger EPSG codes (northing,
easting). Storage is EPSG:4490; 4326 is served as the same coordinates, as PROJ does
(CGCS2000 and WGS84 agree within centimetres).
"""

import re
from dataclasses import dataclass
from functools import lru_cache

from pyproj import CRS, Transformer

from geo import TitlemapError
from geo.core.crs import STORAGE_EPSG, zone_of_epsg

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/{}"
STORAGE_CRS = EPSG_URI.format(STORAGE_EPSG)


@dataclass(frozen=True)
class OutputCrs:
    """A CRS the API speaks: its URI, the PostGIS SRID holding it, and whether its first axis
    is north (EPSG:4490 / 4326 are lat, lon; Gauss-Krüger is northing, easting)."""

    uri: str
    srid: int  # 4490 for every geographic one (4326 is served as the same coordinates)
    north_first: bool
    geographic: bool

    @property
    def precision(self) -> int:
        return 7 if self.geographic else 3  # ≈ 1 cm either way

    def check_within(self, bounds: tuple[float, ...], zh: str, en: str) -> None:
        """Refuse a bbox or geometry (`zh` / `en` name it) whose x-first `bounds` leave the
        area this CRS holds: lon/lat for a geographic one; for Gauss-Krüger its zone's area of
        use with a margin (beyond it PostGIS cannot project, or distorts beyond use)."""
        minx, miny, maxx, maxy = GEOGRAPHIC if self.geographic else domain(self.srid)
        if minx <= bounds[0] and bounds[2] <= maxx and miny <= bounds[1] and bounds[3] <= maxy:
            return
        if self.geographic:
            raise TitlemapError(f"{zh}超出经纬度范围 / {en} outside lon/lat range")
        span = f"{minx:.0f}–{maxx:.0f}", f"{miny:.0f}–{maxy:.0f}"
        raise TitlemapError(
            f"{zh}超出 EPSG:{self.srid} 的适用范围（东 {span[0]}，北 {span[1]} 米）/ {en} "
            f"outside the area EPSG:{self.srid} holds (easting {span[0]}, northing {span[1]} m)"
        )

    def geometry_sql(self, column: str = "s.geom") -> str:
        """SQL turning a stored EPSG:4490 geometry into this CRS and axis order."""
        geom = column if self.srid == STORAGE_EPSG else f"ST_Transform({column}, {self.srid})"
        return f"ST_FlipCoordinates({geom})" if self.north_first else geom


GEOGRAPHIC = (-180.0, -90.0, 180.0, 90.0)
DOMAIN_MARGIN = 3.0  # degrees around a projected CRS's area of use still taken


@lru_cache(maxsize=64)
def domain(epsg: int) -> tuple[float, float, float, float]:
    """(minx, miny, maxx, maxy), x first, of a projected CRS: its area of use widened by
    DOMAIN_MARGIN degrees (a county near a zone's edge reaches past it), projected."""
    west, south, east, north = CRS.from_epsg(epsg).area_of_use.bounds
    m = DOMAIN_MARGIN
    to_crs = Transformer.from_crs(STORAGE_EPSG, epsg, always_xy=True)
    return to_crs.transform_bounds(
        west - m, max(south - m, -85.0), east + m, min(north + m, 85.0), densify_pts=21
    )


@lru_cache(maxsize=64)
def _north_first(epsg: int) -> bool:
    return CRS.from_epsg(epsg).axis_info[0].direction == "north"


def supported_crs(county_epsg: int) -> dict[str, OutputCrs]:
    """URI → OutputCrs: CRS84, EPSG:4490, EPSG:4326 and the county's GK zone (both numberings)."""
    _, prefixed = zone_of_epsg(county_epsg)
    twin = county_epsg + 21 if prefixed else county_epsg - 21  # 4523 ↔ 4544
    found = {CRS84: OutputCrs(CRS84, STORAGE_EPSG, False, True)}
    for epsg in (4490, 4326):
        found[EPSG_URI.format(epsg)] = OutputCrs(
            EPSG_URI.format(epsg), STORAGE_EPSG, _north_first(epsg), True
        )
    for epsg in (county_epsg, twin):
        uri = EPSG_URI.format(epsg)
        found[uri] = OutputCrs(uri, epsg, _north_first(epsg), False)
    return found


_SHORT_CRS = re.compile(r"^\[?(EPSG|OGC):(?:[0-9.]+:)?([0-9A-Z]+)\]?$", re.IGNORECASE)


def parse_crs(value: str | None, county_epsg: int, parameter: str = "crs") -> OutputCrs:
    """The CRS a `crs` / `bbox-crs` / `filter-crs` value names (a URI, or EPSG:n / [EPSG:n]);
    CRS84 when empty. Unknown → TitlemapError listing the supported URIs."""
    known = supported_crs(county_epsg)
    if not value:
        return known[CRS84]
    uri = value.strip()
    short = _SHORT_CRS.match(uri)
    if short:
        authority, code = short.group(1).upper(), short.group(2).upper()
        uri = CRS84 if authority == "OGC" else EPSG_URI.format(code)
    uri = uri.replace("https://", "http://")
    if uri not in known:
        raise TitlemapError(
            f"不支持的坐标系 / unsupported {parameter} {value!r}; 可选 / supported: "
            + ", ".join(known)
        )
    return known[uri]
