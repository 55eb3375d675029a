"""OGC API – Features collections (Part 1 core, Part 2 CRS, Part 3 filtering with CQL2-text).

Each `Collection` has an id, a title in Chinese and English, a SQL source for one county
(a query giving `geom` in EPSG:4490, the feature id and every property), a property schema
with types (what /queryables publishes and what filters are checked against) and an optional
temporal property:

- compounds: the export fields of geo.io.exports (ledger status, task units, rates, blockers,
  departments, deadline …); temporal property `sold_on` (首次销售日期: it decides whether a
  compound belongs on the ledger, and every compound has one, on the ledger or not);
- parcels: geo.io.exports' parcel fields (no temporal property);
- planned_areas, complaints: geo.query.tiles' layer sources; complaints by `received_on`;
- overlaps: geo.query.overlaps' compound × planned-area intersections, id `<compound>~<planned>`,
  read from the table `overlap_piece`, rewritten when the county's data revision moved on.

`items_page` answers a page in ONE statement that returns the finished `features` array as
JSON text (json_agg in PostGIS, no per-feature Python), with the count of matches. The page's
ids are chosen first (the (county_code, code) index gives their order), the properties and
geometries are built for those rows only, so a deep `offset` costs no more than the first page.

CRS (Part 2): output and `bbox-crs` / `filter-crs` in CRS84 (lon/lat, the default),
EPSG:4490, EPSG:4326 (both lat/lon, the EPSG axis order) and the county's two Gauss-Krüger
EPSG codes (northing, easting). Storage is EPSG:4490; 4326 is served as the same coordinates,
as PROJ does (CGCS2000 and WGS84 agree within centimetres).

CQL2-text (`parse_cql2` → `Filter.sql`), the subset implemented: AND / OR / NOT and
parentheses (NOT binds tightest, then AND, then OR); comparisons = <> < <= > >= between a
property and a literal or another property; [NOT] LIKE (% and _, backslash escapes);
[NOT] IN (…); [NOT] BETWEEN … AND …; IS [NOT] NULL; CASEI(…) around strings; literals:
'text' ('' for a quote), numbers, TRUE / FALSE, DATE('2024-01-31'), TIMESTAMP('…Z');
spatial S_INTERSECTS, S_DISJOINT, S_EQUALS, S_TOUCHES, S_CROSSES, S_WITHIN, S_CONTAINS,
S_OVERLAPS between `geometry` and a WKT literal (POINT … GEOMETRYCOLLECTION) or
BBOX(minx, miny, maxx, maxy), in `filter-crs` (CRS84 by default) and its axis order. Every
value is a bound parameter; property names must be queryables. No arithmetic, no temporal
(T_…) or array (A_…) functions: those are refused with a 400 naming what is supported.
"""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

import shapely
from pyproj import CRS
from sqlalchemy import Connection, text

from geo import TitlemapError
from geo.core.crs import STORAGE_EPSG, zone_of_epsg
from geo.core.model import PLANNED_AREA_LABELS
from geo.io.exports import (
    COMPOUND_FIELDS,
    INTEGER_FIELDS,
    PARCEL_FIELDS,
    compound_select,
    parcel_select,
)
from geo.query.compounds import (
    STATUS_FILTER_VALUES,
    TZ,
    CompoundFilter,
    beijing_today,
    data_version,
    extent,
    get_county,
)
from geo.query.overlaps import pieces_source, refresh_pieces
from geo.query.tiles import LAYERS as MAP_LAYERS

MAX_LIMIT = 10_000
DEFAULT_LIMIT = 10
MAX_FILTER_CHARS = 20_000
MAX_DEPTH = 60  # nesting of NOT / parentheses a filter may have

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/{}"
STORAGE_CRS = EPSG_URI.format(STORAGE_EPSG)
GREGORIAN = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"

# ---------------------------------------------------------------------------------------------
# Coordinate reference systems


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

    def geometry_sql(self, column: str = "s.geom") -> str:
        """SQL turning a stored EPSG:4490 geometry into this CRS and axis order."""
        geom = column if self.srid == STORAGE_EPSG else f"ST_Transform({column}, {self.srid})"
        return f"ST_FlipCoordinates({geom})" if self.north_first else geom


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


# ---------------------------------------------------------------------------------------------
# Collections


@dataclass(frozen=True)
class Prop:
    """A property: name, title (Chinese / English) and JSON type; `date` is an ISO string."""

    name: str
    title: str
    type: str = "string"  # string | integer | number | boolean | date
    enum: tuple[str, ...] = ()

    def column(self) -> str:
        """The property in SQL over the source `s`: dates travel as text, compare as dates."""
        return f'CAST(s."{self.name}" AS date)' if self.type == "date" else f's."{self.name}"'

    def schema(self) -> dict:
        out: dict[str, Any] = {"title": self.title}
        if self.type == "date":
            out |= {"type": "string", "format": "date"}
        else:
            out["type"] = self.type
        if self.enum:
            out["enum"] = list(self.enum)
        return out


Source = Callable[[str, int], tuple[str, dict]]  # (county, GK EPSG) → (SQL, params)


