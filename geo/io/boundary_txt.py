"""The land-boundary coordinate file (勘测定界界址点坐标交换格式), read and written.

A plain text file, GBK or UTF-8:

    [属性描述]
    格式版本号=1.01版本
    坐标系=2000国家大地坐标系
    几度分带=3
    投影类型=高斯克吕格
    计量单位=米
    带号=35
    精度=0.001
    转换参数=,,,,,,
    [地块坐标]
    5,0.5104,629901001001GB00001,某小区,面,,城镇住宅用地,0701,@
    J1,1,3968245.123,509123.456
    …

Per parcel a header line `界址点数,地块面积,地块编号,地块名称,图形属性,图幅号,地块用途,地类编码,@`
then point lines `点号,圈号,X,Y` — **X is the northing**, Y the easting (perhaps with the zone
number in front); 圈号 1 is the outer ring, 2+ holes (a ring outside every earlier one is another
part of a multi-part parcel); the first point is repeated to close a ring.

`read` (its `READER` is registered in `geo.io.readers`) takes the CRS from the header and checks
it against the coordinates: swapped X/Y, a zone prefix that contradicts 带号, or a 带号 that would
put the file far from the county while the county's own zone puts it inside, are refused unless the
caller says which to trust (`trust="header" | "coordinates"`). Xi'an 1980 and Beijing 1954 are
moved to CGCS2000 with seven parameters (`geo.io.datums`), never without. 地块面积 is taken in 公顷
or 平方米, whichever matches the drawn areas, and the notes say which. A survey numbers its plots
itself (1, 2, 地块一 …) before any 宗地代码 exists: the importer keeps such a plot under its
project (a `项目名称=` line of [属性描述], else the file's name) and its number.

`write` writes the same format for the county's parcels or compounds: header from the county
(CGCS2000, 3-degree zone without prefix in the coordinates), coordinates to the millimetre,
areas in 公顷 to four decimals, CRLF lines, GBK unless asked for UTF-8.
"""

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS, Transformer
from shapely.geometry.polygon import orient

from geo import TitlemapError
from geo.core.crs import FIRST_ZONE, LAST_ZONE, STORAGE_EPSG
from geo.io.datums import (
    CGCS2000_DATUM,
    OLD_DATUMS,
    Datum,
    Helmert,
    datum_of,
    gk_crs,
    missing_parameters,
    old_datum_transformer,
    parse_helmert,
    settings_helmert,
)
from geo.io.registry import RawLayer, ReadContext, Reader

ATTRIBUTE_SECTION = "属性描述"
COORDINATE_SECTION = "地块坐标"
PARCEL_FIELDS = ("界址点数", "地块面积", "地块编号", "地块名称", "图形属性", "图幅号", "地块用途",
                 "地类编码")  # fmt: skip
HEADER_KEYS = ("格式版本号", "数据产生单位", "数据产生日期", "坐标系", "几度分带", "投影类型",
               "计量单位", "带号", "精度", "转换参数")  # fmt: skip
# What the survey was for, where a file says it: plots without 宗地代码 are kept under it.
PROJECT_KEYS = ("项目名称", "项目名", "工程名称")
TRUSTS = ("header", "coordinates")
ZONES = {3: (FIRST_ZONE, LAST_ZONE), 6: (13, 23)}  # China's zones by zone width
AREA_TOLERANCE = 0.05  # a stated area within 5 % of the drawn one counts as matching
NEAR_COUNTY_DEG = 0.1  # "lands in the county": within this of the county's lon/lat box


# -- parsing ---------------------------------------------------------------------------------


@dataclass
class TxtPoint:
    name: str
    ring: int
    north: float
    east: float
    line: int


@dataclass
class TxtParcel:
    line: int
    values: dict[str, str]
    points: list[TxtPoint] = field(default_factory=list)


@dataclass
class TxtFile:
    header: dict[str, str]
    header_lines: dict[str, int]
    parcels: list[TxtParcel]
    encoding: str
    ignored: list[int] = field(default_factory=list)  # header lines without "="


def sniff(head: bytes) -> bool:
    """Whether the first bytes of a file look like a boundary coordinate file."""
    for encoding in ("utf-8", "gb18030"):
        for word in (ATTRIBUTE_SECTION, COORDINATE_SECTION):
            if f"[{word}]".encode(encoding) in head:
                return True
    return False


