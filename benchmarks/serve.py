"""Benchmark: serving items pages and vector tiles, titlemap vs tipg vs the raw ST_AsMVT SQL.

    .venv/bin/python benchmarks/serve.py [--compounds 100000] [--quick] [--concurrency 4]
                                         [--tiles 100] [--pages 40] [--keep DIR] [--url URL]
                                         [--json FILE] [--workers 1] [--no-wrk]

Generates the demo county with --compounds compounds (seed 1; `--quick`: 3 000 compounds,
fewer tiles and pages) into a private PostGIS cluster under /tmp (DIR with --keep, which keeps
the cluster and the loaded county for the next run; `--url` uses a database already holding
it), then, in one run:

- starts titlemap with `titlemap serve --workers N` (its own process: uvicorn with uvloop
  and httptools, no access log — the defaults);
- starts tipg (pip `tipg` + `uvicorn[standard]`, in a virtualenv of its own at
  $TITLEMAP_TIPG_VENV or /tmp/titlemap-tipg, created on first use) on the same database,
  serving `public.compound` (TIPG_DB_TABLES), with the tile buffer set to titlemap's 64 units
  and the same uvicorn options (workers, uvloop/httptools, log level, no access log);
- times with `--concurrency` client threads (httpx, one keep-alive pool):
  * items, --pages pages of 1 000: titlemap `/ogc/collections/compounds/items?limit=1000`
    (and `/api/compounds?limit=1000`, the GeoJSON list the map uses) vs tipg
    `/collections/public.compound/items?limit=1000`, with `offset`;
  * tiles z12–z16, the same list for all (per zoom up to --tiles tiles holding compounds,
    drawn from the compounds' centres with a fixed seed):
    raw SQL — `ST_AsMVT(ST_AsMVTGeom(ST_Transform(geom, 3857), ST_TileEnvelope(z, x, y)))`
    with titlemap's columns (the ledger status, label, units, rate, blockers…), run directly
    with psycopg, one connection per client thread: the floor any server builds on;
    titlemap cold — after a change that stales every compound tile (a county loaded again,
    1 000+ compounds at once) with the county's extent already known: every tile built;
    titlemap warm — the same tiles again: from the in-process tile cache;
    titlemap 304 — the same again with `If-None-Match`: what a revalidating browser costs;
    titlemap after an edit — one ledger entry changed in the list's first tile, then every
    tile revalidated: the few around the edit are built again, the rest answer 304;
    tipg — `/collections/public.compound/tiles/WebMercatorQuad/{z}/{x}/{y}`, its default
    columns (every column of the compound table), no ledger join.
  * and, unless --no-wrk, the same with `wrk` (a C client: httpx's own CPU on the same two
    cores caps it near 500 requests/s): `--concurrency` connections cycling through the same
    tile list for --wrk-seconds, titlemap warm and 304 vs tipg. wrk is taken from
    PATH or installed with `apt-get install wrk` (as root); without it this part is skipped.
- and, in this process, what simplifying outlines at low zooms (geo.query.tiles.SIMPLIFY_*) does
  to the size and build time of the large layers' tiles.

Each figure: p50 and p99 latency per request and throughput (requests ÷ wall time). Targets:
titlemap tiles ≤ 1.3 × the raw SQL time (cold: building; warm: cached); items and tiles at
least 2 × tipg's throughput. Before timing, one untimed pass of the raw SQL and of tipg warms
PostgreSQL's buffers for everyone.
"""

import argparse
import json
import os
import queue
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import psycopg
from sqlalchemy import make_url, text

from benchmarks.map import database, free_port
from geo.core.rates import rate_sql
from geo.db.cluster import LocalCluster
from geo.db.engine import make_engine
from geo.db.memo import memo_of
from geo.query import tiles as geo_tiles
from geo.query.compounds import status_labels_sql
from geo.query.map_layers import MAP_LAYERS, layer_bounds

