"""The `titlemap` command line. Errors a user can act on print one line, never a traceback."""

import getpass
import importlib
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from cli.common import VocabularyFile, county_or_default, database, err, out, vocabulary_of
from geo import TitlemapError
from geo.core.settings import get_settings

app = typer.Typer(
    help="titlemap：登记难化解一张图 / compounds, parcels and the resolution ledger in PostGIS",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(
    help="数据库 / the database (local cluster or DATABASE_URL)", no_args_is_help=True
)
app.add_typer(db_app, name="db")


DEMO_DIR = Path(__file__).resolve().parent.parent / "data" / "demo"
DEMO_DEFAULTS = (150, 1)


# -- db ------------------------------------------------------------------------------------------


@db_app.command("start")
def db_start() -> None:
    """启动本地数据库 / start the private PostGIS cluster (no-op with DATABASE_URL)."""
    from geo.db.engine import local_cluster

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
    from geo.db.engine import local_cluster

    stopped = local_cluster(get_settings()).stop()
    out.print("已停止 / stopped" if stopped else "本来就没有运行 / was not running")


@db_app.command("status")
def db_status() -> None:
    """数据库状态 / where the database is, whether it runs, which schema revision."""
    from geo.db.engine import check_database, local_cluster, make_engine, normalise_url
    from geo.db.schema import current_revision

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
    from geo.db.schema import current_revision, upgrade

    engine = database()
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
    from geo.db.schema import upgrade
    from geo.io.load import load_county

    engine = database()
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


# -- users and figures ---------------------------------------------------------------------------


def county_option(help_text: str = "县级行政区划代码 / county code") -> typer.Option:
    return typer.Option("--county", help=help_text)


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


@app.command()
def stats(
    by: Annotated[
        str, typer.Option(help="county/township/compound/lead_department/blocker/status")
    ] = "county",
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="截至日期 / as of, YYYY-MM-DD")
    ] = None,
    county: Annotated[str | None, county_option()] = None,
) -> None:
    """登记率表 / the registration-rate table against the year-end target."""
    from datetime import date

    from geo.ledger.stats import RATE_DEFINITIONS, rates, target

    county = county_or_default(county)
    try:
        day = date.fromisoformat(as_of) if as_of else None
    except ValueError:
        raise TitlemapError(f"日期应为 YYYY-MM-DD / date must be YYYY-MM-DD: {as_of}") from None
    with database().connect() as conn:
        goal = target(conn, county)
        rows = rates(conn, county, by=by, as_of=day)
    title = f"登记率 / registration rates — {county}" + (f" 截至 {day}" if day else "")
    table = Table(title=title, caption=f"目标 / target {goal.rate:.0%} (口径 {goal.basis})")
    for header in ("分组 / group", "小区", "任务套数", "首次登记", "转移登记",
                   "首次登记化解率", "转移登记化解率", "总体登记率", "达标"):  # fmt: skip
        table.add_column(header, justify="left" if header.startswith("分组") else "right")
    for row in rows:
        table.add_row(
            str(row["label"]), str(row["compounds"]), f"{row['units_task']:,}",
            f"{row['units_first_registered']:,}", f"{row['units_transferred']:,}",
            percent(row["first_rate"]), percent(row["transfer_rate"]),
            percent(row["overall_rate"]), "是" if row["meets_target"] else "否",
        )  # fmt: skip
    out.print(table)
    for text_ in RATE_DEFINITIONS.values():
        out.print(f"· {text_}", style="dim")


# -- files in and out ----------------------------------------------------------------------------

