"""Reliability, edits: pairs of saves of the same ledger entry with the same version, at once.

    .venv/bin/python -m benchmarks.reliability edits [--pairs 50] [--compounds 3000]
                                                     [--workers 1] [--keep DIR] [--url URL]

Two editors of the demo county's office — one signed in through /signin (session cookie and
X-CSRF-Token), one with a bearer token — each on a thread of its own (one keep-alive httpx
client each). For --pairs ledger entries: the version is read, then both threads wait at a
threading.Barrier and send `PATCH /api/ledger/{code}` with that version and a change of their
own (the plan and a progress note) at the same moment.

Goals (each counted, none timed): exactly one save of each pair answers 200 and the other 409;
no lost update (the entry's plan afterwards is the winner's and its version moved by one); the
ledger_event rows added equal the 200s; no other status. Also reported: how often each side
won, and the p50 / p99 of a pair (both answers back).

`served(args, name)` (a private cluster with the demo county, `titlemap serve` in its own
process) is shared by the hostile and isolation parts.
"""

import argparse
import shutil
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

COUNTY = "629901"
PASSWORD = "reliability-edits-2026"


def add_option(parser: argparse.ArgumentParser, *names: str, **kwargs) -> None:
    """An option unless another part already added it (the parts may share one parser)."""
    if not any(name in parser._option_string_actions for name in names):
        parser.add_argument(*names, **kwargs)


def add_common(parser: argparse.ArgumentParser) -> None:
    add_option(parser, "--compounds", type=int, default=3000, help="demo county size")
    add_option(parser, "--workers", type=int, default=1, help="titlemap serve --workers")
    add_option(parser, "--keep", type=Path, help="keep the cluster (and the county) here")
    add_option(parser, "--url", help="a database already holding the demo county")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common(parser)
    add_option(parser, "--pairs", type=int, default=50, help="pairs of simultaneous saves")


@contextmanager
def served(args, name: str) -> Iterator[tuple[str, str]]:
    """(base URL of `titlemap serve`, its database URL): a database `name` of the demo county
    in a private cluster (under --keep, else a temporary folder), or --url."""
    from benchmarks.map import database, free_port
    from benchmarks.serve import start_titlemap
    from geo.db.cluster import LocalCluster

    folder = getattr(args, "keep", None) or Path(
        tempfile.mkdtemp(prefix=f"titlemap-bench-{name}-", dir="/tmp")
    )
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)  # as root, the cluster inside runs as the postgres user
    cluster = server = None
    try:
        url = getattr(args, "url", None)
        if not url:
            cluster = LocalCluster(folder / "cluster", free_port(), fsync=False)
            cluster.ensure_running()
            url = database(cluster, f"{name}_{args.compounds}", args.compounds)
        server = start_titlemap(url, getattr(args, "workers", 1))
        yield server.base, url
    finally:
        if server:
            server.stop()
        if cluster:
            cluster.stop()
        if not getattr(args, "keep", None):
            shutil.rmtree(folder, ignore_errors=True)


def percentile(values: list[float], share: float) -> float | None:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))] if ordered else None


# -- the measurement -----------------------------------------------------------------------------


def make_editors(engine: Engine, county: str = COUNTY) -> tuple[str, str]:
    """Two office editors of `county`: one signing in with PASSWORD, one with a token.
    Returns (the first's name, the second's token)."""
    from geo.ledger.users import add_user

    names = ("并发编辑甲", "并发编辑乙")
    with Session(engine) as session:
        for name in names:
            session.execute(text("DELETE FROM app_user WHERE name = :n"), {"n": name})
        add_user(session, county, names[0], "editor", password=PASSWORD, with_token=False)
        _, token = add_user(session, county, names[1], "editor")
        session.commit()
    return names[0], token