REPO = Path(__file__).resolve().parent.parent
COUNTY = "629901"
ZOOMS = (12, 13, 14, 15, 16)
TARGET_RAW = 1.3
TARGET_TIPG = 2.0
TIPG_VENV = Path(os.environ.get("TITLEMAP_TIPG_VENV", "/tmp/titlemap-tipg"))

# The raw tile: the shape tipg and pg_tileserv use, with titlemap's compound columns.
RAW_SQL = f"""
SELECT ST_AsMVT(t, 'compounds', 4096, 'geom') FROM (
    SELECT c.code, c.name, coalesce(e.status, 'not_on_ledger') AS status,
           {status_labels_sql("e.status")} AS status_label,
           coalesce(e.deadline < current_date AND e.status <> 'closed', false) AS overdue,
           e.units_task, e.units_first_registered, e.units_transferred,
           {rate_sql("e.units_transferred", "e.units_task")} AS transfer_rate,
           nullif(array_to_string(e.blockers, ','), '') AS blockers, e.lead_department,
           ST_AsMVTGeom(ST_Transform(ST_SetSRID(c.geom, 4326), 3857),
                        ST_TileEnvelope(%(z)s, %(x)s, %(y)s), 4096, 64, true) AS geom
    FROM compound c LEFT JOIN ledger_entry e ON e.compound_id = c.id
    WHERE c.county_code = %(county)s AND c.geom && ST_SetSRID(ST_Transform(
        ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => 64.0 / 4096), 4326), 4490)
) t WHERE t.geom IS NOT NULL
"""


# -- servers -----------------------------------------------------------------------------------


def tipg_python() -> Path:
    """tipg's own virtualenv (created with pip on first use: it pins its own FastAPI)."""
    python = TIPG_VENV / "bin" / "python"
    probe = [str(python), "-c", "import tipg, uvicorn, uvloop, httptools"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f"  tipg's virtualenv in {TIPG_VENV}: pip install tipg uvicorn[standard] …", flush=True)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(TIPG_VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q", "tipg", "uvicorn[standard]"]
    subprocess.run(pip, check=True)
    return python


class Process:
    """A server in a process of its own, stopped (by its pid) at the end."""

    def __init__(self, name: str, args: list[str], env: dict, port: int, ready: str):
        self.name, self.base = name, f"http://127.0.0.1:{port}"
        self.log = tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log")
        self.proc = subprocess.Popen(
            args, env=os.environ | env, stdout=self.log, stderr=subprocess.STDOUT, cwd=REPO
        )
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(self.base + ready, timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                log = Path(self.log.name).read_text(errors="replace")[-2000:]
                raise SystemExit(f"{name} did not start:\n{log}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def start_titlemap(url: str, workers: int, cache_mb: int = 64) -> Process:
    port = free_port()
    env = {"DATABASE_URL": url, "TITLEMAP_COUNTY": COUNTY, "TITLEMAP_TILE_CACHE_MB": str(cache_mb)}
    titlemap = Path(sys.executable).parent / "titlemap"
    args = [str(titlemap), "serve", "--port", str(port), "--workers", str(workers)]
    name = "titlemap" if cache_mb else "titlemap-nocache"
    return Process(name, [*args, "--no-access-log"], env, port, "/health")


def start_tipg(url: str, workers: int) -> Process:
    python = tipg_python()
    port = free_port()
    env = {
        "DATABASE_URL": make_url(url).set(drivername="postgresql").render_as_string(False),
        "TIPG_DB_SCHEMAS": '["public"]',
        "TIPG_DB_TABLES": '["public.compound"]',
        "TIPG_TILE_BUFFER": "64",
        "TIPG_DB_MAX_CONN_SIZE": "10",
    }
    # titlemap serve's uvicorn options: loop/http auto (uvloop, httptools), log level info
    # without the access log, the same number of workers
    args = [str(python), "-m", "uvicorn", "tipg.main:app", "--port", str(port),
            "--workers", str(workers), "--log-level", "info", "--no-access-log"]  # fmt: skip
    return Process("tipg", args, env, port, "/collections/public.compound")


# -- timing ------------------------------------------------------------------------------------


def timed(jobs: list, work: Callable, concurrency: int) -> dict:
    """Run `work(job)` for every job on `concurrency` threads: latencies and throughput."""
    latencies: list[float] = []
    sizes: list[int] = []
    lock = threading.Lock()

    def one(job) -> None:
        started = time.perf_counter()
        size = work(job)
        elapsed = time.perf_counter() - started
        with lock:
            latencies.append(elapsed)
            sizes.append(size)

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, jobs))
    wall = time.perf_counter() - started
    latencies.sort()
    return {
        "n": len(latencies),
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))],
        "rps": len(latencies) / wall,
        "kb": statistics.mean(sizes) / 1024 if sizes else 0,
    }


