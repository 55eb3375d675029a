"""/ogc: OGC API – Features (Part 1 core, Part 2 CRS, Part 3 queryables and CQL2-text filters).

JSON (GeoJSON for items) or plain server-side HTML, chosen by `f=json|html` or else the
Accept header (a browser gets HTML). Links are absolute and keep the request's other query
parameters (`county`, filters), so a client paging with `next` stays on the same query.
The collections, queries and CRS handling are in geo.ogc (collections, crs, params, cql2,
items); this module only speaks HTTP.
"""

import hashlib
import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from sqlalchemy import Connection

from api.dependencies import connection, county_of, etag_matches
from api.pages import html_page
from geo import TitlemapError
from geo.core.dates import today
from geo.ogc.collections import (
    COLLECTIONS,
    Collection,
    feature_schema,
    get_collection,
    queryables_schema,
)
from geo.ogc.crs import CRS84, STORAGE_CRS, parse_crs, supported_crs
from geo.ogc.items import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    ItemsQuery,
    Page,
    collection_extents,
    feature_collection,
    item,
    items_page,
)
from geo.query.compounds import MAX_OFFSET, data_version, get_county

router = APIRouter(prefix="/ogc", tags=["OGC API – Features"])

JSON = "application/json"
GEOJSON = "application/geo+json"
SCHEMA = "application/schema+json"
HTML = "text/html"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
REL_QUERYABLES = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/property-property",
]
ITEMS_PARAMS = {"f", "county", "limit", "offset", "bbox", "bbox-crs", "crs", "datetime",
                "filter", "filter-lang", "filter-crs"}  # fmt: skip

County = Annotated[str | None, Query(description="县级行政区划代码 / county code (默认本县)")]
F = Annotated[str | None, Query(description="json 或 html（否则按 Accept）/ json or html")]
CollectionId = Annotated[
    str, Path(description="集合 / collection: " + ", ".join(COLLECTIONS), alias="collectionId")
]


def _param(name: str, description: str, schema: dict, style: dict | None = None) -> dict:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema} | (style or {})  # fmt: skip


ITEMS_OPENAPI = {
    "parameters": [
        _param("limit", f"每页条数 / features per page (≤ {MAX_LIMIT}; more is cut to it)",
               {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}),
        _param("offset", "跳过的条数 / features to skip",
               {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET}),
        _param("bbox", "minx,miny,maxx,maxy（按 bbox-crs 的轴序，默认 CRS84 经度在前）",
               {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 6},
               {"style": "form", "explode": False}),
        _param("bbox-crs", "bbox 的坐标系 URI / CRS of bbox", {"type": "string", "format": "uri"}),
        _param("crs", "输出坐标系 URI / output CRS", {"type": "string", "format": "uri"}),
        _param("datetime", "日期或区间（2020-01-01/2021-12-31，.. 为开放）/ date or interval",
               {"type": "string"}),
        _param("filter", "CQL2-text 过滤 / CQL2-text filter", {"type": "string"}),
        _param("filter-lang", "cql2-text", {"type": "string", "enum": ["cql2-text"]}),
        _param("filter-crs", "filter 中几何的坐标系 / CRS of filter geometries",
               {"type": "string", "format": "uri"}),
    ]
}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Helpers: errors, negotiation, links


@contextmanager
def ogc_errors(status_code: int = 400) -> Iterator[None]:
    """A TitlemapError as an HTTP error (400 by default: OGC wants 400 for a bad parameter)."""
    try:
        yield
    except TitlemapError as exc:
        raise HTTPException(status_code=status_code, detail=str(exc)) from None


