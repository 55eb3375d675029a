"""Old datums and web-map offsets: Xi'an 1980 / Beijing 1954 and GCJ-02 to CGCS2000.

**Xi'an 1980, Beijing 1954.** No national transformation exists that titlemap could assume:
each county (or each survey) has its own seven parameters. `Helmert` holds them as land
offices write them — `dx,dy,dz,rx,ry,rz,k`: translations in metres, rotations in
arc-seconds, scale in ppm (a factor such as 1.0000034 is read as 3.4 ppm) — and
`old_datum_transformer` builds a pyproj pipeline: the old Gauss-Krüger (or geographic)
coordinates to geographic on their own ellipsoid (Xi'an 1980: IAG-75, a = 6 378 140 m,
1/f = 298.257; Beijing 1954: Krassovsky, 6 378 245 m, 298.3), to geocentric, the 7-parameter
Helmert, back to CGCS2000 longitude/latitude. The parameters go **from the old datum to
CGCS2000**. Their rotation convention is `position_vector` by default (EPSG 1033, what PROJ's
`+towgs84` means); `coordinate_frame` (EPSG 1032, the rotations' signs reversed) is chosen with
`TITLEMAP_HELMERT_CONVENTION`. Without parameters the import is refused — never guessed.

**GCJ-02.** Data traced on Gaode (高德) or Tencent maps sits 50–700 m off, by a non-linear
function published only through reverse engineering. `prcoords` (CC0) gives the forward
function; `gcj02_to_wgs84` inverts it by fixed-point iteration to below 1e-9° (≈ 0.1 mm)
against that function. The public function itself is known to reproduce the web maps to
about a metre, so converted data is good to ≈ 1 m — enough for compounds, not for 界址点.
WGS84 is taken as CGCS2000 (centimetres apart).

`gcj_offset` tells when a layer's features sit in such an offset from the county's own
compounds and parcels: features that overlap them little as they are but much once corrected.
"""

import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import prcoords
import shapely
from pyproj import CRS, Transformer

from geo import TitlemapError
from geo.core.crs import to_projected

CONVENTIONS = ("position_vector", "coordinate_frame")
PARAMETER_NAMES = "dx,dy,dz,rx,ry,rz,k"
WHERE_PARAMETERS = (
    "在文件 [属性描述] 的 转换参数= 行中写出，或用 --parameters（接口字段 parameters）给出，或在"
    "设置 TITLEMAP_DATUM_PARAMETERS 中配置本县的参数 / give them in the file's 转换参数= line, "
    "with --parameters (API field parameters), or in TITLEMAP_DATUM_PARAMETERS"
)


@dataclass(frozen=True)
class Datum:
    key: str  # "xian80", "beijing54", "cgcs2000"
    label: str  # as land offices write it
    a: float
    rf: float


XIAN80 = Datum("xian80", "1980西安坐标系", 6_378_140.0, 298.257)
BEIJING54 = Datum("beijing54", "1954北京坐标系", 6_378_245.0, 298.3)
CGCS2000_DATUM = Datum("cgcs2000", "2000国家大地坐标系", 6_378_137.0, 298.257222101)
OLD_DATUMS = {d.key: d for d in (XIAN80, BEIJING54)}

# Spellings of 坐标系 in file headers and settings, after _squash().
_DATUM_WORDS = (
    (("xian80", "xian1980", "西安80", "80西安", "西安1980", "1980西安", "iag75", "c80"), XIAN80),
    (("beijing54", "beijing1954", "北京54", "54北京", "北京1954", "1954北京", "newbeijing",
      "新北京54", "krass"), BEIJING54),
    (("cgcs2000", "cgcs", "2000国家", "国家2000", "2000", "wgs84", "wgs1984"), CGCS2000_DATUM),
)  # fmt: skip


def _squash(value: str) -> str:
    value = unicodedata.normalize("NFKC", value).lower()
    return re.sub(r"[\s_\-'’.()（）/]|坐标系统?|大地|系统", "", value)


def datum_of(value: str | None) -> Datum | None:
    """The datum a header's 坐标系 (or a CRS name) names, None when it names none we know."""
    if not value:
        return None
    squashed = _squash(value)
    for words, datum in _DATUM_WORDS:
        if any(word in squashed for word in words):
            return datum
    return None