@dataclass(frozen=True)
class Collection:
    id: str
    title: str
    title_en: str
    description: str
    geometry: str  # multipolygon | point
    properties: tuple[Prop, ...]
    source: Source
    id_column: str = "code"  # the feature id (unique per county), also the page order
    temporal: str | None = None
    # Brings a derived table the source reads up to date before a query (overlaps).
    refresh: Callable[[Connection, str], Any] | None = None
    # A cheaper source with some of the columns, for counting and choosing the page when the
    # query names no other column (complaints: the compound holding each point is costly).
    base: Source | None = None
    base_columns: frozenset[str] = frozenset()

    @property
    def props(self) -> dict[str, Prop]:
        return {p.name: p for p in self.properties}

    def queryables(self) -> dict[str, Prop]:
        return self.props


NUMBER_FIELDS = {"area_m2", "first_rate", "transfer_rate", "recorded_area_m2", "premium_due",
                 "premium_paid", "premium_owed", "overlap_m2", "compound_m2",
                 "percent"}  # fmt: skip
BOOLEAN_FIELDS = {"on_ledger", "overdue", "outside_ledger"}
DATE_FIELDS = {"sold_on", "occupied_on", "deadline", "opened_on", "closed_on", "received_on"}
ENUMS = {
    "status": STATUS_FILTER_VALUES,
    "developer_credit_status": ("normal", "blacklisted", "unreachable"),
    "kind": tuple(k.value for k in PLANNED_AREA_LABELS),
}


def _prop(name: str, zh: str, english: str | None = None, enum: bool = True) -> Prop:
    kind = (
        "integer" if name in INTEGER_FIELDS
        else "number" if name in NUMBER_FIELDS
        else "boolean" if name in BOOLEAN_FIELDS
        else "date" if name in DATE_FIELDS
        else "string"
    )  # fmt: skip
    english = english or name.replace("_", " ")
    return Prop(name, f"{zh} / {english}", kind, ENUMS.get(name, ()) if enum else ())


def _compound_props() -> tuple[Prop, ...]:
    props = [_prop(en, zh) for en, zh in COMPOUND_FIELDS]
    at = [p.name for p in props].index("township") + 1
    props.insert(at, _prop("township_code", "乡镇（街道）代码", "township code"))
    return tuple(props)


def _compounds(county: str, epsg: int) -> tuple[str, dict]:
    return f"{compound_select(epsg)} WHERE c.county_code = :county", {"county": county}


def _parcels(county: str, epsg: int) -> tuple[str, dict]:
    return f"{parcel_select(epsg)} WHERE p.county_code = :county", {"county": county}


def _map_layer(name: str) -> Source:
    def source(county: str, epsg: int) -> tuple[str, dict]:
        return MAP_LAYERS[name].source(county, CompoundFilter(), None)

    return source


def _complaints_base(county: str, epsg: int) -> tuple[str, dict]:
    sql = """
        SELECT k.geom, k.code, k.received_on::text AS received_on, k.source, k.text
        FROM complaint k WHERE k.county_code = :county
    """
    return sql, {"county": county}


def _overlaps(county: str, epsg: int) -> tuple[str, dict]:
    # The pieces as stored per data revision (Collection.refresh computes them when stale).
    return pieces_source(county)


COLLECTIONS: dict[str, Collection] = {
    c.id: c
    for c in (
        Collection(
            "compounds", "小区及化解台账", "Compounds with their resolution ledger",
            "每个小区（项目）的边界、开发企业与化解台账字段：状态、任务套数、首次/转移登记套数与"
            "化解率、卡点、牵头单位、包抓领导、时限。时间属性：首次销售日期 sold_on。 / "
            "Each compound's outline, developer and ledger fields; temporal property sold_on.",
            "multipolygon", _compound_props(), _compounds, temporal="sold_on",
        ),
        Collection(
            "parcels", "宗地", "Parcels",
            "宗地边界、宗地代码、登记与图形面积（本县高斯投影带）、出让金及所属小区。 / "
            "Parcels with recorded and drawn area, land premium and their compounds.",
            "multipolygon",
            # status: the statuses of all the parcel's compounds, comma-joined — no enum
            tuple(_prop(en, zh, enum=en != "status") for en, zh in PARCEL_FIELDS), _parcels,
        ),
        Collection(
            "planned_areas", "规划片区", "Planned areas",
            "城东片区、城市更新、文明城市、规划道路、规划绿地、城市规划区。 / "
            "Planned areas by kind.",
            "multipolygon",
            (_prop("code", "编号"), _prop("name", "名称"), _prop("kind", "类型代码"),
             _prop("kind_label", "类型", "kind label")),
            _map_layer("planned"),
        ),
        Collection(
            "complaints", "留言投诉", "Complaints",
            "留言投诉的位置与内容；outside_ledger 为真表示不在任何台账小区内（摸排遗漏）。"
            "时间属性：受理日期 received_on。 / Complaints; outside_ledger marks points in no "
            "ledger compound. Temporal property received_on.",
            "point",
            (_prop("code", "编号"), _prop("received_on", "受理日期", "received on"),
             _prop("source", "来源"), _prop("text", "内容", "text"),
             _prop("compound_code", "所在小区编号"), _prop("compound_name", "所在小区名称"),
             _prop("outside_ledger", "不在台账小区内", "outside ledger")),
            _map_layer("complaints"), temporal="received_on", base=_complaints_base,
            base_columns=frozenset({"code", "received_on", "source", "text"}),
        ),
        Collection(
            "overlaps", "小区与规划片区重叠", "Compound × planned-area overlaps",
            "小区与规划片区内部相交的部分，面积在本县高斯投影带计算；编号为"
            "“小区编号~片区编号”。 / Intersections of compounds and planned areas, "
            "measured in the county's Gauss-Krüger zone; id <compound>~<planned area>.",
            "multipolygon",
            (_prop("id", "编号"), _prop("compound_code", "小区编号"),
             _prop("compound_name", "小区名称"), _prop("township", "所在乡镇"),
             _prop("status", "状态代码"), _prop("status_label", "化解状态", "status label"),
             _prop("planned_code", "规划片区编号"), _prop("planned_name", "规划片区名称"),
             _prop("kind", "规划类型代码"), _prop("kind_label", "规划类型", "kind label"),
             _prop("overlap_m2", "重叠面积平方米"), _prop("compound_m2", "小区面积平方米"),
             _prop("percent", "占小区面积比例", "percent of the compound")),
            _overlaps, id_column="id", refresh=refresh_pieces,
        ),
    )
}  # fmt: skip


