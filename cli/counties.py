"""`titlemap county …`: add a county, list the counties, change a county's settings.

`county_app` is a typer sub-app; cli/main.py mounts it as `titlemap county`. Values are read
by geo.ledger.counties (rates as 0.9 or 90%, dates as 2026-12-31 or 2026年12月31日), so a
wrong one is one line and exit 1, as every other command's.
"""

from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from cli.common import database, out

county_app = typer.Typer(
    help="县：添加、列出、修改设置 / counties: add, list, set", no_args_is_help=True
)

Code = Annotated[str, typer.Argument(help="县级行政区划代码（6 位，GB/T 2260）/ county code")]
Name = Annotated[str | None, typer.Option("--name", help="县名，如 永登县 / the county's name")]
Province = Annotated[
    str | None, typer.Option(help="省份（缺省按代码前两位）/ province (default: from the code)")
]
TargetRate = Annotated[
    str | None,
    typer.Option("--target-rate", help="总体登记率目标，0.9 或 90% / overall-rate target"),
]
Deadline = Annotated[str | None, typer.Option(help="目标期限，如 2026-12-31 / target deadline")]
Cutoff = Annotated[
    str | None,
    typer.Option(help="台账截止日期：此前销售入住的小区应上台账 / ledger cut-off date"),
]
GkEpsg = Annotated[
    str | None,
    typer.Option(
        "--gk-epsg",
        help="计算面积用的 CGCS2000 3 度带 EPSG，如 4544；auto 为按县界经度 / the county's "
        "Gauss-Krüger zone (auto: from its longitude)",
    ),
]
ClosingRuleOption = Annotated[
    str | None,
    typer.Option(
        "--closing-rule",
        help="销号口径 / closing rule: all_transferred（全部转移登记）| first_registered"
        "（全部首次登记）| as_recorded（以县台账为准）",
    ),
]
Basis = Annotated[
    str | None,
    typer.Option(
        "--basis", help="总体登记率分母 / overall-rate basis: sold（已售套数）| task（任务套数）"
    ),
]

MapPublic = Annotated[
    bool | None,
    typer.Option(
        "--map-public/--map-private",
        help="地图对内网公开，或只对本县登录用户 / the map open to the intranet, or to the "
        "county's signed-in people only",
    ),
]


def _percent(rate: float) -> str:
    return f"{rate:.0%}" if round(rate, 2) == rate else f"{rate:.2%}"


def _zone(county: dict) -> str:
    if county["gk_epsg"]:
        return f"EPSG:{county['gk_epsg']}"
    if county["measuring_epsg"]:
        return f"EPSG:{county['measuring_epsg']}（按经度 / by longitude）"
    return "待定（导入县界后）/ after the boundary"


def _print_county(county: dict, title: str) -> None:
    table = Table("设置 / setting", "值 / value", title=title)
    for label, value in (
        ("县名 / name", county["name"]),
        ("省份 / province", county["province"] or "—"),
        ("目标 / target", _percent(county["target_rate"])),
        ("目标期限 / deadline", county["target_deadline"] or "—"),
        ("台账截止 / ledger cut-off", county["ledger_cutoff"] or "—"),
        ("投影带 / zone", _zone(county)),
        ("销号口径 / closing rule", f"{county['closing_rule']}（{county['closing_rule_label']}）"),
        ("总体登记率分母 / basis", county["overall_rate_basis"]),
        ("地图公开 / map public", "是 / yes" if county["map_public"] else "否，须登录 / no"),
        ("县界 / boundary", "有 / yes" if county["has_boundary"] else "无 / none yet"),
    ):
        table.add_row(label, escape(str(value)))
    out.print(table)


def _as_command_line(conn) -> None:
    """Name the command line's user in the audit rows of this transaction."""
    import getpass

    from geo.db.audit import Actor, act_as

    act_as(conn, Actor(f"命令行 {getpass.getuser()}"))


