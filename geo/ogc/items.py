"""/items of a collection in ONE statement each: a page with its count, one feature, extents.

`items_page` answers a page in one statement that returns the finished `features` array as
JSON text (json_agg in PostGIS, no per-feature Python), with the count of matches. The page's
ids are chosen first (the (county_code, code) index gives their order), the properties and
geometries are built for those rows only, so a deep `offset` costs no more than the first page.
Counts and extents are kept in the engine's memo (geo.db.memo) under the county's revision.
"""

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, text

from geo import TitlemapError
from geo.core.dates import now, today
from geo.db.memo import memo_of
from geo.ogc.collections import Collection
from geo.ogc.cql2 import cql2_sql
from geo.ogc.crs import CRS84, OutputCrs, parse_crs
from geo.ogc.params import Params, bbox_sql, datetime_sql, property_sql
from geo.query.compounds import check_offset, data_version, extent, get_county

MAX_LIMIT = 10_000
DEFAULT_LIMIT = 10
GREGORIAN = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"


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


def _count_key(conn: Connection, coll: Collection, county: str, where: str, values: dict) -> tuple:
    """numberMatched is kept: counting 100 000 compounds is 40 % of a 1000-feature page. It
    changes only with the data (the county's revision) or, for `overdue`, the Beijing date."""
    bound = tuple(sorted((k, repr(v)) for k, v in values.items() if k not in ("limit", "offset")))
    revision = data_version(conn, county)[0]
    return ("ogc count", county, revision, today(), coll.id, where, bound)


def items_page(conn: Connection, county: str, coll: Collection, q: ItemsQuery) -> Page:
    """One page of a collection: matches counted, the page's features as a JSON array text."""
    if not 1 <= q.limit <= MAX_LIMIT:
        raise TitlemapError(f"limit 应在 1 到 {MAX_LIMIT} 之间 / limit must be 1..{MAX_LIMIT}")
    check_offset(q.offset)
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
    memo, count_key = memo_of(conn.engine), _count_key(conn, coll, county, where, values)
    known = memo.get(count_key)
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
        memo.put(count_key, row.matched)
    stamp = now().replace(microsecond=0).isoformat().replace("+00:00", "Z")
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


def collection_extents(conn: Connection, county: str) -> dict[str, dict]:
    """{collection id: OGC extent} — spatial box in CRS84, temporal interval where there is one.

    Overlaps lie inside compounds, so they are given the compounds' box. Kept per data
    version (geo.query.compounds.data_version): the boxes of 100 000 parcels take a while."""
    key = ("ogc extents", county, data_version(conn, county)[0])
    return memo_of(conn.engine)(key, lambda: _extents(conn, county))


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