def http_getter(client: httpx.Client, base: str, path: Callable, headers=None) -> Callable:
    def work(job) -> int:
        response = client.get(base + path(job), headers=headers(job) if headers else None)
        if response.status_code not in (200, 204, 304):
            raise RuntimeError(f"{base}{path(job)}: {response.status_code} {response.text[:200]}")
        return len(response.content)

    return work


WRK_LUA = """
local paths = %s
local etags = %s
local reqs = {}
local i = 0
init = function(args)
  for k = 1, #paths do
    local headers = {}
    if etags[k] ~= "" then headers["If-None-Match"] = etags[k] end
    reqs[k] = wrk.format("GET", paths[k], headers)
  end
end
request = function()
  i = i %% #reqs + 1
  return reqs[i]
end
"""


def find_wrk() -> str | None:
    """wrk from PATH, else installed with apt-get when we are root; None if neither works."""
    if shutil.which("wrk"):
        return shutil.which("wrk")
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("  installing wrk (apt-get install wrk) …", flush=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], capture_output=True)
    return shutil.which("wrk")


def _wrk_ms(value: str) -> float:
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if value.endswith(unit):
            return float(value[: -len(unit)]) * factor
    raise ValueError(value)


def wrk_timed(wrk: str, base: str, paths: list[str], etags: list[str], args) -> dict:
    """`wrk` on `--concurrency` connections cycling through `paths` for --wrk-seconds. (Cold
    tiles, each once, stay with httpx: after `wrk.thread:stop()` wrk still waits out its
    duration, so its rate would be wrong.)"""
    lua = WRK_LUA % ("{" + ", ".join(map(json.dumps, paths)) + "}",
                     "{" + ", ".join(map(json.dumps, etags)) + "}")  # fmt: skip
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(lua)
        script.flush()
        command = [wrk, "-t1", f"-c{args.concurrency}", f"-d{args.wrk_seconds}s",
                   "--timeout", "120s", "--latency", "-s", script.name, base]  # fmt: skip
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    found: dict = {}
    for line in output.splitlines():
        words = line.split()
        if words[:1] == ["50%"]:
            found["p50_ms"] = _wrk_ms(words[1])
        elif words[:1] == ["99%"]:
            found["p99_ms"] = _wrk_ms(words[1])
        elif words[:1] == ["Requests/sec:"]:
            found["rps"] = float(words[1])
        elif "requests in" in line:
            found["n"] = int(words[0])
        elif line.startswith("Non-2xx"):
            found["errors"] = int(words[-1])
    return found


def raw_getter(url: str, connections: int) -> Callable:
    """The raw tile SQL on a fixed set of psycopg connections, one per client thread."""
    pool: queue.Queue = queue.Queue()
    conns = [psycopg.connect(url, autocommit=True) for _ in range(connections)]
    for conn in conns:
        pool.put(conn)

    def work(job) -> int:
        conn = pool.get()
        try:
            z, x, y = job
            row = conn.execute(RAW_SQL, {"z": z, "x": x, "y": y, "county": COUNTY}).fetchone()
        finally:
            pool.put(conn)
        return len(row[0] or b"")

    work.conns = conns  # type: ignore[attr-defined]
    return work