def get_collection(collection_id: str) -> Collection:
    if collection_id not in COLLECTIONS:
        raise TitlemapError(
            f"没有集合 {collection_id!r} / no such collection; 可选 / one of: "
            + ", ".join(COLLECTIONS)
        )
    return COLLECTIONS[collection_id]


def queryables_schema(coll: Collection, url: str) -> dict:
    """The collection's queryables as a JSON Schema (OGC API – Features Part 3)."""
    props: dict[str, Any] = {
        "geometry": {"title": "几何 / geometry", "format": f"geometry-{coll.geometry}"}
    }
    props |= {p.name: p.schema() for p in coll.properties}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": url,
        "type": "object",
        "title": f"{coll.title} / {coll.title_en}",
        "properties": props,
        "additionalProperties": False,
    }


_EXTENTS: dict[tuple, dict[str, dict]] = {}


def feature_schema(coll: Collection, url: str) -> dict:
    """A JSON Schema of one GeoJSON feature of the collection: what GDAL reads (via the
    collection's describedBy link) to type its fields, instead of guessing from a first page
    whose rates might all be whole numbers."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": url,
        "title": f"{coll.title} / {coll.title_en}",
        "type": "object",
        "required": ["type", "geometry", "properties"],
        "properties": {
            "type": {"type": "string", "enum": ["Feature"]},
            "id": {"type": "string"},
            "geometry": {"format": f"geometry-{coll.geometry}"},
            "properties": {
                "type": "object",
                "properties": {p.name: p.schema() for p in coll.properties},
            },
        },
    }


def collection_extents(conn: Connection, county: str) -> dict[str, dict]:
    """{collection id: OGC extent} — spatial box in CRS84, temporal interval where there is one.

    Overlaps lie inside compounds, so they are given the compounds' box. Kept per data
    version (geo.query.compounds.data_version): the boxes of 100 000 parcels take a while."""
    key = (county, *data_version(conn, county))
    if key not in _EXTENTS:
        if len(_EXTENTS) > 100:
            _EXTENTS.clear()
        _EXTENTS[key] = _extents(conn, county)
    return _EXTENTS[key]


def _extents(conn: Connection, county: str) -> dict[str, dict]:

    def box(table: str) -> str:
        return (
            "(SELECT ARRAY[ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b)] FROM "
            f"(SELECT ST_Extent(geom) AS b FROM {table} WHERE county_code = :c) x)"
        )

    row = conn.execute(
        text(f"""
            SELECT {box("parcel")} AS parcels, {box("planned_area")} AS planned_areas,
                   {box("complaint")} AS complaints,
                   (SELECT ARRAY[min(sold_on), max(sold_on)] FROM compound
                    WHERE county_code = :c) AS compounds_t,
                   (SELECT ARRAY[min(received_on), max(received_on)] FROM complaint
                    WHERE county_code = :c) AS complaints_t
        """),
        {"c": county},
    ).one()
    compounds = extent(conn, county)
    boxes = {
        "compounds": compounds,
        "parcels": row.parcels,
        "planned_areas": row.planned_areas,
        "complaints": row.complaints,
        "overlaps": compounds,
    }
    times = {"compounds": row.compounds_t, "complaints": row.complaints_t}
    out: dict[str, dict] = {}
    for cid, box in boxes.items():
        item: dict[str, Any] = {}
        if box and box[0] is not None:
            item["spatial"] = {"bbox": [[round(float(v), 7) for v in box]], "crs": CRS84}
        span = times.get(cid)
        if span and span[0] is not None:
            item["temporal"] = {
                "interval": [[f"{span[0].isoformat()}T00:00:00+08:00",
                              f"{span[1].isoformat()}T23:59:59+08:00"]],
                "trs": GREGORIAN,
            }  # fmt: skip
        out[cid] = item
    return out


# ---------------------------------------------------------------------------------------------
# Query parameters: bbox, datetime, property values


class Params:
    """Bound parameters named p0, p1, …: every user value goes through here."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def add(self, value: Any) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f":{name}"


def _numbers(value: str, what: str) -> list[float]:
    try:
        numbers = [float(v) for v in value.split(",")]
    except ValueError:
        raise TitlemapError(f"{what} 应为逗号分隔的数 / {what} needs numbers: {value!r}") from None
    if any(n != n or n in (float("inf"), float("-inf")) for n in numbers):
        raise TitlemapError(f"{what} 含无效数值 / {what} has an invalid number: {value!r}")
    return numbers


