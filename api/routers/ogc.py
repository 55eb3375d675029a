"""/ogc: OGC API – Features (Part 1 core, Part 2 CRS, Part 3 queryables and CQL2-text filters).

JSON (GeoJSON for items) or plain server-side HTML, chosen by `f=json|html` or else the
Accept header (a browser gets HTML). Links are absolute and keep the request's other query
parameters (`county`, filters), so a client paging with `next` stays on the same query.
The collections, queries and CRS handling are in geo.ogc.features; this module only speaks HTTP.
"""

import hashlib
import html
import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from sqlalchemy import Connection

from api.dependencies import connection, etag_matches
from geo import TitlemapError
from geo.ogc.features import (
    COLLECTIONS,
    CRS84,
    DEFAULT_LIMIT,
    MAX_LIMIT,
    STORAGE_CRS,
    Collection,
    ItemsQuery,
    Page,
    collection_extents,
    feature_collection,
    feature_schema,
    get_collection,
    item,
    items_page,
    parse_crs,
    queryables_schema,
    supported_crs,
)
from geo.query.compounds import beijing_today, data_version, get_county

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
        _param("offset", "跳过的条数 / features to skip", {"type": "integer", "minimum": 0}),
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


def county_of(request: Request, county: str | None) -> str:
    return county or request.app.state.settings.county


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
    seed = (version, beijing_today(), str(request.url), wants_html(request))
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
# HTML: plain server-side pages, every value escaped

STYLE = """
body{font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:1.5em auto;
max-width:72em;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .5em;
text-align:left;vertical-align:top}th{background:#f3f3f3}.wide{overflow-x:auto}
nav a{margin-right:.3em}code{background:#f3f3f3;padding:0 .2em}svg{border:1px solid #ddd}
"""


def esc(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是 / true" if value else "否 / false"
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False)
    return html.escape(str(value), quote=True)


def page(request: Request, title: str, body: str, trail: list[tuple[str, str]]) -> Response:
    crumbs = " › ".join(f'<a href="{esc(href)}">{esc(name)}</a>' for name, href in trail)
    json_href = url(request, request.url.path.removeprefix("/ogc"), True, f="json")
    doc = (
        f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>"
        f"<nav>{crumbs}</nav><h1>{esc(title)}</h1>{body}"
        f'<p>JSON：<a href="{esc(json_href)}">{esc(json_href)}</a></p></body></html>'
    )
    return Response(doc, media_type="text/html; charset=utf-8", headers={"Vary": "Accept"})


def trail(request: Request, *extra: tuple[str, str]) -> list[tuple[str, str]]:
    return [("OGC API", url(request, "", f="html")), *extra]


def links_html(links: list[dict]) -> str:
    rows = "".join(
        f'<li><a href="{esc(k["href"])}">{esc(k.get("title") or k["rel"])}</a> '
        f"<small>{esc(k['rel'])} · {esc(k['type'])}</small></li>"
        for k in links
    )
    return f"<ul>{rows}</ul>"


def svg(geometry: dict | None, size: int = 320) -> str:
    """A small outline of a CRS84 geometry (no script, no tiles): what and where at a glance."""
    if not geometry:
        return ""
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
        return ""
    squash = math.cos(math.radians(sum(p[1] for p in xy) / len(xy)))  # a degree east is shorter
    xs, ys = [p[0] * squash for p in xy], [p[1] for p in xy]
    span = max(max(xs) - min(xs), max(ys) - min(ys), 1e-6)
    scale, pad = (size - 20) / span, 10

    def at(p: list[float]) -> str:
        x, y = p[0] * squash, p[1]
        return f"{pad + (x - min(xs)) * scale:.1f},{size - pad - (y - min(ys)) * scale:.1f}"

    paths = "".join(
        f'<path d="M{" L".join(at(p) for p in ring)} Z" fill="#4a90d9" fill-opacity=".3" '
        'stroke="#1f5fa8" fill-rule="evenodd"/>'
        for ring in rings
    )
    dots = "".join(f'<circle cx="{at(p).split(",")[0]}" cy="{at(p).split(",")[1]}" r="5" '
                   'fill="#d9534f"/>' for p in points)  # fmt: skip
    return f'<svg width="{size}" height="{size}" role="img">{paths}{dots}</svg>'


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
    body = f"<p>{esc(doc['description'])}</p>" + links_html(links)
    return page(request, doc["title"], body, trail(request))