def decode(raw: bytes) -> tuple[str, str]:
    """(text, "UTF-8" | "GBK"): a BOM is dropped; GBK is read as its superset GB18030."""
    try:
        return raw.decode("utf-8-sig"), "UTF-8"
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("gb18030"), "GBK"
    except UnicodeDecodeError:
        raise TitlemapError(
            "界址点坐标文件编码无法识别（非 UTF-8 也非 GBK）/ the coordinate file is neither UTF-8 "
            "nor GBK"
        ) from None


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if np.isfinite(value) else None


def _ring_number(text: str) -> int | None:
    value = _number(text)
    return int(value) if value is not None and value.is_integer() and value >= 1 else None


def _point(fields: list[str], line: int) -> TxtPoint | None:
    if len(fields) != 4:
        return None
    ring, north, east = _ring_number(fields[1]), _number(fields[2]), _number(fields[3])
    if ring is None or north is None or east is None:
        return None
    return TxtPoint(fields[0], ring, north, east, line)


def parse(text: str) -> TxtFile:
    """The file's header and parcels; TitlemapError naming the line of anything unreadable."""
    header: dict[str, str] = {}
    header_lines: dict[str, int] = {}
    parcels: list[TxtParcel] = []
    ignored: list[int] = []
    section = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = unicodedata.normalize("NFKC", raw).strip()  # full-width ，＝＠ become ,=@
        if not line:
            continue
        heading = re.fullmatch(r"\[\s*(.+?)\s*\]", line)
        if heading:
            section = heading.group(1)
            continue
        if section == ATTRIBUTE_SECTION:
            parts = re.split(r"[=:]", line, maxsplit=1)
            if len(parts) < 2:
                ignored.append(number)
                continue
            key, value = parts
            header[key.strip()] = value.strip()
            header_lines[key.strip()] = number
        elif section == COORDINATE_SECTION:
            fields = [f.strip() for f in line.split(",")]
            point = _point(fields, number)
            if point is not None:
                if not parcels:
                    raise TitlemapError(
                        f"第 {number} 行：界址点之前没有地块行（界址点数,地块面积,地块编号,…,@）/ "
                        f"line {number}: a point before any parcel line"
                    )
                parcels[-1].points.append(point)
            elif fields[-1] == "@" or len(fields) >= 8:
                values = dict(zip(PARCEL_FIELDS, fields[:8] + [""] * (8 - len(fields[:8])),
                                  strict=True))  # fmt: skip
                if values["地块编号"] == "@":
                    values["地块编号"] = ""
                parcels.append(TxtParcel(number, values))
            else:
                raise TitlemapError(
                    f"第 {number} 行无法识别：应为 点号,圈号,X,Y 或以 @ 结尾的地块行"
                    f"（{line[:60]!r}）/ line {number}: neither a point (name,ring,X,Y) nor a "
                    "parcel line"
                )
    if not parcels:
        raise TitlemapError(
            f"文件中没有 [{COORDINATE_SECTION}] 段或其中没有地块 / no "
            f"[{COORDINATE_SECTION}] section with parcels"
        )
    for parcel in parcels:
        if not parcel.points:
            raise TitlemapError(
                f"第 {parcel.line} 行的地块 {parcel.values['地块编号'] or ''} 没有界址点 / line "
                f"{parcel.line}: a parcel without points"
            )
    return TxtFile(header, header_lines, parcels, "", ignored)


# -- where the coordinates are -------------------------------------------------------------------


@dataclass
class Placement:
    """How the file's coordinates become CGCS2000 Gauss-Krüger metres (no zone prefix)."""

    datum: Datum
    width: int
    zone: int
    swapped: bool  # the file's X column holds eastings
    prefix: int | None  # zone number found in front of the eastings
    crs: CRS  # CGCS2000 GK of the same central meridian
    helmert: Helmert | None
    notes: list[str]
    helmert_source: str = ""  # where the seven parameters came from

    @property
    def central_meridian(self) -> float:
        return self.zone * 3.0 if self.width == 3 else self.zone * 6.0 - 3.0


def _cgcs2000_gk_epsg(width: int, zone: int) -> int:
    return 4534 + zone - FIRST_ZONE if width == 3 else 4502 + zone - 13


