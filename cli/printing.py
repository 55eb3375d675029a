"""`titlemap print area|visit|region`: PDFs for on-site offices (现场办公) and a city's or the
province's A3 overview, written to a file.

Mounted in cli/main.py as `titlemap print`. Errors a user can act on are geo.TitlemapError,
which the main command prints as one line.
"""

import time
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cli.common import county_or_default, database, err, out
from geo import TitlemapError
from geo.core.settings import get_settings

print_app = typer.Typer(
    help="打印现场办公图与资料（PDF）/ print maps and visit packs for on-site offices",
    no_args_is_help=True,
)

PlannedArea = Annotated[
    str | None,
    typer.Option("--planned-area", help="规划片区：编号、名称或类别，如 城东片区 / planned area"),
]
Township = Annotated[
    str | None, typer.Option("--township", help="乡镇（街道）编号或名称 / township")
]
Box = Annotated[
    str | None,
    typer.Option("--bbox", help="范围 minx,miny,maxx,maxy（经纬度，EPSG:4490）/ lon/lat box"),
]
Compounds = Annotated[
    list[str] | None,
    typer.Option(
        "--compounds",
        help="小区编号或名称，逗号分隔或重复；走访按此顺序 / compound codes or names, in order",
    ),
]
Out = Annotated[Path | None, typer.Option("--out", "-o", help="输出文件 / output file (.pdf)")]
County = Annotated[str | None, typer.Option("--county", help="县级行政区划代码 / county code")]
On = Annotated[
    str | None, typer.Option("--date", help="打印日期 YYYY-MM-DD（默认今天）/ date printed")
]


def _day(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise TitlemapError(f"日期应为 YYYY-MM-DD / date must be YYYY-MM-DD: {value}") from None


def _target(path: Path | None, kind: str, day: date) -> Path:
    path = path or Path(f"{kind}-{day:%Y%m%d}.pdf")
    if path.suffix.lower() != ".pdf":
        path = path.with_suffix(path.suffix + ".pdf") if path.suffix else path.with_suffix(".pdf")
    if not path.parent.is_dir():
        raise TitlemapError(f"目录不存在 / no such folder: {path.parent}")
    return path


def _select(planned_area, township, bbox, compounds, county, on, limit=None):
    from geo.query.selection import MAX_COMPOUNDS, select

    items = [c for value in compounds or [] for c in value.replace("，", ",").split(",") if c]
    engine = database()
    conn = engine.connect()
    try:
        selection = select(
            conn,
            county_or_default(county),
            planned_area=planned_area,
            township=township,
            bbox=bbox,
            compounds=items or None,
            printed_on=_day(on),
            limit=limit or MAX_COMPOUNDS,
        )
    except BaseException:
        conn.close()
        raise
    return conn, selection


def _write(path: Path, body: bytes) -> None:
    try:
        path.write_bytes(body)
    except OSError as exc:
        raise TitlemapError(f"无法写入 / cannot write {path}: {exc.strerror}") from None


@print_app.command("area")
def area(
    planned_area: PlannedArea = None,
    township: Township = None,
    bbox: Box = None,
    compounds: Compounds = None,
    paper: Annotated[str, typer.Option("--paper", help="A4 或 A3（横向）/ A4 or A3")] = "A4",
    out_file: Out = None,
    county: County = None,
    on: On = None,
) -> None:
    """区域现场办公图：地图 + 小区表 / the area map with its table of compounds."""
    from maps.print import area_pdf

    started = time.perf_counter()
    conn, selection = _select(planned_area, township, bbox, compounds, county, on)
    with conn:
        target = _target(out_file, "area", selection.printed_on)
        with err.status(f"绘制 / drawing {selection.area.label} …"):
            body = area_pdf(conn, selection, paper)
    _write(target, body)
    out.print(
        f"已生成 / written {target}：{selection.area.label}，{len(selection.compounds)} 个小区，"
        f"{len(body) / 1024:,.0f} KB，用时 {time.perf_counter() - started:.1f} s"
    )


@print_app.command("visit")
def visit(
    planned_area: PlannedArea = None,
    township: Township = None,
    bbox: Box = None,
    compounds: Compounds = None,
    out_file: Out = None,
    county: County = None,
    on: On = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, max=8, help="绘图进程数（默认自动）/ drawing processes"),
    ] = None,
) -> None:
    """现场办公资料：路线封面 + 每个小区一页 A4 / visit pack: route cover, a page per compound."""
    from maps.print import VISIT_LIMIT, plan_visit, render_visit

    started = time.perf_counter()
    conn, selection = _select(planned_area, township, bbox, compounds, county, on, VISIT_LIMIT)
    with conn:
        target = _target(out_file, "visit", selection.printed_on)
        with err.status("读取台账与图层 / reading the ledger and layers …"):
            pack = plan_visit(conn, selection, data_dir=get_settings().data_dir)
    with Progress(
        TextColumn("[bold]绘制 / drawing[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("页 / pages"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task("pages", total=pack.total_pages)

        def advance(done: int, _total: int) -> None:
            progress.update(task, completed=done)

        body = render_visit(pack, workers, advance)
    _write(target, body)
    out.print(
        f"已生成 / written {target}：{selection.area.label}，封面 + {len(pack.stops)} 页，"
        f"{len(body) / 1024:,.0f} KB，用时 {time.perf_counter() - started:.1f} s"
    )


@print_app.command("region")
def region(
    code: Annotated[str, typer.Argument(help="省、市代码，如 620000 / province or city code")],
    out_file: Out = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="数据截至 YYYY-MM-DD（默认今天）/ figures as of")
    ] = None,
    on: On = None,
) -> None:
    """省、市化解进度总览：各县区地图 + 排名表，A3 一页 / a region's overview on one A3 page."""
    from geo.core.dates import today
    from geo.ledger.regions import county_outlines, overview
    from maps.print import region_pdf

    started = time.perf_counter()
    printed_on = _day(on) or today()
    with database().connect() as conn:  # the operator's command: every county of the region
        figures = overview(conn, code, None, _day(as_of))
        outlines = county_outlines(conn, [row["code"] for row in figures["counties"]])
    target = _target(out_file, f"region-{code}", printed_on)
    with err.status(f"绘制 / drawing {figures['region']['name']} …"):
        body = region_pdf(figures, outlines, printed_on)
    _write(target, body)
    name, count = figures["region"]["name"], len(figures["counties"])
    out.print(
        f"已生成 / written {target}：{name}，{count} 个县区，"
        f"{len(body) / 1024:,.0f} KB，用时 {time.perf_counter() - started:.1f} s"
    )
