"""Engine and sessions: DATABASE_URL when given, else the private local cluster."""

import errno
import time
from dataclasses import dataclass
from functools import lru_cache

import psycopg
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from geo import TitlemapError
from geo.core.settings import Settings
from geo.db.cluster import INSTALL_HINT, LocalCluster

POSTGIS_HINT = f"服务器上安装 PostGIS / install PostGIS on the server: {INSTALL_HINT}"


def local_cluster(settings: Settings) -> LocalCluster:
    return LocalCluster(settings.data_dir, settings.pg_port, settings.pg_bin)


def normalise_url(url: str) -> str:
    """Always talk psycopg 3, whatever driver the URL names."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise TitlemapError(f"DATABASE_URL 格式不对 / malformed DATABASE_URL: {url!r}") from None
    if not parsed.drivername.startswith("postgresql"):
        raise TitlemapError(f"DATABASE_URL 必须是 PostgreSQL / must be postgresql://…: {url!r}")
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def database_url(settings: Settings) -> str:
    if settings.database_url:
        return normalise_url(settings.database_url)
    return local_cluster(settings).ensure_running()


PING_AFTER_IDLE = 10.0  # seconds a pooled connection may sit unused before it is pinged


def make_engine(url: str) -> Engine:
    engine = create_engine(normalise_url(url), pool_size=5, max_overflow=10)
    ping_when_idle(engine)
    return engine


def ping_when_idle(engine: Engine, idle: float = PING_AFTER_IDLE) -> None:
    """Check a pooled connection on checkout only when it sat unused for `idle` seconds.

    `pool_pre_ping` pings on every checkout: a round trip as dear as a cached tile's one
    query. A connection that was in use a moment ago is alive; one that idled may have been
    dropped (a database restart, a firewall), so it is pinged and, if dead, replaced (the
    pool then reconnects all it holds). Should the server die between two busy requests,
    SQLAlchemy sees the disconnect on the first failed query and renews the pool likewise."""

    @event.listens_for(engine, "checkin")
    def _returned(dbapi_connection, record) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _check(dbapi_connection, record, proxy) -> None:
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since < idle:
            return  # a new connection, or one just used
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # whatever the driver raises for a dead socket
            raise DisconnectionError(f"idle connection dead: {exc}") from exc
        if not alive:
            raise DisconnectionError("idle connection dead")


def driver_dsn(engine: Engine) -> str:
    """The engine's database as a libpq URL, for connections made without SQLAlchemy."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


# A connection's first ST_Transform between two systems sets PROJ up (40–70 ms each way):
# done for the tiles' two when the pool opens a connection, not on a request.
WARM_UP = (
    "SELECT ST_AsMVTGeom(ST_Transform(ST_SetSRID(ST_MakePoint(116, 40), 4326), 3857), "
    "ST_TileEnvelope(0, 0, 0)), ST_Transform(ST_TileEnvelope(1, 1, 1), 4326)"
)


async def open_async_pool(engine: Engine, size: int = 4) -> AsyncConnectionPool:
    """An asyncio pool of `size` autocommit connections to the engine's database
    (psycopg_pool), for the one query of a request served on the event loop; filled in the
    background. Close it with `await pool.close()`. JIT is off: compiling a z13 tile's
    query took 22 ms of its 100 (nothing to gain in queries made of PostGIS calls)."""

    async def warm_up(conn: psycopg.AsyncConnection) -> None:
        await conn.execute(WARM_UP)

    pool = AsyncConnectionPool(
        driver_dsn(engine), min_size=size, max_size=size, open=False, configure=warm_up,
        kwargs={"autocommit": True, "options": "-c jit=off"}, name="titlemap-async",
    )  # fmt: skip
    await pool.open()
    return pool


@lru_cache
def _engine_for(url: str) -> Engine:
    return make_engine(url)


def get_engine(settings: Settings) -> Engine:
    """The engine for `settings`' database, one per URL in a process (the CLI and the app it
    serves share its pool)."""
    return _engine_for(database_url(settings))


def app_database_url(settings: Settings) -> str:
    """The web app's URL: its own role where there is one (geo.db.schema.APP_ROLE)."""
    if settings.app_database_url:
        return normalise_url(settings.app_database_url)
    if settings.database_url:
        return normalise_url(settings.database_url)
    cluster = local_cluster(settings)
    cluster.ensure_running()
    return cluster.app_url()


def get_app_engine(settings: Settings) -> Engine:
    """The engine the web app serves from."""
    return _engine_for(app_database_url(settings))


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@dataclass
class DatabaseInfo:
    database: str
    postgres: str
    postgis: str


def describe_failure(exc: DBAPIError, url: str) -> str:
    """One line for a connection failure: where, and the server's first line."""
    parsed = make_url(url)
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
    return (
        f"无法连接数据库 / cannot connect to {parsed.host}:{parsed.port or 5432}/{parsed.database}"
        f" — {reason}；请检查 DATABASE_URL / check DATABASE_URL"
    )


DISK_FULL = "磁盘已满，未做任何修改 / the disk is full: nothing was changed"


def disk_full(exc: BaseException) -> bool:
    """Whether `exc` says a disk is full: the database's (SQLSTATE 53100, its data files or
    WAL) or ours (ENOSPC, a quota), however it was wrapped."""
    cause = getattr(exc, "orig", None) or exc
    if isinstance(cause, psycopg.errors.DiskFull):
        return True
    return isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT)


def check_database(engine: Engine) -> DatabaseInfo:
    """Reach the database and PostGIS, or raise one line saying what to do."""
    url = engine.url.render_as_string(hide_password=False)
    try:
        with engine.connect() as conn:
            postgres = conn.execute(text("SHOW server_version")).scalar_one()
            has_postgis = conn.execute(
                text("SELECT 1 FROM pg_extension WHERE extname = 'postgis'")
            ).first()
            if has_postgis is None:
                raise TitlemapError(
                    f"数据库 {engine.url.database} 没有启用 PostGIS / has no PostGIS: 运行 "
                    "titlemap db upgrade（需要 CREATE EXTENSION 权限）/ run titlemap db upgrade"
                )
            postgis = conn.execute(text("SELECT postgis_lib_version()")).scalar_one()
    except DBAPIError as exc:
        raise TitlemapError(describe_failure(exc, url)) from None
    return DatabaseInfo(engine.url.database or "", postgres, postgis)