def entries(engine: Engine, count: int, county: str = COUNTY) -> list[str]:
    """`count` compound codes on the ledger, not closed (every plan edit is allowed)."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT c.code FROM compound c JOIN ledger_entry e ON e.compound_id = c.id "
                    "WHERE c.county_code = :c AND e.status <> 'closed' ORDER BY c.code LIMIT :n"
                ),
                {"c": county, "n": count},
            ).scalars()
        )


def events(engine: Engine, county: str = COUNTY) -> int:
    with engine.connect() as conn:
        query = "SELECT count(*) FROM ledger_event WHERE county_code = :c"
        return conn.execute(text(query), {"c": county}).scalar_one()


def simultaneous_saves(base: str, engine: Engine, pairs: int, county: str = COUNTY) -> dict:
    """`pairs` pairs of saves at once (see the module's description); the counts and checks."""
    name, token = make_editors(engine, county)
    codes = entries(engine, pairs, county)
    clients = [httpx.Client(base_url=base, timeout=60), httpx.Client(base_url=base, timeout=60)]
    try:
        signed = clients[0].post("/signin", data={"name": name, "password": PASSWORD})
        if signed.status_code != 303:
            raise RuntimeError(f"sign-in: {signed.status_code} {signed.text[:200]}")
        headers = [
            {"X-CSRF-Token": clients[0].get("/api/me").json()["csrf"]},
            {"Authorization": f"Bearer {token}"},
        ]
        versions = {}
        for code in codes:
            got = clients[0].get(f"/api/ledger/{code}", params={"county": county})
            got.raise_for_status()
            versions[code] = got.json()["version"]
        before = events(engine, county)
        barrier = threading.Barrier(2, timeout=60)
        answers: dict[tuple[str, int], tuple[int, float, str]] = {}

        def editor(side: int) -> None:
            for i, code in enumerate(codes):
                edit = {
                    "version": versions[code],
                    "changes": {"plan": f"并发方案 {i} 第{side}方"},
                    "note": f"并发保存 {i} 第{side}方",
                }
                barrier.wait()
                started = time.perf_counter()
                response = clients[side].patch(
                    f"/api/ledger/{code}", json=edit, params={"county": county},
                    headers=headers[side],
                )  # fmt: skip
                answers[code, side] = (
                    response.status_code,
                    time.perf_counter() - started,
                    response.text[:200],
                )

        threads = [threading.Thread(target=editor, args=(side,)) for side in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        added = events(engine, county) - before

        statuses: Counter = Counter()
        wins: Counter = Counter()
        not_one_each, lost, other = [], [], []
        pair_seconds = []
        for i, code in enumerate(codes):
            got = [answers[code, side] for side in (0, 1)]
            statuses.update(str(status) for status, _, _ in got)
            pair_seconds.append(max(seconds for _, seconds, _ in got))
            codes_of_pair = sorted(status for status, _, _ in got)
            if codes_of_pair != [200, 409]:
                not_one_each.append({"code": code, "answers": [(s, t) for s, _, t in got]})
                other += [t for s, _, t in got if s not in (200, 409)]
                continue
            winner = 0 if got[0][0] == 200 else 1
            wins[("session", "token")[winner]] += 1
            now = clients[0].get(f"/api/ledger/{code}", params={"county": county}).json()
            if now["plan"] != f"并发方案 {i} 第{winner}方" or now["version"] != versions[code] + 1:
                lost.append({"code": code, "plan": now["plan"], "version": now["version"]})
    finally:
        for client in clients:
            client.close()
    saved = statuses["200"]
    return {
        "pairs": len(codes),
        "statuses": dict(statuses),
        "one_win_one_409": len(codes) - len(not_one_each),
        "pairs_wrong": not_one_each[:5],
        "lost_updates": lost[:5],
        "lost_update_count": len(lost),
        "saves_200": saved,
        "ledger_events_added": added,
        "events_match_saves": added == saved,
        "wins": dict(wins),
        "pair_p50_ms": 1000 * statistics.median(pair_seconds) if pair_seconds else None,
        "pair_p99_ms": 1000 * (percentile(pair_seconds, 0.99) or 0),
        "other_answers": other[:5],
    }


def ok(result: dict) -> bool:
    return (
        result["one_win_one_409"] == result["pairs"]
        and result["lost_update_count"] == 0
        and result["events_match_saves"]
    )


def run(args) -> dict:
    from geo.db.engine import make_engine

    with served(args, "reliability_edits") as (base, url):
        engine = make_engine(url)
        try:
            result = simultaneous_saves(base, engine, args.pairs)
        finally:
            engine.dispose()
    result["ok"] = ok(result)
    return {"edits": result}
