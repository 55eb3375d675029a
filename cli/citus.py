"""`titlemap db citus start|stop|status`: a Citus coordinator and two workers on loopback
(geo.db.citus), the schema distributed by county (geo.db.distribute). docs/scale.md."""

from pathlib import Path
from typing import Annotated

import typer

from cli.common import out

citus_app = typer.Typer(
    help="Citus 分布式集群（协调节点 + 两个工作节点）/ a Citus coordinator and two workers",
    no_args_is_help=True,
)

Folder = Annotated[Path, typer.Option("--folder", help="集群目录 / the cluster's folder")]
Ports = Annotated[
    str, typer.Option("--ports", help="协调节点,工作节点1,工作节点2 / coordinator,worker,worker")
]


def _cluster(folder: Path, ports: str):
    from geo import TitlemapError
    from geo.db.citus import CitusCluster

    try:
        numbers = tuple(int(p) for p in ports.split(","))
    except ValueError:
        raise TitlemapError(f"端口应为三个数字 / three port numbers: {ports}") from None
    return CitusCluster(folder, numbers)


@citus_app.command("start")
def citus_start(
    folder: Folder,
    ports: Ports = "5441,5442,5443",
    schema: Annotated[
        bool, typer.Option("--schema", help="建表并按县分布 / upgrade and distribute the schema")
    ] = False,
) -> None:
    """启动（必要时初始化）/ start the three nodes, initialising them when needed."""
    from sqlalchemy import make_url

    from geo.db.distribute import distribute
    from geo.db.engine import make_engine
    from geo.db.schema import upgrade

    cluster = _cluster(folder, ports)
    url = cluster.ensure_running()
    if schema:
        engine = make_engine(url)
        upgrade(engine)
        distribute(engine)
        engine.dispose()
    shown = make_url(url).render_as_string(hide_password=True)
    out.print(f"协调节点 / coordinator: {shown}（密码 / password: {cluster.coordinator.pwfile}）")


@citus_app.command("stop")
def citus_stop(folder: Folder, ports: Ports = "5441,5442,5443") -> None:
    """停止三个节点 / stop the three nodes."""
    stopped = _cluster(folder, ports).stop()
    out.print("已停止 / stopped" if stopped else "本来就没有运行 / was not running")


@citus_app.command("status")
def citus_status(folder: Folder, ports: Ports = "5441,5442,5443") -> None:
    """各节点状态 / each node: initialised, running, port."""
    for name, status in _cluster(folder, ports).status():
        out.print(f"{name}: {status.describe()}")
