"""The source CRS of an imported file: the caller's, the file's own, or one inferred from the
coordinate ranges — always said in words.

`classify` tells what a file's coordinate ranges look like (degrees, Gauss-Krüger metres with or
without the zone number in front of the eastings, swapped axes); `decide_crs` picks the CRS:
`given` over the file's own over the inferred one. Swapped axes are refused, never swapped;
Xi'an 1980 / Beijing 1954 are moved with seven parameters (`geo.io.datums`) or refused. The
`CrsDecision` moves the geometries to EPSG:4490 (`to_storage`).
"""

from dataclasses import dataclass

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from geo import TitlemapError
from geo.core.crs import FIRST_ZONE, LAST_ZONE, STORAGE_EPSG, zone_of_epsg
from geo.io.datums import (
    XY,
    gcj02_geometries,
    missing_parameters,
    old_datum_of_crs,
    old_datum_transformer,
    parse_helmert,
    settings_helmert,
)
from geo.io.registry import ImportOptions

CGCS2000 = CRS.from_epsg(STORAGE_EPSG)


@dataclass
class CrsDecision:
    """The source CRS of a file's coordinates and how it was decided."""

    crs: CRS
    label: str  # e.g. "EPSG:4544"
    how: str  # "file", "given" or "inferred"
    note: str  # what was assumed, in words
    old_datum: XY | None = None  # Xi'an 1980 / Beijing 1954 with parameters: x, y → lon, lat
    gcj02: bool = False  # the lon/lat are GCJ-02: correct them after the move

    def to_storage(self, geoms) -> np.ndarray:
        """`geoms` (in this CRS, x first) as EPSG:4490 lon/lat."""
        geoms = np.asarray(geoms, dtype=object)
        if self.old_datum is not None:
            move_xy = self.old_datum
        elif _same_as_storage(self.crs):
            move_xy = None
        else:
            move = Transformer.from_crs(self.crs, CGCS2000, always_xy=True)
            move_xy = move.transform
        if move_xy is not None:

            def apply(xy: np.ndarray) -> np.ndarray:
                return np.column_stack(move_xy(xy[:, 0], xy[:, 1]))

            geoms = shapely.transform(geoms, apply)
        return gcj02_geometries(geoms) if self.gcj02 else geoms


def _same_as_storage(crs: CRS) -> bool:
    # WGS84 and CGCS2000 differ by centimetres to a metre: both are stored as they are.
    return crs.is_geographic and crs.to_epsg() in (STORAGE_EPSG, 4326)


def _label(crs: CRS) -> str:
    epsg = crs.to_epsg(min_confidence=70)
    return f"EPSG:{epsg}" if epsg else crs.name


def _old_datum(crs: CRS, how: str, options: ImportOptions) -> CrsDecision | None:
    """For Xi'an 1980 / Beijing 1954: a decision moving by the caller's or the county's seven
    parameters; refused when there are none. None for any other datum."""
    datum = old_datum_of_crs(crs)
    if datum is None:
        return None
    helmert = parse_helmert(options.parameters, options.convention)
    source = "--parameters"
    if helmert is None:
        helmert = settings_helmert(options.county_parameters, datum, options.convention)
        source = "TITLEMAP_DATUM_PARAMETERS"
    if helmert is None:
        raise missing_parameters(datum, f"{crs.name}：")
    label = _label(crs)
    return CrsDecision(
        crs, label, how,
        f"{label}（{datum.label}）按 {source} 的 7 参数换算到 CGCS2000：{helmert.describe()} / "
        f"{datum.label} moved to CGCS2000 with the seven parameters from {source}",
        old_datum=old_datum_transformer(crs, datum, helmert),
    )  # fmt: skip


def given_crs(value: str | int) -> CRS:
    """A CRS from "4544", "EPSG:4544", 4544 or any string pyproj understands."""
    text_value = str(value).strip()
    try:
        crs = CRS.from_epsg(int(text_value)) if text_value.isdigit() else CRS(text_value)
    except (CRSError, ValueError):
        raise TitlemapError(
            f"无法识别坐标系 {text_value!r} / unknown CRS: 请写 EPSG 编号，如 4490、4544 "
            "/ give an EPSG code such as 4490 or 4544"
        ) from None
    return crs


def _is_degrees(lo: float, hi: float, low: float, high: float) -> bool:
    return low <= lo and hi <= high


def _easting(lo: float, hi: float) -> bool:
    return 100_000 <= lo and hi <= 900_000


def _northing(lo: float, hi: float) -> bool:
    return 1_500_000 <= lo and hi <= 6_000_000


