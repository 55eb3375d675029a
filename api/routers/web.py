"""The web map and what it loads: the page, its static files, layers, tiles and overlaps.

- `GET /` — the map page (folium, Chinese), for the settings' county or `?county=`.
- `GET /static/{path}` — Leaflet and titlemap's own scripts, from maps/static (nothing is
  loaded from outside the app). With `?v=` (the content hash the page uses) cached for a year.
- `GET /api/map/options` — what the filters offer (townships, planned areas, departments…)
  and the counties the map can switch to (a chooser where there is more than one).
- `GET /api/layers/{layer}` — a layer as GeoJSON limited to `bbox`, simplified for `zoom`.
- (`GET /api/tiles/{layer}/{z}/{x}/{y}.pbf`, the map's vector tiles: api.routers.tiles.)
- `GET /api/overlaps`, `GET /api/overlaps.xlsx` — compounds × planned areas (m², %).
"""

import gzip
import io
import json
import mimetypes
from datetime import date
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy import Connection

from api.dependencies import connection, user_errors
from api.middleware import origin_of, page_policy
from api.pages import XLSX_TYPE
from api.routers.account import to_sign_in
from api.routers.compounds import Filter, county_of
from geo import TitlemapError
from geo.core.dates import today
from geo.ledger.counties import county_choices
from geo.query.compounds import (
    PLANNED_KIND_VALUES,
    BBox,
    get_county,
    layer_counts,
    map_options,
)
from geo.query.compounds import extent as compound_extent
from geo.query.map_layers import GEOJSON_LIMIT, MAP_LAYERS, layer_geojson
from geo.query.overlaps import MAX_PIECES, overlap_rows, overlaps_geojson, write_xlsx
from geo.query.tiles import crowded_zoom, warm
from maps.styles import web_styles
from maps.webmap import STATIC_DIR, TIANDITU_URL, Basemap, first_zoom, render_page

router = APIRouter(tags=["web map"])

MVT_TYPE = "application/vnd.mapbox-vector-tile"
COMPRESSIBLE = {".js", ".css", ".svg", ".json", ".txt", ".md", ".html"}
KIND_HELP = "规划片区类型，可多选 / planned-area kinds: " + ", ".join(PLANNED_KIND_VALUES)


def basemap_of(request: Request) -> Basemap:
    """The app's basemap: `app.state.basemap` if set, else the settings' `basemap`,
    `tianditu_key`, `basemap_attribution` (when Settings has them), else the environment
    (TITLEMAP_BASEMAP, TITLEMAP_TIANDITU_KEY, TITLEMAP_BASEMAP_ATTRIBUTION)."""
    configured = getattr(request.app.state, "basemap", None)
    if configured is not None:
        return configured
    settings = request.app.state.settings
    values = {
        f"TITLEMAP_{name.upper()}": getattr(settings, name, None)
        for name in ("basemap", "tianditu_key", "basemap_attribution")
    }
    values = {k: str(v) for k, v in values.items() if v}
    try:
        return Basemap.from_env(values or None)
    except TitlemapError as exc:
        raise HTTPException(500, str(exc)) from None


def _accepts_gzip(request: Request) -> bool:
    return "gzip" in request.headers.get("accept-encoding", "")


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def page(
    request: Request,
    conn: Annotated[Connection, Depends(connection)],
    county: str | None = None,
) -> Response:
    try:
        county = county_of(request, county)
    except HTTPException as exc:
        if exc.status_code == 401:  # a county's closed map: its people sign in first
            return to_sign_in(request)
        raise
    try:
        info = get_county(conn, county)
    except TitlemapError as exc:
        raise HTTPException(404, f"{exc}{_other_counties(conn, county)}") from None
    counts = layer_counts(conn, county)
    extent = compound_extent(conn, county)
    zoom = first_zoom(extent)
    if zoom is not None and crowded_zoom(conn, county, zoom):
        # the first view's compound tiles are counted while the page loads
        warm(request.app.state.engine, request.app.state.tile_cache, county, zoom)
    basemap = basemap_of(request)
    body = render_page(county, info.name, extent, basemap, counts)
    csp = page_policy(body, images=filter(None, [origin_of(tile_url(basemap))]))
    return HTMLResponse(body, headers={"Cache-Control": "no-cache", "Content-Security-Policy": csp})


def tile_url(basemap: Basemap) -> str:
    """The basemap's tile address template ("" for none): its origin is the one the page's
    images may come from besides the app."""
    if basemap.kind == "tianditu":
        return TIANDITU_URL.format(layer="vec", key=basemap.key)
    return basemap.url or ""


def _other_counties(conn: Connection, county: str) -> str:
    """Where a page of no such county can go instead: the counties there are, as links."""
    others = [c for c in county_choices(conn) if c["code"] != county]
    if not others:
        return ""
    links = "、".join(f"{c['name']} /?county={c['code']}" for c in others)
    return f"；可选 / open one of: {links}"


def _static(request: Request, path: Path, compress: bool) -> bytes:
    """The file as sent, kept by the app (`app.state.static_files`) until it changes on disk
    (its modification time is in the key)."""

    def read() -> bytes:
        data = path.read_bytes()
        return gzip.compress(data, 6) if compress else data

    key = ("static", path, path.stat().st_mtime, compress)
    return request.app.state.static_files(key, read)


