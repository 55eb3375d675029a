"""The FastAPI application factory."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from api.errors import ERROR_RESPONSES
from api.middleware import protect
from api.routers import (
    account,
    bulletins,
    checks,
    compounds,
    counties,
    docs,
    files,
    health,
    history,
    imports,
    ledger,
    ledger_files,
    ogc,
    onboard,
    parcels,
    region_pages,
    regions,
    stats,
    tasks,
    tiles,
    web,
)
from api.routers import print as print_routes
from geo.core.settings import Settings, get_settings
from geo.db import audit, revisions
from geo.db.engine import get_app_engine, open_async_pool
from geo.db.memo import RevisionMemo
from geo.ledger.counties import county_choices
from geo.ledger.regions import RollupKeeper
from geo.query.tiles import TileCache

DESCRIPTION = """
titlemap 把小区、宗地与"登记难"化解台账关联在 PostGIS 中。
titlemap links compounds and parcels to the county's resolution ledger (化解台账) in PostGIS.

几何以 EPSG:4490 (CGCS2000) 存储；面积在本县 CGCS2000 3 度带高斯-克吕格投影下计算。
Geometries are stored in EPSG:4490; areas are measured in the county's Gauss-Krüger zone.
"""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # While serving: data revisions held in memory (PostgreSQL says when they change), and an
    # asyncio pool for tiles built on the event loop (api.routers.tiles).
    # And the regions' roll-ups kept fresh in the background (geo.ledger.regions).
    engine = app.state.engine
    revisions.watch(engine)
    app.state.async_pool = await open_async_pool(engine)
    every = app.state.settings.rollup_refresh_s
    keeper = app.state.rollups = RollupKeeper(engine, every, min(60, every)) if every else None
    if keeper is not None:
        keeper.start()
    try:
        yield
    finally:
        if keeper is not None:
            keeper.stop()
        pool, app.state.async_pool = app.state.async_pool, None
        await pool.close()
        revisions.unwatch(engine)


def default_county(engine: Engine, preferred: str) -> str:
    """The county a request without ?county= gets: `preferred` (TITLEMAP_COUNTY) when that
    county is there, else the only county the database holds — so a database of one real
    county answers `/` without a setting."""
    try:
        with engine.connect() as conn:
            codes = [county["code"] for county in county_choices(conn)]
    except SQLAlchemyError:  # no database or no schema yet: the setting, as before
        return preferred
    return codes[0] if len(codes) == 1 and preferred not in codes else preferred


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    settings = settings or get_settings()
    title = "titlemap 登记难化解一张图"
    app = FastAPI(
        title=title, version="0.1.0", description=DESCRIPTION, lifespan=lifespan,
        responses=ERROR_RESPONSES,  # the errors any operation may answer (api.errors)
        docs_url=None, redoc_url=None,  # served from vendored files (api.routers.docs)
    )  # fmt: skip
    protect(app)  # NUL refused, failed tokens slowed, security headers, errors as one line
    app.state.settings = settings
    app.state.engine = engine or get_app_engine(settings)
    audit.name_actors(app.state.engine)  # writes name the request's user (api.auth)
    app.state.async_pool = None  # opened while serving (lifespan)
    app.state.default_county = default_county(app.state.engine, settings.county)
    # Kept by the app, least recently used out first: check reports (api.routers.checks; a few,
    # each large, keyed on its data revision) and static files as sent (api.routers.web).
    app.state.check_reports = RevisionMemo(limit=4)
    app.state.static_files = RevisionMemo(limit=64)
    # the app's own tile cache (api.routers.tiles): two apps never share or resize one
    app.state.county_public = {}  # county → (revision, map open to the intranet) (api.auth)
    app.state.county_public_pending = set()  # counties whose flag is being read again
    app.state.tile_cache = TileCache(settings.tile_cache_mb * 2**20)
    app.state.printer = print_routes.Printer()  # one print at a time (api.routers.print)
    app.include_router(tiles.router)  # first: routes are matched in order, tiles are many
    app.include_router(health.router)
    app.include_router(compounds.router)
    app.include_router(ledger.router)
    app.include_router(stats.router)
    app.include_router(counties.router)
    app.include_router(imports.router)
    app.include_router(onboard.router)
    app.include_router(ledger_files.router)
    app.include_router(print_routes.router)
    app.include_router(checks.router)
    app.include_router(parcels.router)
    app.include_router(ogc.router)
    app.include_router(account.router)
    app.include_router(tasks.router)
    app.include_router(files.router)
    app.include_router(history.router)
    app.include_router(bulletins.router)
    app.include_router(docs.router)
    app.include_router(regions.router)
    app.include_router(region_pages.router)
    app.include_router(web.router)
    return app