def old_datum_of_crs(crs: CRS) -> Datum | None:
    name = (crs.datum.name if crs.datum else crs.name) or ""
    datum = datum_of(name)
    return datum if datum in OLD_DATUMS.values() else None


# -- seven parameters ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Helmert:
    """Seven parameters from an old datum to CGCS2000: metres, arc-seconds, ppm."""

    dx: float
    dy: float
    dz: float
    rx: float
    ry: float
    rz: float
    ppm: float
    convention: str = "position_vector"

    def proj(self) -> str:
        return (
            f"+proj=helmert +x={self.dx!r} +y={self.dy!r} +z={self.dz!r} +rx={self.rx!r} "
            f"+ry={self.ry!r} +rz={self.rz!r} +s={self.ppm!r} +convention={self.convention}"
        )

    def describe(self) -> str:
        return (
            f"dx={self.dx:g} dy={self.dy:g} dz={self.dz:g} m, rx={self.rx:g} ry={self.ry:g} "
            f"rz={self.rz:g}″, k={self.ppm:g} ppm ({self.convention})"
        )


_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def check_convention(value: str) -> str:
    value = (value or "position_vector").strip().lower().replace("-", "_")
    if value not in CONVENTIONS:
        raise TitlemapError(
            f"旋转参数约定应为 position_vector 或 coordinate_frame（收到 {value!r}）/ Helmert "
            "convention must be position_vector or coordinate_frame"
        )
    return value


def parse_helmert(text: str | None, convention: str = "position_vector") -> Helmert | None:
    """`dx,dy,dz,rx,ry,rz,k` (commas, full-width commas, semicolons or spaces); None when the
    text holds no numbers at all (a header's empty 转换参数=,,,,,,). Anything else that is not
    seven numbers raises TitlemapError naming what is missing."""
    if text is None:
        return None
    value = unicodedata.normalize("NFKC", text).strip()
    parts = [p for p in re.split(r"[,;\s]+", value) if p]
    if not parts:
        return None
    bad = [p for p in parts if not _NUMBER.match(p)]
    if bad or len(parts) != 7:
        missing = PARAMETER_NAMES.split(",")[len(parts) :] if not bad else []
        what = f"缺少 {','.join(missing)}" if missing else f"无法识别 {bad or parts[7:]}"
        raise TitlemapError(
            f"转换参数应为 7 个数 {PARAMETER_NAMES}（平移米、旋转秒、尺度 ppm），{what}："
            f"{text.strip()!r} / seven parameters needed: {PARAMETER_NAMES}"
        )
    numbers = [float(p) for p in parts]
    if all(n == 0 for n in numbers):
        return None  # 0,0,0,0,0,0,0 is how some software writes "none"
    *shift, k = numbers
    decimals = len(parts[6].split(".")[1]) if "." in parts[6] else 0
    if 0.999 < k < 1.001 and decimals >= 5:  # a scale factor such as 1.0000034, not ppm
        k = (k - 1.0) * 1e6
    return Helmert(*shift, k, check_convention(convention))


def settings_helmert(setting: str | None, datum: Datum, convention: str) -> Helmert | None:
    """The county's parameters for `datum` from TITLEMAP_DATUM_PARAMETERS: either seven numbers
    (for whichever old datum a file uses) or `xian80=…;beijing54=…`."""
    if not setting or not setting.strip():
        return None
    if "=" not in setting:
        return parse_helmert(setting, convention)
    for part in re.split(r"[;；]", setting):
        if "=" not in part:
            continue
        name, values = part.split("=", 1)
        if datum_of(name) is datum:
            return parse_helmert(values, convention)
    return None


def missing_parameters(datum: Datum, where: str = "") -> TitlemapError:
    return TitlemapError(
        f"{where}坐标系为{datum.label}（西安80/北京54 类旧坐标系），换算到 CGCS2000 需要本地"
        f" 7 参数 {PARAMETER_NAMES}（平移米、旋转秒、尺度 ppm），titlemap 不做猜测："
        f"请{WHERE_PARAMETERS}"
    )


# -- pipelines ---------------------------------------------------------------------------------