def envelope_sql(
    minx: float, miny: float, maxx: float, maxy: float, crs: OutputCrs, params: Params
) -> str:
    """SQL for a box given in `crs` and its axis order, as an EPSG:4490 geometry."""
    if crs.north_first:
        minx, miny, maxx, maxy = miny, minx, maxy, maxx
    if minx > maxx or miny > maxy:
        raise TitlemapError("bbox 的最小值应在前 / bbox: lower corner first")
    if crs.geographic and not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise TitlemapError("bbox 超出经纬度范围 / bbox outside lon/lat range")
    corners = ", ".join(params.add(v) for v in (minx, miny, maxx, maxy))
    if crs.srid == STORAGE_EPSG:
        return f"ST_MakeEnvelope({corners}, 4490)"
    # A GK box's edges are straight in metres: cut them into 10 m pieces before turning to 4490.
    return f"ST_Transform(ST_Segmentize(ST_MakeEnvelope({corners}, {crs.srid}), 10.0), 4490)"


def bbox_sql(value: str, crs: OutputCrs, params: Params) -> str:
    """`bbox` (4 or 6 numbers, in `bbox-crs` axis order) as a WHERE clause on `s.geom`."""
    numbers = _numbers(value, "bbox")
    if len(numbers) == 6:
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]  # heights play no part
    if len(numbers) != 4:
        raise TitlemapError(f"bbox 应为 4 或 6 个数 / bbox needs 4 or 6 numbers: {value!r}")
    return f"ST_Intersects(s.geom, {envelope_sql(*numbers, crs, params)})"


def _instant(value: str) -> date | None:
    """A date, or the Beijing date of a timestamp; None for an open end ('..' or '')."""
    value = value.strip()
    if value in ("", ".."):
        return None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}T", value):
        # GDAL 3.6 turns a -where on ANY date field into datetime=…T: refuse it loudly
        # rather than filter the wrong field.
        raise TitlemapError(
            f"datetime {value!r} 不是 RFC 3339；datetime 只筛选本集合的时间属性。GDAL 3.6 会把"
            "任何日期字段的 -where 变成 datetime：请先导出再筛选 / not RFC 3339; datetime "
            "filters the collection's temporal property only — with GDAL 3.6, copy then filter"
        )
    try:
        if "T" in value or " " in value:
            moment = datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
            return (moment if moment.tzinfo else moment.replace(tzinfo=TZ)).astimezone(TZ).date()
        return date.fromisoformat(value)
    except ValueError:
        raise TitlemapError(
            f"datetime 应为 RFC 3339 日期或区间 / datetime needs a date or an interval: {value!r}"
        ) from None


def datetime_sql(value: str, coll: Collection, params: Params) -> str:
    """`datetime` (an instant, or start/end with '..' for open) on the temporal property.

    The temporal properties are dates: an instant matches its (Beijing) day, an interval
    every day from its start's to its end's, both included."""
    if coll.temporal is None:
        raise TitlemapError(
            f"集合 {coll.id} 没有时间属性，不能用 datetime / collection has no temporal property"
        )
    column = coll.props[coll.temporal].column()
    parts = value.split("/")
    if len(parts) == 1:
        day = _instant(parts[0])
        if day is None:
            raise TitlemapError("datetime 不能为空 / datetime is empty")
        return f"{column} = {params.add(day)}"
    if len(parts) != 2:
        raise TitlemapError(f"datetime 区间应为 起/止 / datetime interval is start/end: {value!r}")
    start, end = _instant(parts[0]), _instant(parts[1])
    if start and end and start > end:
        raise TitlemapError(f"datetime 起点晚于终点 / datetime starts after it ends: {value!r}")
    clauses = [f"{column} IS NOT NULL"]
    if start:
        clauses.append(f"{column} >= {params.add(start)}")
    if end:
        clauses.append(f"{column} <= {params.add(end)}")
    return " AND ".join(clauses)


def typed_value(prop: Prop, value: str) -> Any:
    """A query-string value as the property's type (what a property filter compares with)."""
    try:
        if prop.type == "integer":
            return int(value)
        if prop.type == "number":
            return float(value)
        if prop.type == "date":
            return date.fromisoformat(value)
    except ValueError:
        raise TitlemapError(
            f"{prop.name} 应为 {prop.type} / {prop.name} needs a {prop.type}: {value!r}"
        ) from None
    if prop.type == "boolean":
        if value.lower() not in ("true", "false"):
            raise TitlemapError(f"{prop.name} 应为 true 或 false / needs true or false: {value!r}")
        return value.lower() == "true"
    if prop.enum and value not in prop.enum:
        raise TitlemapError(
            f"{prop.name} 的值 {value!r} 未知 / unknown value; 可选 / allowed: {list(prop.enum)}"
        )
    return value


def property_sql(prop: Prop, values: list[str], params: Params) -> str:
    """`name=value` (repeat for any of several) as a WHERE clause."""
    bound = ", ".join(params.add(typed_value(prop, v)) for v in values)
    return f"{prop.column()} IN ({bound})"


# ---------------------------------------------------------------------------------------------
# CQL2-text → SQL

GEOMETRY_WORDS = ("POINT", "LINESTRING", "POLYGON", "MULTIPOINT", "MULTILINESTRING",
                  "MULTIPOLYGON", "GEOMETRYCOLLECTION")  # fmt: skip
SPATIAL = {
    "S_INTERSECTS": "ST_Intersects", "S_DISJOINT": "ST_Disjoint", "S_EQUALS": "ST_Equals",
    "S_TOUCHES": "ST_Touches", "S_CROSSES": "ST_Crosses", "S_WITHIN": "ST_Within",
    "S_CONTAINS": "ST_Contains", "S_OVERLAPS": "ST_Overlaps",
}  # fmt: skip
COMPARISONS = ("=", "<>", "<", "<=", ">", ">=")
KEYWORDS = {"AND", "OR", "NOT", "LIKE", "IN", "BETWEEN", "IS", "NULL", "TRUE", "FALSE",
            "DATE", "TIMESTAMP", "CASEI", "BBOX"}  # fmt: skip
