"""Reliability and security, measured (issue 16): a harness in parts.

    .venv/bin/python -m benchmarks.reliability load|faults|hostile|isolation|edits|all
                                               [--compounds N] [--seconds S] [--keep DIR]

Each part is a module of this package exposing `add_arguments(parser)` and `run(args) -> dict`
(benchmarks/reliability/__main__.py imports them by name, lazily). What they share is here:
the county's database in a private cluster, the server's memory, PostgreSQL's sessions, and
latency summaries. docs/reliability.md has the figures and the commands that gave them.
"""

import os
import statistics
import tempfile
from pathlib import Path

import psycopg
from sqlalchemy import make_url

from benchmarks.map import database, free_port
from benchmarks.serve import COUNTY
from geo.db.cluster import LocalCluster

__all__ = ["COUNTY", "database", "free_port"]


def work_folder(args) -> Path:
    """--keep DIR, or a fresh folder under /tmp (`args.folder`, made once per invocation)."""
    folder = getattr(args, "folder", None) or args.keep
    if folder is None:
        folder = Path(tempfile.mkdtemp(prefix="titlemap-reliability-", dir="/tmp"))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)  # as root, the cluster inside runs as the postgres user
    args.folder = folder
    return folder


def shared_cluster(args) -> LocalCluster:
    """The cluster in the work folder (started if stopped; a kept one is reused)."""
    cluster = LocalCluster(work_folder(args) / "cluster", free_port(), fsync=False)
    if not cluster.status().running:
        args.started_cluster = True  # stopped at the end; one found running is left running
    cluster.ensure_running()
    return cluster


def county_url(args) -> str:
    """The SQLAlchemy URL of the demo county of --compounds compounds (loaded once)."""
    return database(shared_cluster(args), f"serve_{args.compounds}", args.compounds)


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


# -- the server's memory -----------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(p) for p in task.read_text().split()]
        except OSError:
            pass
    return found


def rss_mb(pid: int) -> float | None:
    """VmRSS of one process in MB (None once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def server_rss(pid: int) -> dict[int, float]:
    """RSS (MB) of the server's processes: `titlemap serve` itself and, with several workers,
    each worker (uvicorn's children); the supervisor of several workers holds no app."""
    pids = [pid, *_children(pid)]
    return {p: m for p in pids if (m := rss_mb(p)) is not None}


def worker_rss(pid: int) -> float:
    """The largest RSS among the processes that serve (one worker: the process itself)."""
    sizes = server_rss(pid)
    children = [m for p, m in sizes.items() if p != pid]
    return max(children) if children else sizes.get(pid, 0.0)


# -- PostgreSQL's sessions ---------------------------------------------------------------------

SESSIONS = """
SELECT count(*),
       count(*) FILTER (WHERE state = 'active'),
       count(*) FILTER (WHERE state LIKE 'idle in transaction%%'),
       count(*) FILTER (WHERE backend_xid IS NOT NULL)
FROM pg_stat_activity
WHERE datname = %s AND pid <> pg_backend_pid() AND backend_type = 'client backend'
"""


def sessions(conn: psycopg.Connection, datname: str) -> dict[str, int]:
    """Client sessions on the database: all, active, idle in transaction, holding a write."""
    total, active, idle_tx, writing = conn.execute(SESSIONS, (datname,)).fetchone()
    return {"total": total, "active": active, "idle_in_transaction": idle_tx, "writing": writing}


def datname(url: str) -> str:
    return make_url(url).database


# -- latencies ---------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def summary(latencies: list[float], seconds: float | None = None) -> dict:
    """n, p50, p99 and max in ms (and per second over `seconds`)."""
    if not latencies:
        return {"n": 0}
    out = {
        "n": len(latencies),
        "p50_ms": round(1000 * statistics.median(latencies), 1),
        "p99_ms": round(1000 * percentile(latencies, 0.99), 1),
        "max_ms": round(1000 * max(latencies), 1),
    }
    if seconds:
        out["per_s"] = round(len(latencies) / seconds, 1)
    return out


def load_average() -> float:
    return os.getloadavg()[0]