def _add(code: str, settings: dict[str, Any]) -> None:
    from geo.ledger.counties import add_county

    with database().connect() as conn:
        _as_command_line(conn)
        county = add_county(conn, code, settings.pop("name", None), **settings)
    _print_county(county, f"已添加 / added {county['code']} {escape(county['name'])}")
    if not county["has_boundary"]:
        next_step = f"titlemap import 县界.geojson --county {county['code']} --layer boundary"
        out.print(f"下一步 / next: {next_step}", highlight=False)


def _set(code: str, changes: dict[str, Any]) -> None:
    from geo.ledger.counties import set_county

    with database().connect() as conn:
        _as_command_line(conn)
        county = set_county(conn, code, changes)
    _print_county(county, f"已修改 / changed {county['code']} {escape(county['name'])}")


def _with_settings(act: Callable[[str, dict[str, Any]], None]) -> Callable[..., None]:
    """A command taking the county's code and every setting as options; `act` gets the code
    and the settings given (by their field names). `add` and `set` take the same options."""

    def command(
        code: Code,
        name: Name = None,
        province: Province = None,
        target_rate: TargetRate = None,
        deadline: Deadline = None,
        cutoff: Cutoff = None,
        gk_epsg: GkEpsg = None,
        closing_rule: ClosingRuleOption = None,
        basis: Basis = None,
        map_public: MapPublic = None,
    ) -> None:
        given = {"name": name, "province": province, "target_rate": target_rate,
                 "target_deadline": deadline, "ledger_cutoff": cutoff, "gk_epsg": gk_epsg,
                 "closing_rule": closing_rule, "overall_rate_basis": basis,
                 "map_public": map_public}  # fmt: skip
        act(code, {field: value for field, value in given.items() if value is not None})

    return command


county_app.command(
    "add", help="添加一个县（可先不带县界）/ add a county (its boundary may come later)."
)(_with_settings(_add))
county_app.command(
    "set",
    help="修改一个县的设置，只改给出的项（空值清除）/ change a county's settings (those given).",
)(_with_settings(_set))


@county_app.command("show")
def show(code: Code) -> None:
    """一个县的全部设置及数据量 / one county's settings and counts."""
    from geo.ledger.counties import describe_county

    with database().connect() as conn:
        county = describe_county(conn, code)
    _print_county(county, f"{county['code']} {escape(county['name'])}")


# The closing rule in a word, for a table that fits 80 columns (`show` gives the whole label).
RULE_WORDS = {
    "all_transferred": "全部转移",
    "first_registered": "首次登记",
    "as_recorded": "按台账",
}


@county_app.command("list")
def list_() -> None:
    """列出所有县及其数据量 / every county with its compounds, parcels and ledger entries."""
    from geo.ledger.counties import list_counties

    with database().connect() as conn:
        counties = list_counties(conn)
    if not counties:
        out.print("还没有县 / no county yet: titlemap county add 代码 --name 县名（或 demo）")
        return
    table = Table(title="县 / counties", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                  padding=(0, 1, 0, 0),
                  caption="全部设置 / every setting: titlemap county show 代码")  # fmt: skip
    for header in ("代码", "县名", "目标", "期限", "投影带", "销号", "小区", "宗地", "台账"):
        words = header in ("县名", "销号")  # wrap these; never cut a code or a number
        table.add_column(header, justify="right" if header in ("小区", "宗地", "台账") else "left",
                         no_wrap=not words, overflow="fold")  # fmt: skip
    for county in counties:
        counts = county["counts"]
        zone = county["gk_epsg"] or county["measuring_epsg"]
        table.add_row(
            county["code"], escape(county["name"]), _percent(county["target_rate"]),
            county["target_deadline"] or "—", str(zone or "—"), RULE_WORDS[county["closing_rule"]],
            f"{counts['compounds']:,}", f"{counts['parcels']:,}", f"{counts['ledger_entries']:,}",
        )  # fmt: skip
    out.print(table)
