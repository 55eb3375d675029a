"""Reading outline files from surveyors and CAD offices, safely, into one shape.

`read_layer(path, layer, county_epsg=…)` opens a GeoPackage, a zipped (or loose) Shapefile,
GeoJSON, DXF, a CSV of points or the land office's boundary coordinate TXT
(`geo.io.boundary_txt`), picks the reader by the file's kind (`READERS`, a small registry: a
later format registers itself with `register`), decides the source CRS — the file's own, the
caller's `crs`, or one inferred from the coordinate ranges, always said in words — and maps
Chinese or English column headers to titlemap's fields (`FIELDS`). `ImportOptions` carries
what the caller says beyond a CRS: which of a TXT's header and coordinates to trust, seven
parameters for Xi'an 1980 / Beijing 1954 (refused without them), GCJ-02 correction
(`geo.io.datums`).

It returns a `LayerData`: the features with canonical column names, geometries still in the
source CRS (`LayerData.crs.to_storage` moves them to EPSG:4490), and notes on what was assumed.
Validation, references and the database are `geo.io.importer`'s business.

Uploads are untrusted: `Limits` bounds the upload, a zip's entry count, its uncompressed size
and compression ratio (zip bombs are refused before anything is extracted, and extraction
counts bytes again in case the zip lies about its sizes); absolute paths, `..` and symlinks in
a zip are refused.
"""

import codecs
import csv
import io
import re
import shutil
import stat
import tempfile
import threading
import unicodedata
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from geo import TitlemapError
from geo.core.crs import FIRST_ZONE, LAST_ZONE, STORAGE_EPSG, zone_of_epsg
from geo.io.datums import (
    GCJ_NOTE,
    XY,
    gcj02_geometries,
    missing_parameters,
    old_datum_of_crs,
    old_datum_transformer,
    parse_helmert,
    settings_helmert,
)

# -- layers and their fields ------------------------------------------------------------------

LAYERS = {
    "compounds": "小区",
    "parcels": "宗地",
    "planned": "规划片区",
    "complaints": "投诉",
    "townships": "乡镇街道",
    "boundary": "县界",
}
POINT_LAYERS = frozenset({"complaints"})


@dataclass(frozen=True)
class Field:
    """A titlemap field and the headers that name it, most specific first."""

    name: str
    headers: tuple[str, ...]
    label: str


CODE_WORDS = ("编号", "代码", "编码", "code", "id")
FIELDS: dict[str, tuple[Field, ...]] = {
    "compounds": (
        Field("code", ("小区编号", "小区代码", "项目编号", "项目代码", "xmbh", "compound_code",
                       *CODE_WORDS, "地块编号"), "编号"),
        Field("name", ("小区名称", "项目名称", "小区名", "名称", "xmmc", "name", "地块名称"),
              "名称"),
        Field("address", ("地址", "小区地址", "项目地址", "坐落", "address", "addr"), "地址"),
        Field("township", ("乡镇代码", "街道代码", "所属乡镇", "乡镇街道", "乡镇（街道）", "乡镇",
                           "街道", "乡镇名称", "township_code", "township_name", "township",
                           "town"), "乡镇"),
        Field("developer", ("统一社会信用代码", "信用代码", "开发企业信用代码",
                            "developer_credit_code", "credit_code", "开发企业", "开发商",
                            "开发单位", "建设单位", "developer", "developer_name"), "开发企业"),
        Field("buildings", ("楼栋数", "栋数", "幢数", "楼栋", "buildings"), "楼栋数"),
        Field("units_sold", ("已售套数", "销售套数", "售出套数", "套数", "units_sold", "units"),
              "已售套数"),
        Field("sold_on", ("首次销售日期", "销售日期", "开盘日期", "sold_on", "sale_date"),
              "销售日期"),
        Field("occupied_on", ("交付入住日期", "入住日期", "交付日期", "交房日期", "occupied_on",
                              "occupancy_date"), "入住日期"),
    ),
    "parcels": (
        Field("code", ("宗地代码", "宗地编码", "宗地号", "地籍号", "zddm", "parcel_code",
                       *CODE_WORDS, "地块编号"), "宗地代码"),
        Field("area", ("登记面积", "宗地面积", "土地面积", "用地面积", "批准面积", "面积", "zdmj",
                       "recorded_area_m2", "recorded_area", "area_m2", "area_ha", "area",
                       "地块面积"), "面积"),
        Field("land_use", ("地类", "地块用途", "地类编码", "地类代码", "土地用途", "用途", "tdyt",
                           "dlbm", "land_use"), "地类"),
        Field("right_type", ("权利性质", "使用权类型", "取得方式", "供地方式", "权利类型", "qlxz",
                             "right_type"), "权利性质"),
        Field("premium_due", ("应缴出让金", "应缴土地出让金", "应缴出让价款", "出让金",
                              "土地出让金", "出让价款", "premium_due"), "应缴出让金"),
        Field("premium_paid", ("已缴出让金", "已缴土地出让金", "实缴出让金", "已缴出让价款",
                               "premium_paid"), "已缴出让金"),
        Field("compound", ("小区编号", "小区代码", "所属小区", "项目编号", "compound_code",
                           "compound"), "小区编号"),
    ),
    "planned": (
        Field("code", ("片区编号", "规划编号", "片区代码", *CODE_WORDS), "编号"),
        Field("kind", ("片区类型", "规划类型", "类型", "类别", "kind", "type", "category"), "类型"),
        Field("name", ("片区名称", "规划名称", "名称", "name"), "名称"),
    ),
    "complaints": (
        Field("code", ("投诉编号", "工单编号", "工单号", "留言编号", "信访编号", *CODE_WORDS),
              "编号"),
        Field("received_on", ("受理日期", "投诉日期", "留言日期", "来电日期", "登记日期", "日期",
                              "时间", "received_on", "date"), "日期"),
        Field("source", ("来源", "投诉来源", "来源渠道", "渠道", "source", "channel"), "来源"),
        Field("text", ("投诉内容", "留言内容", "诉求内容", "反映问题", "内容", "诉求", "text",
                       "content", "description"), "内容"),
    ),
    "townships": (
        Field("code", ("乡镇代码", "街道代码", "行政区划代码", "区划代码", "xzqdm", *CODE_WORDS),
              "代码"),
        Field("name", ("乡镇名称", "街道名称", "名称", "乡镇", "街道", "xzqmc", "name"), "名称"),
        Field("kind", ("类型", "类别", "kind", "type"), "类型"),
    ),
    "boundary": (Field("name", ("县名", "名称", "name"), "名称"),),
}  # fmt: skip

