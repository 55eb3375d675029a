"""Benchmark: the full parcel check run (宗地核查) against a geopandas overlay of the same parcels.

    .venv/bin/python benchmarks/checks.py [--parcels 25000,50000,100000] [--runs 3]
                                          [--workers N] [--keep DIR] [--json FILE]

For each size it generates the demo county (seed 1) with about that many parcels (± 5 %; the
demo draws 1.5–1.9 parcels per compound at these sizes; the table shows the real count), loads it
into a private PostGIS cluster under /tmp (or DIR with --keep, which keeps the cluster and
reuses loaded counties next time), and times, interleaved in the same run:

- titlemap: `geo.checks.run.run_parcel_checks` — every check (codes, validity, areas, overlaps,
  gaps, land beyond parcels, planned roads and green space, arrears, links, developers) on
  every parcel, compound and developer, results in Python; with the default workers (the CPU
  count, at most 4), and on one connection (`workers=1`) as well;
- the reference: geopandas reading the same parcels from PostGIS (`read_postgis`), projecting
  them to the county's GK zone (`to_crs`) and intersecting them with themselves
  (`gpd.overlay(how="intersection")`) — the overlap check alone. The ratio is taken against the
  overlay alone (the stricter figure; also per run, titlemap and the overlay back to back) and
  against read + project + overlay;
- for honesty, a lean overlap check with shapely on the same projected frame: a fresh
  STR-tree, each candidate pair once, intersections of those only. The overlay also intersects
  every parcel with itself and every pair twice, so it is ≈ 5 × slower than this; the issue's
  target is set against the overlay, the lean figure shows what the overlap check alone costs.

Each figure is the median of --runs; a warm-up run of each comes first. The overlap pairs all
three find (area > 1 m²) are compared, so the references do the same work. Besides wall time, the
CPU seconds each side spends are counted — this process plus every PostgreSQL process of the
cluster (from /proc) — because on a shared machine wall time says as much about the neighbours
as about the code. Target: titlemap's full
run ≤ 0.5 × the geopandas time, growing near-linearly with the parcels.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import geopandas as gpd
import psycopg
import shapely
from sqlalchemy import make_url, text

from geo import demo as demo_county
from geo.checks.run import default_workers, run_parcel_checks
from geo.db.cluster import LocalCluster
from geo.db.engine import make_engine
from geo.db.schema import upgrade
from geo.io.load import load_county

PARCELS_PER_COMPOUND = 1.6  # roughly, the demo at 15 000 – 70 000 compounds; then corrected
TARGET_RATIO = 0.5
COUNTY = "629901"
GK = 4544


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?")  # fmt: skip
    memory = int(Path("/proc/meminfo").read_text().split()[1]) // 1024 // 1024
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": memory,
        "os": platform.platform(),
        "python": platform.python_version(),
        "geopandas": gpd.__version__,
        "shapely": shapely.__version__,
        "geos": shapely.geos_version_string,
    }


def database(cluster: LocalCluster, parcels: int) -> str:
    """The URL of a database holding a demo county with about `parcels` parcels."""
    name = f"checks_{parcels}"
    admin = make_url(cluster.url()).set(drivername="postgresql", database="postgres")
    url = make_url(cluster.url()).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    engine = make_engine(url)
    upgrade(engine)
    with engine.connect() as conn:
        have = conn.execute(text("SELECT count(*) FROM parcel")).scalar_one()
    if abs(have - parcels) > 0.05 * parcels:
        started = time.perf_counter()
        compounds = round(parcels / PARCELS_PER_COMPOUND)
        county = demo_county.generate(compounds, 1)
        if abs(len(county.parcels) - parcels) > 0.05 * parcels:  # one correction
            compounds = round(compounds * parcels / len(county.parcels))
            county = demo_county.generate(compounds, 1)
        print(f"  generated {compounds:,} compounds, {len(county.parcels):,} parcels in "
              f"{time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
        started = time.perf_counter()
        load_county(engine, county, replace=True)
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
        print(f"  loaded in {time.perf_counter() - started:.0f} s", flush=True)
    engine.dispose()
    return url


class CPU:
    """CPU seconds of this process plus the whole PostgreSQL cluster (the postmaster's live
    children, and the children it has reaped): what a run costs, whatever else the machine does."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.postmaster = int((cluster.pgdata / "postmaster.pid").read_text().split()[0])
        self.tick = os.sysconf("SC_CLK_TCK")

    def _stat(self, pid: int) -> list[str]:
        text_ = Path(f"/proc/{pid}/stat").read_text()
        return text_[text_.rindex(")") + 2 :].split()  # fields from 3 (state) on

    def now(self) -> float:
        total = 0
        fields = self._stat(self.postmaster)
        total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = self._stat(int(entry.name))
            except (OSError, ValueError):
                continue
            if int(fields[1]) == self.postmaster:  # ppid
                total += int(fields[11]) + int(fields[12])
        return total / self.tick + time.process_time()


