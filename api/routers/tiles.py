"""Vector tiles for GIS software and the web map, with TileJSON and HTTP revalidation.

- `GET /tiles` — the layers, each with its TileJSON address.
- `GET /tiles/{layer}.json` — TileJSON 3.0.0 for a layer (QGIS: Vector Tiles → New Generic
  Connection → Style URL blank, URL from `tiles`; or give QGIS the TileJSON address).
- `GET /tiles/{layer}/{z}/{x}/{y}.mvt` — a Mapbox vector tile (ST_AsMVT, Web Mercator grid).
  The web map's `GET /api/tiles/{layer}/{z}/{x}/{y}.pbf` is served by the same function.

Caching: the ETag is a hash of the tile's key (geo.query.tiles.tile_key: layer, county, tile,
filter, the revision it last changed at, today's date), known without building the tile and,
while serving, without a query (geo.db.revisions); a matching `If-None-Match` is answered 304 at
once. `Cache-Control: no-cache` makes every client revalidate, so an edit shows on the next
request. Built tiles are kept in the app's TileCache (`app.state.tile_cache`, a bounded LRU
made by api.app.create_app) under the same key.
"""

import contextlib
import gzip
import types
import typing
from collections.abc import Callable
from typing import Annotated
from urllib.parse import urlencode

import psycopg
from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Connection

from api.dependencies import connection, county_of, etag_matches, user_errors
from api.errors import OUTAGES
from api.routers.compounds import Filter, compound_filter
from geo.query.compounds import CompoundFilter, get_county
from geo.query.map_layers import FIELDS, MAP_LAYERS, MAX_ZOOM, layer_bounds
from geo.query.tiles import (
    NO_FILTER,
    TileKey,
    build_tile,
    build_tile_async,
    cached_tile,
    known_tile_key,
    last_known_tile,
    tile_key,
)
from maps.webmap import first_zoom

router = APIRouter(tags=["vector tiles"])

MVT_TYPE = "application/vnd.mapbox-vector-tile"
TILEJSON_MAXZOOM = 18  # clients over-zoom beyond: z18 already holds every vertex to 4 cm
# The compound filter's query parameters (api.routers.compounds.compound_filter).
FILTER_PARAMS = ("status", "blocker", "lead_department", "township", "planned_area",
                 "planned_kind", "overdue", "q", "code", "as_of")  # fmt: skip
TILE_DESCRIPTION = (
    "小区图层接受与 /api/compounds 相同的筛选参数；小区过密时按 4 像素格汇总（agg=1, n, "
    "n_<status>）。ETag + If-None-Match → 304；Cache-Control: no-cache。/ The compound layer "
    "takes the /api/compounds filters; where a tile holds more than 4000 compounds they are "
    "counted per 4-pixel cell (agg=1, n, n_<status>). Revalidate with If-None-Match (304)."
)


GZIP_TAG = "-gz"


def _no_layer(layer: str) -> HTTPException:
    return HTTPException(404, f"没有图层 {layer!r} / no such layer: {', '.join(MAP_LAYERS)}")


def tile_response(
    request: Request,
    conn: Connection,
    layer: str,
    z: int,
    x: int,
    y: int,
    filters: CompoundFilter,
    county: str | None,
) -> Response:
    """A tile as an HTTP answer: 304 when the client's ETag is current, else the tile (gzip
    when the client takes it). Shared by /tiles/… .mvt and the web map's /api/tiles/… .pbf."""
    if layer not in MAP_LAYERS:
        raise _no_layer(layer)
    with user_errors():
        key = tile_key(conn, layer, county_of(request, county, conn), z, x, y, filters)
    cache = request.app.state.tile_cache
    return _answer(request, key, lambda: build_tile(conn, cache, key), compress=True)


