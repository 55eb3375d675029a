"""`titlemap region …`: the cities (地级市) and the province above the counties.

`region_app` is a typer sub-app; cli/main.py mounts it as `titlemap region`. Codes, names and
targets are checked by geo.ledger.regions (a province's code ends 0000, a city's 00), so a
wrong one is one line and exit 1.
"""

from datetime import date
from typing import Annotated

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from cli.common import database, out

region_app = typer.Typer(
    help="省、市：添加、列出、修改、各县排名 / regions: add, list, set, show", no_args_is_help=True
)

Code = Annotated[
    str, typer.Argument(help="省或市的代码（GB/T 2260），如 620000、620100 / region code")
]
Target = Annotated[
    str | None,
    typer.Option("--target", help="总体登记率目标，0.9 或 90%；空为各县自己的 / target rate"),
]
Deadline = Annotated[str | None, typer.Option(help="目标期限，如 2026-12-31 / target deadline")]


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.2%}"


def _print_region(region: dict, title: str) -> None:
    table = Table("设置 / setting", "值 / value", title=title)
    for label, value in (
        ("名称 / name", region["name"]),
        ("级别 / level", f"{region['level_label']} / {region['level']}"),
        ("目标 / target", _percent(region["target_rate"]) + ("" if region["target_rate"]
                                                             is not None else "（各县自定）")),
        ("目标期限 / deadline", region["target_deadline"] or "—"),
        ("县数 / counties", region["counties"]),
    ):  # fmt: skip
        table.add_row(label, escape(str(value)))
    out.print(table)


@region_app.command("add")
def add(
    code: Code,
    name: Annotated[str, typer.Argument(help="名称，如 兰州市 / name")],
    target: Target = None,
    deadline: Deadline = None,
) -> None:
    """添加省或市 / add a province or a city."""
    from geo.ledger.regions import add_region

    with database().connect() as conn:
        region = add_region(conn, code, name, target, deadline)
    _print_region(region, f"已添加 / added {region['code']} {escape(region['name'])}")


@region_app.command("set")
def set_(
    code: Code,
    name: Annotated[str | None, typer.Option("--name", help="名称 / name")] = None,
    target: Target = None,
    deadline: Deadline = None,
) -> None:
    """修改省或市的名称、目标 / change a region's name or target（--target '' 清除 / clears）."""
    from geo.ledger.regions import set_region

    changes = {"name": name, "target_rate": target, "target_deadline": deadline}
    with database().connect() as conn:
        region = set_region(conn, code, {k: v for k, v in changes.items() if v is not None})
    _print_region(region, f"已修改 / changed {region['code']} {escape(region['name'])}")


@region_app.command("list")
def list_() -> None:
    """列出省、市及其县数 / the regions."""
    from geo.ledger.regions import list_regions

    with database().connect() as conn:
        regions = list_regions(conn)
    if not regions:
        out.print("还没有省或市 / no regions yet: titlemap region add 620000 甘肃省")
        return
    table = Table(title="省、市 / regions", box=box.SIMPLE_HEAD)
    for header in ("代码", "名称", "级别", "县数", "目标", "期限"):
        table.add_column(header)
    for region in regions:
        table.add_row(
            region["code"], escape(region["name"]), region["level_label"],
            str(region["counties"]), _percent(region["target_rate"]),
            str(region["target_deadline"] or "—"),
        )  # fmt: skip
    out.print(table)


@region_app.command("show")
def show(
    code: Code,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="截至日期 / as of (YYYY-MM-DD)")
    ] = None,
) -> None:
    """各县排名：登记率、本月化解、逾期任务、停滞小区 / the counties ranked."""
    from geo.core.dates import parse_date
    from geo.ledger.regions import overview

    day: date | None = parse_date(as_of) if as_of else None
    with database().connect() as conn:
        figures = overview(conn, code, as_of=day)
    region, totals = figures["region"], figures["totals"]
    table = Table(
        title=f"{escape(region['name'])}（{region['code']}）各县化解进度 — 截至 {figures['as_of']}",
        box=box.SIMPLE_HEAD,
    )
    headers = ("名次", "县", "代码", "小区", "任务套数", "首次登记率", "转移登记率",
               "总体登记率", "目标", "达标", "本月化解", "逾期任务", "停滞小区")  # fmt: skip
    for header in headers:
        table.add_column(header, justify="left" if header in ("县", "代码") else "right")
    for row in figures["counties"]:
        table.add_row(*_cells(row, str(row["rank"]), escape(row["name"]), row["code"]))
    table.add_section()
    table.add_row(*_cells(totals, "", "合计 / total", f"{totals['counties']} 县"))
    out.print(table)


def _cells(row: dict, *first: str) -> list[str]:
    met = {True: "是", False: "否", None: "—"}[row["meets_target"]]
    return [
        *first, str(row["compounds"]), str(row["units_task"]), _percent(row["first_rate"]),
        _percent(row["transfer_rate"]), _percent(row["overall_rate"]),
        _percent(row["target_rate"]), met, str(row["resolved_this_month"]),
        str(row["overdue_tasks"]), str(row["stalled"]),
    ]  # fmt: skip
