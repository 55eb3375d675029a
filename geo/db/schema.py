"""Build and upgrade the schema with alembic (`titlemap db upgrade`)."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from geo import TitlemapError
from geo.db.engine import POSTGIS_HINT

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def ensure_postgis(engine: Engine) -> None:
    """CREATE EXTENSION postgis, or one line saying why it cannot be done."""
    with engine.connect() as conn:
        available = conn.execute(
            text("SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'")
        ).first()
        if available is None:
            raise TitlemapError(
                f"数据库服务器未安装 PostGIS / PostGIS not installed: {POSTGIS_HINT}"
            )
        try:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
            conn.commit()
        except DBAPIError as exc:
            reason = str(exc.orig).splitlines()[0] if exc.orig else str(exc)
            raise TitlemapError(
                f"无法在数据库 {engine.url.database} 中启用 PostGIS / cannot enable PostGIS "
                f"({reason})：请由管理员执行 CREATE EXTENSION postgis; / ask an admin to run it"
            ) from None


def upgrade(engine: Engine, revision: str = "head") -> None:
    ensure_postgis(engine)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        has_table = conn.execute(text("SELECT to_regclass('alembic_version')")).scalar()
        if not has_table:
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def head_revision() -> str:
    """The newest migration this code ships."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(None)).get_current_head()


def check_schema(engine: Engine) -> str:
    """The database's revision, or one line saying to run `titlemap db upgrade`."""
    current = current_revision(engine)
    if current is None:
        raise TitlemapError("数据库还没有表 / the database has no schema: 运行 titlemap db upgrade")
    head = head_revision()
    if current != head:
        raise TitlemapError(
            f"数据库结构为 {current}，程序需要 {head} / the schema is at {current}, this version "
            f"needs {head}: 运行 / run titlemap db upgrade"
        )
    return current