def _answer(
    request: Request, key: TileKey, tile: Callable[[], bytes | None], compress: bool
) -> Response | None:
    """304 if the client holds the tile of `key`; else the tile (`tile()`), gzipped if the
    client takes it — from the cache, else compressed here if `compress`. None when `tile()`
    gives None or the gzip would have to be made."""
    etag = key.etag()
    headers = {"ETag": etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
    if etag_matches(request.headers.get("if-none-match"), etag, GZIP_TAG):
        return Response(status_code=304, headers=headers)
    data = tile()
    if data is None:
        return None
    if len(data) > 512 and "gzip" in request.headers.get("accept-encoding", ""):
        cache = request.app.state.tile_cache
        zipped = cache.get(("gzip", key))
        if zipped is None:
            if not compress:
                return None
            zipped = gzip.compress(data, 5)  # ~1.5 ms for 75 KB: kept beside the tile
            cache.put(("gzip", key), zipped)
        # another representation, another strong tag (RFC 9110 8.8.3)
        headers |= {"Content-Encoding": "gzip", "ETag": etag[:-1] + GZIP_TAG + '"'}
        data = zipped
    return Response(data, media_type=MVT_TYPE, headers=headers)


# -- the fast path: a tile request costs one thread hop, one pool checkout, one query ---------
#
# FastAPI resolving the ten filter parameters and the sync `connection` dependency (two more
# thread hops) cost twice what a cached tile does, so the tile route reads the filter from
# the query string itself (same checks: compound_filter) and documents it with the same
# parameters (FILTER_OPENAPI).

_FILTER_HINTS = typing.get_type_hints(compound_filter, include_extras=True)


def _plain_type(hint: object) -> object:
    """The type of an `Annotated[X | None, Query(…)]` hint: X (with its own validators)."""
    if typing.get_origin(hint) is Annotated:
        hint = typing.get_args(hint)[0]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


# The filter's single-valued parameters, checked as FastAPI would (a Day within its years)
_SCALARS = {
    name: TypeAdapter(kind)
    for name in FILTER_PARAMS
    if (kind := _plain_type(_FILTER_HINTS[name])) is not str and typing.get_origin(kind) is not list
}


def _param_schema(name: str) -> dict:
    kind = _plain_type(_FILTER_HINTS[name])
    query = typing.get_args(_FILTER_HINTS[name])[1]
    if typing.get_origin(kind) is list:
        schema: dict = {"type": "array", "items": {"type": "string"}}
    elif name in _SCALARS:
        schema = _SCALARS[name].json_schema()
    else:
        schema = {"type": "string"}
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": query.description or ""}  # fmt: skip


FILTER_OPENAPI = {"parameters": [_param_schema(n) for n in FILTER_PARAMS]}


def query_filter(request: Request) -> CompoundFilter:
    """compound_filter's filter from the query string, without FastAPI's per-parameter
    machinery; no filter parameter → the empty filter at once. Bad values → 422."""
    query = request.query_params
    if not any(name in query for name in FILTER_PARAMS):
        return NO_FILTER
    values: dict = {}
    for name in FILTER_PARAMS:
        given = query.getlist(name)
        if not given:
            continue
        if name in _SCALARS:
            try:
                values[name] = _SCALARS[name].validate_python(given[-1])
            except ValidationError as exc:
                why = exc.errors()[0]["msg"].removeprefix("Value error, ")
                raise HTTPException(
                    422, f"参数 {name} 的值不对 / bad value for {name}: {given[-1]!r} ({why})"
                ) from None
        elif typing.get_origin(_plain_type(_FILTER_HINTS[name])) is list:
            values[name] = given
        else:
            values[name] = given[-1]  # as FastAPI: the last of repeated scalars
    return compound_filter(**values)


def _tile_in_thread(
    request: Request, layer: str, z: int, x: int, y: int, filters: CompoundFilter,
    county: str | None,
) -> Response:  # fmt: skip
    # Autocommit: no BEGIN and no ROLLBACK round trip around the one or two reads, and
    # psycopg keeps its prepared statements (a ROLLBACK drops them), so a tile's query is
    # planned once per connection. Without a transaction the tile may be built from data a
    # moment newer than the revision read first: cached under the older key, it is replaced
    # on the next request, which reads the newer revision.
    with request.app.state.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        return tile_response(request, conn, layer, z, x, y, filters, county)


async def serve_tile(request: Request) -> Response:
    """A tile route's answer, its parameters read from the request (TILE_OPENAPI documents
    them). While serving, with the county's revision held in memory (geo.db.revisions), a tile
    is answered on the event loop: from the cache, else built on the asyncio pool. Anything
    else (the first request after a change, counted zooms, a gzip still to make, a failed
    async query) goes to one worker thread: checkout, key, build."""
    path = request.path_params
    layer, z, x, y = path["layer"], path["z"], path["x"], path["y"]
    filters = query_filter(request)
    code = county_of(request, request.query_params.get("county"))
    state = request.app.state
    engine, pool, cache = state.engine, state.async_pool, state.tile_cache
    key = known_tile_key(engine, layer, code, z, x, y, filters)
    if key is not None:
        answer = _answer(request, key, lambda: cached_tile(cache, key), compress=False)
        if answer is None and pool is not None and not key.crowded:
            with contextlib.suppress(psycopg.Error):  # the thread's pool checks connections
                data = await build_tile_async(pool, engine, cache, key)
                answer = _answer(request, key, lambda: data, compress=False)
        if answer is not None:
            return answer
    try:
        return await run_in_threadpool(_tile_in_thread, request, layer, z, x, y, filters, code)
    except OUTAGES:
        # The database is out of reach, so nothing changes it: the newest tile held still holds.
        held = last_known_tile(cache, layer, code, z, x, y, filters)
        if held is None:
            raise  # 503 (api.errors)
        known, data = held
        return _answer(request, known, lambda: data, compress=True)


def _path_param(name: str, kind: str, description: str) -> dict:
    schema = {"type": kind} | ({"minimum": 0} if kind == "integer" else {})
    return {"name": name, "in": "path", "required": True, "schema": schema,
            "description": description}  # fmt: skip


# The tile routes take only the request: FastAPI resolving 15 declared parameters one by
# one cost as much as answering a cached tile. Starlette's `:int` converts z/x/y.
TILE_OPENAPI = {
    "parameters": [
        _path_param("layer", "string", "图层 / layer: " + ", ".join(MAP_LAYERS)),
        _path_param("z", "integer", "缩放级别 / zoom"),
        _path_param("x", "integer", "列 / column"),
        _path_param("y", "integer", "行 / row"),
        {"name": "county", "in": "query", "required": False, "schema": {"type": "string"},
         "description": "县代码，缺省为本县 / county code (default: the configured one)"},
        *FILTER_OPENAPI["parameters"],
    ]
}  # fmt: skip
TILE_RESPONSES = {200: {"content": {MVT_TYPE: {}}}, 304: {"description": "未变 / not modified"}}
TILE_SUMMARY = "矢量瓦片 / a layer as a Mapbox vector tile (Web Mercator grid)"


@router.get(
    "/tiles/{layer}/{z:int}/{x:int}/{y:int}.mvt",
    summary=TILE_SUMMARY,
    description=TILE_DESCRIPTION,
    response_class=Response,
    responses=TILE_RESPONSES,
    openapi_extra=TILE_OPENAPI,
)
async def vector_tile(request: Request) -> Response:
    return await serve_tile(request)


@router.get(
    "/api/tiles/{layer}/{z:int}/{x:int}/{y:int}.pbf",
    summary=TILE_SUMMARY + "（网页地图 / for the web map）",
    description=TILE_DESCRIPTION,
    response_class=Response,
    responses=TILE_RESPONSES,
    openapi_extra=TILE_OPENAPI,
)
async def web_map_tile(request: Request) -> Response:
    # the same answer as /tiles/…mvt: the web map revalidates its tiles with their ETags
    return await serve_tile(request)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _query(request: Request, layer: str, county: str) -> str:
    """?county=… and, for the compound layer, the filter parameters as the client gave them."""
    pairs = [("county", county)]
    if MAP_LAYERS[layer].filterable:
        pairs += [(k, v) for k, v in request.query_params.multi_items() if k in FILTER_PARAMS]
    return urlencode(pairs)


@router.get("/tiles", summary="矢量瓦片图层 / the vector tile layers")
def tile_layers(request: Request, county: str | None = None) -> dict:
    county = county_of(request, county)
    query = urlencode({"county": county})
    return {
        "county": county,
        "layers": [
            {
                "id": name,
                "title": spec.title,
                "geometry": spec.geometry,
                "tilejson": f"{_base(request)}/tiles/{name}.json?{query}",
                "tiles": f"{_base(request)}/tiles/{name}/{{z}}/{{x}}/{{y}}.mvt?{query}",
            }
            for name, spec in MAP_LAYERS.items()
        ],
    }


@router.get(
    "/tiles/{layer}.json",
    summary="TileJSON 3.0.0",
    description="图层的 TileJSON（瓦片地址含县代码及小区筛选参数）/ a layer's TileJSON; the "
    "tile address carries the county and, for compounds, the filter given here.",
)
def tilejson(
    request: Request,
    layer: str,
    conn: Annotated[Connection, Depends(connection)],
    filters: Filter,
    county: str | None = None,
) -> dict:
    if layer not in MAP_LAYERS:
        raise _no_layer(layer)
    spec = MAP_LAYERS[layer]
    county = county_of(request, county)
    with user_errors(404):
        info = get_county(conn, county)
    bounds = layer_bounds(conn, layer, county) or [-180.0, -85.0511, 180.0, 85.0511]
    zoom = first_zoom(bounds) or 0
    centre = [(bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2, min(zoom, 18)]
    url = f"{_base(request)}/tiles/{layer}/{{z}}/{{x}}/{{y}}.mvt?{_query(request, layer, county)}"
    return {
        "tilejson": "3.0.0",
        "name": f"{info.name} {spec.title} / {layer}",
        "description": f"{info.name}（{county}）{spec.title}；几何 EPSG:4490 按 WGS84 切 Web "
        "Mercator 瓦片 / geometry in EPSG:4490 tiled as WGS84 Web Mercator",
        "version": "1.0.0",
        "scheme": "xyz",
        "tiles": [url],
        "minzoom": 0,
        "maxzoom": min(TILEJSON_MAXZOOM, MAX_ZOOM),
        "bounds": bounds,
        "center": centre,
        "attribution": f"{info.name} 登记难化解台账 · titlemap",
        "vector_layers": [
            {
                "id": layer,
                "description": spec.title,
                "fields": FIELDS[layer],
                "minzoom": 0,
                "maxzoom": min(TILEJSON_MAXZOOM, MAX_ZOOM),
            }
        ],
    }