ledger_app = typer.Typer(help="化解台账表格 / the ledger spreadsheet", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")


@contextmanager
def progress_bar() -> Iterator[Callable[[str, int, int | None], None]]:
    """A rich progress bar fed by progress(stage, done, total); total 0/None = unknown."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from geo.io.ledger_sheet import STAGES

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   console=err, transient=True)  # fmt: skip
    tasks: dict[str, int] = {}

    def update(stage: str, done: int, total: int | None) -> None:
        label = STAGES.get(stage, stage)
        if label not in tasks:
            tasks[label] = bar.add_task(label, total=total or None)
        bar.update(tasks[label], completed=done, total=total or None)

    with bar:
        yield update


def finish(lines: list[str], ok: bool) -> None:
    for line in lines:
        out.print(escape(line), highlight=False)
    if not ok:
        raise typer.Exit(1)


@app.command("import")
def import_layer(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="文件 / file")],
    layer: Annotated[
        str,
        typer.Option(
            help="compounds|parcels|planned|complaints|townships|boundary|developers（开发企业"
            "或失信名单表格 / a developers or blacklist table）"
        ),
    ],
    county: Annotated[str | None, county_option()] = None,
    partial: Annotated[
        bool, typer.Option(help="只导入无误的要素 / import the good features only")
    ] = False,
    crs: Annotated[str | None, typer.Option(help="坐标系，如 EPSG:4544 / the file's CRS")] = None,
    trust: Annotated[
        str | None,
        typer.Option(
            help="界址点文件头与坐标不符时以谁为准：header|coordinates / which wins when "
            "a coordinate file's header and coordinates disagree"
        ),
    ] = None,
    gcj02: Annotated[
        bool,
        typer.Option(
            "--gcj02",
            help="坐标描自高德/腾讯地图（GCJ-02），换算为 CGCS2000（约 1 米）"
            " / lon/lat traced on Gaode or Tencent maps: correct to CGCS2000 (≈1 m)",
        ),
    ] = False,
    parameters: Annotated[
        str | None,
        typer.Option(
            help="西安80/北京54 → CGCS2000 七参数 dx,dy,dz,rx,ry,rz,k（米、秒、ppm）/ "
            "seven parameters for Xi'an 1980 / Beijing 1954"
        ),
    ] = None,
    vocabulary: VocabularyFile = None,
) -> None:
    """导入图层文件（GPKG/Shapefile zip/GeoJSON/DXF/CSV/界址点坐标 TXT）/ import a spatial file,
    all or nothing."""
    from geo.io.developer_list import import_developers
    from geo.io.importer import import_file

    settings = get_settings()
    if layer == "developers":  # a table, not a layer: 企业名称, 统一社会信用代码, 失信原因 …
        report = import_developers(database(), path, county or settings.county, partial)
        finish(report.lines(), report.committed)
        return
    words = vocabulary_of(vocabulary)
    with progress_bar() as progress:
        report = import_file(database(), path, county or settings.county, layer,
                             partial=partial, crs=crs, progress=progress, trust=trust,
                             gcj02=gcj02, parameters=parameters,
                             datum_parameters=settings.datum_parameters,
                             helmert_convention=settings.helmert_convention,
                             vocabulary=words)  # fmt: skip
    finish(report.lines(), report.committed)


@ledger_app.command("import")
def ledger_import(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="xlsx 或 csv")],
    county: Annotated[str | None, county_option()] = None,
    user: Annotated[
        str | None, typer.Option(help="记入历史的用户名 / user named in the history")
    ] = None,
    partial: Annotated[
        bool, typer.Option(help="只导入无误的行 / import the good rows only")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="只检查不写入 / check only")] = False,
    columns: Annotated[
        str | None,
        typer.Option(
            help='本县表头对应的字段，如 "已交证套数=units_transferred,备注=-"，导入后记住 / '
            "the county's headers → fields, remembered for its next imports"
        ),
    ] = None,
    vocabulary: VocabularyFile = None,
) -> None:
    """导入化解台账表格（表头、卡点和状态用本县的说法）/ import the ledger spreadsheet as the
    county keeps it, all or nothing."""
    from geo.io.ledger_sheet import import_ledger, parse_columns

    words = vocabulary_of(vocabulary)
    given = parse_columns(columns)
    with progress_bar() as progress:
        who = user or f"命令行 {getpass.getuser()}"
        report = import_ledger(database(), path, county_or_default(county), who,
                               partial=partial, progress=progress, dry_run=dry_run,
                               vocabulary=words, columns=given)  # fmt: skip
    finish(report.lines(limit=50), report.ok or (dry_run and not report.refused))


@ledger_app.command("export")
def ledger_export(
    path: Annotated[Path, typer.Argument(help="输出文件 .xlsx 或 .csv / output file")],
    county: Annotated[str | None, county_option()] = None,
    gbk: Annotated[bool, typer.Option("--gbk", help="CSV 用 GBK 编码 / GBK-encoded CSV")] = False,
) -> None:
    """导出化解台账（县里的表格样式）/ export the ledger in the county's layout."""
    from geo.io.ledger_sheet import export_ledger

    fmt = "csv" if path.suffix.lower() == ".csv" else "xlsx"
    with progress_bar() as progress:
        written = export_ledger(database(), county_or_default(county), path, fmt,
                                gbk=gbk, progress=progress)  # fmt: skip
    out.print(f"已导出 / written: {written}")


@app.command("export")
def export_layer(
    layer: Annotated[str, typer.Argument(help="compounds | parcels")],
    path: Annotated[Path, typer.Argument(help="输出文件 .gpkg、.geojson 或 .txt / output file")],
    county: Annotated[str | None, county_option()] = None,
    names: Annotated[str, typer.Option(help="字段名 zh | en / field names")] = "zh",
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="gpkg | geojson | boundary-txt（界址点坐标交换格式）；缺省按"
            "文件后缀 / default: by the file's suffix",
        ),
    ] = None,
    codes: Annotated[
        list[str] | None,
        typer.Option("--codes", help="只导出这些编号（逗号分隔，可重复）/ only these codes"),
    ] = None,
    township: Annotated[
        str | None, typer.Option(help="只导出该乡镇（代码或名称）/ only this township")
    ] = None,
    utf8: Annotated[
        bool, typer.Option("--utf8", help="TXT 用 UTF-8（缺省 GBK）/ UTF-8 TXT (default GBK)")
    ] = False,
) -> None:
    """导出小区或宗地 / export compounds or parcels: GeoPackage, GeoJSON (EPSG:4490) or the land
    office's boundary coordinate TXT (county GK zone)."""
    from geo.io.exports import export_layer as write_layer

    chosen = [c for value in codes or [] for c in value.replace("，", ",").split(",") if c.strip()]
    with progress_bar() as progress:
        written = write_layer(database(), county_or_default(county), layer, path, fmt,
                              names=names, progress=progress, codes=chosen or None,
                              township=township, utf8=utf8)  # fmt: skip
    out.print(f"已导出 / written: {written}")