def ours(engine, workers: int) -> tuple[float, set, dict]:
    with engine.connect() as conn:
        started = time.perf_counter()
        report = run_parcel_checks(conn, COUNTY, workers=workers)
        seconds = time.perf_counter() - started
    pairs = {tuple(sorted([p.parcel, p.related[0]])) for p in report.problems
             if p.check == "overlap"}  # fmt: skip
    counts = {k: v["count"] for k, v in report.summary()["problems_by_check"].items()}
    return seconds, pairs, counts | {"parcels": report.counts["parcels"]}


def reference(engine, cpu: CPU) -> dict:
    """Seconds and CPU seconds to read + project, to overlay, and for the lean overlap check;
    the overlapping pairs each found."""
    at, started = cpu.now(), time.perf_counter()
    frame = gpd.read_postgis(
        text("SELECT code, geom FROM parcel WHERE county_code = :c"), engine,
        geom_col="geom", params={"c": COUNTY},
    ).to_crs(GK)  # fmt: skip
    out = {"read": time.perf_counter() - started, "read_cpu": cpu.now() - at}
    at, started = cpu.now(), time.perf_counter()
    pieces = gpd.overlay(frame, frame, how="intersection", keep_geom_type=True)
    pieces = pieces[pieces["code_1"] < pieces["code_2"]]
    pieces = pieces[pieces.area > 1.0]
    out |= {"overlay": time.perf_counter() - started, "overlay_cpu": cpu.now() - at}
    out["pairs"] = set(zip(pieces["code_1"], pieces["code_2"], strict=True))
    at, started = cpu.now(), time.perf_counter()
    out["lean_pairs"] = lean_overlaps(frame)
    out |= {"lean": time.perf_counter() - started, "lean_cpu": cpu.now() - at}
    return out


def lean_overlaps(frame: gpd.GeoDataFrame) -> set:
    """The overlap check alone, as lean as shapely makes it: a fresh STR-tree, each candidate
    pair once (no parcel with itself, unlike the overlay), intersections of those only."""
    geoms, codes = frame.geometry.values, frame["code"].to_numpy()
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    areas = shapely.area(shapely.intersection(geoms[left], geoms[right]))
    hit = areas > 1.0
    return {tuple(sorted(pair)) for pair in zip(codes[left[hit]], codes[right[hit]], strict=True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parcels", default="25000,50000,100000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--keep", type=Path, help="keep the cluster here and reuse it")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument(
        "--block",
        type=int,
        default=0,
        help="also time an N × N block of touching parcels (one cluster)",
    )
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="titlemap-bench-checks-", dir="/tmp"))
    cluster = LocalCluster(folder, free_port(), fsync=False)
    cluster.ensure_running()
    cpu = CPU(cluster)
    info = machine()
    print(f"{info['cpu']}, {info['cores']} cores, {info['memory_gb']} GiB, "
          f"geopandas {info['geopandas']}, {info['geos']}; workers={args.workers}")  # fmt: skip
    results = []
    try:
        for target in (int(p) for p in args.parcels.split(",")):
            print(f"≈{target:,} parcels:", flush=True)
            engine = make_engine(database(cluster, target))
            results.append(measure(engine, args.runs, args.workers, cpu))
            engine.dispose()
            print(row(results[-1]), flush=True)
        if args.block:
            print(block(cluster, args.block), flush=True)
    finally:
        if args.keep is None:
            cluster.stop()
            shutil.rmtree(folder, ignore_errors=True)
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "results": results}, indent=2,
                                        ensure_ascii=False))  # fmt: skip