@router.get("/conformance", summary="符合的标准 / conformance classes")
def conformance(request: Request, f: F = None, county: County = None) -> Response:
    check_params(request, {"f", "county"})
    if not wants_html(request):
        return json_response({"conformsTo": CONFORMANCE})
    items = "".join(f"<li><code>{esc(c)}</code></li>" for c in CONFORMANCE)
    return page(request, "符合的标准 / Conformance", f"<ul>{items}</ul>", trail(request))


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
    rows = "".join(
        f'<tr><td><a href="{esc(url(request, "/collections/" + d["id"], f="html"))}">'
        f"{esc(d['id'])}</a></td><td>{esc(d['title'])}</td><td>{esc(d['description'])}</td></tr>"
        for d in docs
    )
    body = f"<table><tr><th>编号 id</th><th>名称 title</th><th>说明</th></tr>{rows}</table>"
    return page(request, "数据集合 / Collections", body, trail(request))


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
    props = "".join(
        f"<tr><td><code>{esc(p.name)}</code></td><td>{esc(p.title)}</td><td>{esc(p.type)}</td></tr>"
        for p in coll.properties
    )
    body = (
        f"<p>{esc(coll.description)}</p>{links_html(doc['links'])}"
        f"<h2>属性 / Properties</h2><table><tr><th>名称</th><th>说明</th><th>类型</th></tr>"
        f"{props}</table><h2>坐标系 / CRS</h2><ul>"
        + "".join(f"<li><code>{esc(c)}</code></li>" for c in crs)
        + "</ul>"
    )
    back = ("集合", url(request, "/collections", f="html"))
    return page(request, doc["title"], body, trail(request, back))


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
    rows = "".join(
        f"<tr><td><code>{esc(name)}</code></td><td>{esc(s.get('title'))}</td>"
        f"<td>{esc(s.get('type') or s.get('format'))}</td><td>{esc(s.get('enum', ''))}</td></tr>"
        for name, s in schema["properties"].items()
    )
    body = (
        "<p>可作查询参数（如 <code>?status=stalled</code>）或在 CQL2 <code>filter</code> 中使用。"
        " / Use as query parameters or in a CQL2 filter.</p>"
        f"<table><tr><th>名称</th><th>说明</th><th>类型</th><th>取值</th></tr>{rows}</table>"
    )
    back = ("集合 " + coll.id, url(request, f"/collections/{coll.id}", f="html"))
    return page(request, f"可查询属性 / Queryables: {coll.id}", body, trail(request, back))


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
    features = json.loads(result.features)
    names = [p.name for p in coll.properties]
    head = "".join(f"<th>{esc(n)}</th>" for n in names)

    def row(ft: dict) -> str:
        href = url(request, f"/collections/{coll.id}/items/{quote(str(ft['id']))}", f="html")
        cells = "".join(f"<td>{esc(ft['properties'].get(n))}</td>" for n in names)
        return f'<tr><td><a href="{esc(href)}">{esc(ft["id"])}</a></td>{cells}</tr>'

    rows = "".join(row(ft) for ft in features)
    nav = " ".join(
        f'<a href="{esc(k["href"].replace("f=json", "f=html"))}">{esc(k["title"])}</a>'
        for k in links
        if k["rel"] in ("prev", "next")
    )
    body = (
        f"<p>共 {result.matched} 个，本页 {result.returned} 个（第 {q.offset + 1} 起）/ "
        f"{result.matched} matched, {result.returned} shown. 坐标系 / CRS: "
        f"<code>{esc(result.crs.uri)}</code></p><p>{nav}</p>"
        f'<div class="wide"><table><tr><th>id</th>{head}</tr>{rows}</table></div><p>{nav}</p>'
    )
    back = ("集合 " + coll.id, url(request, f"/collections/{coll.id}", f="html"))
    response = page(request, f"{coll.title} / {coll.title_en}", body, trail(request, back))
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
    outline = ""
    if out_crs.uri == CRS84:
        outline = svg(data.get("geometry"))
    rows = "".join(
        f"<tr><th>{esc(p.title)}</th><td>{esc(data['properties'].get(p.name))}</td></tr>"
        for p in coll.properties
    )
    back = ("集合 " + coll.id, url(request, f"/collections/{coll.id}", f="html"))
    items_link = ("要素", url(request, f"/collections/{coll.id}/items", f="html"))
    response = page(
        request,
        f"{coll.title}：{data['id']}",
        f"{outline}<table>{rows}</table>",
        trail(request, back, items_link),
    )
    response.headers.update(headers)
    return response
