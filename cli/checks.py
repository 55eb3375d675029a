"""`titlemap check …`: parcel checks (宗地核查) from the command line.

`check_app` is a typer sub-app; cli/main.py mounts it as `titlemap check`.
"""

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from cli.common import county_or_default, database, err, out
from cli.regions import Code as RegionCode
from geo.checks.report import CheckSettings, crs_words

check_app = typer.Typer(help="宗地核查 / parcel checks", no_args_is_help=True)
DEFAULT = CheckSettings()


AreaTolerance = Annotated[
    float, typer.Option("--area-tolerance", min=0, max=0.99, help="面积容差（比例，0.01 = 1%）")
]
OverlapTolerance = Annotated[
    float, typer.Option("--overlap-tolerance", min=0, help="重叠容差 m²（更小的碎片忽略并计数）")
]
GapTolerance = Annotated[float, typer.Option("--gap-tolerance", min=0, help="缝隙容差 m²")]
GapWidth = Annotated[float, typer.Option("--gap-width", min=0.01, max=100, help="缝隙搜索宽度 m")]
BeyondTolerance = Annotated[
    float, typer.Option("--beyond-tolerance", min=0, help="超出宗地容差 m²")
]
PlannedTolerance = Annotated[
    float, typer.Option("--planned-tolerance", min=0, help="规划冲突容差 m²")
]
ArrearsTolerance = Annotated[float, typer.Option("--arrears-tolerance", min=0, help="欠缴容差 元")]
County = Annotated[str | None, typer.Option("--county", help="县级行政区划代码 / county code")]


def _settings(area, overlap, gap, width, beyond, planned, arrears) -> CheckSettings:
    return CheckSettings(
        area_tolerance=area,
        overlap_tolerance_m2=overlap,
        gap_tolerance_m2=gap,
        gap_width_m=width,
        beyond_tolerance_m2=beyond,
        planned_tolerance_m2=planned,
        arrears_tolerance_yuan=arrears,
    )


def _print_basis(report) -> None:
    out.print(f"面积计算 / measured in: {crs_words(report.epsg)}")
    out.print(f"容差 / tolerances: {report.settings.line()}")


@check_app.command("parcels")
def parcels(
    county: County = None,
    area_tolerance: AreaTolerance = DEFAULT.area_tolerance,
    overlap_tolerance: OverlapTolerance = DEFAULT.overlap_tolerance_m2,
    gap_tolerance: GapTolerance = DEFAULT.gap_tolerance_m2,
    gap_width: GapWidth = DEFAULT.gap_width_m,
    beyond_tolerance: BeyondTolerance = DEFAULT.beyond_tolerance_m2,
    planned_tolerance: PlannedTolerance = DEFAULT.planned_tolerance_m2,
    arrears_tolerance: ArrearsTolerance = DEFAULT.arrears_tolerance_yuan,
    xlsx: Annotated[
        Path | None, typer.Option("--xlsx", help="问题清单 xlsx（中文表头）/ problem list")
    ] = None,
    geojson: Annotated[
        Path | None, typer.Option("--geojson", help="问题图斑 GeoJSON / problem pieces")
    ] = None,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="完整报告 JSON / the whole report")
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, max=16, help="并行连接数 / connections")
    ] = None,
) -> None:
    """核查全县宗地 / check every parcel of the county: codes, areas, overlaps, gaps, land beyond
    parcels, planned roads and green space, land premium, links."""
    from geo.checks.run import run_parcel_checks
    from geo.checks.xlsx import write_xlsx

    settings = _settings(area_tolerance, overlap_tolerance, gap_tolerance, gap_width,
                         beyond_tolerance, planned_tolerance, arrears_tolerance)  # fmt: skip
    county = county_or_default(county)
    started = time.perf_counter()
    with err.status(f"核查 {county} 的宗地 / checking the parcels of {county} …"):
        with database().connect() as conn:
            report = run_parcel_checks(conn, county, settings, workers=workers)
    summary = report.summary()
    table = Table(
        "核查项 / check", "问题数 / problems",
        title=f"{report.county_name}（{report.county}）宗地核查 / parcel checks",
        caption=f"宗地 {report.counts.get('parcels', 0):,} · 小区 "
        f"{report.counts.get('compounds', 0):,} · 开发企业 {report.counts.get('developers', 0):,}",
    )  # fmt: skip
    table.columns[1].justify = "right"
    for check, item in summary["problems_by_check"].items():
        count = item["count"]
        table.add_row(f"{item['label']} / {check}", f"[bold red]{count:,}[/]" if count else "0")
    out.print(table)
    _print_basis(report)
    slivers = report.slivers
    out.print(
        f"忽略的重叠碎片 / slivers ignored: {slivers['count']} 处, {slivers['area_m2']:g} m²；"
        f"有问题的宗地 / parcels with problems: {summary['parcels_with_problems']:,}"
    )
    for path, write in (
        (xlsx, lambda p: write_xlsx(report, p)),
        (geojson, lambda p: p.write_text(json.dumps(report.pieces_geojson(), ensure_ascii=False),
                                         encoding="utf-8")),
        (json_file, lambda p: p.write_text(json.dumps(report.to_dict(), ensure_ascii=False),
                                           encoding="utf-8")),
    ):  # fmt: skip
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            write(path)
            out.print(f"已写出 / written: {escape(str(path))}")
    out.print(f"用时 / took {time.perf_counter() - started:.1f} s", style="dim")