def measure(engine, runs: int, workers: int, cpu: CPU) -> dict:
    ours(engine, workers)  # warm-up: caches, connections
    reference(engine, cpu)
    keys = ("ours", "ours_1", "read", "overlay", "lean", "ours_cpu", "overlay_cpu", "read_cpu",
            "lean_cpu", "load", "ratio")  # fmt: skip
    times: dict[str, list[float]] = {key: [] for key in keys}
    for _ in range(runs):
        times["load"].append(os.getloadavg()[0])
        at = cpu.now()
        seconds, pairs, counts = ours(engine, workers)
        times["ours_cpu"].append(cpu.now() - at)
        times["ours"].append(seconds)
        ref = reference(engine, cpu)
        for key in ("read", "overlay", "lean", "read_cpu", "overlay_cpu", "lean_cpu"):
            times[key].append(ref[key])
        times["ratio"].append(seconds / ref["overlay"])  # the two ran back to back
        times["ours_1"].append(ours(engine, 1)[0])
        for found in (ref["pairs"], ref["lean_pairs"]):
            if pairs != found:
                raise SystemExit(f"overlap pairs differ: {sorted(pairs ^ found)[:5]}")
    median = {key: statistics.median(values) for key, values in times.items()}
    return {
        "parcels": counts["parcels"],
        "problems": counts,
        "overlap_pairs": len(pairs),
        "runs": runs,
        "workers": workers,
        "seconds": {key: [round(v, 3) for v in values] for key, values in times.items()},
        "median": {key: round(value, 3) for key, value in median.items()},
        "ratio_overlay": round(median["ours"] / median["overlay"], 3),
        "ratio_runs": [round(min(times["ratio"]), 3), round(max(times["ratio"]), 3)],
        "ratio_read_overlay": round(median["ours"] / (median["read"] + median["overlay"]), 3),
        "ratio_overlay_1": round(median["ours_1"] / median["overlay"], 3),
        "ratio_lean": round(median["ours"] / median["lean"], 3),
        "ratio_cpu": round(median["ours_cpu"] / median["overlay_cpu"], 3),
        "us_per_parcel": round(1e6 * median["ours"] / counts["parcels"], 1),
    }


