"""Benchmark: every county's parcel checks, county by county in SQL and all at once in shapely.

    .venv/bin/python benchmarks/province_checks.py --url URL_OR_CLUSTER_DIR --database DB
        [--counties N] [--build N --compounds-per-county 1000] [--json FILE]

On the database DB (of the cluster whose URL is given, or of the LocalCluster kept in the
folder given): `geo.checks.run.run_parcel_checks` county after county (the SQL path, as
benchmarks/province.py `checks()`), `geo.checks.kernel.run_checks_many` over every county (the
kernel), and `gpd.overlay(frame, frame, how="intersection")` of the same parcels read from
PostGIS and taken to GK zone 35 (EPSG:4544) — each twice, the warm second pass reported, then
the ratios. The two paths' reports are compared county by county (problems as tuples, values
within rounding).

--paths picks which of the three run (e.g. `kernel,overlay` on a province too large to
wait for the SQL path); --passes how many times each (default 2, the last reported).

With --build N a LocalCluster is made in the folder (fsync off), the database created and N
demo counties (geo.demo.province.generate_province, 20 a city) loaded into it first.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import geopandas as gpd
import psycopg
from sqlalchemy import make_url, text

from geo.checks.compare import same_reports
from geo.checks.kernel import run_checks_many
from geo.checks.run import run_parcel_checks
from geo.db.cluster import LocalCluster
from geo.db.engine import make_engine
from geo.db.schema import upgrade
from geo.demo.province import generate_province, load_province

PROVINCE = "620000"
COUNTIES_PER_CITY = 20
GK = 4544  # CGCS2000 3° Gauss-Krüger, central meridian 105°E: the province's grid lies within


def clock(work):
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


def cpu_clock(work):
    """Wall and this process's CPU seconds (all its threads) of `work`, and its result."""
    started, cpu = time.perf_counter(), time.process_time()
    result = work()
    return time.perf_counter() - started, time.process_time() - cpu, result


def database_url(where: str, database: str, build: int) -> str:
    """The URL of `database`: on the URL given, or on the LocalCluster kept in that folder."""
    if "://" in where:
        return make_url(where).set(database=database).render_as_string(hide_password=False)
    folder = Path(where)
    cluster = LocalCluster(folder, _free_port(), fsync=False)
    if build or not cluster.status().running:
        cluster.ensure_running()
    return make_url(cluster.url()).set(database=database).render_as_string(hide_password=False)


def _free_port() -> int:
    from benchmarks.map import free_port

    return free_port()


