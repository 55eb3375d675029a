"""`titlemap onboard FOLDER --county CODE`: a county's folder as its offices hand it over, every
file recognised and imported in one transaction, or nothing (`geo.io.onboard`).

cli/main.py mounts `onboard` as a command. The plan comes first as a table (which file becomes
which layer, why, the CRS, what is added), then each import's report, the refusals one line
each with their file and row, and the outcome; exit 1 when nothing was written (a dry run with
no refusal exits 0).
"""

import getpass
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from cli.common import VocabularyFile, database, out, vocabulary_of
from geo.core.settings import get_settings


def _by(plan) -> str:
    """Why a file got its layer, short: "7 列；文件名" (the lines below name the columns)."""
    parts = [f"{len(plan.columns)} 列" if part.startswith("列 ") else part
             for part in plan.how.split("；") if part]  # fmt: skip
    return "；".join(parts) or "—"


def _plan_table(result) -> Table:
    """The plan at a glance: one row per file placed."""
    verb = "将" if not result.written else ""
    title = f"接入计划 / plan — {escape(result.name or '')}（{result.county}）"
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False)
    for header in ("序号", "图层 / layer", "文件 / file", "行或要素", "识别依据 / by",
                   "坐标系 / CRS", f"{verb}新增", f"{verb}更新", "拒绝"):  # fmt: skip
        table.add_column(header, overflow="fold")
    for k, plan in enumerate(result.files, start=1):
        counts = plan.counts()
        crs = getattr(plan.report, "crs", "") or "—"
        refused = len(plan.refusals())
        table.add_row(
            str(k), f"{plan.to_dict()['label']} {plan.layer}", escape(plan.source),
            str(plan.features), escape(_by(plan)), escape(crs), str(counts["added"]),
            str(counts["updated"]), f"[red]{refused}[/]" if refused else "0",
        )  # fmt: skip
    return table


def onboard(
    folder: Annotated[
        Path,
        typer.Argument(exists=True, file_okay=False, help="各部门交来的文件夹 / the folder"),
    ],
    county: Annotated[str, typer.Option("--county", help="县级行政区划代码 / county code")],
    name: Annotated[
        str | None,
        typer.Option("--name", help="县名：县还不存在时按此新建 / creates the county if missing"),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="只出计划和报告，不写入 / plan and reports only")
    ] = False,
    partial: Annotated[
        bool,
        typer.Option(help="导入无误的部分，跳过被拒绝的 / write the good rows, skip the refused"),
    ] = False,
    layer: Annotated[
        list[str] | None,
        typer.Option(
            "--layer",
            help="指定文件的图层，可重复：小区.zip=compounds；=- 不导入 / a file's layer, "
            "repeatable: FILE=layer (boundary, townships, developers, compounds, parcels, "
            "planned, complaints, ledger) or FILE=- to leave it out",
        ),
    ] = None,
    vocabulary: VocabularyFile = None,
    user: Annotated[
        str | None, typer.Option(help="台账历史中记的用户名 / user named in the history")
    ] = None,
) -> None:
    """接入一个县：识别文件夹中的各类文件，一个事务全部导入 / onboard a county's folder in one go:
    each file's layer recognised, everything imported in one transaction or nothing."""
    from cli.main import progress_bar  # cli.main mounts this command: import it when run
    from geo.io.onboard import onboard as run_onboarding
    from geo.io.onboard import parse_layers

    settings = get_settings()
    given = parse_layers(layer)
    with progress_bar() as progress:
        result = run_onboarding(
            database(), folder, county, name=name, dry_run=dry_run, partial=partial,
            layers=given, vocabulary=vocabulary_of(vocabulary),
            user=user or f"命令行 {getpass.getuser()}",
            datum_parameters=settings.datum_parameters,
            helmert_convention=settings.helmert_convention, progress=progress,
        )  # fmt: skip
    out.print(_plan_table(result))
    for line in result.lines():
        out.print(escape(line), highlight=False)
    if not (result.written or (dry_run and not result.refusals())):
        raise typer.Exit(1)