GEOMETRY_PROPERTIES = ("geometry", "geom")

_SPACE = re.compile(r"\s*")
_TOKEN = re.compile(
    r"""(?:
        (?P<string>'(?:[^']|'')*')
      | (?P<number>[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
      | (?P<quoted>"(?:[^"]|"")+")
      | (?P<word>[^\W\d][\w.:]*)
      | (?P<op><>|<=|>=|=|<|>|\(|\)|,)
    )""",
    re.VERBOSE,
)


@dataclass
class Token:
    kind: str  # string number quoted word op wkt end
    value: Any
    at: int  # character position, for messages


def _syntax(at: int, message: str) -> TitlemapError:
    where = f"（第 {at + 1} 个字符）/ CQL2 syntax error at {at + 1}"
    return TitlemapError(f"CQL2 语法错误{where}: {message}")


def _wkt_end(source: str, start: int) -> int:
    """Where the WKT beginning at `start` (its keyword) ends: after its balanced parentheses."""
    open_at = source.find("(", start)
    if open_at < 0:
        raise _syntax(start, "几何缺少括号 / geometry without coordinates")
    depth = 0
    for i in range(open_at, len(source)):
        if source[i] == "(":
            depth += 1
        elif source[i] == ")":
            depth -= 1
            if depth == 0:
                return i + 1
    raise _syntax(start, "几何括号不配对 / unbalanced parentheses in geometry")


def tokenize(source: str) -> list[Token]:
    tokens: list[Token] = []
    pos = _SPACE.match(source, 0).end()
    while pos < len(source):
        m = _TOKEN.match(source, pos)
        if m is None or m.lastgroup is None:
            raise _syntax(pos, f"无法识别 / unexpected {source[pos : pos + 10]!r}")
        kind, value, at = m.lastgroup, m.group(m.lastgroup), pos
        pos = m.end()
        if kind == "string":
            value = value[1:-1].replace("''", "'")
        elif kind == "quoted":  # a "double-quoted" property name
            kind, value = "name", value[1:-1].replace('""', '"')
        elif kind == "word" and value.upper() in GEOMETRY_WORDS:
            pos = _wkt_end(source, at)
            kind, value = "wkt", source[at:pos]
        elif kind == "number":
            # "a-1" is no expression here; a sign right after a word or ")" would be arithmetic
            if value[0] in "+-" and tokens and tokens[-1].kind in ("word", "name", "number"):
                raise _syntax(at, "不支持算术 / arithmetic is not supported")
            value = float(value) if any(ch in value for ch in ".eE") else int(value)
        tokens.append(Token(kind, value, at))
        pos = _SPACE.match(source, pos).end()
    tokens.append(Token("end", None, len(source)))
    return tokens


@dataclass
class Operand:
    """A compiled operand: its SQL, its type (a Prop type, 'geometry' or 'null'), whether it
    is a property."""

    sql: str
    type: str
    is_property: bool = False
    name: str = ""