def build(url: str, counties: int, compounds: int) -> dict:
    """A fresh database at `url` holding `counties` demo counties."""
    admin = make_url(url).set(drivername="postgresql", database="postgres")
    name = make_url(url).database
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    cities = -(-counties // COUNTIES_PER_CITY)
    per_city = min(counties, COUNTIES_PER_CITY)
    made, frames = clock(lambda: generate_province(PROVINCE, cities, per_city, compounds))
    engine = make_engine(url)
    upgrade(engine)
    loaded, _ = clock(lambda: load_province(engine, frames[:counties]))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()
    return {"generate_s": round(made, 1), "load_s": round(loaded, 1)}


def sql_path(engine, counties: list[str]) -> tuple[float, dict]:
    with engine.connect() as conn:
        reports = {}
        started = time.perf_counter()
        for county in counties:
            reports[county] = run_parcel_checks(conn, county)
        return time.perf_counter() - started, reports


def kernel_path(engine, counties: list[str]) -> tuple[float, float, dict]:
    with engine.connect() as conn:
        return cpu_clock(lambda: run_checks_many(conn, counties))


def overlay(engine, counties: list[str]) -> dict:
    read, frame = clock(lambda: gpd.read_postgis(
        text("SELECT code, geom FROM parcel WHERE county_code = ANY(:c)"), engine,
        geom_col="geom", params={"c": counties},
    ).to_crs(GK))  # fmt: skip
    seconds, cpu, pieces = cpu_clock(
        lambda: gpd.overlay(frame, frame, how="intersection", keep_geom_type=True)
    )
    pieces = pieces[(pieces["code_1"] < pieces["code_2"]) & (pieces.area > 1.0)]
    pairs = set(zip(pieces["code_1"], pieces["code_2"], strict=True))
    return {
        "parcels": len(frame),
        "read_s": read,
        "overlay_s": seconds,
        "cpu_s": cpu,
        "pairs": pairs,
    }


def overlap_pairs(reports: dict) -> set:
    return {tuple(sorted([p.parcel, p.related[0]])) for report in reports.values()
            for p in report.problems if p.check == "overlap"}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="a PostgreSQL URL or a LocalCluster folder")
    parser.add_argument("--database", required=True)
    parser.add_argument("--counties", type=int, default=0, help="the first N counties only")
    parser.add_argument("--build", type=int, default=0, help="load N demo counties first")
    parser.add_argument("--compounds-per-county", type=int, default=1000)
    parser.add_argument(
        "--paths",
        default="sql,kernel,overlay",
        help="which of sql, kernel, overlay to run (default: all three)",
    )
    parser.add_argument("--passes", type=int, default=2, help="the last one is reported")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    out: dict = {"load_average_start": os.getloadavg()}
    url = database_url(args.url, args.database, args.build)
    if args.build:
        out["build"] = build(url, args.build, args.compounds_per_county)
        print(f"built: {out['build']}", flush=True)
    engine = make_engine(url)
    with engine.connect() as conn:
        counties = list(conn.execute(text("SELECT code FROM county ORDER BY code")).scalars())
        parcels = conn.execute(text("SELECT count(*) FROM parcel")).scalar_one()
    counties = counties[: args.counties] if args.counties else counties
    out |= {"counties": len(counties), "parcels_in_database": parcels}
    print(f"{len(counties)} counties, {parcels} parcels in the database", flush=True)
    paths = set(args.paths.split(","))
    sql_s, kernel_s, overlay_s, kernel_cpu, overlay_cpu = [], [], [], [], []
    by_sql = by_kernel = lay = None
    for _ in range(args.passes):
        if "sql" in paths:
            seconds, by_sql = sql_path(engine, counties)
            sql_s.append(seconds)
            print(f"  SQL, county by county: {seconds:.2f} s", flush=True)
        if "kernel" in paths:
            seconds, cpu, by_kernel = kernel_path(engine, counties)
            kernel_s.append(seconds)
            kernel_cpu.append(cpu)
            timings = next(iter(by_kernel.values())).timings
            print(f"  kernel, every county at once: {seconds:.2f} s "
                  f"(CPU {cpu:.2f} s) { {k: round(v, 2) for k, v in timings.items()} }",
                  flush=True)  # fmt: skip
        if "overlay" in paths:
            lay = overlay(engine, counties)
            overlay_s.append(lay["overlay_s"])
            overlay_cpu.append(lay["cpu_s"])
            print(f"  overlay: {lay['overlay_s']:.2f} s (CPU {lay['cpu_s']:.2f} s, read "
                  f"{lay['read_s']:.2f} s)", flush=True)  # fmt: skip
    engine.dispose()
    out |= {"sql_s": [round(s, 2) for s in sql_s], "kernel_s": [round(s, 2) for s in kernel_s],
            "overlay_s": [round(s, 2) for s in overlay_s],
            "kernel_cpu_s": [round(s, 2) for s in kernel_cpu],
            "overlay_cpu_s": [round(s, 2) for s in overlay_cpu]}  # fmt: skip
    if by_kernel:
        out["problems"] = sum(len(r.problems) for r in by_kernel.values())
    if lay:
        out |= {"overlay_parcels": lay["parcels"], "overlay_read_s": round(lay["read_s"], 2)}
    for mine, theirs, name in ((kernel_s, overlay_s, "kernel_over_overlay"),
                               (sql_s, overlay_s, "sql_over_overlay"),
                               (sql_s, kernel_s, "sql_over_kernel"),
                               (kernel_cpu, overlay_cpu, "kernel_over_overlay_cpu")):  # fmt: skip
        if mine and theirs:
            out[name] = round(mine[-1] / theirs[-1], 3)
    if by_sql and by_kernel:
        out["counties_differing"] = {
            c: d for c in counties if (d := same_reports(by_sql[c], by_kernel[c]))
        }
        same = overlap_pairs(by_sql) == overlap_pairs(by_kernel)
        out["same_overlap_pairs"] = same and (lay is None or overlap_pairs(by_sql) == lay["pairs"])
    out["load_average_end"] = os.getloadavg()
    for key, value in out.items():
        print(f"{key}: {value}")
    if args.json:
        args.json.write_text(json.dumps(out, ensure_ascii=False, indent=1, default=str))


if __name__ == "__main__":
    main()