# -- serve ---------------------------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="监听地址 / host")] = None,
    port: Annotated[int | None, typer.Option(help="端口 / port (TITLEMAP_PORT)")] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="工作进程数 / worker processes (TITLEMAP_WORKERS, default 1)"),
    ] = None,
    access_log: Annotated[
        bool | None,
        typer.Option(help="记录每个请求 / log every request (TITLEMAP_ACCESS_LOG, default off)"),
    ] = None,
) -> None:
    """启动网页服务 / serve the app (http://127.0.0.1:8000)."""
    import uvicorn

    from geo.db.cluster import port_is_free
    from geo.db.engine import check_database, get_app_engine, get_engine
    from geo.db.schema import check_schema, grant_app_role

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
    check_schema(engine)
    with engine.begin() as conn:
        grant_app_role(conn)  # a role made after the last upgrade gets its rights here
    workers = workers or settings.workers
    access_log = settings.access_log if access_log is None else access_log
    out.print(f"titlemap 运行于 / serving on http://{host}:{port} ({workers} worker(s))")
    # Each worker process builds its own app (and engine, tile cache) from the environment:
    # uvicorn needs an import string then. ETags are hashes of the tile key, so a browser's
    # If-None-Match is answered 304 by whichever worker it reaches. The app is imported only
    # here (seconds): a taken port or a missing database is said before.
    app_ref = "api.app:create_app"
    if workers == 1:
        from api.app import create_app

        app_ref = create_app(settings, get_app_engine(settings))
    uvicorn.run(
        app_ref,
        factory=workers > 1,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=access_log,
    )


# Sub-apps in their own modules (printing and checks keep their options beside their code),
# by the word that runs them: `titlemap user …` imports cli.users alone — importing them all
# (shapely, pyproj, matplotlib's neighbours) made every command start a third of a second later.
SUB_APPS = {
    "county": ("cli.counties", "county_app"),
    "user": ("cli.users", "user_app"),
    "region": ("cli.regions", "region_app"),
    "onboard": ("cli.onboard", "onboard"),
    "parcel": ("cli.parcels", "parcel_app"),
    "print": ("cli.printing", "print_app"),
    "check": ("cli.checks", "check_app"),
    "bulletin": ("cli.bulletin", "bulletin_app"),
    "db citus": ("cli.citus", "citus_app"),
}


def mount_sub_apps(argv: list[str]) -> None:
    """Mount the sub-app `argv` (the words after `titlemap`) runs, or every one when it names
    none of them (help, a typo: the list shows them all)."""
    words = [word for word in argv if not word.startswith("-")]
    asked = words[0] if words else None
    own = {c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands}
    own |= {group.name for group in app.registered_groups}
    if asked == "db":  # its own commands and `db citus` (a light module) listed together
        names = ["db citus"]
    else:
        names = [asked] if asked in SUB_APPS else [] if asked in own else list(SUB_APPS)
    for name in names:
        module, attribute = SUB_APPS[name]
        sub_app = getattr(importlib.import_module(module), attribute)
        if name == "db citus":
            db_app.add_typer(sub_app, name="citus")
        elif isinstance(sub_app, typer.Typer):
            app.add_typer(sub_app, name=name)
        else:  # a single command
            app.command(name)(sub_app)


def main() -> None:
    mount_sub_apps(sys.argv[1:])
    try:
        app()
    except TitlemapError as exc:
        err.print(f"[bold red]错误 / error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(1)
    except Exception as exc:
        from sqlalchemy.exc import InterfaceError, OperationalError

        from geo.db.engine import DISK_FULL, describe_failure, disk_full, local_cluster

        if disk_full(exc):
            first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            words = f"{DISK_FULL}（{first}）"
        elif isinstance(exc, OperationalError | InterfaceError):  # the database out of reach
            settings = get_settings()  # (the local cluster's address, without starting it)
            words = describe_failure(exc, settings.database_url or local_cluster(settings).url())
        else:
            raise  # a bug: its traceback is wanted
        err.print(f"[bold red]错误 / error:[/] {escape(words)}", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