@dataclass
class Compiler:
    """Recursive descent over the tokens, writing SQL as it goes (values into `params`)."""

    tokens: list[Token]
    coll: Collection
    crs: OutputCrs
    params: Params
    i: int = 0
    depth: int = 0
    used: set[str] = field(default_factory=set)

    # -- token helpers
    def peek(self, offset: int = 0) -> Token:
        return self.tokens[min(self.i + offset, len(self.tokens) - 1)]

    def word(self, offset: int = 0) -> str | None:
        t = self.peek(offset)
        return t.value.upper() if t.kind == "word" else None

    def take(self) -> Token:
        t = self.peek()
        self.i += 1
        return t

    def expect_op(self, op: str) -> None:
        t = self.take()
        if t.kind != "op" or t.value != op:
            raise _syntax(t.at, f"应为 {op!r} / expected {op!r}")

    def expect_word(self, word: str) -> None:
        t = self.take()
        if t.kind != "word" or t.value.upper() != word:
            raise _syntax(t.at, f"应为 {word} / expected {word}")

    # -- boolean structure: OR < AND < NOT
    def parse(self) -> str:
        sql = self.or_expr()
        t = self.peek()
        if t.kind != "end":
            raise _syntax(t.at, f"多余的内容 / unexpected {t.value!r}")
        return sql

    def or_expr(self) -> str:
        parts = [self.and_expr()]
        while self.word() == "OR":
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def and_expr(self) -> str:
        parts = [self.not_expr()]
        while self.word() == "AND":
            self.take()
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def not_expr(self) -> str:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _syntax(self.peek().at, f"嵌套超过 {MAX_DEPTH} 层 / nested too deeply")
        try:
            if self.word() == "NOT":
                self.take()
                return f"(NOT {self.not_expr()})"
            return self.primary()
        finally:
            self.depth -= 1

    def primary(self) -> str:
        t = self.peek()
        if t.kind == "op" and t.value == "(":
            self.take()
            sql = self.or_expr()
            self.expect_op(")")
            return f"({sql})"
        name = self.word()
        if name in SPATIAL:
            return self.spatial(name)
        return self.predicate()

    # -- predicates
    def predicate(self) -> str:
        left = self.operand()
        negate = False
        if self.word() == "NOT" and self.word(1) in ("LIKE", "IN", "BETWEEN"):
            self.take()
            negate = True
        op = self.peek()
        word = self.word()
        if op.kind == "op" and op.value in COMPARISONS:
            self.take()
            right = self.operand()
            return self.compare(left, op.value, right, op.at)
        if word == "LIKE":
            self.take()
            return self.like(left, self.operand(), negate, op.at)
        if word == "IN":
            self.take()
            return self.in_list(left, negate, op.at)
        if word == "BETWEEN":
            self.take()
            low = self.operand()
            self.expect_word("AND")
            high = self.operand()
            self.check_types(left, low, op.at)
            self.check_types(left, high, op.at)
            if left.type not in ("integer", "number", "date"):
                raise _syntax(op.at, "BETWEEN 只用于数值或日期 / BETWEEN needs numbers or dates")
            return f"({left.sql} {'NOT ' if negate else ''}BETWEEN {low.sql} AND {high.sql})"
        if word == "IS":
            self.take()
            is_not = self.word() == "NOT"
            if is_not:
                self.take()
            self.expect_word("NULL")
            if not left.is_property:
                raise _syntax(op.at, "IS NULL 需要属性 / IS NULL needs a property")
            return f"({left.sql} IS {'NOT ' if is_not else ''}NULL)"
        raise _syntax(op.at, "应为比较、LIKE、IN、BETWEEN 或 IS / expected a comparison")

    def compare(self, left: Operand, op: str, right: Operand, at: int) -> str:
        if not (left.is_property or right.is_property):
            raise _syntax(at, "比较需要至少一个属性 / a comparison needs a property")
        self.check_types(left, right, at)
        if left.type == "boolean" and op not in ("=", "<>"):
            raise _syntax(at, "布尔值只能用 = 或 <> / booleans compare with = or <> only")
        return f"({left.sql} {op} {right.sql})"

    def like(self, left: Operand, pattern: Operand, negate: bool, at: int) -> str:
        if left.type != "string" or pattern.type != "string":
            raise _syntax(at, "LIKE 只用于文本 / LIKE needs text")
        return f"({left.sql} {'NOT ' if negate else ''}LIKE {pattern.sql})"

    def in_list(self, left: Operand, negate: bool, at: int) -> str:
        self.expect_op("(")
        items = [self.operand()]
        while self.peek().kind == "op" and self.peek().value == ",":
            self.take()
            items.append(self.operand())
        self.expect_op(")")
        for item in items:
            self.check_types(left, item, at)
        joined = ", ".join(item.sql for item in items)
        return f"({left.sql} {'NOT ' if negate else ''}IN ({joined}))"

    def check_types(self, a: Operand, b: Operand, at: int) -> None:
        numeric = ("integer", "number")
        if a.type == b.type or (a.type in numeric and b.type in numeric):
            return
        if "null" in (a.type, b.type):
            raise _syntax(at, "与 NULL 比较请用 IS NULL / use IS NULL to test for NULL")
        what = f"{a.name or a.type} ({a.type}) 与 / vs {b.name or b.type} ({b.type})"
        dated = "date" in (a.type, b.type)
        hint = "；日期请写 DATE('2024-01-31') / dates as DATE('…')" if dated else ""
        raise _syntax(at, f"类型不符 / type mismatch: {what}{hint}")

    # -- operands
    def operand(self) -> Operand:
        t = self.take()
        if t.kind == "string":
            return Operand(self.params.add(t.value), "string")
        if t.kind == "number":
            return Operand(self.params.add(t.value), "number")
        if t.kind == "name":
            return self.property(t)
        if t.kind == "word":
            word = t.value.upper()
            if word in ("TRUE", "FALSE"):
                return Operand(word, "boolean")
            if word == "NULL":
                return Operand("NULL", "null")
            if word in ("DATE", "TIMESTAMP"):
                return self.temporal_literal(word, t)
            if word == "CASEI":
                self.expect_op("(")
                inner = self.operand()
                self.expect_op(")")
                if inner.type != "string":
                    raise _syntax(t.at, "CASEI 只用于文本 / CASEI needs text")
                return Operand(f"lower({inner.sql})", "string", inner.is_property, inner.name)
            if word in KEYWORDS or word in SPATIAL:
                raise _syntax(t.at, f"此处不应是 {t.value} / unexpected {t.value}")
            if self.peek().kind == "op" and self.peek().value == "(":
                raise _syntax(t.at, f"不支持函数 {t.value} / function {t.value} is not supported")
            return self.property(t)
        raise _syntax(t.at, f"应为属性或值 / expected a property or a value, got {t.value!r}")

    def property(self, t: Token) -> Operand:
        props = self.coll.queryables()
        if t.value in GEOMETRY_PROPERTIES:
            raise _syntax(t.at, "几何只用于空间函数 / geometry only in spatial functions")
        if t.value not in props:
            raise TitlemapError(
                f"未知属性 {t.value!r} / unknown property; 可查询 / queryables: {', '.join(props)}"
            )
        prop = props[t.value]
        self.used.add(prop.name)
        return Operand(prop.column(), prop.type, True, prop.name)

    def temporal_literal(self, word: str, t: Token) -> Operand:
        self.expect_op("(")
        s = self.take()
        self.expect_op(")")
        if s.kind != "string":
            raise _syntax(s.at, f"{word} 需要带引号的文本 / {word} needs a quoted string")
        if word == "DATE":
            try:
                value = date.fromisoformat(s.value)
            except ValueError:
                raise _syntax(s.at, f"日期无效 / invalid date {s.value!r}") from None
        else:
            value = _instant(s.value if "T" in s.value else s.value + "T00:00:00Z")
        return Operand(self.params.add(value), "date")

    # -- spatial
    def spatial(self, name: str) -> str:
        at = self.take().at
        self.expect_op("(")
        a = self.spatial_operand()
        self.expect_op(",")
        b = self.spatial_operand()
        self.expect_op(")")
        if a.is_property == b.is_property:
            raise _syntax(at, f"{name} 需要 geometry 与一个几何值 / needs geometry and a literal")
        return f"{SPATIAL[name]}({a.sql}, {b.sql})"

    def spatial_operand(self) -> Operand:
        t = self.take()
        if t.kind in ("word", "name") and t.value in GEOMETRY_PROPERTIES:
            return Operand("s.geom", "geometry", True)
        if t.kind == "wkt":
            return Operand(self.wkt(t), "geometry")
        if t.kind == "word" and t.value.upper() == "BBOX":
            self.expect_op("(")
            numbers = [self.number()]
            while self.peek().kind == "op" and self.peek().value == ",":
                self.take()
                numbers.append(self.number())
            self.expect_op(")")
            if len(numbers) == 6:
                numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
            if len(numbers) != 4:
                raise _syntax(t.at, "BBOX 需要 4 或 6 个数 / BBOX needs 4 or 6 numbers")
            try:
                return Operand(envelope_sql(*numbers, self.crs, self.params), "geometry")
            except TitlemapError as exc:
                raise _syntax(t.at, str(exc)) from None
        raise _syntax(t.at, "应为 geometry、WKT 几何或 BBOX / expected geometry, WKT or BBOX")

    def number(self) -> float:
        t = self.take()
        if t.kind != "number":
            raise _syntax(t.at, "应为数 / expected a number")
        return float(t.value)

    def wkt(self, t: Token) -> str:
        try:
            geom = shapely.from_wkt(t.value)
        except shapely.errors.GEOSException as exc:
            raise _syntax(t.at, f"WKT 无效 / invalid WKT: {exc}") from None
        if geom is None or geom.is_empty:
            raise _syntax(t.at, "几何为空 / empty geometry")
        geom = shapely.force_2d(geom)
        if self.crs.north_first:  # given lat/lon (northing/easting): store x first
            geom = shapely.transform(geom, lambda xy: xy[:, ::-1])
        if self.crs.geographic:
            xmin, ymin, xmax, ymax = geom.bounds
            if not (-180 <= xmin and xmax <= 180 and -90 <= ymin and ymax <= 90):
                raise _syntax(t.at, "坐标超出经纬度范围 / coordinates outside lon/lat range")
        wkt = self.params.add(shapely.to_wkt(geom, rounding_precision=-1))
        if self.crs.srid == STORAGE_EPSG:
            return f"ST_GeomFromText({wkt}, 4490)"
        return f"ST_Transform(ST_Segmentize(ST_GeomFromText({wkt}, {self.crs.srid}), 10.0), 4490)"


