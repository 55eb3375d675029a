"""Benchmark: a province on one titlemap — each figure beside the same figure for one county.

    .venv/bin/python benchmarks/province.py --counties 100 --compounds-per-county 1000
        [--parcels-per-compound 10] [--events-per-entry 100] [--citus] [--keep DIR]
        [--json FILE]
        [--connections 50] [--seconds 20]

Generates a province (geo.demo.province.generate_province: demo counties side by side, 20
counties a city) and, in one run, loads into a private PostGIS cluster under /tmp (DIR with
--keep) two databases: `one` holding the province's first county only and `province` holding
every county — each load timed, then synthetic ledger history added to reach
--events-per-entry events per entry (one INSERT … SELECT generate_series, timed on its own:
see `SYNTHETIC_HISTORY`), then VACUUM ANALYZE and the database size. Then, on each database
(the "one county" column is the database holding one county, the "province" column the one
holding them all):

- the province overview, in process (geo.ledger.regions.overview: cold — county_rollup
  emptied — then warm), and through `titlemap serve` (its own process): GET
  /api/regions/{province}/overview cold and warm, and the page /regions/{province};
- the first county's map, first render: GET /?county=… and the tiles of a 1280×800 screen
  centred on the county at z12, z13 and z14 (6 connections, as a browser), a fresh server;
- the first county's tiles z14–z16 (every tile holding a compound centre), uncached
  (TITLEMAP_TILE_CACHE_MB=0), with wrk: --connections connections for --seconds;
- the parcel checks (geo.checks.run.run_parcel_checks) of the first county, and of every county
  of the database one after another (two passes: the first reads cold after the load, the
  second is the figure), and a geopandas overlay of the same parcels (read, to GK zone 35 =
  EPSG:4544, `overlay(how="intersection")`, as benchmarks/checks.py) → the ratio;
- the first county's visit pack (maps.print.visit_pdf, 20 compounds).

Each province figure is divided by its one-county figure and set against the compound ratio
(counties loaded): a step that grows more than 1.5 × faster than the data is marked "WORSE
THAN LINEAR". With --citus the province is also loaded into a 3-node loopback CitusCluster
(upgrade + distribute + load_province) and the figures that apply are measured there too,
plus a ledger edit (geo.ledger.rules.update_entry) and a cross-county aggregate on each.
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import geopandas as gpd
import httpx
import psycopg
from sqlalchemy import make_url, text
from sqlalchemy import select as sql_select
from sqlalchemy.orm import Session

from benchmarks.map import free_port
from benchmarks.serve import Process, find_wrk, wrk_timed
from geo.checks.run import run_parcel_checks
from geo.core.model import LedgerEntry
from geo.db.citus import CitusCluster
from geo.db.cluster import LocalCluster
from geo.db.distribute import distribute
from geo.db.engine import make_engine
from geo.db.schema import upgrade
from geo.demo.province import generate_province, load_province
from geo.ledger.regions import overview
from geo.ledger.rules import update_entry
from geo.query import tiles as geo_tiles
from geo.query.selection import select
from maps.print.visit import visit_pdf

PROVINCE = "620000"
COUNTIES_PER_CITY = 20
GK = 4544  # CGCS2000 3° Gauss-Krüger, central meridian 105°E: the province's grid lies within
SCREEN = (5, 4)  # tiles of 256 px across and down: a 1280 × 800 screen
BROWSER_CONNECTIONS = 6
PACK = 20
WORSE = 1.5  # a province/one-county ratio this much above the data ratio is marked

# Synthetic history before each entry's first real event (its 'open'): `extra` updates, weekly
# or closer, over the two years before it, each state the open state with its units scaled up
# step by step (not_started → in_progress → the open status), the same JSON shape as
# geo.ledger.rules writes ({field: [before, after]} changes, the tracked fields as state).
# Dated before the real history, they leave today's figures and every as-of day after the
# open unchanged; the burn-down's early weeks and every as-of query read them.
SYNTHETIC_HISTORY = """
WITH counted AS (
    SELECT e.county_code, e.id AS entry_id, count(*) AS have,
           min(ev.at) FILTER (WHERE ev.action = 'open') AS opened,
           (array_agg(ev.state ORDER BY ev.at) FILTER (WHERE ev.action = 'open'))[1] AS s
    FROM ledger_entry e
    JOIN ledger_event ev ON ev.county_code = e.county_code AND ev.entry_id = e.id
    WHERE e.county_code = ANY(:counties)
    GROUP BY e.county_code, e.id
), steps AS (
    SELECT c.*, g.k, greatest(:per_entry - c.have, 0) AS n,
           coalesce((c.s ->> 'units_task')::int, 0) AS task,
           coalesce((c.s ->> 'units_first_registered')::int, 0) AS first,
           coalesce((c.s ->> 'units_transferred')::int, 0) AS done
    FROM counted c CROSS JOIN LATERAL generate_series(1, greatest(:per_entry - c.have, 0)) g(k)
    WHERE c.opened IS NOT NULL
)
INSERT INTO ledger_event (county_code, entry_id, at, user_name, action, changes, state, note)
SELECT county_code, entry_id,
       opened - interval '730 days' + (k - 1) * (interval '729 days' / n),
       '历史台账 / history', 'update',
       jsonb_build_object('units_first_registered',
                          jsonb_build_array(first * (k - 1) / n, first * k / n)),
       s || jsonb_build_object(
           'status', CASE WHEN k = 1 THEN 'not_started'
                          WHEN k < n THEN 'in_progress' ELSE s ->> 'status' END,
           'closed_on', NULL,
           'units_first_registered', first * k / n,
           'units_transferred', done * k / n),
       '历史进展 ' || k || '/' || n
