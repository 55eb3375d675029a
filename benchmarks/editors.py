"""Benchmark: editors saving at once on a large county, against the same UPDATEs in raw SQL.

    .venv/bin/python benchmarks/editors.py [--compounds 100000] [--editors 20] [--seconds 60]
                                           [--workers 1] [--keep DIR] [--quick] [--json FILE]

The demo county of --compounds compounds (seed 1) in a private PostGIS cluster (DIR with
--keep keeps it for the next run). `titlemap serve` in its own process. --editors people
(editors of the county's office), each signed in through /signin with a password, each
working on compounds of its own in the county's west half: for --seconds, each editor in a
loop reads an entry (GET /api/ledger/{code}) and saves a change of its plan with a progress
note (PATCH with the version read and the session's CSRF token) — the way the card saves.

Reported: saves per second, p50 and p99 of a save (the PATCH) and of a read + save; against
the reference, the same number of threads doing the floor of a save in raw SQL (psycopg, one
connection each: UPDATE ledger_entry … version = version + 1 and INSERT ledger_event, one
transaction) for the same time. And whether the tiles of unrelated areas stay cached: before
the run, --tiles z14 tiles of the east half (no compound edited there) are fetched and their
ETags kept; after it, each is asked again with If-None-Match: a 304 means it stayed cached
(its cells' revision did not move), as should be for all of them; tiles in the edited half
are asked likewise and mostly changed (their ETags moved with the edits).
"""

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import psycopg
from sqlalchemy import make_url, text
from sqlalchemy.orm import Session

from benchmarks.map import database, free_port
from benchmarks.serve import COUNTY, start_titlemap
from geo.db.cluster import LocalCluster
from geo.db.engine import make_engine
from geo.ledger.users import add_user
from geo.query import tiles as geo_tiles

PASSWORD = "bench-password-2026"
TILE_ZOOM = 14


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def summary(latencies: list[float], seconds: float) -> dict:
    if not latencies:
        return {"n": 0, "per_s": 0.0, "p50_ms": None, "p99_ms": None}
    return {
        "n": len(latencies),
        "per_s": len(latencies) / seconds,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * percentile(latencies, 0.99),
    }


def halves(engine) -> tuple[list[str], list[tuple[float, float]], list[tuple[float, float]]]:
    """Ledger compounds of the west half (to edit), and compound centres of both halves."""
    with engine.connect() as conn:
        middle = conn.execute(
            text("SELECT percentile_cont(0.5) WITHIN GROUP "
                 "(ORDER BY ST_X(ST_PointOnSurface(geom))) FROM compound WHERE county_code = :c"),
            {"c": COUNTY},
        ).scalar_one()  # fmt: skip
        rows = conn.execute(
            text("SELECT c.code, ST_X(p) AS x, ST_Y(p) AS y, e.id IS NOT NULL AS on_ledger "
                 "FROM (SELECT id, code, ST_PointOnSurface(geom) AS p FROM compound "
                 "WHERE county_code = :c) c LEFT JOIN ledger_entry e ON e.compound_id = c.id"),
            {"c": COUNTY},
        ).all()  # fmt: skip
    # a margin between the halves: a tile near the middle may hold compounds of both
    west = [r.code for r in rows if r.on_ledger and r.x < middle - 0.02]
    east = [(r.x, r.y) for r in rows if r.x > middle + 0.02]
    west_points = [(r.x, r.y) for r in rows if r.on_ledger and r.x < middle - 0.02]
    return west, west_points, east


def tiles_of(points: list[tuple[float, float]], count: int, seed: int) -> list[str]:
    distinct = sorted({geo_tiles.tile_of(x, y, TILE_ZOOM) for x, y in points})
    chosen = random.Random(seed).sample(distinct, min(count, len(distinct)))
    return [f"/api/tiles/compounds/{TILE_ZOOM}/{x}/{y}.pbf?county={COUNTY}" for x, y in chosen]


def etags(client: httpx.Client, base: str, paths: list[str]) -> dict[str, str]:
    found = {}
    for path in paths:
        response = client.get(base + path)
        response.raise_for_status()
        found[path] = response.headers["etag"]
    return found


def still_cached(client: httpx.Client, base: str, tags: dict[str, str]) -> int:
    return sum(
        client.get(base + path, headers={"If-None-Match": tag}).status_code == 304
        for path, tag in tags.items()
    )


def make_editors(url: str, count: int) -> list[str]:
    engine = make_engine(url)
    names = [f"编辑{i:02d}" for i in range(count)]
    with Session(engine) as session:
        session.execute(text("DELETE FROM app_user WHERE name LIKE '编辑%'"))
        for name in names:
            add_user(session, COUNTY, name, "editor", password=PASSWORD, with_token=False)
        session.commit()
    engine.dispose()
    return names