def cql2_sql(
    source: str, coll: Collection, crs: OutputCrs, params: Params, used: set[str] | None = None
) -> str:
    """A CQL2-text filter as a WHERE clause over the collection's source `s`; the properties
    it names are added to `used`."""
    if len(source) > MAX_FILTER_CHARS:
        raise TitlemapError(f"filter 过长 / filter longer than {MAX_FILTER_CHARS} characters")
    if not source.strip():
        raise TitlemapError("filter 为空 / filter is empty")
    compiler = Compiler(tokenize(source), coll, crs, params)
    sql = compiler.parse()
    if used is not None:
        used |= compiler.used
    return sql


# ---------------------------------------------------------------------------------------------
# Items


@dataclass
class ItemsQuery:
    """What /items asks for, checked: the WHERE clauses are built from bound parameters."""

    limit: int = DEFAULT_LIMIT
    offset: int = 0
    crs: str | None = None
    bbox: str | None = None
    bbox_crs: str | None = None
    datetime: str | None = None
    filter: str | None = None
    filter_lang: str | None = None
    filter_crs: str | None = None
    properties: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Page:
    matched: int
    returned: int
    features: str  # the JSON array of features, as PostGIS wrote it
    crs: OutputCrs
    time_stamp: str


def _where(coll: Collection, q: ItemsQuery, epsg: int, params: Params, used: set[str]) -> str:
    """The WHERE clause of the query; the properties it names are added to `used`."""
    clauses = []
    if q.bbox:
        clauses.append(bbox_sql(q.bbox, parse_crs(q.bbox_crs, epsg, "bbox-crs"), params))
    elif q.bbox_crs:
        parse_crs(q.bbox_crs, epsg, "bbox-crs")
    if q.datetime:
        clauses.append(datetime_sql(q.datetime, coll, params))
        used.add(str(coll.temporal))
    props = coll.queryables()
    for name, values in q.properties.items():
        if name not in props:
            raise TitlemapError(
                f"未知属性 {name!r} / unknown property; 可查询 / queryables: {', '.join(props)}"
            )
        clauses.append(property_sql(props[name], values, params))
        used.add(name)
    if q.filter_lang and q.filter_lang.lower() != "cql2-text":
        raise TitlemapError(
            f"不支持的 filter-lang {q.filter_lang!r} / unsupported; 可选 / supported: cql2-text"
        )
    if q.filter is not None:
        filter_crs = parse_crs(q.filter_crs, epsg, "filter-crs")
        clauses.append(cql2_sql(q.filter, coll, filter_crs, params, used))
    elif q.filter_crs:
        parse_crs(q.filter_crs, epsg, "filter-crs")
    return " AND ".join(clauses) or "true"


