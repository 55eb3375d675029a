"""Build and upgrade the schema with alembic (`titlemap db upgrade`)."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, text
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
        grant_app_role(conn)


# The role the web app connects as (geo.db.cluster makes it for the private cluster; a county's
# DBA makes it for theirs): rows, not tables — and the audit log only read and appended to.
APP_ROLE = "titlemap_app"
APPEND_ONLY_TABLES = ("audit_log", "alembic_version")


def grant_app_role(conn: Connection, role: str = APP_ROLE) -> bool:
    """Give `role` what the web app needs, when the role exists; False when it does not."""
    if conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first() is None:
        return False
    who = f'"{role}"'
    conn.execute(text(f"GRANT USAGE ON SCHEMA public TO {who}"))
    rows = "SELECT, INSERT, UPDATE, DELETE, TRUNCATE"
    conn.execute(text(f"GRANT {rows} ON ALL TABLES IN SCHEMA public TO {who}"))
    conn.execute(text(f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {who}"))
    for table in APPEND_ONLY_TABLES:  # those there (an older revision has no audit log)
        if conn.execute(text("SELECT to_regclass(:t)"), {"t": table}).scalar() is not None:
            conn.execute(text(f"REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM {who}"))
    conn.execute(text(f"REVOKE INSERT ON alembic_version FROM {who}"))
    return True


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