def _helmert_pipeline(datum: Datum, helmert: Helmert) -> Transformer:
    """Geographic lon/lat (degrees) on `datum` → CGCS2000 lon/lat."""
    target = CGCS2000_DATUM
    return Transformer.from_pipeline(
        "+proj=pipeline +step +proj=unitconvert +xy_in=deg +xy_out=rad "
        f"+step +proj=cart +a={datum.a!r} +rf={datum.rf!r} +step {helmert.proj()} "
        f"+step +inv +proj=cart +a={target.a!r} +rf={target.rf!r} "
        "+step +proj=unitconvert +xy_in=rad +xy_out=deg"
    )


def gk_crs(datum: Datum, central_meridian: float) -> CRS:
    """A Gauss-Krüger CRS on `datum` without zone prefix (false easting 500 km)."""
    return CRS.from_proj4(
        f"+proj=tmerc +lat_0=0 +lon_0={central_meridian:g} +k=1 +x_0=500000 +y_0=0 "
        f"+a={datum.a!r} +rf={datum.rf!r} +units=m +no_defs +type=crs"
    )


XY = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def old_datum_transformer(source: CRS, datum: Datum, helmert: Helmert) -> XY:
    """(x, y) in `source` (x = easting or longitude) → CGCS2000 (lon, lat)."""
    to_geographic = Transformer.from_crs(source, source.geodetic_crs, always_xy=True)
    helmert_step = _helmert_pipeline(datum, helmert)

    def move(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lon, lat = to_geographic.transform(x, y)
        return helmert_step.transform(lon, lat)

    return move


# -- GCJ-02 ------------------------------------------------------------------------------------

GCJ_TOLERANCE_DEG = 1e-9  # ≈ 0.1 mm: where the inverse iteration stops
GCJ_ACCURACY_M = 1.0  # how well the public GCJ-02 function is known to match the web maps


def wgs84_to_gcj02(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """The forward GCJ-02 offset (prcoords), for arrays of lon/lat in degrees."""
    lon = np.atleast_1d(np.asarray(lon, dtype=float))
    lat = np.atleast_1d(np.asarray(lat, dtype=float))
    out_lon = np.empty_like(lon)
    out_lat = np.empty_like(lat)
    for i, (x, y) in enumerate(zip(lon, lat, strict=True)):
        if not (math.isfinite(x) and math.isfinite(y)):
            out_lon[i], out_lat[i] = x, y
            continue
        shifted = prcoords.wgs_gcj((y, x), False)
        out_lat[i], out_lon[i] = shifted.lat, shifted.lon
    return out_lon, out_lat


def gcj02_to_wgs84(lon, lat, iterations: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of `wgs84_to_gcj02` by fixed-point iteration, all points at once."""
    lon = np.atleast_1d(np.asarray(lon, dtype=float))
    lat = np.atleast_1d(np.asarray(lat, dtype=float))
    f_lon, f_lat = wgs84_to_gcj02(lon, lat)
    x, y = lon - (f_lon - lon), lat - (f_lat - lat)  # the rough inverse: start there
    todo = np.isfinite(x) & np.isfinite(y)
    for _ in range(iterations):
        if not todo.any():
            break
        f_lon, f_lat = wgs84_to_gcj02(x[todo], y[todo])
        d_lon, d_lat = f_lon - lon[todo], f_lat - lat[todo]
        x[todo] -= d_lon
        y[todo] -= d_lat
        done = np.maximum(np.abs(d_lon), np.abs(d_lat)) < GCJ_TOLERANCE_DEG
        todo[np.flatnonzero(todo)[done]] = False
    return x, y


def _apply(geoms, move: XY):
    def apply(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(move(xy[:, 0], xy[:, 1]))

    return shapely.transform(geoms, apply)


def gcj02_geometries(geoms):
    """Geometries in GCJ-02 lon/lat → WGS84 (= CGCS2000) lon/lat."""
    return _apply(geoms, gcj02_to_wgs84)


def to_gcj02_geometries(geoms):
    """CGCS2000 lon/lat → GCJ-02: how Gaode/Tencent would draw them (for tests and checks)."""
    return _apply(geoms, wgs84_to_gcj02)


GCJ_NOTE = (
    f"按 GCJ-02（高德/腾讯地图）坐标换算为 CGCS2000：反算迭代误差小于 0.1 毫米，GCJ-02 公开算法与"
    f"地图本身约差 {GCJ_ACCURACY_M:g} 米，换算结果精度约 {GCJ_ACCURACY_M:g} 米 / converted from "
    f"GCJ-02 (Gaode/Tencent) to CGCS2000: good to about {GCJ_ACCURACY_M:g} m"
)


# -- the offset detector -----------------------------------------------------------------------


@dataclass(frozen=True)
class GcjOffset:
    features: int  # features compared
    fit_as_is: float  # mean share of a feature's area covered by the county's own polygons
    fit_corrected: float  # the same after the GCJ-02 correction
    shift_m: float  # median size of the correction, metres

    def warning(self) -> str:
        return (
            f"本文件的要素与本县已有小区/宗地整体偏移约 {self.shift_m:.0f} 米，按 GCJ-02 纠偏"
            f"后吻合度由 {self.fit_as_is:.0%} 升至 {self.fit_corrected:.0%}：数据可能描自高德或腾讯"
            f"地图，请确认后用 --gcj02（接口字段 gcj02=true）重新导入 / warning: features sit "
            f"about {self.shift_m:.0f} m off the county's compounds and parcels and fit "
            f"{self.fit_corrected:.0%} instead of {self.fit_as_is:.0%} once corrected for GCJ-02: "
            "traced on Gaode/Tencent? Import again with --gcj02"
        )


SAMPLE = 300  # features compared, at most
NEAR_DEG = 0.02  # reference polygons farther than this from the sample (> any GCJ-02 shift) skipped


def _fit(geoms: np.ndarray, tree: shapely.STRtree, reference: np.ndarray) -> np.ndarray:
    """Per feature, the share of its area covered by the reference polygons it meets."""
    out = np.zeros(len(geoms))
    for i, geom in enumerate(geoms):
        near = tree.query(geom, predicate="intersects")
        if len(near) and geom.area > 0:
            out[i] = shapely.intersection(geom, shapely.union_all(reference[near])).area / geom.area
    return out


def gcj_offset(geoms: np.ndarray, reference: np.ndarray, epsg: int) -> GcjOffset | None:
    """Whether polygons `geoms` (EPSG:4490, as read) look GCJ-02-shifted against `reference`
    (the county's compounds and parcels, EPSG:4490): a `GcjOffset` when at least a fifth of
    their area lies off the reference as they are and correcting them removes two thirds of
    that misfit (to at least half covered), else None."""
    geoms = np.asarray(geoms, dtype=object)
    keep = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    keep &= np.isin(shapely.get_type_id(geoms), (3, 6))
    geoms = geoms[keep]
    reference = np.asarray(reference, dtype=object)
    if not len(geoms) or not len(reference):
        return None
    if len(geoms) > SAMPLE:
        geoms = geoms[np.linspace(0, len(geoms) - 1, SAMPLE).astype(int)]
    # only the reference near the sample: repairing and projecting all the county's polygons
    # cost more than the comparison itself
    window = shapely.buffer(shapely.envelope(geoms), NEAR_DEG)
    reference = reference[np.unique(shapely.STRtree(reference).query(window)[1])]
    if not len(reference):  # nothing near: no fit either way
        return None
    corrected = gcj02_geometries(geoms)
    gk_reference = to_projected(shapely.make_valid(reference), epsg)
    tree = shapely.STRtree(gk_reference)
    as_is = _fit(to_projected(shapely.make_valid(geoms), epsg), tree, gk_reference)
    fixed = _fit(to_projected(shapely.make_valid(corrected), epsg), tree, gk_reference)
    before, after = float(as_is.mean()), float(fixed.mean())
    # Warn when the file misfits noticeably as it is and the correction removes most of that.
    if 1 - before < 0.2 or after < 0.5 or (1 - after) > (1 - before) / 3:
        return None
    shifts = shapely.distance(
        to_projected(shapely.centroid(geoms), epsg), to_projected(shapely.centroid(corrected), epsg)
    )
    return GcjOffset(len(geoms), before, after, float(np.median(shifts)))