def _qualities(accept: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for part in accept.split(","):
        media, *options = (p.strip() for p in part.split(";"))
        q = 1.0
        for option in options:
            if option.startswith("q="):
                try:
                    q = float(option[2:])
                except ValueError:
                    q = 0.0
        found[media.lower()] = max(found.get(media.lower(), 0.0), q)
    return found


def wants_html(request: Request) -> bool:
    """HTML for f=html, JSON for f=json; else what the Accept header prefers (JSON on a tie)."""
    f = request.query_params.get("f")
    if f is not None:
        if f.lower() == "html":
            return True
        if f.lower() in ("json", "geojson", "jsonschema"):
            return False
        raise HTTPException(400, f"f 应为 json 或 html / f must be json or html: {f!r}")
    q = _qualities(request.headers.get("accept", ""))
    json_q = max(q.get(t, 0.0) for t in (JSON, GEOJSON, SCHEMA))
    return q.get(HTML, 0.0) > json_q


def check_params(request: Request, allowed: set[str]) -> None:
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise HTTPException(
            400, f"未知参数 / unknown parameters {unknown}; 可用 / allowed: {sorted(allowed)}"
        )


def url(request: Request, path: str, keep: bool = False, **params: Any) -> str:
    """An absolute URL under /ogc; `keep` carries the request's query, `params` replace it
    (None drops one). Without `keep`, only `county` is carried."""
    query = [
        (k, v)
        for k, v in request.query_params.multi_items()
        if (keep or k == "county") and k not in params
    ]
    query += [(k, str(v)) for k, v in params.items() if v is not None]
    base = str(request.base_url).rstrip("/") + "/ogc" + path
    return base + ("?" + urlencode(query) if query else "")


def link(href: str, rel: str, media: str, title: str) -> dict:
    return {"href": href, "rel": rel, "type": media, "title": title}


def self_links(request: Request, path: str, media: str = JSON) -> list[dict]:
    """self and alternate for the document at `path`, in the format asked and the other."""
    as_html = wants_html(request)
    json_link = link(url(request, path, True, f="json"), "self", media, "本页 JSON / this document")
    html_link = link(url(request, path, True, f="html"), "alternate", HTML, "网页 / as HTML")
    if as_html:
        json_link["rel"], html_link["rel"] = "alternate", "self"
    return [json_link, html_link]


def json_response(body: Any, media: str = JSON, headers: dict | None = None) -> Response:
    text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    return Response(text, media_type=media, headers={"Vary": "Accept"} | (headers or {}))


def content_crs(uri: str) -> dict[str, str]:
    return {"Content-Crs": f"<{uri}>"}


def data_etag(request: Request, conn: Connection, county: str) -> str:
    """An ETag for a page of features, from the county's data revision (bumped by triggers on
    every change), the Beijing date (`overdue` turns at midnight), the address and the
    format asked for: known before any feature is read."""
    version = data_version(conn, county)
    seed = (version, today(), str(request.url), wants_html(request))
    return '"' + hashlib.sha256(repr(seed).encode()).hexdigest()[:32] + '"'


def not_modified(request: Request, etag: str) -> Response | None:
    """304 when the client already holds this version (If-None-Match)."""
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": "no-cache"})
    return None


def revalidated(etag: str) -> dict[str, str]:
    # no-cache: clients keep the page but ask each time (304 while the data is unchanged)
    return {"ETag": etag, "Cache-Control": "no-cache"}


# ---------------------------------------------------------------------------------------------
# HTML: plain server-side pages (api/templates/ogc_*.html), every value escaped


def page(
    request: Request, template: str, title: str, trail: list[tuple[str, str]], **context: Any
) -> Response:
    """A page under the trail of (name, address) it was reached by, with its JSON's address."""
    json_href = url(request, request.url.path.removeprefix("/ogc"), True, f="json")
    return html_page(template, headers={"Vary": "Accept"}, title=title, trail=trail,
                     json_href=json_href, **context)  # fmt: skip


def trail(request: Request, *extra: tuple[str, str]) -> list[tuple[str, str]]:
    return [("OGC API", url(request, "", f="html")), *extra]


def outline(geometry: dict | None, size: int = 320) -> dict | None:
    """A small outline of a CRS84 geometry (ogc_outline.svg): path data and dots in pixels."""
    if not geometry:
        return None
    rings: list[list[list[float]]] = []
    points: list[list[float]] = []

    def walk(kind: str, coords: Any) -> None:
        if kind == "Point":
            points.append(coords)
        elif kind in ("LineString", "MultiPoint"):
            rings.append(coords)
        elif kind in ("Polygon", "MultiLineString"):
            rings.extend(coords)
        elif kind == "MultiPolygon":
            for polygon in coords:
                rings.extend(polygon)

    if geometry.get("type") == "GeometryCollection":
        for part in geometry.get("geometries", []):
            walk(part["type"], part["coordinates"])
    else:
        walk(geometry["type"], geometry["coordinates"])
    xy = [p for ring in rings for p in ring] + points
    if not xy:
        return None
    squash = math.cos(math.radians(sum(p[1] for p in xy) / len(xy)))  # a degree east is shorter
    xs, ys = [p[0] * squash for p in xy], [p[1] for p in xy]
    span = max(max(xs) - min(xs), max(ys) - min(ys), 1e-6)
    scale, pad = (size - 20) / span, 10

    def at(p: list[float]) -> tuple[str, str]:
        x, y = p[0] * squash, p[1]
        return f"{pad + (x - min(xs)) * scale:.1f}", f"{size - pad - (y - min(ys)) * scale:.1f}"

    paths = ["M" + " L".join(",".join(at(p)) for p in ring) + " Z" for ring in rings]
    return {"size": size, "paths": paths, "dots": [at(p) for p in points]}


# ---------------------------------------------------------------------------------------------
# Endpoints


@router.get("", summary="OGC API – Features 入口 / landing page")
def landing(request: Request, f: F = None, county: County = None) -> Response:
    check_params(request, {"f", "county"})
    base = str(request.base_url).rstrip("/")
    links = [
        *self_links(request, ""),
        link(base + "/openapi.json", "service-desc", OPENAPI, "接口定义 / API definition"),
        link(base + "/docs", "service-doc", HTML, "接口文档 / API documentation"),
        link(url(request, "/conformance"), "conformance", JSON, "符合的标准 / conformance"),
        link(url(request, "/collections"), "data", JSON, "数据集合 / collections"),
    ]
    doc = {
        "title": "titlemap 登记难化解一张图 — OGC API Features",
        "description": "小区、宗地、规划片区、留言投诉及重叠分析，附化解台账字段。 / Compounds, "
        "parcels, planned areas, complaints and overlaps with the resolution ledger.",
        "links": links,
    }
    if not wants_html(request):
        return json_response(doc)
    return page(request, "ogc_landing.html", doc["title"], trail(request),
                description=doc["description"], links=links)  # fmt: skip


@router.get("/conformance", summary="符合的标准 / conformance classes")
def conformance(request: Request, f: F = None, county: County = None) -> Response:
    check_params(request, {"f", "county"})
    if not wants_html(request):
        return json_response({"conformsTo": CONFORMANCE})
    title = "符合的标准 / Conformance"
    return page(request, "ogc_conformance.html", title, trail(request), conformance=CONFORMANCE)


def collection_doc(request: Request, coll: Collection, extent: dict, crs: list[str]) -> dict:
    path = f"/collections/{coll.id}"
    return {
        "id": coll.id,
        "title": f"{coll.title} / {coll.title_en}",
        "description": coll.description,
        "itemType": "feature",
        "crs": crs,
        "storageCrs": STORAGE_CRS,
        "extent": extent,
        "links": [
            link(url(request, path), "self", JSON, "本集合 / this collection"),
            link(url(request, path, f="html"), "alternate", HTML, "网页 / as HTML"),
            link(url(request, path + "/items"), "items", GEOJSON, "要素 / features (GeoJSON)"),
            link(url(request, path + "/items", f="html"), "items", HTML, "要素 / features (HTML)"),
            link(url(request, path + "/queryables"), REL_QUERYABLES, SCHEMA, "可查询 / queryables"),
            # "describedBy": the spelling GDAL 3.6 matches (link relations ignore case)
            link(
                url(request, path + "/schema"), "describedBy", SCHEMA, "要素结构 / feature schema"
            ),
        ],
    }


def _crs_list(conn: Connection, county: str) -> list[str]:
    with ogc_errors(404):
        return list(supported_crs(get_county(conn, county).epsg))


@router.get("/collections", summary="数据集合 / collections")
def collections(
    request: Request,
    conn: Annotated[Connection, Depends(connection)],
    f: F = None,
    county: County = None,
) -> Response:
    check_params(request, {"f", "county"})
    code = county_of(request, county)
    crs = _crs_list(conn, code)
    extents = collection_extents(conn, code)
    docs = [collection_doc(request, c, extents[c.id], crs) for c in COLLECTIONS.values()]
    links = self_links(request, "/collections")
    if not wants_html(request):
        return json_response({"links": links, "collections": docs, "crs": crs})
    rows = [d | {"href": url(request, "/collections/" + d["id"], f="html")} for d in docs]
    title = "数据集合 / Collections"
    return page(request, "ogc_collections.html", title, trail(request), collections=rows)


def _collection(collection_id: str) -> Collection:
    with ogc_errors(404):
        return get_collection(collection_id)


@router.get("/collections/{collectionId}", summary="一个集合 / one collection")
def collection(
    request: Request,
    collection_id: CollectionId,
    conn: Annotated[Connection, Depends(connection)],
    f: F = None,
    county: County = None,
) -> Response:
    check_params(request, {"f", "county"})
    coll = _collection(collection_id)
    code = county_of(request, county)
    crs = _crs_list(conn, code)
    doc = collection_doc(request, coll, collection_extents(conn, code)[coll.id], crs)
    if not wants_html(request):
        return json_response(doc)
    back = ("集合", url(request, "/collections", f="html"))
    return page(request, "ogc_collection.html", doc["title"], trail(request, back),
                collection=coll, links=doc["links"], crs=crs)  # fmt: skip


@router.get(
    "/collections/{collectionId}/queryables",
    summary="可查询属性（JSON Schema）/ queryables",
    responses={200: {"content": {SCHEMA: {}}}},
)
def queryables(
    request: Request, collection_id: CollectionId, f: F = None, county: County = None
) -> Response:
    check_params(request, {"f", "county"})
    coll = _collection(collection_id)
    schema = queryables_schema(coll, url(request, f"/collections/{coll.id}/queryables"))
    if not wants_html(request):
        return json_response(schema, SCHEMA)
    back = ("集合 " + coll.id, url(request, f"/collections/{coll.id}", f="html"))
    title = f"可查询属性 / Queryables: {coll.id}"
    return page(request, "ogc_queryables.html", title, trail(request, back),
                properties=schema["properties"])  # fmt: skip


@router.get(
    "/collections/{collectionId}/schema",
    summary="要素的 JSON Schema / the schema of one feature",
    responses={200: {"content": {SCHEMA: {}}}},
)
def schema(request: Request, collection_id: CollectionId, county: County = None) -> Response:
    check_params(request, {"f", "county"})
    coll = _collection(collection_id)
    return json_response(
        feature_schema(coll, url(request, f"/collections/{coll.id}/schema")), SCHEMA
    )


def _int(value: str | None, default: int, name: str, minimum: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise HTTPException(400, f"{name} 应为整数 / {name} needs an integer: {value!r}") from None
    if number < minimum:
        raise HTTPException(400, f"{name} 应 ≥ {minimum} / {name} must be ≥ {minimum}")
    return number


def items_query(request: Request, coll: Collection) -> ItemsQuery:
    """The items query from the query string: standard parameters and queryable names."""
    names = set(coll.queryables())
    check_params(request, ITEMS_PARAMS | names)
    qp = request.query_params
    return ItemsQuery(
        limit=min(_int(qp.get("limit"), DEFAULT_LIMIT, "limit", 1), MAX_LIMIT),
        offset=_int(qp.get("offset"), 0, "offset", 0),
        crs=qp.get("crs"),
        bbox=qp.get("bbox"),
        bbox_crs=qp.get("bbox-crs"),
        datetime=qp.get("datetime"),
        filter=qp.get("filter"),
        filter_lang=qp.get("filter-lang"),
        filter_crs=qp.get("filter-crs"),
        properties={n: qp.getlist(n) for n in coll.queryables() if n in qp},
    )


@router.get(
    "/collections/{collectionId}/items",
    summary="要素（GeoJSON 或网页）/ features of a collection",
    response_class=Response,
    responses={200: {"content": {GEOJSON: {}, HTML: {}}}},
    openapi_extra=ITEMS_OPENAPI,
)
def items(
    request: Request,
    collection_id: CollectionId,
    conn: Annotated[Connection, Depends(connection)],
    f: F = None,
    county: County = None,
) -> Response:
    coll = _collection(collection_id)
    q = items_query(request, coll)
    code = county_of(request, county)
    with ogc_errors(404):
        get_county(conn, code)
    etag = data_etag(request, conn, code)
    if (unchanged := not_modified(request, etag)) is not None:
        return unchanged
    with ogc_errors():
        result = items_page(conn, code, coll, q)
    path = f"/collections/{coll.id}/items"
    links = self_links(request, path, GEOJSON)
    if q.offset + result.returned < result.matched:
        after = url(request, path, True, offset=q.offset + q.limit, limit=q.limit)
        links.append(link(after, "next", GEOJSON, "下一页 / next page"))
    if q.offset > 0:
        before = url(request, path, True, offset=max(q.offset - q.limit, 0), limit=q.limit)
        links.append(link(before, "prev", GEOJSON, "上一页 / previous page"))
    home = url(request, f"/collections/{coll.id}")
    links.append(link(home, "collection", JSON, "集合 / collection"))
    headers = content_crs(result.crs.uri) | revalidated(etag)
    if not wants_html(request):
        return json_response(feature_collection(result, links), GEOJSON, headers)
    return items_html(request, coll, q, result, links, headers)


def items_html(
    request: Request, coll: Collection, q: ItemsQuery, result: Page, links: list, headers: dict
) -> Response:
    names = [p.name for p in coll.properties]
    rows = [
        {"id": ft["id"], "cells": [ft["properties"].get(n) for n in names],
         "href": url(request, f"/collections/{coll.id}/items/{quote(str(ft['id']))}", f="html")}
        for ft in json.loads(result.features)
    ]  # fmt: skip
    pages = [
        {"href": k["href"].replace("f=json", "f=html"), "title": k["title"]}
        for k in links
        if k["rel"] in ("prev", "next")
    ]
    back = ("集合 " + coll.id, url(request, f"/collections/{coll.id}", f="html"))
    response = page(
        request, "ogc_items.html", f"{coll.title} / {coll.title_en}", trail(request, back),
        matched=result.matched, returned=result.returned, first=q.offset + 1,
        crs=result.crs.uri, pages=pages, names=names, rows=rows,
    )  # fmt: skip
    response.headers.update(headers)
    return response


@router.get(
    "/collections/{collectionId}/items/{featureId}",
    summary="一个要素 / one feature",
    response_class=Response,
    responses={200: {"content": {GEOJSON: {}, HTML: {}}}},
)
def feature(
    request: Request,
    collection_id: CollectionId,
    feature_id: Annotated[str, Path(alias="featureId", description="要素编号 / feature id")],
    conn: Annotated[Connection, Depends(connection)],
    crs: Annotated[str | None, Query(description="输出坐标系 URI / output CRS")] = None,
    f: F = None,
    county: County = None,
) -> Response:
    check_params(request, {"f", "county", "crs"})
    coll = _collection(collection_id)
    code = county_of(request, county)
    with ogc_errors(404):
        info = get_county(conn, code)
    with ogc_errors():
        parse_crs(crs, info.epsg)  # a bad crs is the request's fault (400), no feature is 404
    etag = data_etag(request, conn, code)
    if (unchanged := not_modified(request, etag)) is not None:
        return unchanged
    with ogc_errors(404):
        body, out_crs = item(conn, code, coll, feature_id, crs)
    path = f"/collections/{coll.id}/items/{feature_id}"
    links = [
        *self_links(request, path, GEOJSON),
        link(url(request, f"/collections/{coll.id}"), "collection", JSON, "集合 / collection"),
    ]
    headers = content_crs(out_crs.uri) | revalidated(etag)
    if not wants_html(request):
        spliced = body[:-1] + ', "links": ' + json.dumps(links, ensure_ascii=False) + "}"
        return json_response(spliced, GEOJSON, headers)
    data = json.loads(body)
    rows = [(p.title, data["properties"].get(p.name)) for p in coll.properties]
    back = ("集合 " + coll.id, url(request, f"/collections/{coll.id}", f="html"))
    items_link = ("要素", url(request, f"/collections/{coll.id}/items", f="html"))
    response = page(
        request, "ogc_item.html", f"{coll.title}：{data['id']}",
        trail(request, back, items_link), rows=rows,
        outline=outline(data.get("geometry")) if out_crs.uri == CRS84 else None,
    )  # fmt: skip
    response.headers.update(headers)
    return response
