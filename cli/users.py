"""`titlemap user …`: add people and scripts, set passwords, list, disable, give counties.

`user_app` is a typer sub-app; cli/main.py mounts it as `titlemap user`. Every write names the
command line's user in the audit log ("命令行 <login>"). A password is typed twice, hidden, at
a terminal; piped in (`echo … | titlemap user passwd 张三`), its first line is read.
"""

import getpass
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich import box
from rich.markup import escape
from rich.table import Table
from sqlalchemy import event
from sqlalchemy.orm import Session

from cli.common import county_or_default, database, out

user_app = typer.Typer(help="用户与令牌 / users and tokens", no_args_is_help=True)

Name = Annotated[str, typer.Argument(help="姓名 / name")]
County = Annotated[str | None, typer.Option("--county", help="县级行政区划代码 / county code")]
Department = Annotated[
    str | None,
    typer.Option(
        help="单位，如 住建局；不填为全县（领导小组办公室）/ department; none: the whole county"
    ),
]


@contextmanager
def audited() -> Iterator[Session]:
    """A session whose every transaction names the command line's user in the audit log."""
    from geo.db.audit import Actor, act_as

    actor = Actor(f"命令行 {getpass.getuser()}")
    with Session(database(), expire_on_commit=False) as session:
        event.listen(session, "after_begin", lambda _s, _t, conn: act_as(conn, actor))
        yield session


def read_password(name: str) -> str:
    """Typed twice, hidden, at a terminal; else the first line of standard input."""
    if sys.stdin.isatty():
        return typer.prompt(f"{name} 的密码 / password", hide_input=True,
                            confirmation_prompt=True)  # fmt: skip
    return sys.stdin.readline().rstrip("\r\n")


@user_app.command("add")
def add(
    name: Name,
    role: Annotated[str, typer.Option(help="viewer / editor / admin")] = "viewer",
    county: County = None,
    region: Annotated[
        str | None,
        typer.Option(
            "--region",
            help="省或市的代码（如 620100），代替 --county / a city's or the "
            "province's user: reads all its counties, writes none unless given",
        ),
    ] = None,
    department: Department = None,
    password: Annotated[
        bool,
        typer.Option(
            "--password",
            help="设置登录密码（终端里输入两遍；或从标准输入读第一行）/ set a sign-in password "
            "(typed twice, hidden; or the first line of stdin)",
        ),
    ] = False,
    token: Annotated[
        bool | None,
        typer.Option(
            "--token/--no-token",
            help="发放脚本令牌（缺省：未设密码时发放）/ issue a bearer token (default: when no "
            "password is set)",
        ),
    ] = None,
) -> None:
    """添加用户：设密码（网页登录）或发放令牌（只显示一次）/ add a user: a password or a token."""
    from geo.ledger.users import OFFICE_LABEL, add_user, home_of

    secret = read_password(name) if password else None
    with_token = not password if token is None else token
    with audited() as session:
        home = None if region else county_or_default(county)
        user, issued = add_user(session, home, name, role, password=secret, region=region,
                                department=department, with_token=with_token)  # fmt: skip
        session.commit()
    where = escape(user.department or OFFICE_LABEL)
    out.print(f"已添加 / added {escape(user.name)} ({user.role}, {home_of(user)}, {where})",
              highlight=False)  # fmt: skip
    if secret is not None:
        out.print("可在 /signin 用密码登录 / signs in on /signin with the password")
    if issued:
        out.print(f"令牌 / token: {issued}", highlight=False)


@user_app.command("passwd")
def passwd(name: Name, county: County = None) -> None:
    """设置用户的登录密码，其登录随即全部退出 / set a user's password: signs them out."""
    from geo.ledger.users import checked_password, find_user, set_password

    with audited() as session:
        user = find_user(session, county_or_default(county), name)
        secret = checked_password(read_password(name))
        set_password(session, user, secret)
        _record(session, user, "password_reset")
        session.commit()
    out.print(f"已设置 {escape(user.name)} 的密码 / password set", highlight=False)


def _record(session: Session, user, action: str) -> None:
    """What the row triggers do not show (a password is left out of the trace)."""
    from geo.db.audit import record
    from geo.ledger.users import home_of

    record(session, home_of(user), "app_user", action, str(user.id))


@user_app.command("list")
def list_(county: County = None) -> None:
    """列出本县用户：角色、单位、能否登录、状态 / the county's users."""
    from geo.ledger.users import county_users, describe_user

    code = county_or_default(county)
    with Session(database()) as session:
        users = [describe_user(u) | {"token": bool(u.token_sha256)}
                 for u in county_users(session, code)]  # fmt: skip
    if not users:
        out.print(f"县 {code} 还没有用户 / no users yet: titlemap user add 姓名 --password")
        return
    table = Table(title=f"用户 / users — {code}", box=box.SIMPLE_HEAD)
    for header in ("姓名", "角色", "单位", "密码登录", "令牌", "状态", "其他县"):
        table.add_column(header, overflow="fold")
    for user in users:
        others = sorted(set(user["counties"]) - {user["county"]})
        table.add_row(
            escape(user["name"]), user["role_label"], escape(user["department_label"]),
            "是" if user["signs_in"] else "否", "有" if user["token"] else "—",
            "启用" if user["active"] else "已停用", "、".join(others) or "—",
        )  # fmt: skip
    out.print(table)


def _set_active(name: str, county: str | None, active: bool) -> None:
    from geo.ledger.users import find_user, set_active

    with audited() as session:
        user = find_user(session, county_or_default(county), name)
        set_active(session, user, active)
        session.commit()
    words = "已启用 / enabled" if active else "已停用，其登录和令牌已失效 / disabled"
    out.print(f"{escape(user.name)} {words}", highlight=False)


@user_app.command("disable")
def disable(name: Name, county: County = None) -> None:
    """停用用户：登录和令牌立即失效 / disable a user: sessions and token stop at once."""
    _set_active(name, county, False)


@user_app.command("enable")
def enable(name: Name, county: County = None) -> None:
    """重新启用用户 / enable a user again."""
    _set_active(name, county, True)


@user_app.command("counties")
def counties(
    name: Name,
    codes: Annotated[
        list[str] | None,
        typer.Argument(help="可查看的其他县代码，不填为清空 / other counties; none: clear"),
    ] = None,
    county: County = None,
) -> None:
    """给用户其他县的查看（按角色编辑）权限 / give a user other counties (replaces the list)."""
    from geo.ledger.users import find_user, give_counties

    with audited() as session:
        user = find_user(session, county_or_default(county), name)
        give_counties(session, user, codes or [])
        session.commit()
    given = "、".join(user.counties) or "无 / none"
    out.print(f"{escape(user.name)} 可看其他县 / other counties: {given}", highlight=False)