@router.get("/static/{path:path}", include_in_schema=False)
def static(request: Request, path: str, v: str | None = None) -> Response:
    file = (STATIC_DIR / path).resolve()
    if not file.is_relative_to(STATIC_DIR) or not file.is_file():
        raise HTTPException(404, "没有这个文件 / not found")
    media = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    if media.startswith("text/") or media.endswith("javascript"):
        media += "; charset=utf-8"
    headers = {
        "Cache-Control": "public, max-age=31536000, immutable" if v else "public, max-age=300",
        "X-Content-Type-Options": "nosniff",
        "Vary": "Accept-Encoding",
    }
    compress = file.suffix in COMPRESSIBLE and _accepts_gzip(request)
    if compress:
        headers["Content-Encoding"] = "gzip"
    return Response(_static(request, file, compress), media_type=media, headers=headers)


@router.get("/api/map/options", summary="地图筛选项 / what the map's filters offer")
def options(
    request: Request,
    conn: Annotated[Connection, Depends(connection)],
    county: str | None = None,
) -> dict:
    with user_errors(404):
        data = map_options(conn, county_of(request, county))
    return data | {"styles": web_styles(), "counties": county_choices(conn)}


def _parse_bbox(bbox: str | None) -> BBox | None:
    with user_errors():
        return BBox.parse(bbox) if bbox else None


@router.get(
    "/api/layers/{layer}",
    summary="图层 GeoJSON（按范围）/ a map layer as GeoJSON, limited to a box",
    description="图层 / layers: " + ", ".join(f"{k}（{v.title}）" for k, v in MAP_LAYERS.items()),
    response_class=Response,
    responses={200: {"content": {"application/geo+json": {}}}},
)
def layer(
    request: Request,
    layer: str,
    conn: Annotated[Connection, Depends(connection)],
    filters: Filter,
    bbox: Annotated[str | None, Query(description="minx,miny,maxx,maxy (EPSG:4490)")] = None,
    zoom: Annotated[
        float | None, Query(description="按此缩放级别化简 / simplify for this zoom level")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=2 * GEOJSON_LIMIT)] = GEOJSON_LIMIT,
    county: str | None = None,
) -> Response:
    if layer not in MAP_LAYERS:
        raise HTTPException(404, f"没有图层 {layer!r} / no such layer: {', '.join(MAP_LAYERS)}")
    with user_errors():
        body = layer_geojson(
            conn, layer, county_of(request, county), _parse_bbox(bbox), zoom, limit, filters
        )
    return Response(body, media_type="application/geo+json")


@router.get(
    "/api/overlaps",
    summary="小区与规划片区重叠（面积、比例）/ compounds × planned areas: m² and % (GeoJSON)",
    description=(
        "每个小区与每个规划片区内部相交的部分，在本县 CGCS2000 高斯-克吕格投影带下计算面积"
        "（平方米）及占小区面积的百分比。可用 /api/compounds 的筛选参数选小区。/ Each "
        "compound's intersection with each planned area, measured in the county's Gauss-Krüger "
        "zone: overlap_m2, compound_m2, percent of the compound. Features are the pieces "
        "(EPSG:4490); geometry=false gives the rows alone."
    ),
    response_class=Response,
    responses={200: {"content": {"application/geo+json": {}}}},
)
def overlaps(
    request: Request,
    conn: Annotated[Connection, Depends(connection)],
    filters: Filter,
    kind: Annotated[list[str] | None, Query(description=KIND_HELP)] = None,
    bbox: Annotated[str | None, Query(description="minx,miny,maxx,maxy (EPSG:4490)")] = None,
    geometry: bool = True,
    limit: Annotated[int, Query(ge=1, le=MAX_PIECES)] = MAX_PIECES,
    county: str | None = None,
) -> Response:
    with user_errors():
        data = overlaps_geojson(
            conn,
            county_of(request, county),
            kinds=kind,
            filters=filters,
            bbox=_parse_bbox(bbox),
            limit=limit,
            geometry=geometry,
        )
    return Response(json.dumps(data, ensure_ascii=False), media_type="application/geo+json")


@router.get(
    "/api/overlaps.xlsx",
    summary="重叠面积表 xlsx / the overlaps as a spreadsheet (Chinese headers)",
    response_class=Response,
    responses={200: {"content": {XLSX_TYPE: {}}}},
)
def overlaps_xlsx(
    request: Request,
    conn: Annotated[Connection, Depends(connection)],
    filters: Filter,
    kind: Annotated[list[str] | None, Query(description=KIND_HELP)] = None,
    county: str | None = None,
) -> Response:
    county = county_of(request, county)
    with user_errors():
        info = get_county(conn, county)
        rows = overlap_rows(conn, county, kinds=kind, filters=filters)
    buffer = io.BytesIO()
    write_xlsx(rows, buffer, info.name, info.epsg, as_of=filters.as_of)
    day: date = filters.as_of or today()
    name = f"{info.name}小区与规划片区重叠_{day:%Y%m%d}.xlsx"
    disposition = f"attachment; filename=\"overlaps.xlsx\"; filename*=UTF-8''{quote(name)}"
    return Response(
        buffer.getvalue(), media_type=XLSX_TYPE, headers={"Content-Disposition": disposition}
    )
