"""`titlemap bulletin --period 2026-W48 [--county] [--issue] [--out 通报.docx|.pdf] [--user]`:
the supervision bulletin (督查通报) of a period — a summary on the terminal, or its Word or
PDF file (the extension of --out picks which); --issue issues it first under the next number.

Mounted in cli/main.py as the command `titlemap bulletin`. Errors a user can act on are
geo.TitlemapError, which the main command prints as one line.
"""

import getpass
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from cli.common import county_or_default, database, out
from geo import TitlemapError

FORMATS = (".docx", ".pdf")


def _target(path: Path) -> Path:
    if path.suffix.lower() not in FORMATS:
        raise TitlemapError(
            f"--out 应以 .docx 或 .pdf 结尾 / --out must end in .docx or .pdf: {path.name}"
        )
    if not path.parent.is_dir():
        raise TitlemapError(f"目录不存在 / no such folder: {path.parent}")
    return path


def _issue(engine, county: str, period: str, user_name: str | None) -> int:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from geo.core.model import User
    from geo.db.audit import Actor, act_as
    from geo.ledger.bulletin import issue_bulletin

    with Session(engine) as session:
        who: User | str = f"命令行 {getpass.getuser()}"
        act_as(session, Actor(who))  # the audit log names who issued it
        if user_name:
            found = session.scalar(
                select(User).where(User.county_code == county, User.name == user_name)
            )
            if found is None:
                raise TitlemapError(f"本县没有用户 {user_name} / no such user in {county}")
            who = found
            act_as(session, Actor(found.name, found.department))  # the audit log names them
        row = issue_bulletin(session, county, period, who)
        session.commit()
        return row.number


def _summary(figures: dict) -> None:
    from geo.ledger.bulletin import percent_text

    state = (
        "草稿 / draft" if figures["draft"] else f"已印发 {figures['date']} · {figures['issued_by']}"
    )
    out.print(f"[bold]{escape(figures['title'])}[/]  第 {figures['number']} 期（{escape(state)}）")
    out.print(
        f"{escape(figures['office'])} · {escape(figures['period_label'])} · 截至 {figures['as_of']}"
    )
    for paragraph in figures["text"]["overall"]:
        out.print(escape(paragraph))
    table = Table(title="牵头单位进展排名 / lead departments")
    for header in (
        "排名",
        "牵头单位",
        "台账小区",
        "任务套数",
        "本期化解",
        "转移登记化解率",
        "逾期任务",
    ):
        table.add_column(header)
    for d in figures["departments"]:
        table.add_row(
            str(d["rank"]), escape(d["name"]), str(d["compounds"]), str(d["units_task"]),
            str(d["resolved"]), percent_text(d["transfer_rate"]), str(d["overdue"]),
        )  # fmt: skip
    out.print(table)
    out.print(
        f"逾期任务 {len(figures['overdue'])} 项 · 停滞小区 {len(figures['stalled'])} 个 · "
        f"状态变化小区 {len(figures['changed'])} 个"
    )


def bulletin(
    period: Annotated[
        str,
        typer.Option(
            "--period", help="期间：2026-W48（周）、2026-11（月）或 2026-11-01..2026-11-15 / period"
        ),
    ],
    county: Annotated[
        str | None, typer.Option("--county", help="县级行政区划代码 / county code")
    ] = None,
    issue: Annotated[
        bool, typer.Option("--issue", help="印发（编号并存档）/ issue it under the next number")
    ] = False,
    out_path: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="输出文件 .docx 或 .pdf / output file (.docx or .pdf)"),
    ] = None,
    user: Annotated[
        str | None,
        typer.Option("--user", help="印发人（本县领导小组办公室的用户名）/ who issues it"),
    ] = None,
) -> None:
    """督查通报：摘要、Word 或 PDF，可印发 / the supervision bulletin of a period."""
    from geo.ledger.bulletin import bulletin_of, parse_period

    key = parse_period(period).key  # a wrong period is one line before anything opens
    target = _target(out_path) if out_path else None
    county = county_or_default(county)
    engine = database()
    if issue:
        number = _issue(engine, county, key, user)
        out.print(f"已印发第 {number} 期（{key}）/ issued number {number}")
    with engine.connect() as conn:
        figures = bulletin_of(conn, county, key)
        if target is None:
            _summary(figures)
            return
        if target.suffix.lower() == ".docx":
            from maps.bulletin import bulletin_docx

            body = bulletin_docx(figures)
        else:
            from maps.bulletin import bulletin_pdf

            body = bulletin_pdf(conn, figures)
    target.write_bytes(body)
    draft = "，草稿" if figures["draft"] else ""
    out.print(f"已写出 / written: {target}（第 {figures['number']} 期{draft}）")


bulletin_app = bulletin  # the name cli/main.py mounts: app.command("bulletin")(bulletin_app)