def tile_list(engine, per_zoom: int) -> dict[int, list[tuple[int, int, int]]]:
    """Per zoom, up to `per_zoom` distinct tiles holding compound centres (fixed seed)."""
    with engine.connect() as conn:
        centres = conn.execute(
            text(
                "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p "
                "FROM compound WHERE county_code = :c) s"
            ),
            {"c": COUNTY},
        ).all()
    chooser = random.Random(1)
    tiles = {}
    for z in ZOOMS:
        distinct = sorted({geo_tiles.tile_of(lon, lat, z) for lon, lat in centres})
        chosen = chooser.sample(distinct, min(per_zoom, len(distinct)))
        tiles[z] = [(z, x, y) for x, y in chosen]
    return tiles


def stale_every_tile(url: str) -> None:
    """What a large change does (a county loaded again, 1 000+ compounds in one statement):
    the revision and the compound tiles' floor move (migration 0006), every cached tile is
    stale. Written directly, as the trigger would: a real 100 000-row UPDATE per zoom would
    leave autovacuum running through the next measurements."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE data_revision SET revision = revision + 1, changed_at = now(), "
            "tiles_floor = revision + 1, tiles_floor_at = now() WHERE county_code = %s",
            (COUNTY,),
        )


def edit_one_compound(url: str, job: tuple[int, int, int]) -> None:
    """A colleague's edit: one compound's ledger entry, in tile `job` (from another process)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE ledger_entry SET lead_department = lead_department WHERE compound_id = "
            "(SELECT id FROM compound WHERE county_code = %s AND geom && ST_SetSRID("
            "ST_Transform(ST_TileEnvelope(%s, %s, %s), 4326), 4490) ORDER BY id LIMIT 1)",
            (COUNTY, *job),
        )


# -- the measurements --------------------------------------------------------------------------


def measure_tiles(
    args, url_pg: str, ours: Process, tipg: Process, engine, nocache: Process | None = None
) -> list[dict]:
    tiles = tile_list(engine, args.tiles)
    with engine.connect() as conn:
        crowded = {z: geo_tiles.crowded_zoom(conn, COUNTY, z) for z in ZOOMS}
    raw = raw_getter(url_pg, args.concurrency)
    results = []
    limits = httpx.Limits(max_connections=args.concurrency * 2)
    with httpx.Client(timeout=300, limits=limits) as client:
        tm = http_getter(client, ours.base, lambda j: "/tiles/compounds/{}/{}/{}.mvt".format(*j))
        tp = http_getter(
            client,
            tipg.base,
            lambda j: "/collections/public.compound/tiles/WebMercatorQuad/{}/{}/{}".format(*j),
        )
        etags: dict = {}

        def tm_etag(job) -> int:
            response = client.get(ours.base + "/tiles/compounds/{}/{}/{}.mvt".format(*job))
            etags[job] = response.headers["etag"]
            return len(response.content)

        revalidate = http_getter(
            client,
            ours.base,
            lambda j: "/tiles/compounds/{}/{}/{}.mvt".format(*j),
            headers=lambda j: {"If-None-Match": etags[j]},
        )
        rebuilt: list = []

        def revalidate_counting(job) -> int:
            path = ours.base + "/tiles/compounds/{}/{}/{}.mvt".format(*job)
            response = client.get(path, headers={"If-None-Match": etags[job]})
            if response.status_code == 200:
                rebuilt.append(job)
            return len(response.content)

        for z in ZOOMS:
            jobs = tiles[z]
            print(f"  tiles z{z}: {len(jobs)} tiles", flush=True)
            timed(jobs, raw, args.concurrency)  # warm PostgreSQL's buffers for everyone
            timed(jobs, tp, args.concurrency)
            row = {"zoom": z, "tiles": len(jobs), "aggregated": crowded[z]}
            row["raw"] = timed(jobs, raw, args.concurrency)
            stale_every_tile(url_pg)
            time.sleep(0.1)  # the server's notice
            client.get(ours.base + "/tiles/compounds.json")  # the extent, known again
            row["cold"] = timed(jobs, tm_etag, args.concurrency)
            row["warm"] = timed(jobs, tm, args.concurrency)
            row["304"] = timed(jobs, revalidate, args.concurrency)
            edit_one_compound(url_pg, jobs[0])
            time.sleep(0.1)
            rebuilt.clear()
            row["edit"] = timed(jobs, revalidate_counting, args.concurrency)
            row["edit"]["rebuilt"] = len(rebuilt)
            row["tipg"] = timed(jobs, tp, args.concurrency)
            if args.wrk_path:
                ours_paths = ["/tiles/compounds/{}/{}/{}.mvt".format(*j) for j in jobs]
                tipg_paths = [
                    "/collections/public.compound/tiles/WebMercatorQuad/{}/{}/{}".format(*j)
                    for j in jobs
                ]
                none = [""] * len(jobs)
                row["wrk"] = {
                    # every request builds its tile: a server whose tile cache holds nothing
                    # (not for counted zooms: there the cache is what makes a zoom one query)
                    "build": None
                    if crowded[z] or nocache is None
                    else wrk_timed(args.wrk_path, nocache.base, ours_paths, none, args),
                    "warm": wrk_timed(args.wrk_path, ours.base, ours_paths, none, args),
                    "304": wrk_timed(
                        args.wrk_path, ours.base, ours_paths, [etags[j] for j in jobs], args
                    ),
                    "tipg": wrk_timed(args.wrk_path, tipg.base, tipg_paths, none, args),
                }
            results.append(row)
            print("   ", json.dumps(row), flush=True)
    for conn in raw.conns:
        conn.close()
    return results