def editor_loop(base: str, name: str, codes: list[str], until: float, out: dict) -> None:
    with httpx.Client(base_url=base, timeout=30) as client:
        signed = client.post("/signin", data={"name": name, "password": PASSWORD})
        if signed.status_code != 303:
            out["errors"].append(f"sign-in {signed.status_code} {signed.text[:120]}")
            return
        csrf = client.get("/api/me").json()["csrf"]
        i = 0
        while time.monotonic() < until:
            code = codes[i % len(codes)]
            i += 1
            started = time.perf_counter()
            entry = client.get(f"/api/ledger/{code}").json()
            saving = time.perf_counter()
            response = client.patch(
                f"/api/ledger/{code}",
                json={"version": entry["version"], "changes": {"plan": f"方案 第{i}稿 {name}"},
                      "note": f"{name} 第 {i} 次更新"},
                headers={"X-CSRF-Token": csrf},
            )  # fmt: skip
            done = time.perf_counter()
            if response.status_code == 200:
                out["save"].append(done - saving)
                out["pair"].append(done - started)
            else:
                out["errors"].append(f"{response.status_code} {response.text[:120]}")


RAW_SAVE = """
WITH e AS (
    UPDATE ledger_entry SET plan = %(plan)s, version = version + 1, updated_at = now(),
           updated_by = %(user)s
    WHERE compound_id = (SELECT id FROM compound WHERE county_code = %(county)s AND code = %(code)s)
    RETURNING id, county_code)
INSERT INTO ledger_event (county_code, entry_id, at, user_name, action, changes, state, note)
SELECT county_code, id, now(), %(user)s, 'update', '{}'::jsonb, '{}'::jsonb, %(note)s FROM e
"""


def raw_loop(url: str, name: str, codes: list[str], until: float, out: list) -> None:
    with psycopg.connect(url) as conn:
        i = 0
        while time.monotonic() < until:
            code = codes[i % len(codes)]
            i += 1
            started = time.perf_counter()
            conn.execute(RAW_SAVE, {"plan": f"方案 {i}", "user": name, "county": COUNTY,
                                    "code": code, "note": f"raw {i}"})  # fmt: skip
            conn.commit()
            out.append(time.perf_counter() - started)


def run_threads(target, jobs: list[tuple]) -> None:
    threads = [threading.Thread(target=target, args=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compounds", type=int, default=100_000)
    parser.add_argument("--editors", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--tiles", type=int, default=200, help="unrelated z14 tiles to watch")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--keep", type=Path)
    parser.add_argument("--quick", action="store_true", help="3 000 compounds, 10 s")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.quick:
        args.compounds, args.seconds, args.tiles = 3000, 10, 50
    folder = args.keep or Path(tempfile.mkdtemp(prefix="titlemap-bench-editors-", dir="/tmp"))
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    cluster = LocalCluster(folder / "cluster", free_port(), fsync=False)
    cluster.ensure_running()
    server = None
    try:
        url = database(cluster, f"serve_{args.compounds}", args.compounds)
        url_pg = make_url(url).set(drivername="postgresql").render_as_string(False)
        names = make_editors(url, args.editors)
        engine = make_engine(url)
        west, west_points, east = halves(engine)
        engine.dispose()
        random.Random(7).shuffle(west)
        share = len(west) // args.editors
        lists = [west[i * share : (i + 1) * share] for i in range(args.editors)]
        server = start_titlemap(url, args.workers)
        base = server.base
        with httpx.Client(timeout=60) as client:
            unrelated = etags(client, base, tiles_of(east, args.tiles, 1))
            edited = etags(client, base, tiles_of(west_points, args.tiles, 2))
            warm = still_cached(client, base, unrelated)
            print(f"{len(unrelated)} unrelated tiles watched ({warm} answer 304 before)")
            out: dict = {"save": [], "pair": [], "errors": []}
            until = time.monotonic() + args.seconds
            work = zip(names, lists, strict=True)
            run_threads(editor_loop, [(base, n, c, until, out) for n, c in work])
            kept = still_cached(client, base, unrelated)
            moved = len(edited) - still_cached(client, base, edited)
        raw: list[float] = []
        until = time.monotonic() + args.seconds
        work = zip(names, lists, strict=True)
        run_threads(raw_loop, [(url_pg, n, c, until, raw) for n, c in work])
    finally:
        if server:
            server.stop()
        cluster.stop()
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    result = {
        "compounds": args.compounds, "editors": args.editors, "seconds": args.seconds,
        "workers": args.workers, "titlemap_save": summary(out["save"], args.seconds),
        "titlemap_read_and_save": summary(out["pair"], args.seconds),
        "raw_sql_save": summary(raw, args.seconds), "errors": len(out["errors"]),
        "first_errors": out["errors"][:5], "unrelated_tiles": len(unrelated),
        "unrelated_still_cached": kept, "edited_area_tiles": len(edited),
        "edited_area_tiles_changed": moved,
    }  # fmt: skip
    ours, floor = result["titlemap_save"], result["raw_sql_save"]
    print(json.dumps(result, ensure_ascii=False, indent=1))
    if ours["n"] and floor["n"]:
        print(
            f"saves/s: titlemap {ours['per_s']:.1f} vs raw SQL {floor['per_s']:.1f} "
            f"({floor['per_s'] / ours['per_s']:.1f}× fewer); p99 {ours['p99_ms']:.0f} ms vs "
            f"{floor['p99_ms']:.0f} ms; unrelated tiles still cached {kept}/{len(unrelated)}; "
            f"edited-area tiles changed {moved}/{len(edited)}"
        )
    if args.json:
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