def _axis(values: np.ndarray) -> tuple[str, int | None]:
    """("northing" | "easting" | "prefixed" | "unknown", prefix zone) for one column."""
    lo, hi = float(values.min()), float(values.max())
    if 100_000 <= lo and hi <= 900_000:
        return "easting", None
    zone = int(lo // 1_000_000)
    if zone == int(hi // 1_000_000) and 13 <= zone <= LAST_ZONE:
        rest = values - zone * 1_000_000
        if 100_000 <= rest.min() and rest.max() <= 900_000:
            return "prefixed", zone
    if 1_500_000 <= lo and hi <= 6_000_000:
        return "northing", None
    return "unknown", None


def _mixed_prefixes(doc: TxtFile) -> None:
    """Refuse a file whose points do not all carry the same zone prefix (or none)."""
    points = [p for parcel in doc.parcels for p in parcel.points]
    for column in ("east", "north"):
        values = np.array([getattr(p, column) for p in points])
        tags = np.where(values >= 10_000_000, (values // 1_000_000).astype(int), 0)
        if (values >= 6_000_000).any() and len(np.unique(tags)) > 1:
            odd = points[int(np.flatnonzero(tags != tags[0])[0])]
            raise TitlemapError(
                f"第 {odd.line} 行：坐标的带号前缀与第 {points[0].line} 行不一致 / line "
                f"{odd.line}: its zone prefix differs from the first point's"
            )


def _header_value(doc: TxtFile, key: str) -> str:
    return doc.header.get(key, "").strip()


def _where(doc: TxtFile, key: str) -> str:
    line = doc.header_lines.get(key)
    return f"第 {line} 行 " if line else ""


def _int_header(doc: TxtFile, key: str) -> int | None:
    value = _header_value(doc, key)
    if not value:
        return None
    match = re.fullmatch(r"(\d+)\s*(度|°)?(带|分带)?", value)
    if not match:
        raise TitlemapError(
            f"{_where(doc, key)}{key}={value!r} 不是整数 / {key} is not a whole number"
        )
    return int(match.group(1))


def _county_zone(width: int, lon: float) -> int:
    return int(lon / 3 + 0.5) if width == 3 else int(lon // 6) + 1


def _lands(east: np.ndarray, north: np.ndarray, datum: Datum, cm: float, bounds) -> bool:
    """Whether the file's centre, read in zone `cm`, falls near the county's lon/lat box."""
    move = Transformer.from_crs(gk_crs(datum, cm), CRS.from_epsg(STORAGE_EPSG), always_xy=True)
    lon, lat = move.transform((east.min() + east.max()) / 2, (north.min() + north.max()) / 2)
    minx, miny, maxx, maxy = bounds
    d = NEAR_COUNTY_DEG
    return bool(minx - d <= lon <= maxx + d and miny - d <= lat <= maxy + d)


def _conflict(what: str, header_reading: str, coordinate_reading: str) -> TitlemapError:
    return TitlemapError(
        f"文件头与坐标不一致：{what}。请确认后用 --trust header（按文件头：{header_reading}）或 "
        f"--trust coordinates（按坐标：{coordinate_reading}）重新导入（接口字段 trust）/ the "
        "header and the coordinates disagree: choose --trust header or --trust coordinates"
    )


def _ranges(north: np.ndarray, east: np.ndarray) -> str:
    return f"X {north.min():,.3f} … {north.max():,.3f}，Y {east.min():,.3f} … {east.max():,.3f}"


def place(doc: TxtFile, ctx: ReadContext, north: np.ndarray, east: np.ndarray) -> Placement:
    """Decide datum, zone width, zone and axis order from the header and the coordinates."""
    options = ctx.options
    trust = options.trust
    notes: list[str] = []
    first = doc.parcels[0].points[0].line
    # axis order
    _mixed_prefixes(doc)
    kx, _ = _axis(north)
    ky, prefix = _axis(east)
    swapped = False
    if kx == "northing" and ky in ("easting", "prefixed"):
        pass
    elif kx in ("easting", "prefixed") and ky == "northing":
        if trust != "coordinates":
            raise TitlemapError(
                f"X/Y 似乎颠倒：本格式 X 为北坐标、Y 为东坐标，而第 {first} 行起 X 像东坐标、Y 像北"
                f"坐标（{_ranges(north, east)}）。请在源软件中核对后重新导出；确认只是两列对调可用 "
                "--trust coordinates 按坐标范围读取 / X and Y appear swapped (X must be the "
                "northing): fix the file, or --trust coordinates to read them by their ranges"
            )
        north, east = east, north
        ky, prefix = _axis(east)
        swapped = True
        notes.append(
            "按 --trust coordinates 交换了 X/Y（文件中 X 为东坐标）/ X and Y swapped as trusted"
        )
    else:
        raise TitlemapError(
            f"第 {first} 行起的坐标范围不像高斯-克吕格平面坐标（{_ranges(north, east)}；X 应为北"
            "坐标 1 500 000–6 000 000 米，Y 为东坐标，可带带号）/ coordinates do not look like "
            "Gauss-Krüger metres (X northing, Y easting)"
        )
    # datum
    datum_text = _header_value(doc, "坐标系")
    datum = datum_of(datum_text)
    if datum_text and datum is None:
        raise TitlemapError(
            f"{_where(doc, '坐标系')}坐标系={datum_text!r} 无法识别：应为 2000国家大地坐标系、"
            "1980西安坐标系 或 1954北京坐标系 / unknown 坐标系"
        )
    if datum is None:
        datum = CGCS2000_DATUM
        notes.append("文件头没有 坐标系，按 2000国家大地坐标系 处理 / no 坐标系: taken as CGCS2000")
    unit = _header_value(doc, "计量单位")
    if unit and unit.lower() not in ("米", "m", "meter", "metre", "公尺"):
        raise TitlemapError(
            f"{_where(doc, '计量单位')}计量单位={unit!r}：只支持 米 / only metres are supported"
        )
    projection = _header_value(doc, "投影类型")
    if projection and not re.search(r"高斯|gauss|tm|横轴墨卡托", projection, re.I):
        raise TitlemapError(
            f"{_where(doc, '投影类型')}投影类型={projection!r}：只支持 高斯克吕格 / only "
            "Gauss-Krüger is supported"
        )
    width = _int_header(doc, "几度分带")
    if width is None:
        width = 6 if prefix and prefix <= 23 else 3
        notes.append(f"文件头没有 几度分带，按 {width} 度带 / no zone width: {width}-degree")
    elif width not in ZONES:
        raise TitlemapError(
            f"{_where(doc, '几度分带')}几度分带={width}：应为 3 或 6 / zone width must be 3 or 6"
        )
    low, high = ZONES[width]
    header_zone = _int_header(doc, "带号")
    if header_zone is not None and not low <= header_zone <= high:
        raise TitlemapError(
            f"{_where(doc, '带号')}带号={header_zone} 不是中国的 {width} 度带（{low}–{high}）/ "
            f"zone {header_zone} is not a Chinese {width}-degree zone"
        )
    if prefix is not None and not low <= prefix <= high:
        raise TitlemapError(
            f"文件头与坐标不一致：{_where(doc, '几度分带')}几度分带={width}，而 Y 坐标的带号前缀 "
            f"{prefix} 不是 {width} 度带（{low}–{high}）：请核对文件头 / the zone prefix {prefix} "
            f"is not a {width}-degree zone: check the header"
        )
    plain_east = east - prefix * 1_000_000 if prefix else east
    county_zone = _county_zone(width, options.county_lon) if options.county_lon else None
    zone = header_zone
    if header_zone is None:
        zone = prefix or county_zone
        if zone is None:
            raise TitlemapError(
                "文件头没有 带号，坐标也不带带号前缀，本县也没有边界可参照：请在 [属性描述] 中写 "
                "带号= / no zone in the header, the coordinates or the county"
            )
        how = "坐标的带号前缀" if prefix else "本县所在带"
        notes.append(f"文件头没有 带号，取{how} {zone} / no 带号: zone {zone} from the "
                     f"{'coordinates prefix' if prefix else 'county'}")  # fmt: skip
    elif prefix is not None and prefix != header_zone:
        if trust is None:
            raise _conflict(
                f"带号={header_zone}，而 Y 坐标带号前缀为 {prefix}", f"第 {header_zone} 带",
                f"第 {prefix} 带",
            )  # fmt: skip
        zone = header_zone if trust == "header" else prefix
        notes.append(f"带号与坐标前缀不符，按 --trust {trust} 取第 {zone} 带 / zone {zone} "
                     f"as trusted ({trust})")  # fmt: skip
    elif prefix is None and county_zone is not None and header_zone != county_zone:
        cm = lambda z: z * 3.0 if width == 3 else z * 6.0 - 3.0  # noqa: E731
        bounds = options.county_bounds
        if bounds is not None and not _lands(plain_east, north, datum, cm(header_zone), bounds) \
                and _lands(plain_east, north, datum, cm(county_zone), bounds):  # fmt: skip
            if trust is None:
                raise _conflict(
                    f"带号={header_zone}，坐标不带带号；按第 {header_zone} 带换算不在本县，"
                    f"按本县所在的第 {county_zone} 带换算则在县内", f"第 {header_zone} 带",
                    f"第 {county_zone} 带",
                )  # fmt: skip
            zone = header_zone if trust == "header" else county_zone
            notes.append(f"带号与坐标位置不符，按 --trust {trust} 取第 {zone} 带 / zone {zone} "
                         f"as trusted ({trust})")  # fmt: skip
    helmert, source = None, ""
    if datum in OLD_DATUMS.values():
        helmert, source = _parameters(doc, datum, options)
    crs = CRS.from_epsg(_cgcs2000_gk_epsg(width, zone))
    return Placement(datum, width, zone, swapped, prefix, crs, helmert, notes, source)


def _parameters(doc: TxtFile, datum: Datum, options) -> tuple[Helmert, str]:
    """The seven parameters and where they came from: the caller, the file, the county."""
    convention = options.convention
    given = parse_helmert(options.parameters, convention)
    if given is not None:
        return given, "--parameters"
    try:
        in_file = parse_helmert(doc.header.get("转换参数"), convention)
    except TitlemapError as exc:
        raise TitlemapError(f"{_where(doc, '转换参数')}{exc}") from None
    if in_file is not None:
        return in_file, f"文件头 转换参数（第 {doc.header_lines['转换参数']} 行）"
    county = settings_helmert(options.county_parameters, datum, convention)
    if county is not None:
        return county, "TITLEMAP_DATUM_PARAMETERS"
    where = _where(doc, "坐标系") or ""
    raise missing_parameters(datum, where)


# -- the reader ----------------------------------------------------------------------------------


def _rings(parcel: TxtParcel, plain_east, north, start: int) -> tuple[list[np.ndarray], int]:
    """The parcel's rings as (n, 2) arrays (east, north), closed; and how many were open."""
    rings: list[np.ndarray] = []
    opened = 0
    k = start
    current: list[int] = []
    current_ring = None
    for point in parcel.points:
        if current and point.ring != current_ring:
            rings.append(np.array(current))
            current = []
        current_ring = point.ring
        current.append(k)
        k += 1
    rings.append(np.array(current))
    out = []
    for indices in rings:
        xy = np.column_stack([plain_east[indices], north[indices]])
        if len(xy) and not np.array_equal(xy[0], xy[-1]):
            xy = np.vstack([xy, xy[:1]])
            opened += 1
        if len(set(map(tuple, xy.tolist()))) < 3:
            line = parcel.points[indices[0] - start].line
            raise TitlemapError(
                f"第 {line} 行起的圈少于 3 个不同的界址点 / line {line}: a ring with fewer than "
                "3 distinct points"
            )
        out.append(xy)
    return out, opened


def _polygon(rings: list[np.ndarray]) -> shapely.Geometry:
    """Ring 1 outer; a later ring inside an outer is its hole, else another outer."""
    if len(rings) == 1:
        return shapely.polygons(rings[0])
    shells: list[list] = []  # [outer ring, [holes]]
    for xy in rings:
        ring = shapely.Polygon(xy)
        inside = ring.representative_point()
        host = next((s for s in shells if s[2].area > ring.area and s[2].contains(inside)), None)
        if host is None:
            shells.append([xy, [], ring])
        else:
            host[1].append(xy)
    polygons = [shapely.Polygon(shell, holes) for shell, holes, _ in shells]
    return polygons[0] if len(polygons) == 1 else shapely.MultiPolygon(polygons)


def _area_unit(stated: list[float | None], drawn: np.ndarray) -> tuple[str, list[int]]:
    """ "公顷" or "平方米", whichever matches more drawn areas; and the parcels matching neither."""
    ha = m2 = 0
    neither = []
    for i, (value, area) in enumerate(zip(stated, drawn, strict=True)):
        if value is None or area <= 0:
            continue
        as_ha = abs(value * 10_000 - area) / area <= AREA_TOLERANCE
        as_m2 = abs(value - area) / area <= AREA_TOLERANCE
        ha += as_ha
        m2 += as_m2
        if not (as_ha or as_m2):
            neither.append(i)
    return ("平方米" if m2 > ha else "公顷"), neither


def read(path: Path, ctx: ReadContext) -> RawLayer:
    """A boundary coordinate file as a layer of polygons in CGCS2000 GK metres."""
    text, encoding = decode(path.read_bytes())
    doc = parse(text)
    doc.encoding = encoding
    points = [p for parcel in doc.parcels for p in parcel.points]
    north = np.array([p.north for p in points])
    east = np.array([p.east for p in points])
    placement = place(doc, ctx, north, east)
    if placement.swapped:
        north, east = east, north
    plain_east = east - placement.prefix * 1_000_000 if placement.prefix else east
    geoms, opened, counts = [], 0, []
    start = 0
    for parcel in doc.parcels:
        rings, open_rings = _rings(parcel, plain_east, north, start)
        opened += open_rings
        start += len(parcel.points)
        geoms.append(_polygon(rings))
        stated = _number(parcel.values["界址点数"])
        if stated is not None and int(stated) not in (
            len(parcel.points),
            len(parcel.points) + open_rings,
            len(parcel.points) - len(rings),
        ):
            counts.append(f"第 {parcel.line} 行 {int(stated)}≠{len(parcel.points)}")
    geoms = np.array(geoms, dtype=object)
    drawn = shapely.area(geoms)
    stated_areas = [_number(p.values["地块面积"].replace(",", "")) for p in doc.parcels]
    unit, neither = _area_unit(stated_areas, drawn)
    if placement.helmert is not None:
        geoms = _to_cgcs2000(geoms, placement)
    columns = {name: [p.values[name] for p in doc.parcels] for name in PARCEL_FIELDS[2:]}
    # The 地类编码 (GB/T 21010) is what the parcel table keeps; 地块用途, the use in words,
    # stands in where a file gives no code (exports write both, so a round trip keeps codes).
    columns["地块用途"] = [p.values["地类编码"] or p.values["地块用途"] for p in doc.parcels]
    columns[f"地块面积({unit})"] = stated_areas
    frame = gpd.GeoDataFrame(columns, geometry=list(geoms))
    notes = _notes(doc, placement, unit, neither, opened, counts)
    refs = [f"第 {p.line} 行" for p in doc.parcels]
    project = next((doc.header[k] for k in PROJECT_KEYS if doc.header.get(k)), None)
    return RawLayer(frame, placement.crs, notes, refs, project)


def _to_cgcs2000(geoms: np.ndarray, placement: Placement) -> np.ndarray:
    """Old-datum GK metres → CGCS2000 GK metres of the same central meridian."""
    source = gk_crs(placement.datum, placement.central_meridian)
    to_lonlat = old_datum_transformer(source, placement.datum, placement.helmert)
    to_gk = Transformer.from_crs(CRS.from_epsg(STORAGE_EPSG), placement.crs, always_xy=True)

    def move(xy: np.ndarray) -> np.ndarray:
        lon, lat = to_lonlat(xy[:, 0], xy[:, 1])
        return np.column_stack(to_gk.transform(lon, lat))

    return shapely.transform(geoms, move)


def _notes(doc: TxtFile, placement: Placement, unit: str, neither, opened, counts) -> list[str]:
    p = placement
    n_points = sum(len(parcel.points) for parcel in doc.parcels)
    prefix = f"，Y 带带号前缀 {p.prefix}" if p.prefix else ""
    notes = [
        f"界址点坐标交换文件（{doc.encoding}）：{len(doc.parcels)} 个地块，{n_points} 个界址点；"
        f"{p.datum.label}，{p.width} 度带第 {p.zone} 带（中央经线 {p.central_meridian:g}°）{prefix}"
        f" / boundary coordinate file: {len(doc.parcels)} parcels, {p.width}-degree zone {p.zone}",
        *p.notes,
    ]
    if p.helmert is not None:
        notes.append(
            f"{p.datum.label} 按 {p.helmert_source} 的 7 参数换算到 CGCS2000："
            f"{p.helmert.describe()}，参数方向为原坐标系→CGCS2000 / seven-parameter Helmert to "
            "CGCS2000"
        )
    notes.append(
        f"地块面积按 {unit} 读取（与图形面积相符的多数单位）/ 地块面积 read in "
        f"{'hectares' if unit == '公顷' else 'square metres'}"
    )
    if neither:
        lines = "、".join(f"第 {doc.parcels[i].line} 行" for i in neither[:5])
        notes.append(
            f"{len(neither)} 个地块的 地块面积 与图形面积相差超过 {AREA_TOLERANCE:.0%}（{lines}）"
            " / stated areas differ from the drawn ones"
        )
    if opened:
        notes.append(f"{opened} 个圈未重复首点，已自动闭合 / {opened} rings closed")
    if counts:
        notes.append(f"界址点数与实际点数不符：{'；'.join(counts[:5])} / point counts differ")
    if doc.ignored:
        notes.append(f"忽略 [属性描述] 中无法识别的行：第 {doc.ignored[0]} 行等 / ignored lines")
    return notes


READER = Reader("boundary_txt", "界址点坐标交换文件 TXT", (".txt",), read, sniff, strict=True)


# -- writing -------------------------------------------------------------------------------------


@dataclass
class TxtFeature:
    code: str
    name: str
    use: str
    land_class: str
    geometry: shapely.Geometry  # CGCS2000 GK metres, no zone prefix


def county_header(unit: str, zone: int, width: int = 3, on: date | None = None) -> dict[str, str]:
    """The [属性描述] block for a county's export."""
    return {
        "格式版本号": "1.01版本",
        "数据产生单位": unit,
        "数据产生日期": (on or date.today()).isoformat(),
        "坐标系": CGCS2000_DATUM.label,
        "几度分带": str(width),
        "投影类型": "高斯克吕格",
        "计量单位": "米",
        "带号": str(zone),
        "精度": "0.001",
        "转换参数": ",,,,,,",
    }


def _clean(value: str | None) -> str:
    # commas, "@" and line breaks would break the line apart
    return re.sub(r"[,，@\r\n]+", " ", str(value or "")).strip()


def _ordered_rings(geometry: shapely.Geometry) -> list[np.ndarray]:
    """Outer ring clockwise then its holes, for each part; coordinates rounded to mm."""
    rings = []
    for polygon in shapely.get_parts(geometry):
        polygon = orient(polygon, sign=-1.0)  # outer ring clockwise, as surveyors number
        rings.append(np.asarray(polygon.exterior.coords))
        rings += [np.asarray(hole.coords) for hole in polygon.interiors]
    return rings


def format_features(features: list[TxtFeature], header: dict[str, str]) -> str:
    lines = [f"[{ATTRIBUTE_SECTION}]"]
    lines += [f"{key}={header.get(key, '')}" for key in HEADER_KEYS]
    lines.append(f"[{COORDINATE_SECTION}]")
    for feature in features:
        rings = _ordered_rings(feature.geometry)
        rounded = [np.round(r, 3) for r in rings]
        area = shapely.area(_polygon(rounded)) / 10_000
        count = sum(len(r) for r in rounded)
        lines.append(
            f"{count},{area:.4f},{_clean(feature.code)},{_clean(feature.name)},面,,"
            f"{_clean(feature.use)},{_clean(feature.land_class)},@"
        )
        number = 0
        for ring_no, ring in enumerate(rounded, start=1):
            first = number + 1
            for k, (east, north) in enumerate(ring):
                closing = k == len(ring) - 1
                name = first if closing else number + 1
                if not closing:
                    number += 1
                lines.append(f"J{name},{ring_no},{north:.3f},{east:.3f}")
    return "\r\n".join(lines) + "\r\n"


def write(
    features: list[TxtFeature], path: str | Path, header: dict[str, str], utf8: bool = False
) -> Path:
    """Write `features` to `path`; GBK unless `utf8`."""
    path = Path(path)
    text = format_features(features, header)
    try:
        data = text.encode("utf-8" if utf8 else "gbk")
    except UnicodeEncodeError as exc:
        bad = text[exc.start : exc.end]
        raise TitlemapError(
            f"字符 {bad!r} 无法用 GBK 编码：请用 --utf8 导出 / {bad!r} has no GBK code: use --utf8"
        ) from None
    path.write_bytes(data)
    return path