def measure_items(args, ours: Process, tipg: Process) -> list[dict]:
    offsets = [1000 * i for i in range(args.pages)]
    targets = {
        "titlemap /ogc items": (ours.base, "/ogc/collections/compounds/items?limit=1000&offset={}"),
        "titlemap /api/compounds": (ours.base, "/api/compounds?limit=1000&offset={}"),
        "tipg items": (tipg.base, "/collections/public.compound/items?limit=1000&offset={}"),
    }
    results = []
    limits = httpx.Limits(max_connections=args.concurrency * 2)
    with httpx.Client(timeout=300, limits=limits) as client:
        for name, (base, path) in targets.items():
            probe = client.get(base + path.format(0))
            if probe.status_code != 200:
                print(f"  {name}: {probe.status_code} — not measured", flush=True)
                results.append({"name": name, "missing": probe.status_code})
                continue
            work = http_getter(client, base, path.format)
            timed(offsets[:4], work, args.concurrency)  # warm-up
            results.append({"name": name, **timed(offsets, work, args.concurrency)})
            print(f"  {name}: {json.dumps(results[-1])}", flush=True)
    return results


def measure_simplify(engine) -> list[dict]:
    """Build time and bytes of low-zoom tiles of the large outlines, simplified or not."""
    with engine.connect() as conn:
        box = layer_bounds(conn, "townships", COUNTY)
    lon, lat = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    rows = []
    for layer, zooms in (("townships", (9, 11, 13)), ("boundary", (9, 11, 13)),
                         ("context", (11, 13)), ("compounds", (13,))):  # fmt: skip
        for z in zooms:
            x, y = geo_tiles.tile_of(lon, lat, z)
            row = {"layer": layer, "zoom": z}
            for label, below in (("plain", 0), ("simplified", geo_tiles.SIMPLIFY_BELOW_ZOOM)):
                saved = geo_tiles.SIMPLIFY_BELOW_ZOOM
                geo_tiles.SIMPLIFY_BELOW_ZOOM = below
                memo_of(engine).clear()  # the tile queries are kept once made
                try:
                    times, size = [], 0
                    with engine.connect() as conn:
                        key = geo_tiles.tile_key(conn, layer, COUNTY, z, x, y)
                        if key.crowded:
                            break
                        for _ in range(5):
                            started = time.perf_counter()
                            size = len(geo_tiles._detail_tile(conn, MAP_LAYERS[layer], key))
                            times.append(time.perf_counter() - started)
                finally:
                    geo_tiles.SIMPLIFY_BELOW_ZOOM = saved
                row[label] = {"ms": 1000 * statistics.median(times), "bytes": size}
            if "plain" in row and "simplified" in row:
                rows.append(row)
    return rows


