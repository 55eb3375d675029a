"""Vector tiles for GIS software and the web map, with TileJSON and HTTP revalidation.

- `GET /tiles` — the layers, each with its TileJSON address.
- `GET /tiles/{layer}.json` — TileJSON 3.0.0 for a layer (QGIS: Vector Tiles → New Generic
  Connection → Style URL blank, URL from `tiles`; or give QGIS the TileJSON address).
- `GET /tiles/{layer}/{z}/{x}/{y}.mvt` — a Mapbox vector tile (ST_AsMVT, Web Mercator grid).
  The web map's `GET /api/tiles/{layer}/{z}/{x}/{y}.pbf` is served by the same function.

Caching: the ETag is a hash of (layer, county, tile, filter, the county's data revision,
today's date) worked out from two small queries, without building the tile; a matching
`If-None-Match` is answered 304 at once. `Cache-Control: no-cache` makes every client
revalidate, so an edit (which bumps the revision) shows on the next request. Built tiles are
kept in geo.tiles.CACHE (bounded LRU) under the same key.
"""

import gzip
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from sqlalchemy import Connection

from api.dependencies import connection, user_errors
from api.routers.compounds import Filter, county_of
from geo.compounds import CompoundFilter, get_county
from geo.tiles import (
    CACHE,
    FIELDS,
    LAYERS,
    MAX_ZOOM,
    TileKey,
    build_tile,
    layer_bounds,
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
    return HTTPException(404, f"没有图层 {layer!r} / no such layer: {', '.join(LAYERS)}")


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    # weak comparison (RFC 9110 If-None-Match), either encoding of the same tile
    tags = {t.strip().removeprefix("W/").replace(GZIP_TAG, "") for t in header.split(",")}
    return etag in tags


def _gzipped(key: TileKey, data: bytes) -> bytes:
    """The tile gzipped, kept beside it in the tile cache (compressing 75 KB costs ~1.5 ms)."""
    zipped = CACHE.get(("gzip", key))
    if zipped is None:
        zipped = gzip.compress(data, 5)
        CACHE.put(("gzip", key), zipped)
    return zipped


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
    if layer not in LAYERS:
        raise _no_layer(layer)
    with user_errors():
        key = tile_key(conn, layer, county_of(request, county), z, x, y, filters)
    etag = key.etag()
    headers = {"ETag": etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
    if _etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    data = build_tile(conn, key)
    if len(data) > 512 and "gzip" in request.headers.get("accept-encoding", ""):
        data = _gzipped(key, data)
        # another representation, another strong tag (RFC 9110 8.8.3)
        headers |= {"Content-Encoding": "gzip", "ETag": etag[:-1] + GZIP_TAG + '"'}
    return Response(data, media_type=MVT_TYPE, headers=headers)


@router.get(
    "/tiles/{layer}/{z}/{x}/{y}.mvt",
    summary="矢量瓦片 / a layer as a Mapbox vector tile (Web Mercator grid)",
    description=TILE_DESCRIPTION,
    response_class=Response,
    responses={200: {"content": {MVT_TYPE: {}}}, 304: {"description": "未变 / not modified"}},
)
def vector_tile(
    request: Request,
    layer: str,
    z: int,
    x: int,
    y: int,
    conn: Annotated[Connection, Depends(connection)],
    filters: Filter,
    county: str | None = None,
) -> Response:
    return tile_response(request, conn, layer, z, x, y, filters, county)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _query(request: Request, layer: str, county: str) -> str:
    """?county=… and, for the compound layer, the filter parameters as the client gave them."""
    pairs = [("county", county)]
    if LAYERS[layer].filterable:
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
            for name, spec in LAYERS.items()
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
    if layer not in LAYERS:
        raise _no_layer(layer)
    spec = LAYERS[layer]
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