def block(cluster: LocalCluster, n: int) -> str:
    """A city block's worth of touching parcels: n × n squares of 30 m, each its own compound,
    one pushed 2 m into its neighbour — all of them one cluster of touching parcels."""
    import shapely.affinity
    from shapely.geometry import box

    from geo.core.codes import parcel_code
    from geo.core.crs import reproject, transformer
    from geo.io.load import ewkb

    name = f"checks_block_{n}"
    admin = make_url(cluster.url()).set(drivername="postgresql", database="postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    engine = make_engine(make_url(cluster.url()).set(database=name)
                         .render_as_string(hide_password=False))  # fmt: skip
    upgrade(engine)
    x0, y0 = (round(v) for v in transformer(4490, GK).transform(104.2, 35.9))

    def storage(shape):
        return ewkb([reproject(shapely.affinity.translate(shape, x0, y0), GK, 4490)])[0]

    with engine.begin() as conn:
        conn.execute(text("INSERT INTO county (code, name, target_rate, geom) "
                          "VALUES ('629904', '街区县', 0.9, CAST(:g AS geometry))"),
                     {"g": storage(box(-100, -100, 30 * n + 100, 30 * n + 100))})  # fmt: skip
        cursor = conn.connection.driver_connection.cursor()
        columns = "county_code, code, recorded_area_m2, premium_due, premium_paid, geom"
        with cursor.copy(f"COPY parcel ({columns}) FROM STDIN") as copy:
            for k in range(n * n):
                i, j = divmod(k, n)
                shape = box(30 * i, 30 * j, 30 * i + 30 + (2 if (i, j) == (5, 5) else 0),
                            30 * j + 30)  # fmt: skip
                copy.write_row(["629904", parcel_code("629904", 1, 1, "GB", k + 1), shape.area,
                                0, 0, storage(shape)])  # fmt: skip
        conn.execute(text("INSERT INTO compound (county_code, code, name, geom) "
                          "SELECT '629904', 'XQ' || id, '街区', geom FROM parcel"))  # fmt: skip
        conn.execute(text("INSERT INTO compound_parcel (compound_id, parcel_id, county_code) "
                          "SELECT c.id, p.id, '629904' FROM compound c JOIN parcel p "
                          "ON c.code = 'XQ' || p.id"))  # fmt: skip
        conn.execute(text("ANALYZE"))
    with engine.connect() as conn:
        started = time.perf_counter()
        report = run_parcel_checks(conn, "629904", workers=1)
        seconds = time.perf_counter() - started
    engine.dispose()
    found = sorted({(p.check, p.parcel) for p in report.problems})
    return (
        f"  block of {n * n:,} touching parcels: {seconds:.2f} s on one connection, found {found}"
    )


def row(r: dict) -> str:
    m, low, high = r["median"], *r["ratio_runs"]
    return (
        f"  {r['parcels']:>7,} parcels: titlemap {m['ours']:.2f} s (1 connection "
        f"{m['ours_1']:.2f} s) · geopandas overlay {m['overlay']:.2f} s, read+project "
        f"{m['read']:.2f} s, lean shapely overlap {m['lean']:.2f} s · ratio "
        f"{r['ratio_overlay']:.2f} vs overlay (runs {low:.2f}–{high:.2f}), "
        f"{r['ratio_read_overlay']:.2f} vs read+overlay, {r['ratio_lean']:.2f} vs lean · CPU "
        f"{m['ours_cpu']:.2f} s vs {m['overlay_cpu']:.2f} s ({r['ratio_cpu']:.2f}) · "
        f"{r['us_per_parcel']} µs/parcel · load {m['load']:.1f}"
    )


def print_table(results: list[dict]) -> None:
    print()
    print("| parcels | titlemap, all checks | 1 connection | geopandas overlay | read + project "
          "| lean shapely overlap | ratio (overlay), runs | ratio (read + overlay) "
          "| ratio (lean) | CPU titlemap / overlay | µs / parcel | load avg |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        m, low, high = r["median"], *r["ratio_runs"]
        print(f"| {r['parcels']:,} | {m['ours']:.2f} s | {m['ours_1']:.2f} s | "
              f"{m['overlay']:.2f} s | {m['read']:.2f} s | {m['lean']:.2f} s | "
              f"{r['ratio_overlay']:.2f} ({low:.2f}–{high:.2f}) | "
              f"{r['ratio_read_overlay']:.2f} | {r['ratio_lean']:.2f} | {m['ours_cpu']:.2f} s / "
              f"{m['overlay_cpu']:.2f} s | {r['us_per_parcel']} | {m['load']:.1f} |")  # fmt: skip
    verdict = all(r["ratio_overlay"] <= TARGET_RATIO for r in results)
    print(f"\ntarget ≤ {TARGET_RATIO} × the geopandas overlay: {'met' if verdict else 'NOT met'}")


if __name__ == "__main__":
    main()
