"""The `titlemap` command line. Errors a user can act on print one line, never a traceback."""

import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from geo import TitlemapError
from geo.settings import get_settings

app = typer.Typer(
    help="titlemap：登记难化解一张图 / compounds, parcels and the resolution ledger in PostGIS",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="数据库 / the database (local cluster or DATABASE_URL)", no_args_is_help=True)
app.add_typer(db_app, name="db")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

DEMO_DIR = Path(__file__).resolve().parent.parent / "data" / "demo"
DEMO_DEFAULTS = (150, 1)


# -- db ------------------------------------------------------------------------------------------


@db_app.command("start")
def db_start() -> None:
    """启动本地数据库 / start the private PostGIS cluster (no-op with DATABASE_URL)."""
    from geo.db import local_cluster

    settings = get_settings()
    if settings.database_url:
        out.print("已设置 DATABASE_URL，不启动本地数据库 / DATABASE_URL is set: nothing to start")
        return
    cluster = local_cluster(settings)
    cluster.ensure_running()
    out.print(f"本地数据库 / local database: {cluster.status().describe()}")


@db_app.command("stop")
def db_stop() -> None:
    """停止本地数据库 / stop the private PostGIS cluster."""
    from geo.db import local_cluster

    stopped = local_cluster(get_settings()).stop()
    out.print("已停止 / stopped" if stopped else "本来就没有运行 / was not running")


@db_app.command("status")
def db_status() -> None:
    """数据库状态 / where the database is, whether it runs, which schema revision."""
    from geo.db import check_database, local_cluster, make_engine, normalise_url
    from geo.schema import current_revision

    settings = get_settings()
    if settings.database_url:
        engine = make_engine(normalise_url(settings.database_url))
        out.print(f"DATABASE_URL: {engine.url.render_as_string(hide_password=True)}")
    else:
        cluster = local_cluster(settings)
        status = cluster.status()
        out.print(f"本地数据库 / local database: {status.describe()}")
        if not status.running:
            return
        engine = make_engine(cluster.url())
    info = check_database(engine)
    revision = current_revision(engine) or "无 / none (titlemap db upgrade)"
    out.print(f"PostgreSQL {info.postgres} · PostGIS {info.postgis} · schema {revision}")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """建立或升级数据库结构 / create or upgrade the schema (alembic)."""
    from geo.db import get_engine
    from geo.schema import current_revision, upgrade

    engine = get_engine()
    upgrade(engine)
    out.print(f"数据库结构已是最新 / schema at revision {current_revision(engine)}")


# -- demo ----------------------------------------------------------------------------------------


def demo_folder(compounds: int, seed: int) -> Path:
    """The committed demo for the defaults; generated ones go to the data directory."""
    if (compounds, seed) == DEMO_DEFAULTS:
        return DEMO_DIR
    return get_settings().data_dir / f"demo-{compounds}-seed{seed}"


@app.command()
def demo(
    compounds: Annotated[int, typer.Option(min=1, help="小区数 / number of compounds")] = 150,
    seed: Annotated[int, typer.Option(help="随机种子 / random seed")] = 1,
    reload: Annotated[
        bool, typer.Option("--reload", help="替换已载入的示例县 / replace a loaded demo county")
    ] = False,
) -> None:
    """生成并载入示例县 / generate (once) and load the demo county 示例县 (629901)."""
    from geo import demo as demo_county
    from geo.db import get_engine
    from geo.load import load_county
    from geo.schema import upgrade

    engine = get_engine()
    upgrade(engine)
    folder = demo_folder(compounds, seed)
    started = time.perf_counter()
    with err.status(f"准备示例县 / preparing the demo county in {folder} …"):
        if (folder / "示例县.gpkg").exists():
            county = demo_county.read(folder)
        else:
            county = demo_county.generate(compounds, seed)
            demo_county.write(county, folder)
    with err.status("载入数据库 / loading into the database …"):
        report = load_county(engine, county, replace=reload)
    if not report.loaded:
        out.print(
            f"示例县 {report.county} 已载入，未重复载入 / already loaded, nothing duplicated "
            "(--reload 可替换 / to replace it)"
        )
        return
    table = Table("表 / table", "行数 / rows", title=f"示例县 {report.county} 已载入 / loaded")
    for name, count in report.counts.items():
        table.add_row(name, f"{count:,}")
    out.print(table)
    out.print(f"用时 / took {time.perf_counter() - started:.1f} s")


# -- serve ---------------------------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="监听地址 / host")] = None,
    port: Annotated[int | None, typer.Option(help="端口 / port (TITLEMAP_PORT)")] = None,
) -> None:
    """启动网页服务 / serve the app (http://127.0.0.1:8000)."""
    import uvicorn

    from api.app import create_app
    from geo.cluster import port_is_free
    from geo.db import check_database, get_engine
    from geo.schema import current_revision

    settings = get_settings()
    host = host or settings.host
    port = port or settings.port
    if not port_is_free(port, host):
        raise TitlemapError(
            f"端口 {port} 已被占用 / port {port} is taken: "
            "用 --port 或 TITLEMAP_PORT 换一个 / choose another with --port or TITLEMAP_PORT"
        )
    engine = get_engine(settings)
    check_database(engine)
    if current_revision(engine) is None:
        raise TitlemapError("数据库还没有表 / the database has no schema: 运行 titlemap db upgrade")
    out.print(f"titlemap 运行于 / serving on http://{host}:{port}")
    uvicorn.run(create_app(settings, engine), host=host, port=port, log_level="info")


def main() -> None:
    try:
        app()
    except TitlemapError as exc:
        err.print(f"[bold red]错误 / error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