# Units a header may carry (in brackets or as a suffix): factor to the stored unit.
AREA_UNITS = {"公顷": 10_000.0, "hectare": 10_000.0, "hectares": 10_000.0, "ha": 10_000.0,
              "亩": 10_000.0 / 15, "mu": 10_000.0 / 15, "平方米": 1.0, "m2": 1.0, "㎡": 1.0,
              "sqm": 1.0}  # fmt: skip
MONEY_UNITS = {"万元": 10_000.0, "万": 10_000.0, "元": 1.0, "yuan": 1.0}
UNITS = {"area": AREA_UNITS, "premium_due": MONEY_UNITS, "premium_paid": MONEY_UNITS}

# Names a layer goes by inside a GeoPackage or a zip with several files.
LAYER_NAMES = {
    "compounds": ("compounds", "compound", "小区", "项目", "xq"),
    "parcels": ("parcels", "parcel", "宗地", "zd"),
    "planned": ("planned_areas", "planned", "规划片区", "规划", "片区"),
    "complaints": ("complaints", "complaint", "投诉", "留言"),
    "townships": ("townships", "township", "乡镇", "街道", "乡镇街道"),
    "boundary": ("county", "boundary", "县界", "行政区", "边界", "xzq"),
}

# -- limits -----------------------------------------------------------------------------------

MB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What an upload may be: its size; a zip's entries, uncompressed bytes, compression ratio."""

    upload_bytes: int = 200 * MB
    zip_entries: int = 1000
    unzipped_bytes: int = 1024 * MB
    # uncompressed ÷ compressed, for entries over `ratio_floor`: deflate tops out near 1030:1
    # on constant data; a .dbf of wide, mostly blank columns reaches a few hundred.
    zip_ratio: float = 500.0
    ratio_floor: int = 1 * MB


def _size(n: float) -> str:
    return f"{n / MB:.1f} MB" if n >= MB else f"{n / 1024:.0f} KB"


# -- what a reader returns -----------------------------------------------------------------------


@dataclass
class RawLayer:
    """A file's features as read: headers as in the file, coordinates as in the file."""

    frame: gpd.GeoDataFrame
    crs: CRS | None
    notes: list[str] = field(default_factory=list)
    refs: list[str] | None = None  # how to point at each feature ("第 3 行"); default "要素 N"


@dataclass(frozen=True)
class ImportOptions:
    """What the caller says about a file's coordinates beyond its CRS."""

    trust: str | None = None  # "header" | "coordinates": which wins when they disagree
    gcj02: bool = False  # lon/lat traced on Gaode/Tencent maps: correct to CGCS2000
    parameters: str | None = None  # seven parameters for Xi'an 1980 / Beijing 1954
    county_parameters: str | None = None  # TITLEMAP_DATUM_PARAMETERS
    convention: str = "position_vector"  # TITLEMAP_HELMERT_CONVENTION
    county_lon: float | None = None  # the county's centre, for its zone
    county_bounds: tuple[float, float, float, float] | None = None  # lon/lat box


@dataclass
class ReadContext:
    layer: str
    limits: Limits
    source_layer: str | None = None
    options: ImportOptions = field(default_factory=ImportOptions)


@dataclass(frozen=True)
class Reader:
    kind: str
    label: str
    suffixes: tuple[str, ...]
    read: Callable[[Path, ReadContext], RawLayer]
    sniff: Callable[[bytes], bool] | None = None
    strict: bool = False  # the suffix alone is not enough (.txt): the content must sniff too