FROM steps
"""


# -- the databases ------------------------------------------------------------------------------


def create_database(cluster: LocalCluster, name: str) -> str:
    admin = make_url(cluster.url()).set(drivername="postgresql", database="postgres")
    url = make_url(cluster.url()).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return url


def psycopg_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def fill(engine, counties: list, per_entry: int) -> dict:
    """Load `counties` (timed), add the synthetic history (timed), settle, measure the size."""
    started = time.perf_counter()
    load_province(engine, counties)
    loaded = time.perf_counter() - started
    codes = [str(frames.county["code"].iloc[0]) for frames in counties]
    started = time.perf_counter()
    with engine.begin() as conn:
        added = conn.execute(text(SYNTHETIC_HISTORY), {"counties": codes, "per_entry": per_entry})
    history = time.perf_counter() - started
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
        counts = conn.execute(text(
            "SELECT (SELECT count(*) FROM compound), (SELECT count(*) FROM parcel), "
            "(SELECT count(*) FROM ledger_entry), (SELECT count(*) FROM ledger_event)"
        )).one()  # fmt: skip
    return {
        "counties": len(codes),
        "compounds": counts[0],
        "parcels": counts[1],
        "entries": counts[2],
        "events": counts[3],
        "events_added": added.rowcount,
        "load_s": round(loaded, 1),
        "history_s": round(history, 1),
    }


def database_bytes(urls: list[str]) -> int:
    """pg_database_size of the titlemap database on every node given."""
    total = 0
    for url in urls:
        with psycopg.connect(psycopg_url(url)) as conn:
            total += conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    return total


# -- the measurements ---------------------------------------------------------------------------


def clock(work) -> tuple[float, object]:
    started = time.perf_counter()
    value = work()
    return time.perf_counter() - started, value


def in_process_overview(engine) -> dict:
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM county_rollup"))
    with engine.connect() as conn:
        cold, found = clock(lambda: overview(conn, PROVINCE))
        warm, again = clock(lambda: overview(conn, PROVINCE))
    assert found["totals"] == again["totals"], "the roll-ups changed the answer"
    return {"cold_s": cold, "warm_s": warm, "counties": found["totals"]["counties"]}


def http_overview(engine, base: str) -> dict:
    """The overview API cold and warm, then the page as a browser opens it: the HTML, then the
    three requests its script makes at once (overview, county outlines, burn-downs)."""
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM county_rollup"))
    api = f"/api/regions/{PROVINCE}"
    out: dict = {}
    with httpx.Client(timeout=600) as client:

        def get(path: str) -> tuple[float, int]:
            seconds, response = clock(lambda: client.get(base + path))
            if response.status_code != 200:
                raise SystemExit(f"{path}: {response.status_code} {response.text[:300]}")
            return seconds, len(response.content)

        out["api_cold_s"] = get(f"{api}/overview")[0]
        out["api_warm_s"] = get(f"{api}/overview")[0]
        started = time.perf_counter()
        out["page_s"], size = get(f"/regions/{PROVINCE}")
        parts = (f"{api}/overview", f"{api}/counties.geojson", f"{api}/burndown")
        with ThreadPoolExecutor(len(parts)) as pool:
            answers = list(pool.map(get, parts))
        out["page_data_s"] = time.perf_counter() - started
        out["burndown_s"], out["outlines_s"] = answers[2][0], answers[1][0]
        out["page_kb"] = (size + sum(kb for _, kb in answers)) / 1024
    return out


def county_box(engine, county: str) -> tuple[float, float, float, float]:
    with engine.connect() as conn:
        row = conn.execute(text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
            "(SELECT ST_Extent(geom) AS e FROM compound WHERE county_code = :c) s"
        ), {"c": county}).one()  # fmt: skip
    return tuple(row)


def screen_tiles(box: tuple, z: int) -> list[tuple[int, int, int]]:
    """The tiles of a 1280 × 800 screen centred on `box` at zoom z."""
    x, y = geo_tiles.tile_of((box[0] + box[2]) / 2, (box[1] + box[3]) / 2, z)
    wide, high = SCREEN
    return [(z, x + dx, y + dy) for dx in range(-(wide // 2), wide - wide // 2)
            for dy in range(-(high // 2), high - high // 2)]  # fmt: skip


def first_render(base: str, county: str, box: tuple) -> dict:
    """The map page, then its first screen of compound tiles z12–z14 (a fresh server)."""
    jobs = [tile for z in (12, 13, 14) for tile in screen_tiles(box, z)]
    with httpx.Client(timeout=600, limits=httpx.Limits(max_connections=8)) as client:
        started = time.perf_counter()
        page = client.get(f"{base}/?county={county}")
        if page.status_code != 200:
            raise SystemExit(f"/?county={county}: {page.status_code} {page.text[:300]}")
        page_s = time.perf_counter() - started

        def tile(job) -> int:
            response = client.get(base + "/tiles/compounds/{}/{}/{}.mvt".format(*job),
                                  params={"county": county})  # fmt: skip
            if response.status_code not in (200, 204):
                raise SystemExit(f"tile {job}: {response.status_code} {response.text[:300]}")
            return len(response.content)

        with ThreadPoolExecutor(BROWSER_CONNECTIONS) as pool:
            sizes = list(pool.map(tile, jobs))
        total = time.perf_counter() - started
    return {"page_s": page_s, "total_s": total, "tiles": len(jobs), "kb": sum(sizes) / 1024}


def county_tiles(engine, county: str) -> list[str]:
    with engine.connect() as conn:
        centres = conn.execute(text(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM compound "
            "WHERE county_code = :c) s"), {"c": county}).all()  # fmt: skip
    paths = set()
    for z in (14, 15, 16):
        for lon, lat in centres:
            x, y = geo_tiles.tile_of(lon, lat, z)
            paths.add(f"/tiles/compounds/{z}/{x}/{y}.mvt?county={county}")
    return sorted(paths)


def tile_load(wrk: str | None, base: str, paths: list[str], args) -> dict:
    if wrk is None:
        return {"skipped": "no wrk"}
    run = argparse.Namespace(concurrency=args.connections, wrk_seconds=args.seconds)
    return wrk_timed(wrk, base, paths, [""] * len(paths), run) | {"tiles": len(paths)}


def checks(engine, counties: list[str]) -> dict:
    """The parcel checks of each county in turn, twice — the first pass reads the parcels cold
    after the load, the second (the figure) warm, as the overlay that follows — and the
    overlay of the same parcels."""
    passes = []
    with engine.connect() as conn:
        for _ in range(2):
            seconds, pairs = 0.0, set()
            for county in counties:
                spent, report = clock(lambda c=county: run_parcel_checks(conn, c))
                seconds += spent
                pairs |= {tuple(sorted([p.parcel, p.related[0]])) for p in report.problems
                          if p.check == "overlap"}  # fmt: skip
            passes.append(seconds)
    started = time.perf_counter()
    frame = gpd.read_postgis(
        text("SELECT code, geom FROM parcel WHERE county_code = ANY(:c)"), engine,
        geom_col="geom", params={"c": counties},
    ).to_crs(GK)  # fmt: skip
    read = time.perf_counter() - started
    overlay, pieces = clock(lambda: gpd.overlay(frame, frame, how="intersection",
                                                keep_geom_type=True))  # fmt: skip
    pieces = pieces[(pieces["code_1"] < pieces["code_2"]) & (pieces.area > 1.0)]
    return {
        "parcels": len(frame),
        "checks_s": seconds,
        "cold_checks_s": passes[0],
        "read_s": read,
        "overlay_s": overlay,
        "ratio": seconds / overlay,
        "overlap_pairs": len(pairs),
        "overlay_pairs": len(pieces),
        "same_pairs": pairs == set(zip(pieces["code_1"], pieces["code_2"], strict=True)),
    }


def visit_pack(engine, county: str) -> dict:
    with engine.connect() as conn:
        codes = conn.execute(
            text("SELECT code FROM compound WHERE county_code = :c ORDER BY code LIMIT :n"),
            {"c": county, "n": PACK},
        ).scalars()
        chosen = select(conn, county, compounds=list(codes))
        seconds, body = clock(lambda: visit_pdf(conn, chosen))
    return {"seconds": seconds, "compounds": len(chosen.compounds), "mb": len(body) / 2**20}


def ledger_edit(engine, county: str) -> float:
    """One ledger edit through geo.ledger.rules.update_entry (the median of 5), committed."""
    times = []
    for n in range(5):
        with Session(engine) as session:
            started = time.perf_counter()
            entry = session.scalars(
                sql_select(LedgerEntry).where(LedgerEntry.county_code == county)
                .order_by(LedgerEntry.id).limit(1)
            ).one()  # fmt: skip
            update_entry(session, entry, {"lead_department": f"住建局{n}"}, "基准 / bench",
                         note="基准测试 / benchmark")  # fmt: skip
            session.commit()
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def aggregate(engine) -> float:
    """A cross-county aggregate: events and units per county over the whole ledger."""
    with engine.connect() as conn:
        query = text("SELECT county_code, count(*), max(at) FROM ledger_event GROUP BY 1")
        conn.execute(query).all()  # warm
        return clock(lambda: conn.execute(query).all())[0]


def serve(url: str, county: str, cache_mb: int) -> Process:
    port = free_port()
    env = {"DATABASE_URL": url, "TITLEMAP_COUNTY": county, "TITLEMAP_TILE_CACHE_MB": str(cache_mb)}
    titlemap = Path(sys.executable).parent / "titlemap"
    args = [str(titlemap), "serve", "--port", str(port), "--workers", "1", "--no-access-log"]
    return Process(f"titlemap-{port}", args, env, port, "/health")


def measure(label: str, url: str, county: str, counties: list[str], args, wrk, full: bool) -> dict:
    """Every figure on the database at `url` (`full`: all of them; else those Citus takes)."""
    print(f"== {label}: measuring", flush=True)
    engine = make_engine(url)
    out: dict = {"overview": in_process_overview(engine)}
    print(f"  overview {out['overview']}", flush=True)
    box = county_box(engine, county)
    if full:
        server = serve(url, county, 64)
        try:
            out["overview_http"] = http_overview(engine, server.base)
            out["first_render"] = first_render(server.base, county, box)
        finally:
            server.stop()
        print(f"  http {out['overview_http']}\n  first render {out['first_render']}", flush=True)
    server = serve(url, county, 0)
    try:
        out["tiles"] = tile_load(wrk, server.base, county_tiles(engine, county), args)
    finally:
        server.stop()
    print(f"  tiles {out['tiles']}", flush=True)
    out["checks_one"] = checks(engine, [county])
    print(f"  checks (one county) {out['checks_one']}", flush=True)
    if full:
        out["checks_all"] = checks(engine, counties) if len(counties) > 1 else out["checks_one"]
        print(f"  checks (every county) {out['checks_all']}", flush=True)
        out["visit_pack"] = visit_pack(engine, county)
        print(f"  visit pack {out['visit_pack']}", flush=True)
    out["ledger_edit_s"] = ledger_edit(engine, county)
    out["aggregate_s"] = aggregate(engine)
    print(f"  edit {out['ledger_edit_s']:.3f} s, aggregate {out['aggregate_s']:.3f} s", flush=True)
    engine.dispose()
    return out


# -- the run ------------------------------------------------------------------------------------


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?")  # fmt: skip
    return {"cpu": cpu, "cores": os.cpu_count(), "load_average_start": os.getloadavg()}


def generate(args) -> tuple[list, float]:
    cities = -(-args.counties // COUNTIES_PER_CITY)
    per_city = min(args.counties, COUNTIES_PER_CITY)
    seconds, counties = clock(lambda: generate_province(
        PROVINCE, cities, per_city, args.compounds_per_county,
        parcels_per_compound=args.parcels_per_compound))  # fmt: skip
    return counties[: args.counties], seconds


def plain(folder: Path, counties: list, args, wrk) -> dict:
    cluster = LocalCluster(folder / "plain", free_port(), fsync=False)
    cluster.ensure_running()
    codes = [str(frames.county["code"].iloc[0]) for frames in counties]
    results = {}
    try:
        for label, loaded in (("one", counties[:1]), ("province", counties)):
            url = create_database(cluster, f"province_{label}")
            engine = make_engine(url)
            upgrade(engine)
            print(f"== {label}: loading {len(loaded)} counties", flush=True)
            data = fill(engine, loaded, args.events_per_entry)
            engine.dispose()
            data["bytes"] = database_bytes([url])
            print(f"  {data}", flush=True)
            results[label] = {"data": data} | measure(
                label, url, codes[0], codes[: len(loaded)], args, wrk, full=True
            )
    finally:
        if not args.keep:
            cluster.stop()
    return results


def citus(folder: Path, counties: list, args, wrk) -> dict:
    nodes = CitusCluster(folder / "citus", (free_port(), free_port(), free_port()), fsync=False)
    nodes.ensure_running()
    codes = [str(frames.county["code"].iloc[0]) for frames in counties]
    try:
        engine = make_engine(nodes.url())
        upgrade(engine)
        distribute(engine)
        print(f"== citus: loading {len(counties)} counties", flush=True)
        data = fill(engine, counties, args.events_per_entry)
        engine.dispose()
        data["bytes"] = database_bytes([node.url() for node in nodes.nodes])
        print(f"  {data}", flush=True)
        return {"data": data} | measure("citus", nodes.url(), codes[0], codes, args, wrk, False)
    finally:
        if not args.keep:
            nodes.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--counties", type=int, default=100)
    parser.add_argument("--compounds-per-county", type=int, default=1000)
    parser.add_argument(
        "--parcels-per-compound",
        type=float,
        help="about this many parcels a compound (default: the demo's ≈1.9)",
    )
    parser.add_argument("--events-per-entry", type=int, default=100)
    parser.add_argument("--citus", action="store_true", help="also on a 3-node Citus cluster")
    parser.add_argument("--keep", type=Path, help="keep the clusters here")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=20)
    args = parser.parse_args()
    info = machine()
    print(f"{info['cpu']}, {info['cores']} cores, load average {info['load_average_start']}")
    counties, generated = generate(args)
    parcels = sum(len(frames.parcels) for frames in counties)
    compounds = sum(len(frames.compounds) for frames in counties)
    print(f"generated {len(counties)} counties in {generated:.0f} s: {compounds:,} compounds, "
          f"{parcels:,} parcels ({parcels / compounds:.2f} a compound)", flush=True)  # fmt: skip
    folder = args.keep or Path(tempfile.mkdtemp(prefix="titlemap-bench-province-", dir="/tmp"))
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)  # as root, the clusters inside run as the postgres user
    wrk = find_wrk()
    results: dict = {"machine": info, "args": {k: str(v) for k, v in vars(args).items()},
                     "generate_s": generated}  # fmt: skip
    try:
        results |= plain(folder, counties, args, wrk)
        if args.citus:
            results["citus"] = citus(folder, counties, args, wrk)
    finally:
        results["machine"]["load_average_end"] = os.getloadavg()
        if args.json:
            args.json.write_text(json.dumps(results, indent=1, ensure_ascii=False, default=str))
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    print("\n" + table(results))


# -- the table ----------------------------------------------------------------------------------


def _s(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"


def figures(r: dict) -> dict[str, tuple]:
    """figure → (value for the ratio, shown text) of one column."""
    d, out = r["data"], {}
    out["load time"] = (d["load_s"], _s(d["load_s"]))
    out["synthetic history (INSERT … SELECT)"] = (d["history_s"], _s(d["history_s"]))
    out["database size"] = (d["bytes"], f"{d['bytes'] / 2**20:,.0f} MiB")
    o = r["overview"]
    out["overview() cold / warm"] = (o["cold_s"], f"{_s(o['cold_s'])} / {_s(o['warm_s'])}")
    if "overview_http" in r:
        h = r["overview_http"]
        out["GET overview API cold / warm"] = (h["api_cold_s"], f"{_s(h['api_cold_s'])} / "
                                               f"{_s(h['api_warm_s'])}")  # fmt: skip
        shown = (f"{_s(h['page_data_s'])} (burn-downs {_s(h['burndown_s'])}), "
                 f"{h['page_kb']:.0f} KB")  # fmt: skip
        out["/regions page + its 3 requests (warm)"] = (h["page_data_s"], shown)
    if "first_render" in r:
        f = r["first_render"]
        shown = f"{_s(f['total_s'])} (page {_s(f['page_s'])}, {f['tiles']} tiles)"
        out["county map: page + first screen"] = (f["total_s"], shown)
    t = r["tiles"]
    if "p50_ms" in t:
        out["county tiles z14–16 p50 / p99, uncached"] = (
            t["p50_ms"],
            f"{t['p50_ms']:.0f} / {t['p99_ms']:.0f} ms, {t['rps']:.0f}/s",
        )
    c = r["checks_one"]
    out["one county's parcel checks"] = (c["checks_s"], f"{_s(c['checks_s'])} ({c['ratio']:.2f}"
                                         f"× overlay {_s(c['overlay_s'])})")  # fmt: skip
    if "checks_all" in r:
        c = r["checks_all"]
        out["every county's parcel checks"] = (
            c["checks_s"], f"{_s(c['checks_s'])}, cold {_s(c['cold_checks_s'])} ({c['ratio']:.2f}"
            f"× overlay {_s(c['overlay_s'])}, {c['parcels']:,} parcels)")  # fmt: skip
    if "visit_pack" in r:
        v = r["visit_pack"]
        out[f"visit pack ({PACK} compounds)"] = (v["seconds"], _s(v["seconds"]))
    out["a ledger edit (update_entry)"] = (r["ledger_edit_s"], _s(r["ledger_edit_s"]))
    out["cross-county aggregate"] = (r["aggregate_s"], _s(r["aggregate_s"]))
    return out


def table(results: dict) -> str:
    one, whole = figures(results["one"]), figures(results["province"])
    grown = results["province"]["data"]["compounds"] / results["one"]["data"]["compounds"]
    cit = figures(results["citus"]) if "citus" in results else {}
    d1, dp = results["one"]["data"], results["province"]["data"]
    lines = [
        f"one county: {d1['compounds']:,} compounds, {d1['parcels']:,} parcels, "
        f"{d1['events']:,} events; province: {dp['counties']} counties, {dp['compounds']:,} "
        f"compounds, {dp['parcels']:,} parcels, {dp['events']:,} events (× {grown:.0f})",
        "",
        "| figure | one county | province | province ÷ one | Citus, 3 nodes |",
        "|---|---|---|---|---|",
    ]
    for name, (value, shown) in whole.items():
        base = one.get(name)
        ratio = value / base[0] if base and base[0] else None
        mark = ""
        if ratio is not None and name != "one county's parcel checks" and ratio > WORSE * grown:
            mark = " WORSE THAN LINEAR"
        lines.append(
            f"| {name} | {base[1] if base else '—'} | {shown} | "
            f"{'—' if ratio is None else f'{ratio:.1f}×'}{mark} | "
            f"{cit[name][1] if name in cit else '—'} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