# -- report ------------------------------------------------------------------------------------


def fmt(m: dict) -> str:
    return f"{m['p50_ms']:.1f} / {m['p99_ms']:.1f} ms, {m['rps']:.0f}/s"


def report(info: dict, tiles: list[dict], items: list[dict], simplify: list[dict]) -> str:
    lines = [
        f"compounds {info['compounds']:,}, concurrency {info['concurrency']}, "
        f"workers {info.get('workers', 1)} each, "
        f"load average at start {info['load']:.1f}",
        "",
        "Tiles (p50 / p99 latency, throughput; ratios: titlemap p50 ÷ raw p50, "
        "titlemap req/s ÷ tipg req/s)",
        "| z | tiles | raw SQL | titlemap cold | titlemap warm | titlemap 304 | tipg | "
        "cold÷raw | warm÷raw | cold ×tipg | warm ×tipg |",
        "|---|---:|---|---|---|---|---|---:|---:|---:|---:|",
    ]
    for r in tiles:
        z = f"{r['zoom']}{' (agg.)' if r['aggregated'] else ''}"
        lines.append(
            f"| {z} | {r['tiles']} | {fmt(r['raw'])} | {fmt(r['cold'])} | {fmt(r['warm'])} | "
            f"{fmt(r['304'])} | {fmt(r['tipg'])} | "
            f"{r['cold']['p50_ms'] / r['raw']['p50_ms']:.2f} | "
            f"{r['warm']['p50_ms'] / r['raw']['p50_ms']:.2f} | "
            f"{r['cold']['rps'] / r['tipg']['rps']:.1f} | "
            f"{r['warm']['rps'] / r['tipg']['rps']:.1f} |"
        )
    lines += [
        "",
        "After one edit (a ledger entry in the list's first tile, from another connection): "
        "every tile revalidated with its ETag (p50 / p99, req/s; tiles answered 200, the rest 304)",
        "| z | revalidate after the edit | rebuilt | ÷ raw | × tipg |",
        "|---|---|---:|---:|---:|",
    ]
    for r in tiles:
        if "edit" in r:
            e = r["edit"]
            lines.append(
                f"| {r['zoom']} | {fmt(e)} | {e['rebuilt']} of {r['tiles']} | "
                f"{e['p50_ms'] / r['raw']['p50_ms']:.2f} | {e['rps'] / r['tipg']['rps']:.1f} |"
            )
    if any("wrk" in r for r in tiles):
        lines += [
            "",
            "With wrk (a C client, no gzip asked, cycling the list for --wrk-seconds; p50 / p99, "
            "req/s; ratios: titlemap p50 ÷ the raw SQL's p50 above, titlemap req/s ÷ tipg "
            "req/s)",
            "| z | titlemap uncached | titlemap warm | titlemap 304 | tipg | uncached÷raw | "
            "warm÷raw | uncached ×tipg | warm ×tipg |",
            "|---|---|---|---|---|---:|---:|---:|---:|",
        ]
        for r in tiles:
            w = r.get("wrk")
            if not w:
                continue
            z = f"{r['zoom']}{' (agg.)' if r['aggregated'] else ''}"
            build = w.get("build")
            by_raw = f"{build['p50_ms'] / r['raw']['p50_ms']:.2f}" if build else "–"
            by_tipg = f"{build['rps'] / w['tipg']['rps']:.1f}" if build else "–"
            lines.append(
                f"| {z} | {fmt(build) if build else '–'} | {fmt(w['warm'])} | {fmt(w['304'])} | "
                f"{fmt(w['tipg'])} | {by_raw} | {w['warm']['p50_ms'] / r['raw']['p50_ms']:.2f} | "
                f"{by_tipg} | {w['warm']['rps'] / w['tipg']['rps']:.1f} |"
            )
    lines.append("")
    lines.append("Mean tile size (KB, uncompressed): " + ", ".join(
        f"z{r['zoom']} raw {r['raw']['kb']:.0f} / titlemap {r['cold']['kb']:.0f} / "
        f"tipg {r['tipg']['kb']:.0f}" for r in tiles))  # fmt: skip
    lines += ["", "Items, pages of 1 000 (p50 / p99, throughput)", "| endpoint | pages | "
              "p50 / p99, req/s | × tipg |", "|---|---:|---|---:|"]  # fmt: skip
    tipg_items = next((i for i in items if i["name"] == "tipg items" and "rps" in i), None)
    for i in items:
        if "rps" not in i:
            lines.append(f"| {i['name']} | – | not there (HTTP {i['missing']}) | – |")
            continue
        ratio = f"{i['rps'] / tipg_items['rps']:.1f}" if tipg_items else "–"
        lines.append(f"| {i['name']} | {i['n']} | {fmt(i)} | {ratio} |")
    below = geo_tiles.SIMPLIFY_BELOW_ZOOM
    lines += ["", f"Simplification below z{below} (median of 5 builds; bytes uncompressed)",
              "| layer | z | plain | simplified |", "|---|---:|---|---|"]  # fmt: skip
    for s in simplify:
        lines.append(
            f"| {s['layer']} | {s['zoom']} | {s['plain']['ms']:.1f} ms, {s['plain']['bytes']:,} B"
            f" | {s['simplified']['ms']:.1f} ms, {s['simplified']['bytes']:,} B |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compounds", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="3 000 compounds, fewer requests")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--tiles", type=int, default=100, help="tiles per zoom (at most)")
    parser.add_argument("--pages", type=int, default=40, help="item pages of 1 000")
    parser.add_argument("--keep", type=Path, help="keep the cluster (and the county) here")
    parser.add_argument("--url", help="a database already holding the county")
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers, both servers")
    parser.add_argument("--wrk-seconds", type=int, default=5, help="each wrk run")
    parser.add_argument("--no-wrk", action="store_true", help="skip the wrk measurements")
    args = parser.parse_args()
    if args.quick:
        args.compounds, args.tiles, args.pages = 3000, 20, 3
    folder = args.keep or Path(tempfile.mkdtemp(prefix="titlemap-bench-serve-", dir="/tmp"))
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)  # as root, the cluster inside runs as the postgres user
    cluster = None
    servers: list[Process] = []
    try:
        url = args.url
        if not url:
            cluster = LocalCluster(folder / "cluster", free_port(), fsync=False)
            cluster.ensure_running()
            url = database(cluster, f"serve_{args.compounds}", args.compounds)
        url_pg = make_url(url).set(drivername="postgresql").render_as_string(False)
        engine = make_engine(url)
        info = {"compounds": args.compounds, "concurrency": args.concurrency,
                "workers": args.workers, "load": os.getloadavg()[0]}  # fmt: skip
        args.wrk_path = None if args.no_wrk else find_wrk()
        servers.append(start_titlemap(url, args.workers))
        servers.append(start_tipg(url, args.workers))
        ours, tipg = servers
        nocache = None
        if args.wrk_path:
            nocache = start_titlemap(url, args.workers, cache_mb=0)
            servers.append(nocache)
        print("items …", flush=True)
        items = measure_items(args, ours, tipg)
        print("tiles …", flush=True)
        tiles = measure_tiles(args, url_pg, ours, tipg, engine, nocache)
        print("simplification …", flush=True)
        simplify = measure_simplify(engine)
        engine.dispose()
    finally:
        for server in servers:
            server.stop()
        if cluster:
            cluster.stop()
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    print("\n" + report(info, tiles, items, simplify))
    if args.json:
        payload = {"info": info, "tiles": tiles, "items": items, "simplify": simplify}
        args.json.write_text(json.dumps(payload, indent=1))


if __name__ == "__main__":
    main()