def _head(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(4096)


def _accepts(reader: Reader, path: Path) -> bool:
    if path.suffix.lower() not in reader.suffixes:
        return False
    return not reader.strict or bool(reader.sniff and reader.sniff(_head(path)))


READERS: dict[str, Reader] = {}


def register(reader: Reader) -> Reader:
    """Add a reader by file kind (a later one for the same kind replaces it)."""
    READERS[reader.kind] = reader
    return reader


def reader_for(path: Path) -> Reader | None:
    for reader in READERS.values():
        if _accepts(reader, path):
            return reader
    head = _head(path)
    for reader in READERS.values():
        if reader.sniff and reader.sniff(head):
            return reader
    return None


# -- CRS ---------------------------------------------------------------------------------------

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


def _old_datum(crs: CRS, how: str, options: "ImportOptions") -> CrsDecision | None:
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


def parse_crs(value: str | int) -> CRS:
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
        return CrsDecision(
            CRS.from_epsg(epsg), f"EPSG:{epsg}", "inferred",
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
        return CrsDecision(
            CRS.from_epsg(epsg), f"EPSG:{epsg}", "inferred",
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
        crs = parse_crs(given)
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


# -- safe opening of uploads -----------------------------------------------------------------


def _unsafe(name: str) -> str | None:
    clean = name.replace("\\", "/")
    if clean.startswith("/") or re.match(r"^[A-Za-z]:", clean):
        return "绝对路径 / absolute path"
    if ".." in PurePosixPath(clean).parts:
        return "上级目录 .. / parent directory"
    return None


def _entry_name(info: zipfile.ZipInfo) -> str:
    """The entry's name, decoding GBK names that Windows zip tools write without a flag."""
    if info.flag_bits & 0x800:
        return info.filename
    raw = info.filename.encode("cp437", errors="replace")
    for encoding in ("utf-8", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return info.filename


def check_zip(path: Path, limits: Limits) -> list[zipfile.ZipInfo]:
    """The entries of a zip if it is safe to extract; else TitlemapError naming the problem.

    Nothing is extracted here: sizes come from the zip's directory (and are counted again
    while extracting, in case they lie)."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise TitlemapError(f"压缩包已损坏或不是 zip / not a valid zip file: {exc}") from None
    if len(infos) > limits.zip_entries:
        raise TitlemapError(
            f"压缩包内文件过多（{len(infos)} 个，上限 {limits.zip_entries}）/ too many entries "
            f"in the zip ({len(infos)} > {limits.zip_entries})"
        )
    total = 0
    for info in infos:
        name = _entry_name(info)
        problem = _unsafe(info.filename)
        if problem:
            raise TitlemapError(
                f"压缩包含不安全的路径 {name!r}（{problem}），已拒绝 / unsafe path in the zip"
            )
        if stat.S_ISLNK(info.external_attr >> 16):
            raise TitlemapError(f"压缩包含符号链接 {name!r}，已拒绝 / symlink in the zip")
        if info.flag_bits & 0x1:
            raise TitlemapError(f"压缩包已加密 {name!r}：请解密后上传 / encrypted zip entry")
        total += info.file_size
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > limits.ratio_floor and ratio > limits.zip_ratio:
            raise TitlemapError(
                f"压缩包内 {name!r} 压缩比异常（{ratio:.0f}:1，解压后 {_size(info.file_size)}），"
                f"疑似压缩炸弹，已拒绝 / suspicious compression ratio (zip bomb?)"
            )
    if total > limits.unzipped_bytes:
        raise TitlemapError(
            f"压缩包解压后过大（{_size(total)}，上限 {_size(limits.unzipped_bytes)}）/ "
            "the zip unpacks to more than the limit"
        )
    return infos


def extract_zip(path: Path, dest: Path, limits: Limits) -> list[Path]:
    """Extract a checked zip into `dest`, counting bytes as they come out."""
    infos = check_zip(path, limits)
    written = 0
    files = []
    with zipfile.ZipFile(path) as archive:
        for info in infos:
            if info.is_dir():
                continue
            target = dest.joinpath(*PurePosixPath(_entry_name(info).replace("\\", "/")).parts)
            if dest.resolve() not in target.resolve().parents:
                raise TitlemapError(f"压缩包含不安全的路径 {info.filename!r} / unsafe path")
            target.parent.mkdir(parents=True, exist_ok=True)
            size = 0
            with archive.open(info) as source, target.open("wb") as out:
                while chunk := source.read(1024 * 1024):
                    size += len(chunk)
                    written += len(chunk)
                    if size > info.file_size or written > limits.unzipped_bytes:
                        raise TitlemapError(
                            f"压缩包内 {info.filename!r} 实际大小超出声明，已拒绝 / the zip "
                            "lies about its sizes"
                        )
                    out.write(chunk)
            files.append(target)
    return files


def _skip(path: Path, root: Path) -> bool:
    return any(part.startswith(("__MACOSX", ".")) for part in path.relative_to(root).parts)


def _pick(candidates: list[Path], layer: str, what: str) -> Path:
    if len(candidates) == 1:
        return candidates[0]
    wanted = LAYER_NAMES[layer]
    named = [p for p in candidates if p.stem.lower() in wanted]
    if len(named) == 1:
        return named[0]
    names = ", ".join(sorted(p.name for p in candidates))
    raise TitlemapError(
        f"{what}中有多个数据文件（{names}），无法判断哪个是{LAYERS[layer]}：请只保留一个，或命名为 "
        f"{wanted[0]} / several data files ({names}): keep one, or name it {wanted[0]}"
    )


def _data_file(files: list[Path], root: Path, layer: str) -> Path:
    files = [f for f in files if not _skip(f, root)]
    if any(f.suffix.lower() == ".zip" for f in files):
        raise TitlemapError("压缩包内还有压缩包：请解开后再上传 / a zip inside the zip: unpack it")
    candidates = [f for f in files if any(_accepts(r, f) for r in READERS.values())]
    if not candidates:
        seen = ", ".join(sorted(f.name for f in files)[:10]) or "（空 / empty）"
        raise TitlemapError(
            f"压缩包中没有可读的数据文件（{seen}）/ no readable data file in the zip: "
            ".gpkg, .shp (+.dbf/.shx), .geojson, .dxf, .csv"
        )
    return _pick(candidates, layer, "压缩包")


def _is_zip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == b"PK\x03\x04" or path.suffix.lower() == ".zip"


# -- readers ---------------------------------------------------------------------------------


def _ogr_error(path: Path, exc: Exception) -> TitlemapError:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return TitlemapError(
        f"无法读取文件 {path.name}（已损坏或格式不对）：{reason} / cannot read the file "
        "(corrupt or not that format)"
    )


def _read_ogr(path: Path, layer: str | None = None, **options) -> gpd.GeoDataFrame:
    try:
        return pyogrio.read_dataframe(path, layer=layer, on_invalid="ignore", **options)
    except Exception as exc:  # GDAL says what is wrong; pass it on in one line
        raise _ogr_error(path, exc) from None


def _file_crs(path: Path, layer: str | None = None) -> CRS | None:
    """The file's declared CRS; one pyproj cannot read counts as none (and is inferred)."""
    try:
        wkt = pyogrio.read_info(path, layer=layer)["crs"]
    except Exception as exc:
        raise _ogr_error(path, exc) from None
    try:
        return CRS.from_user_input(wkt) if wkt else None
    except CRSError:
        return None


def _read_gpkg(path: Path, ctx: ReadContext) -> RawLayer:
    try:
        listed = pyogrio.list_layers(path)
    except Exception as exc:
        raise _ogr_error(path, exc) from None
    spatial = [str(name) for name, kind in listed if kind is not None]
    if ctx.source_layer:
        if ctx.source_layer not in spatial:
            raise TitlemapError(
                f"GeoPackage 中没有图层 {ctx.source_layer!r}（有 {spatial}）/ no such layer"
            )
        chosen = ctx.source_layer
    elif not spatial:
        raise TitlemapError("GeoPackage 中没有图形图层 / no spatial layer in the GeoPackage")
    elif len(spatial) == 1:
        chosen = spatial[0]
    else:
        named = [n for n in spatial if n.lower() in LAYER_NAMES[ctx.layer]]
        if len(named) != 1:
            raise TitlemapError(
                f"GeoPackage 有多个图层 {spatial}，无法判断哪个是{LAYERS[ctx.layer]}："
                f"请只保留一个，或命名为 {LAYER_NAMES[ctx.layer][0]} / several layers: keep one "
                "or name it"
            )
        chosen = named[0]
    frame = _read_ogr(path, layer=chosen)
    notes = [f"读取图层 {chosen} / layer {chosen}"] if len(spatial) > 1 else []
    return RawLayer(frame, _file_crs(path, chosen), notes)


def _cpg_encoding(cpg: Path) -> str | None:
    name = cpg.read_text("ascii", errors="ignore").strip().lstrip("\ufeff").upper()
    name = {"936": "GB18030", "CP936": "GB18030", "GBK": "GB18030", "GB2312": "GB18030",
            "ANSI 936": "GB18030", "65001": "UTF-8", "UTF8": "UTF-8", "1252": "CP1252",
            "ANSI 1252": "CP1252", "950": "BIG5", "BIG5": "BIG5"}.get(name, name)  # fmt: skip
    try:
        codecs.lookup(name)
    except LookupError:
        return None
    return name


def _dbf_encoding(dbf: Path) -> str:
    """UTF-8 or GB18030, whichever decodes the .dbf's field names and records.

    Field names are cut at 10 bytes, sometimes inside a character: a cut tail is forgiven."""
    data = dbf.read_bytes()
    if len(data) < 32:
        raise TitlemapError(f"{dbf.name} 已损坏 / the .dbf is corrupt")
    header_len = int.from_bytes(data[8:10], "little")
    names = [data[i : i + 11].split(b"\0")[0] for i in range(32, max(32, header_len - 32), 32)]
    records = data[header_len:]
    if records.isascii() and all(name.isascii() for name in names):
        return "ASCII"
    for encoding in ("utf-8", "gb18030"):
        try:
            records.decode(encoding)
            for name in names:
                codecs.getincrementaldecoder(encoding)().decode(name, final=False)
        except UnicodeDecodeError:
            continue
        return "UTF-8" if encoding == "utf-8" else "GB18030"
    raise TitlemapError(
        f"无法识别 {dbf.name} 的文字编码（非 UTF-8 也非 GBK）：请附上 .cpg 文件 / cannot tell "
        "the .dbf's encoding: add a .cpg file"
    )


def _guess_encoding(raw: bytes) -> str:
    for encoding in ("utf-8", "gb18030"):
        try:
            raw.decode(encoding)
            return "UTF-8" if encoding == "utf-8" else "GB18030"
        except UnicodeDecodeError:
            continue
    raise TitlemapError("无法识别文字编码（非 UTF-8 也非 GBK）/ text is neither UTF-8 nor GBK")


def _sidecar(path: Path, suffix: str) -> Path | None:
    for candidate in path.parent.iterdir():
        if candidate.stem == path.stem and candidate.suffix.lower() == suffix:
            return candidate
    return None


def _read_shapefile(path: Path, ctx: ReadContext) -> RawLayer:
    missing = [s for s in (".dbf", ".shx") if _sidecar(path, s) is None]
    if missing:
        raise TitlemapError(
            f"Shapefile {path.name} 缺少 {'、'.join(missing)} 文件：请把同名的 .shp/.shx/.dbf/.prj"
            "/.cpg 一起打包上传 / the shapefile lacks its " + ", ".join(missing)
        )
    cpg = _sidecar(path, ".cpg")
    encoding = _cpg_encoding(cpg) if cpg else None
    if encoding:
        said = cpg.read_text("ascii", errors="ignore").strip()
        notes = [f"按 .cpg 指定的编码 {said} 读取属性 / attributes read as {said} (.cpg)"]
    else:
        encoding = _dbf_encoding(_sidecar(path, ".dbf"))
        if encoding == "ASCII":
            encoding, notes = "UTF-8", []
        else:
            why = "没有 .cpg 文件" if cpg is None else ".cpg 内容无法识别"
            notes = [
                f"{why}，按内容判断属性编码为 {encoding}"
                f"{'（GBK）' if encoding == 'GB18030' else ''} / no usable .cpg: attributes "
                f"decode as {encoding}"
            ]  # fmt: skip
    frame = _read_ogr(path, encoding=encoding)
    return RawLayer(frame, _file_crs(path), notes)


def _read_geojson(path: Path, ctx: ReadContext) -> RawLayer:
    frame = _read_ogr(path)
    return RawLayer(frame, _file_crs(path))


_DXF_LOCK = threading.Lock()
_MTEXT_CODES = re.compile(r"\\[A-Za-z][^;\\{}]*;|\\[PpNn~]|[{}]")


def _dxf_text(value, encoding: str) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        value = value.encode("latin-1").decode(encoding)
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass  # already decoded (\U+ escapes) or not text we can fix: keep as it is
    value = _MTEXT_CODES.sub("", value).strip()
    return value or None


def _read_dxf(path: Path, ctx: ReadContext) -> RawLayer:
    """Closed polylines (and hatches) become the features; a text inside one gives its code
    (or, a second one with Chinese characters, its name). Points for point layers."""
    encoding = _guess_encoding(path.read_bytes())
    with _DXF_LOCK:  # GDAL's DXF encoding is a process-wide option
        pyogrio.set_gdal_config_options({"DXF_ENCODING": "ISO-8859-1"})
        try:
            frame = _read_ogr(path)
        finally:
            pyogrio.set_gdal_config_options({"DXF_ENCODING": None})
    geoms = shapely.force_2d(np.asarray(frame.geometry.values, dtype=object))
    texts = [_dxf_text(v, encoding) for v in frame.get("Text", pd.Series([None] * len(frame)))]
    kinds = shapely.get_type_id(geoms)
    is_text = np.array([t is not None for t in texts]) & (kinds == 0)
    hatch = frame.get("SubClasses", pd.Series([""] * len(frame))).fillna("").str.contains("Hatch")
    if ctx.layer in POINT_LAYERS:
        keep = (kinds == 0) & ~is_text
        shapes = geoms[keep]
    else:
        closed = np.zeros(len(geoms), dtype=bool)
        lines = kinds == 1
        closed[lines] = shapely.is_closed(geoms[lines]) & (
            shapely.get_num_points(geoms[lines]) >= 4
        )
        every = np.array(
            [shapely.Polygon(g.coords) if c else g for g, c in zip(geoms, closed, strict=True)],
            dtype=object,
        )
        keep = closed | np.isin(kinds, (3, 6))
        _drop_repeated_hatches(every, closed, kinds, keep)
        shapes = every[keep]
    codes: list[str | None] = [None] * len(shapes)
    names: list[str | None] = [None] * len(shapes)
    points = geoms[is_text]
    labels = [t for t, flag in zip(texts, is_text, strict=True) if flag]
    if len(points) and len(shapes) and ctx.layer not in POINT_LAYERS:
        tree = shapely.STRtree(points)
        shape_idx, point_idx = tree.query(shapes, predicate="contains")
        inside: dict[int, list[str]] = {}
        for s, p in zip(shape_idx, point_idx, strict=True):
            inside.setdefault(int(s), []).append(labels[p])
        for s, words in inside.items():
            plain = [w for w in words if not re.search(r"[\u4e00-\u9fff]", w)]
            chinese = [w for w in words if re.search(r"[\u4e00-\u9fff]", w)]
            codes[s] = (plain or words)[0]
            names[s] = chinese[0] if chinese and plain else None
    layers = [_dxf_text(v, encoding) for v in frame.get("Layer", pd.Series([None] * len(frame)))]
    out = gpd.GeoDataFrame(
        {
            "code": codes,
            "name": names,
            "dxf_layer": [v for v, k in zip(layers, keep, strict=True) if k],
        },
        geometry=list(shapes),
    )
    dropped = int((~keep & ~is_text & ~hatch.to_numpy()).sum())
    notes = [
        f"DXF：{len(out)} 个闭合图形，编号取自图形内的文字注记 / {len(out)} closed shapes, codes "
        "from the text inside each"
    ]
    if dropped:
        notes.append(
            f"忽略 {dropped} 个非闭合线或其他图元 / ignored {dropped} open lines or others"
        )
    return RawLayer(out, None, notes)


def _drop_repeated_hatches(shapes, closed, kinds, keep) -> None:
    """A hatch filling a closed polyline repeats it: keep the polyline only."""
    hatches = np.flatnonzero(np.isin(kinds, (3, 6)) & keep)
    if not closed.any() or not len(hatches):
        return
    outlines = shapes[closed]
    tree = shapely.STRtree(outlines)
    for i in hatches:
        for j in tree.query(shapes[i]):
            other = outlines[j]
            if shapely.equals(shapes[i], other) or (
                shapely.area(shapely.symmetric_difference(shapes[i], other))
                < 1e-6 * max(shapely.area(other), 1e-12)
            ):
                keep[i] = False
                break


LON_HEADERS = (
    "经度",
    "lon",
    "lng",
    "long",
    "longitude",
    "x",
    "x坐标",
    "横坐标",
    "东坐标",
    "easting",
)
LAT_HEADERS = ("纬度", "lat", "latitude", "y", "y坐标", "纵坐标", "北坐标", "northing")
WKT_HEADERS = ("wkt", "geometry", "geom", "图形", "shape")


TOTAL_WORDS = ("合计", "总计", "小计", "total")


def _geometry_headers(headers: list[str]) -> tuple[str | None, str | None, str | None]:
    """(wkt, x, y) headers among `headers`, by their names."""
    keys: dict[str, str] = {}
    for header in headers:
        keys.setdefault(_header_key(header)[0], header)

    def first(names) -> str | None:
        return next((keys[k] for k in map(_norm, names) if k in keys), None)

    return first(WKT_HEADERS), first(LON_HEADERS), first(LAT_HEADERS)


def _read_csv(path: Path, ctx: ReadContext) -> RawLayer:
    """Points from x/y (经度/纬度) columns, or any geometry from a WKT column. The header may
    sit below a title row; blank lines and a 合计 row are skipped."""
    raw = path.read_bytes()
    try:
        text_value, encoding = raw.decode("utf-8-sig"), "UTF-8"
    except UnicodeDecodeError:
        try:
            text_value, encoding = raw.decode("gb18030"), "GB18030"
        except UnicodeDecodeError:
            raise TitlemapError("CSV 编码无法识别（非 UTF-8 也非 GBK）/ CSV is neither UTF-8 "
                                "nor GBK") from None  # fmt: skip
    try:
        sep = csv.Sniffer().sniff(text_value[:8192], delimiters=",\t;|").delimiter
    except csv.Error:
        sep = ","
    try:
        lines = list(csv.reader(io.StringIO(text_value), delimiter=sep))
    except csv.Error as exc:
        raise TitlemapError(f"CSV 格式有误 / malformed CSV: {exc}") from None
    width = max((len(line) for line in lines), default=0)
    cells = np.array([line + [""] * (width - len(line)) for line in lines], dtype=object)
    cells = cells.reshape(len(lines), width)
    head = next(
        (r for r in range(min(len(cells), 10))
         if _has_geometry(_geometry_headers([str(v).strip() for v in cells[r]]))),
        None,
    )  # fmt: skip
    if head is None:
        first_row = [str(v).strip() for v in cells[0]] if len(cells) else []
        raise TitlemapError(
            f"CSV 中找不到坐标列（表头为 {first_row}）：需要 经度/纬度、lon/lat 或 x/y 列，"
            "或 WKT 图形列 / no coordinate columns: need lon/lat (经度/纬度), x/y or wkt"
        )
    headers = _unique([str(v).strip() for v in cells[head]])
    body = pd.DataFrame(cells[head + 1 :], columns=headers)
    refs = [f"第 {head + 2 + i} 行" for i in range(len(body))]  # line numbers in the file
    texts = np.char.strip(cells[head + 1 :].astype(str)).reshape(len(body), len(headers))
    filled = texts != ""
    blank = ~filled.any(axis=1)
    firsts = texts[np.arange(len(body)), filled.argmax(axis=1)] if len(body) else texts[:, 0]
    total = np.array([v.lower().replace(" ", "").startswith(TOTAL_WORDS) for v in firsts])
    keep = ~blank & ~total
    # Sign-off lines under the table (制表人：…, 审核：…): a cell or two, no coordinates.
    wkt, lon, lat = _geometry_headers(headers)
    where = [headers.index(c) for c in (wkt, lon, lat) if c]
    located = filled[:, where].any(axis=1)
    sparse = filled.sum(axis=1) <= 2
    footer = np.zeros(len(body), dtype=bool)
    for i in range(len(body) - 1, -1, -1):
        if located[i] or not (sparse[i] or blank[i] or total[i]):
            break
        footer[i] = not blank[i] and not total[i]
    keep &= ~footer
    body = body[keep].reset_index(drop=True)
    refs = [r for r, k in zip(refs, keep, strict=True) if k]
    if wkt:
        geoms = shapely.from_wkt(body[wkt].replace("", None).to_numpy(), on_invalid="ignore")
        used = f"图形列 {wkt} (WKT)"
    else:
        x = pd.to_numeric(body[lon].str.replace(",", "").str.strip(), errors="coerce")
        y = pd.to_numeric(body[lat].str.replace(",", "").str.strip(), errors="coerce")
        ok = np.isfinite(x.to_numpy()) & np.isfinite(y.to_numpy())
        geoms = np.full(len(body), None, dtype=object)
        geoms[ok] = shapely.points(x.to_numpy()[ok], y.to_numpy()[ok])
        used = f"坐标列 {lon}/{lat}"
    attributes = body.drop(columns=[c for c in (wkt, lon, lat) if c])
    frame = gpd.GeoDataFrame(attributes, geometry=list(geoms))
    notes = [f"CSV 编码 {encoding}，{used} / CSV read as {encoding}"]
    if head:
        notes.append(f"表头在第 {head + 1} 行 / header on line {head + 1}")
    if total.any() or footer.any():
        notes.append(
            f"跳过合计行和表尾签字行 {int(total.sum() + footer.sum())} 行 / skipped total and "
            "sign-off rows"
        )
    return RawLayer(frame, None, notes, refs)


def _has_geometry(found: tuple[str | None, str | None, str | None]) -> bool:
    wkt, lon, lat = found
    return bool(wkt or (lon and lat))


def _unique(headers: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for header in headers:
        name = header or "列"
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out


register(Reader("gpkg", "GeoPackage", (".gpkg",), _read_gpkg, lambda h: h.startswith(b"SQLite")))
register(Reader("shapefile", "Shapefile", (".shp",), _read_shapefile))
register(
    Reader("geojson", "GeoJSON", (".geojson", ".json"), _read_geojson,
           lambda h: h.lstrip(b"\xef\xbb\xbf \r\n\t").startswith(b"{"))
)  # fmt: skip
register(
    Reader("dxf", "DXF", (".dxf",), _read_dxf,
           lambda h: h.lstrip().startswith(b"0") and b"SECTION" in h[:200])
)  # fmt: skip
register(Reader("csv", "CSV", (".csv",), _read_csv))

# -- column mapping -----------------------------------------------------------------------------

_BRACKETS = re.compile(r"[(\[（【]([^)\]）】]*)(?:[)\]）】]|$)")  # a cut header may not close


def _norm(header: str) -> str:
    value = unicodedata.normalize("NFKC", str(header)).strip().lower()
    return re.sub(r"[\s_\-.:/：]+", "", value)


def _header_key(header: str) -> tuple[str, str]:
    """(the header without its unit, the unit) — "面积（公顷）" → ("面积", "公顷")."""
    value = unicodedata.normalize("NFKC", str(header))
    units = " ".join(_BRACKETS.findall(value))
    base = _norm(_BRACKETS.sub("", value))
    return base, _norm(units)


def _unit_factor(field_name: str, base: str, unit: str) -> tuple[str, float] | None:
    """The header's base without a unit suffix and the unit's factor, when it names one."""
    table = UNITS.get(field_name)
    if not table:
        return base, 1.0
    if unit:
        for word, factor in table.items():
            if unit == word or unit.endswith(word):
                return base, factor
        return None
    for word in sorted(table, key=len, reverse=True):
        if base.endswith(word) and len(base) > len(word):
            return base[: -len(word)], table[word]
    return base, 1.0


def map_columns(
    headers: list[str], layer: str
) -> tuple[dict[str, str], dict[str, float], list[str]]:
    """({field: header}, {field: unit factor}, unused headers) for `layer`."""
    keys = {h: _header_key(h) for h in headers}
    mapping: dict[str, str] = {}
    factors: dict[str, float] = {}
    taken: set[str] = set()
    for spec in FIELDS[layer]:
        wanted = [_norm(h) for h in spec.headers]
        best: tuple[int, str, float] | None = None
        for header, (base, unit) in keys.items():
            if header in taken:
                continue
            found = _unit_factor(spec.name, base, unit)
            if found is None:
                continue
            stripped, factor = found
            for candidate in {base, stripped}:
                if candidate in wanted:
                    rank = wanted.index(candidate)
                    if best is None or rank < best[0]:
                        best = (rank, header, factor)
        if best:
            mapping[spec.name] = best[1]
            factors[spec.name] = best[2]
            taken.add(best[1])
    unused = [h for h in headers if h not in taken]
    return mapping, factors, unused


# -- the whole read ------------------------------------------------------------------------------


@dataclass
class LayerData:
    """Features ready for the importer: canonical columns, `_ref`, geometry in `crs`."""

    layer: str
    source: str
    kind: str
    frame: gpd.GeoDataFrame
    crs: CrsDecision
    columns: dict[str, str]
    factors: dict[str, float]
    unused: list[str]
    notes: list[str]


def read_layer(
    path: str | Path,
    layer: str,
    *,
    county_epsg: int | None,
    crs: str | int | None = None,
    limits: Limits | None = None,
    source: str | None = None,
    source_layer: str | None = None,
    options: ImportOptions | None = None,
) -> LayerData:
    """Read `path` (a file, or a zip holding one) as `layer` for a county measuring in
    `county_epsg`; raise TitlemapError with one line when the file cannot be used."""
    if layer not in LAYERS:
        raise TitlemapError(
            f"未知图层 {layer!r}，可选 / unknown layer, one of: {', '.join(LAYERS)}"
        )
    path = Path(path)
    limits = limits or Limits()
    if not path.is_file():
        raise TitlemapError(f"找不到文件 / no such file: {path}")
    size = path.stat().st_size
    if size > limits.upload_bytes:
        raise TitlemapError(
            f"文件过大（{_size(size)}，上限 {_size(limits.upload_bytes)}）/ file too large"
        )
    if size == 0:
        raise TitlemapError(f"文件为空 / the file is empty: {path.name}")
    options = options or ImportOptions()
    ctx = ReadContext(layer, limits, source_layer, options)
    workdir = None
    try:
        if _is_zip(path):
            workdir = Path(tempfile.mkdtemp(prefix="titlemap-import-"))
            data_file = _data_file(extract_zip(path, workdir, limits), workdir, layer)
        else:
            data_file = path
        reader = reader_for(data_file)
        if reader is None:
            raise TitlemapError(
                f"不支持的文件类型 {data_file.suffix or data_file.name!r} / unsupported file: "
                "GeoPackage, zipped Shapefile, GeoJSON, DXF, CSV or a boundary coordinate TXT "
                "(界址点坐标交换文件)"
            )
        raw = reader.read(data_file, ctx)
    finally:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
    return _finish(raw, reader, layer, source or path.name, county_epsg, crs, options)


def _finish(
    raw: RawLayer, reader: Reader, layer: str, source: str, county_epsg, crs, options
) -> LayerData:
    frame = raw.frame.reset_index(drop=True)
    if len(frame) == 0:
        raise TitlemapError(f"文件中没有要素 / no features in {source}")
    geoms = shapely.force_2d(np.asarray(frame.geometry.values, dtype=object))
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    bounds = shapely.total_bounds(geoms[present]) if present.any() else np.array([np.nan] * 4)
    decision = decide_crs(bounds, raw.crs, crs, county_epsg, options)
    if options.gcj02:
        decision.gcj02 = True
        decision.note = f"{decision.note}；{GCJ_NOTE}"
    headers = [str(c) for c in frame.columns if c != frame.geometry.name]
    mapping, factors, unused = map_columns(headers, layer)
    out = gpd.GeoDataFrame(
        {name: frame[header].to_numpy() for name, header in mapping.items()},
        geometry=list(geoms),
    )
    out["_ref"] = raw.refs if raw.refs is not None else [f"要素 {i + 1}" for i in range(len(out))]
    notes = [*raw.notes]
    if mapping:
        pairs = "，".join(f"{h}→{n}" for n, h in mapping.items())
        notes.append(f"列对应 / columns: {pairs}")
    for name, factor in factors.items():
        if factor != 1.0:
            notes.append(f"{mapping[name]} 按单位换算 ×{factor:g} / converted by ×{factor:g}")
    return LayerData(layer, source, reader.kind, out, decision, mapping, factors, unused, notes)


# The land office's coordinate TXT registers its reader when imported; import it here so that
# every caller of read_layer has it (it imports this module, so it must come last).
import geo.io.boundary_txt  # noqa: E402, F401