@check_app.command("parcel")
def parcel(
    code: Annotated[str, typer.Argument(help="宗地代码 / parcel code (19 characters)")],
    county: County = None,
    area_tolerance: AreaTolerance = DEFAULT.area_tolerance,
    overlap_tolerance: OverlapTolerance = DEFAULT.overlap_tolerance_m2,
    gap_tolerance: GapTolerance = DEFAULT.gap_tolerance_m2,
    gap_width: GapWidth = DEFAULT.gap_width_m,
    beyond_tolerance: BeyondTolerance = DEFAULT.beyond_tolerance_m2,
    planned_tolerance: PlannedTolerance = DEFAULT.planned_tolerance_m2,
    arrears_tolerance: ArrearsTolerance = DEFAULT.arrears_tolerance_yuan,
) -> None:
    """核查一宗地 / every check for one parcel, with pass or fail and the reason."""
    from geo.checks.parcel import check_parcel

    settings = _settings(area_tolerance, overlap_tolerance, gap_tolerance, gap_width,
                         beyond_tolerance, planned_tolerance, arrears_tolerance)  # fmt: skip
    county = county_or_default(county)
    with database().connect() as conn:
        checked = check_parcel(conn, county, code.strip().upper(), settings)
    words = {"pass": "[green]通过[/]", "fail": "[bold red]不通过[/]", "skip": "[dim]不适用[/]"}
    table = Table("核查项", "结果", "原因", title=f"宗地 {escape(checked.code)}")
    for result in checked.results:
        table.add_row(result.label, words[result.status], escape(result.reason))
    out.print(table)
    _print_basis(checked.report)


@check_app.command("region")
def region(
    code: RegionCode,
    area_tolerance: AreaTolerance = DEFAULT.area_tolerance,
    overlap_tolerance: OverlapTolerance = DEFAULT.overlap_tolerance_m2,
    gap_tolerance: GapTolerance = DEFAULT.gap_tolerance_m2,
    gap_width: GapWidth = DEFAULT.gap_width_m,
    beyond_tolerance: BeyondTolerance = DEFAULT.beyond_tolerance_m2,
    planned_tolerance: PlannedTolerance = DEFAULT.planned_tolerance_m2,
    arrears_tolerance: ArrearsTolerance = DEFAULT.arrears_tolerance_yuan,
    xlsx_dir: Annotated[
        Path | None,
        typer.Option("--xlsx-dir", help="每县一份问题清单 xlsx / one problem list a county, here"),
    ] = None,
) -> None:
    """核查省/市下每个县的宗地 / check every parcel of every county of a city or the province,
    all counties at once (the same checks and words as `check parcels`, county by county)."""
    from geo.checks.kernel import run_checks_many
    from geo.checks.xlsx import write_xlsx
    from geo.ledger.regions import counties_in, get_region

    settings = _settings(area_tolerance, overlap_tolerance, gap_tolerance, gap_width,
                         beyond_tolerance, planned_tolerance, arrears_tolerance)  # fmt: skip
    started = time.perf_counter()
    with database().connect() as conn:
        named = get_region(conn, code)
        counties = counties_in(conn, named["code"])
        if not counties:
            raise typer.BadParameter(f"{named['name']}下没有县的数据 / no county of it is loaded")
        with err.status(f"核查 {len(counties)} 个县的宗地 / checking {len(counties)} counties …"):
            reports = run_checks_many(conn, counties, settings)
    table = Table(
        "县 / county", "宗地 / parcels", "问题 / problems", "有问题的宗地 / parcels with problems",
        title=f"{escape(named['name'])}（{named['code']}）宗地核查 / parcel checks",
    )  # fmt: skip
    for column in table.columns[1:]:
        column.justify = "right"
    for county, report in reports.items():
        summary = report.summary()
        table.add_row(f"{escape(report.county_name)}（{county}）",
                      f"{report.counts.get('parcels', 0):,}", f"{len(report.problems):,}",
                      f"{summary['parcels_with_problems']:,}")  # fmt: skip
        if xlsx_dir is not None:
            xlsx_dir.mkdir(parents=True, exist_ok=True)
            write_xlsx(report, xlsx_dir / f"{county}-宗地核查.xlsx")
    out.print(table)
    out.print(f"容差 / tolerances: {settings.line()}")
    if xlsx_dir is not None:
        out.print(f"已写出 / written: {escape(str(xlsx_dir))}（{len(reports)} 份 / files）")
    out.print(f"用时 / took {time.perf_counter() - started:.1f} s", style="dim")