def _feature_sql(coll: Collection, crs: OutputCrs) -> tuple[str, str]:
    """(SQL writing one feature as GeoJSON text, the LATERAL join it needs after `s`).

    The geometry text is spliced in as PostGIS wrote it (a ::json cast would parse every
    coordinate again); the properties are row_to_json of a row of them — 2.5 times cheaper
    than json_build_object with 70 arguments, which looks up every argument's type per row."""
    columns = ", ".join(f's."{p.name}"' for p in coll.properties)
    geometry = f"ST_AsGeoJSON({crs.geometry_sql()}, {crs.precision}, 0)"
    feature = f"""('{{"type": "Feature", "id": ' || to_json(s."{coll.id_column}")::text
        || ', "geometry": ' || coalesce({geometry}, 'null')
        || ', "properties": ' || row_to_json(props)::text || '}}')"""
    return feature, f"CROSS JOIN LATERAL (SELECT {columns}) props"


# numberMatched of recent queries. Counting 100 000 compounds is 40 % of a 1000-feature
# page; the count only changes with the data (the county's revision, bumped by triggers on
# every change: geo.query.compounds.data_version) or, for `overdue`, with the Beijing date.
_COUNTS: dict[tuple, int] = {}


def _count_key(conn: Connection, coll: Collection, county: str, where: str, values: dict) -> tuple:
    bound = tuple(sorted((k, repr(v)) for k, v in values.items() if k not in ("limit", "offset")))
    return (coll.id, county, where, bound, data_version(conn, county), beijing_today())


def items_page(conn: Connection, county: str, coll: Collection, q: ItemsQuery) -> Page:
    """One page of a collection: matches counted, the page's features as a JSON array text."""
    if not 1 <= q.limit <= MAX_LIMIT:
        raise TitlemapError(f"limit 应在 1 到 {MAX_LIMIT} 之间 / limit must be 1..{MAX_LIMIT}")
    if q.offset < 0:
        raise TitlemapError("offset 不能为负 / offset must be ≥ 0")
    info = get_county(conn, county)
    crs = parse_crs(q.crs, info.epsg, "crs")
    bound, used = Params(), set[str]()
    where = _where(coll, q, info.epsg, bound, used)  # a bad query fails before any refresh
    if coll.refresh is not None:
        coll.refresh(conn, county)
    source, params = coll.source(county, info.epsg)
    key = f's."{coll.id_column}"'
    matching = source
    if coll.base is not None and used <= coll.base_columns:
        matching, base_params = coll.base(county, info.epsg)
        params = params | base_params
    feature, props = _feature_sql(coll, crs)
    values = params | bound.values | {"limit": q.limit, "offset": q.offset}
    count_key = _count_key(conn, coll, county, where, values)
    known = _COUNTS.get(count_key)
    if known is None:
        count = f"(SELECT count(*) FROM ({matching}) s WHERE {where})"
    else:
        count, values = "CAST(:known_count AS bigint)", values | {"known_count": known}
    # The page's ids first (in id order, from the index where there is one), then the
    # features of those rows alone: a deep offset builds no more JSON than the first page.
    sql = f"""
        WITH page AS (
            SELECT {key} AS fid FROM ({matching}) s WHERE {where}
            ORDER BY {key} LIMIT :limit OFFSET :offset
        )
        SELECT {count} AS matched,
               (SELECT count(*) FROM page) AS returned,
               (SELECT '[' || coalesce(string_agg(f.feature, ', ' ORDER BY f.fid), '') || ']' FROM (
                    SELECT page.fid, {feature} AS feature
                    FROM page JOIN ({source}) s ON {key} = page.fid {props}
               ) f) AS features
    """
    row = conn.execute(text(sql), values).one()
    if known is None:
        if len(_COUNTS) >= 2048:
            _COUNTS.clear()
        _COUNTS[count_key] = row.matched
    stamp = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return Page(row.matched, row.returned, row.features, crs, stamp)


def item(
    conn: Connection, county: str, coll: Collection, feature_id: str, crs_value: str | None
) -> tuple[str, OutputCrs]:
    """One feature as GeoJSON text, in the asked CRS; TitlemapError when there is none."""
    info = get_county(conn, county)
    crs = parse_crs(crs_value, info.epsg, "crs")
    if coll.refresh is not None:
        coll.refresh(conn, county)
    source, params = coll.source(county, info.epsg)
    feature, props = _feature_sql(coll, crs)
    sql = f"""
        SELECT {feature} FROM ({source}) s {props} WHERE s."{coll.id_column}" = :feature_id
    """
    found = conn.execute(text(sql), params | {"feature_id": feature_id}).scalar()
    if found is None:
        raise TitlemapError(f"{coll.id} 中没有 {feature_id!r} / no such feature")
    return found, crs


def feature_collection(page: Page, links: list[dict]) -> str:
    """The items document: the page's features spliced in as PostGIS wrote them."""
    head = json.dumps(
        {
            "type": "FeatureCollection",
            "numberMatched": page.matched,
            "numberReturned": page.returned,
            "timeStamp": page.time_stamp,
            "links": links,
        },
        ensure_ascii=False,
    )
    return f'{head[:-1]}, "features": {page.features}}}'