def _prefixed_zone(lo: float, hi: float) -> int | None:
    zone = int(lo // 1_000_000)
    if FIRST_ZONE <= zone <= LAST_ZONE and int(hi // 1_000_000) == zone:
        if _easting(lo - zone * 1_000_000, hi - zone * 1_000_000):
            return zone
    return None


def classify(bounds) -> tuple[str, int | None]:
    """What the coordinate ranges look like: ("degrees" | "gk" | "gk_prefix" | "swapped" |
    "unknown", zone for gk_prefix)."""
    minx, miny, maxx, maxy = bounds
    if _is_degrees(minx, maxx, 73, 136) and _is_degrees(miny, maxy, 3, 54):
        return "degrees", None
    if _is_degrees(minx, maxx, 3, 54) and _is_degrees(miny, maxy, 73, 136):
        return "swapped", None
    zone = _prefixed_zone(minx, maxx)
    if zone and _northing(miny, maxy):
        return "gk_prefix", zone
    if _easting(minx, maxx) and _northing(miny, maxy):
        return "gk", None
    if _northing(minx, maxx) and (_easting(miny, maxy) or _prefixed_zone(miny, maxy)):
        return "swapped", None
    return "unknown", None


def _ranges(bounds) -> str:
    minx, miny, maxx, maxy = bounds
    return f"X {minx:,.2f} … {maxx:,.2f}, Y {miny:,.2f} … {maxy:,.2f}"


def _swapped(bounds) -> TitlemapError:
    return TitlemapError(
        f"X/Y 似乎颠倒（X 像北坐标或纬度，Y 像东坐标或经度；{_ranges(bounds)}）：请在源软件中交换"
        "坐标列后重新导出，titlemap 不会自动交换 / axes appear swapped (X looks like a northing or "
        "latitude): swap them in the source and export again"
    )


def _inferred(epsg: int, note: str) -> CrsDecision:
    return CrsDecision(CRS.from_epsg(epsg), f"EPSG:{epsg}", "inferred", note)


def _infer(bounds, county_epsg: int | None, why: tuple[str, str]) -> CrsDecision:
    """A CRS from the coordinate ranges; `why` says (in Chinese, in English) why inferring."""
    cn, en = why
    kind, zone = classify(bounds)
    if kind == "degrees":
        return CrsDecision(
            CGCS2000, f"EPSG:{STORAGE_EPSG}", "inferred",
            f"{cn}，坐标为经纬度，按 CGCS2000 (EPSG:4490) 处理（WGS84 与之相差不到 1 米）/ "
            f"{en}; coordinates are degrees: taken as CGCS2000 (WGS84 differs by less than 1 m)",
        )  # fmt: skip
    if kind == "gk_prefix":
        epsg = 4513 + zone - FIRST_ZONE
        return _inferred(
            epsg,
            f"{cn}，X 坐标带带号 {zone}，按 CGCS2000 3 度带第 {zone} 带（带号在前）EPSG:{epsg} "
            f"处理 / {en}; eastings carry zone prefix {zone}: CGCS2000 3-degree GK zone {zone} "
            f"(EPSG:{epsg})",
        )  # fmt: skip
    if kind == "gk":
        if county_epsg is None:
            raise TitlemapError(
                f"{cn}，坐标为不带带号的高斯-克吕格米制坐标，但本县没有边界也没有设定投影带："
                f"请用 --crs 指定，如 --crs 4544 / {en}; projected metres without zone prefix "
                "and the county has no zone: give --crs"
            )
        zone = zone_of_epsg(county_epsg)[0]
        epsg = 4534 + zone - FIRST_ZONE
        return _inferred(
            epsg,
            f"{cn}，X 坐标不带带号，按本县所在的 CGCS2000 3 度带第 {zone} 带（无带号）"
            f"EPSG:{epsg} 处理 / {en}; eastings without zone prefix: taken as the county's "
            f"CGCS2000 3-degree GK zone {zone} (EPSG:{epsg})",
        )  # fmt: skip
    if kind == "swapped":
        raise _swapped(bounds)
    raise TitlemapError(
        f"{cn}，无法从坐标范围判断坐标系（{_ranges(bounds)}）：请用 --crs 指定，如 4490"
        f"（经纬度）、4544（35 带无带号）/ {en}; cannot tell the CRS from the coordinates: "
        "give --crs"
    )


def _fits(crs: CRS, bounds) -> bool:
    """Whether the centre of `bounds`, read in `crs`, lands in China."""
    minx, miny, maxx, maxy = bounds
    move = Transformer.from_crs(crs, CGCS2000, always_xy=True)
    lon, lat = move.transform((minx + maxx) / 2, (miny + maxy) / 2)
    return bool(np.isfinite(lon) and np.isfinite(lat) and 73 <= lon <= 136 and 3 <= lat <= 54)


def decide_crs(
    bounds,
    file_crs: CRS | None,
    given: str | int | None,
    county_epsg: int | None,
    options: ImportOptions | None = None,
) -> CrsDecision:
    """The CRS to read coordinates in: `given` over the file's own over one inferred from
    the ranges. Swapped axes are refused, never swapped. Xi'an 1980 / Beijing 1954 need seven
    parameters in `options` (or are refused)."""
    options = options or ImportOptions()
    if not np.all(np.isfinite(bounds)):
        raise TitlemapError("文件中没有带坐标的要素 / no feature in the file has coordinates")
    kind, _ = classify(bounds)
    if given is not None and str(given).strip():
        crs = given_crs(given)
        if kind == "swapped":
            raise _swapped(bounds)
        if not _fits(crs, bounds):
            raise TitlemapError(
                f"指定的坐标系 {_label(crs)} 与文件坐标不符（{_ranges(bounds)}），换算后不在中国"
                "境内 / the given CRS does not fit the coordinates: check --crs"
            )
        old = _old_datum(crs, "given", options)
        if old is not None:
            return old
        return CrsDecision(crs, _label(crs), "given", f"按指定的坐标系 {_label(crs)} / as given")
    if file_crs is None:
        return _infer(bounds, county_epsg, ("文件未声明坐标系", "no CRS in the file"))
    if kind == "swapped":
        raise _swapped(bounds)
    label = _label(file_crs)
    if file_crs.is_geographic != (kind == "degrees") or not _fits(file_crs, bounds):
        why = (f"文件声明 {label} 但坐标与之不符", f"the file's CRS {label} does not fit its "
               "coordinates")  # fmt: skip
        return _infer(bounds, county_epsg, why)
    old = _old_datum(file_crs, "file", options)
    if old is not None:
        return old
    if _same_as_storage(file_crs) and file_crs.to_epsg() != STORAGE_EPSG:
        note = f"文件坐标系 {label} (WGS84) 视同 CGCS2000，相差不到 1 米 / WGS84 taken as CGCS2000"
    else:
        note = f"文件自带坐标系 {label} / the file's own CRS"
    return CrsDecision(file_crs, label, "file", note)
