"""Benchmark: a county's own folder onboarded by titlemap, against ogr2ogr loading its files.

    .venv/bin/python benchmarks/onboard.py [--compounds 10000] [--runs 3] [--only compounds]
                                           [--shapefile] [--folder DIR] [--keep DIR]
                                           [--profile] [--json FILE]

Builds, from the demo generator's geometry and figures (`geo.demo.generate(n, 1)`), the folder
a land office would hand over for a county that is not the demo (河源县, 629931), written the
way the offices keep their files: 县界.geojson (县名), 乡镇街道.geojson (乡镇名称, 乡镇代码),
小区.gpkg in CGCS2000 lon/lat — or, with --shapefile, 小区.zip, a GBK Shapefile without a .cpg
— naming each compound's 所属乡镇 and 开发企业 by name (no credit codes; one developer in ten
written with a space, as typed), dates as 2019年3月1日; 宗地.gpkg in the Gauss-Krüger zone
(EPSG:4544) with 宗地代码, 宗地面积, premiums in 万元 and 所属小区; 化解台账.xlsx in the
county's layout (title, two-row merged header, 合计 and sign-off lines), its statuses and
blockers in the county's words (已化解, 未竣工验收 …). The folder is kept in DIR with --folder
and reused next time.

Into a private PostGIS cluster under /tmp (DIR with --keep), each run a fresh database made
from one template holding the schema, it times, interleaved, --runs runs after a warm-up of
each:

- titlemap, as a user types it: `titlemap county add 629931 --name 河源县 --gk-epsg 4544`,
  then `titlemap import` of the boundary, townships, compounds and parcels, and
  `titlemap ledger import` of the ledger — every command a process of its own (the
  interpreter's start included), every check and report as always;
- the same imports called in this process (`import_file`, `import_ledger`): the work without
  a Python starting for each command;
- `titlemap onboard FOLDER --county 629931` after `county add` (one process, one transaction)
  when the tree has it (geo/io/onboard.py and cli/onboard.py);
- the reference: `ogr2ogr -f PostgreSQL PG:… FILE -nln … -lco GEOMETRY_NAME=geom
  --config PG_USE_COPY YES` of the same spatial files into plain tables, each with its GiST
  index (ogr2ogr's default), no checks, no mapping, no ledger (the GBK Shapefile with
  `-oo ENCODING=CP936`: without a .cpg ogr2ogr cannot tell, and fails).

Ratios: the whole folder (ledger included) over ogr2ogr's spatial files, and file by file.
`--only compounds` (or parcels) times that one file, what it needs imported first uncounted:
the figure issue 14 quotes is `--compounds 100000 --only compounds`. `--profile` imports that
file (default: the compounds) once more in this process under cProfile, prints its top
functions, then what the database's share costs piece by piece: the same rows inserted again
in rolled-back transactions with and without the foreign-key checks, the statement triggers
(data revision, tile cells) and the GiST index. CPU seconds (this process, its commands and
every PostgreSQL process) are shown beside wall time, since on a shared machine wall time also
measures the neighbours. Run from another checkout (`cp benchmarks/onboard.py OTHER/benchmarks/
&& cd OTHER && …`), it times that checkout's code: how "before" figures are taken.
"""

import argparse
import cProfile
import io
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import geopandas as gpd
import psycopg
import pyogrio
from sqlalchemy import make_url, text

from benchmarks.checks import CPU, free_port, machine
from geo import demo as demo_county
from geo.db.cluster import LocalCluster
from geo.db.engine import make_engine
from geo.db.schema import upgrade

REPO = Path(__file__).resolve().parent.parent
# `titlemap …` as its console script runs it, from this tree (PYTHONPATH in _env): the same
# script in another checkout times that checkout's code
TITLEMAP = [
    sys.executable,
    "-c",
    "import sys; from cli.main import main; sys.argv[0] = 'titlemap'; main()",
]
COUNTY, NAME, DEMO = "629931", "河源县", "629901"
GK = 4544
TEMPLATE = "onboard_template"
TARGET_RATIO = 2.0
# The county's words for the demo's statuses and blockers (geo/core/vocabulary.toml maps them).
STATUS_WORDS = {"closed": "已化解", "in_progress": "化解中", "not_started": "未启动",
                "stalled": "停滞", "first_registered": "已首登"}  # fmt: skip
BLOCKER_WORDS = {"approvals": "未竣工验收", "land_premium": "欠缴土地出让金", "taxes": "欠缴税费",
                 "developer": "开发企业失联", "mortgage": "在建工程抵押",
                 "construction_debt": "拖欠工程款", "planning_conflict": "压占规划道路",
                 "area_discrepancy": "面积不符"}  # fmt: skip


# -- the county's folder -------------------------------------------------------------------------


def _ours(value: str) -> str:
    """A demo code as the county's own (its county code in front)."""
    return str(value).replace(DEMO, COUNTY)


def _cn(day) -> str | None:
    return f"{day.year}年{day.month}月{day.day}日" if day is not None else None


def files_of(folder: Path, shapefile: bool) -> dict[str, Path]:
    compounds = folder / ("小区.zip" if shapefile else "小区.gpkg")
    return {"boundary": folder / "县界.geojson", "townships": folder / "乡镇街道.geojson",
            "compounds": compounds, "parcels": folder / "宗地.gpkg",
            "ledger": folder / "化解台账.xlsx"}  # fmt: skip


def write_folder(n: int, folder: Path, shapefile: bool) -> dict[str, Path]:
    """The county's files in `folder` (written once; a finished folder is reused)."""
    files = files_of(folder, shapefile)
    done = folder / ".complete"
    if done.exists() and all(path.exists() for path in files.values()):
        return files
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    demo = demo_county.generate(n, 1)
    print(f"  generated {n:,} compounds in {time.perf_counter() - started:.0f} s", flush=True)
    townships = dict(zip(demo.townships["code"], demo.townships["name"], strict=True))
    developers = dict(zip(demo.developers["credit_code"], demo.developers["name"], strict=True))
    c = demo.compounds
    gpd.GeoDataFrame({"县名": [NAME]}, geometry=demo.county.geometry.values, crs=4490).to_file(
        files["boundary"], driver="GeoJSON"
    )
    gpd.GeoDataFrame(
        {"乡镇代码": [_ours(v) for v in demo.townships["code"]],
         "乡镇名称": demo.townships["name"].to_numpy()},
        geometry=demo.townships.geometry.values, crs=4490,
    ).to_file(files["townships"], driver="GeoJSON")  # fmt: skip
    named = [developers[code] for code in c["developer_credit_code"]]
    typed = [name[:2] + " " + name[2:] if k % 10 == 3 else name for k, name in enumerate(named)]
    compounds = gpd.GeoDataFrame(
        {"小区编号": [_ours(v) for v in c["code"]], "小区名称": c["name"].to_numpy(),
         "地址": c["address"].to_numpy(),
         "所属乡镇": [townships[code] for code in c["township_code"]], "开发企业": typed,
         "楼栋数": c["buildings"].to_numpy(), "已售套数": c["units_sold"].to_numpy(),
         "销售日期": [_cn(d) for d in c["sold_on"]],
         "交房日期": [_cn(d) for d in c["occupied_on"]]},
        geometry=c.geometry.values, crs=4490,
    )  # fmt: skip
    if shapefile:
        _zipped_shapefile(compounds, files["compounds"])
    else:
        pyogrio.write_dataframe(compounds, files["compounds"], layer="小区", driver="GPKG")
    owners: dict[str, list[str]] = {}
    for compound, parcel in zip(demo.compound_parcels["compound_code"],
                                demo.compound_parcels["parcel_code"], strict=True):  # fmt: skip
        owners.setdefault(parcel, []).append(_ours(compound))
    p = demo.parcels
    parcels = gpd.GeoDataFrame(
        {"宗地代码": [_ours(v) for v in p["code"]], "宗地面积": p["recorded_area_m2"].to_numpy(),
         "土地用途": p["land_use"].to_numpy(), "权利性质": p["right_type"].to_numpy(),
         "应缴出让金（万元）": (p["premium_due"] / 1e4).round(6).to_numpy(),
         "已缴出让金（万元）": (p["premium_paid"] / 1e4).round(6).to_numpy(),
         "所属小区": ["、".join(owners.get(code, [])) or None for code in p["code"]]},
        geometry=p.geometry.values, crs=4490,
    ).to_crs(GK)  # fmt: skip
    pyogrio.write_dataframe(parcels, files["parcels"], layer="宗地", driver="GPKG")
    _ledger_xlsx(demo, files["ledger"], townships, developers)
    done.write_text(f"{n}\n")
    return files


def _zipped_shapefile(frame: gpd.GeoDataFrame, path: Path) -> None:
    """A GBK Shapefile without a .cpg (the importer tells the encoding from the .dbf), zipped."""
    with tempfile.TemporaryDirectory(prefix="titlemap-bench-shp-") as tmp:
        shp = Path(tmp) / "小区.shp"
        pyogrio.write_dataframe(frame, shp, encoding="GBK")
        for cpg in Path(tmp).glob("*.cpg"):
            cpg.unlink()
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for part in sorted(Path(tmp).iterdir()):
                archive.write(part, part.name)


def _ledger_xlsx(demo, path: Path, townships: dict, developers: dict) -> None:
    from geo.io.ledger_sheet import write_ledger_xlsx

    compounds = demo.compounds.set_index("code")
    ledger = demo.ledger.drop(columns=["ledger_no", "blocker_note", "close_reason"])
    frame = ledger.assign(
        compound_name=ledger.compound_code.map(compounds["name"]),
        township=ledger.compound_code.map(compounds["township_code"]).map(townships),
        developer=ledger.compound_code.map(compounds["developer_credit_code"]).map(developers),
        status_word=ledger.status.map(STATUS_WORDS),
        blocker_words=[",".join(BLOCKER_WORDS[b] for b in str(v).split(",") if b)
                       for v in ledger.blockers],
        compound_code=[_ours(v) for v in ledger.compound_code],
    )  # fmt: skip
    write_ledger_xlsx(frame, path, NAME, demo_county.AS_OF)


# -- the databases -------------------------------------------------------------------------------


class Cluster:
    """The private cluster, its schema template and a fresh database per run."""

    def __init__(self, folder: Path) -> None:
        self.cluster = LocalCluster(folder, free_port(), fsync=False)
        self.cluster.ensure_running()
        self.url = make_url(self.cluster.url())
        self.serial = 0
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}"')
            conn.execute(f'CREATE DATABASE "{TEMPLATE}"')
        engine = make_engine(self.database_url(TEMPLATE))
        upgrade(engine)
        engine.dispose()

    def _admin(self) -> psycopg.Connection:
        admin = self.url.set(drivername="postgresql", database="postgres")
        return psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True)

    def database_url(self, name: str) -> str:
        return self.url.set(database=name).render_as_string(hide_password=False)

    def fresh(self, what: str) -> str:
        """A new database with the schema and nothing else; its name."""
        self.serial += 1
        name = f"{what}_{self.serial}"
        with self._admin() as conn:  # one left by a run that was stopped goes first
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
        return name

    def drop(self, name: str) -> None:
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def ogr_dsn(self, name: str) -> str:
        u = self.url
        return (f"PG:host={u.host} port={u.port} dbname={name} user={u.username} "
                f"password={u.password}")  # fmt: skip


class CommandCPU(CPU):
    """CPU seconds as in checks.py, plus the commands this process ran and waited for."""

    def now(self) -> float:
        times = os.times()
        return super().now() + times.children_user + times.children_system


# -- the runs ------------------------------------------------------------------------------------


def _run(command: list[str], env: dict | None = None) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, errors="replace")
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(
            f"failed ({done.returncode}): {' '.join(command)}\n{done.stdout[-3000:]}"
            f"{done.stderr[-3000:]}"
        )
    return seconds


def _env(db: Cluster, name: str, folder: Path) -> dict:
    return {**os.environ, "DATABASE_URL": db.database_url(name), "PYTHONPATH": str(REPO),
            "TITLEMAP_DATA_DIR": str(folder / "data"), "TITLEMAP_COUNTY": COUNTY}  # fmt: skip


IMPORTS = (("boundary", ["import", "{path}", "--layer", "boundary"]),
           ("townships", ["import", "{path}", "--layer", "townships"]),
           ("compounds", ["import", "{path}", "--layer", "compounds"]),
           ("parcels", ["import", "{path}", "--layer", "parcels"]),
           ("ledger", ["ledger", "import", "{path}"]))  # fmt: skip
SPATIAL = ("boundary", "townships", "compounds", "parcels")


def titlemap_files(db: Cluster, files: dict, work: Path, only: str | None) -> dict:
    """`county add` and each file's own command, in a fresh database: seconds per step; with
    `only`, what that file needs comes in first (timed, but not counted)."""
    with _database(db, "titlemap", work) as (name, env):
        out: dict = {"county": _add_county(env)}
        for layer, words in _steps(only):
            command = [*TITLEMAP, *(w.format(path=files[layer]) for w in words)]
            out[layer] = _run([*command, "--county", COUNTY], env)
        out["counts"] = _counts(db, name)
    return out


@contextmanager
def _database(db: Cluster, what: str, work: Path) -> Iterator[tuple[str, dict]]:
    """A fresh database and the commands' environment for it; dropped afterwards."""
    name = db.fresh(what)
    try:
        yield name, _env(db, name, work)
    finally:
        db.drop(name)


def _add_county(env: dict) -> float:
    """`titlemap county add` of the benchmark's county: its seconds."""
    return _run([*TITLEMAP, "county", "add", COUNTY, "--name", NAME, "--gk-epsg", str(GK)], env)


def _before(only: str) -> tuple[str, ...]:
    """What the file `only` needs in the database first: the outline, the townships its
    compounds name, the compounds its parcels name."""
    return ("boundary", "townships", "compounds")[: 3 if only == "parcels" else 2]


def _steps(only: str | None) -> list[tuple[str, list[str]]]:
    wanted = (*_before(only), only) if only else [layer for layer, _ in IMPORTS]
    return [(layer, words) for layer, words in IMPORTS if layer in wanted]


def titlemap_in_process(db: Cluster, files: dict, only: str | None) -> dict:
    """The same imports called in this process (modules already loaded): the work itself,
    without an interpreter starting for each command."""
    from geo.io.importer import import_file
    from geo.io.ledger_sheet import import_ledger
    from geo.ledger.counties import add_county

    name = db.fresh("inproc")
    engine = make_engine(db.database_url(name))
    out: dict = {}
    try:
        started = time.perf_counter()
        with engine.connect() as conn:
            add_county(conn, COUNTY, NAME, gk_epsg=str(GK))
        out["county"] = time.perf_counter() - started
        for layer, _ in _steps(only):
            started = time.perf_counter()
            if layer == "ledger":
                done = import_ledger(engine, files[layer], COUNTY, "benchmark").ok
            else:
                done = import_file(engine, files[layer], COUNTY, layer).ok
            out[layer] = time.perf_counter() - started
            if not done:
                raise SystemExit(f"the {layer} import was refused in process")
    finally:
        engine.dispose()
        db.drop(name)
    return out


def titlemap_onboard(db: Cluster, files: dict, work: Path) -> dict | None:
    """`county add` then `titlemap onboard FOLDER`, when the tree has the command."""
    if not ((REPO / "geo/io/onboard.py").exists() and (REPO / "cli/onboard.py").exists()):
        return None
    with _database(db, "onboard", work) as (name, env):
        out: dict = {"county": _add_county(env)}
        folder = files["compounds"].parent
        out["onboard"] = _run([*TITLEMAP, "onboard", str(folder), "--county", COUNTY], env)
        out["counts"] = _counts(db, name)
    return out


def _counts(db: Cluster, name: str) -> dict[str, int]:
    engine = make_engine(db.database_url(name))
    with engine.connect() as conn:
        counts = {table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
                  for table in ("developer", "compound", "parcel", "compound_parcel",
                                "ledger_entry")}  # fmt: skip
    engine.dispose()
    return counts


def ogr2ogr(db: Cluster, files: dict, only: str | None) -> dict:
    """The spatial files loaded by ogr2ogr with COPY into plain tables (GiST index each)."""
    name = db.fresh("ogr")
    out: dict[str, float] = {}
    try:
        for layer in SPATIAL:
            if only is not None and layer != only:
                continue
            path = files[layer]
            source, told = str(path), []
            if path.suffix == ".zip":  # GBK without a .cpg: ogr2ogr must be told (titlemap tells)
                source, told = f"/vsizip/{path}", ["-oo", "ENCODING=CP936"]
            out[layer] = _run(["ogr2ogr", "-f", "PostgreSQL", db.ogr_dsn(name), source, *told,
                               "-nln", f"ref_{layer}", "-lco", "GEOMETRY_NAME=geom",
                               "-lco", "SPATIAL_INDEX=GIST",
                               "--config", "PG_USE_COPY", "YES"])  # fmt: skip
    finally:
        db.drop(name)
    return out


def profile(db: Cluster, files: dict, layer: str) -> str:
    """The import of `layer`'s file in this process under cProfile: its top functions."""
    from geo.core.vocabulary import load_vocabulary
    from geo.io.importer import import_file
    from geo.ledger.counties import add_county

    name = db.fresh("profile")
    engine = make_engine(db.database_url(name))
    try:
        with engine.connect() as conn:
            add_county(conn, COUNTY, NAME, gk_epsg=str(GK))
        for before in _before(layer):
            import_file(engine, files[before], COUNTY, before)
        profiler = cProfile.Profile()
        profiler.enable()
        report = import_file(engine, files[layer], COUNTY, layer, vocabulary=load_vocabulary())
        profiler.disable()
        if not report.committed:
            raise SystemExit("\n".join(report.lines()))
        costs = breakdown(db.database_url(name), {"compounds": "compound"}.get(layer, "parcel"))
    finally:
        engine.dispose()
        db.drop(name)
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    stats.sort_stats("cumulative").print_stats(40)
    stats.sort_stats("tottime").print_stats(25)
    return f"profile of the {layer} import ({report.seconds:.2f} s):\n{stream.getvalue()}\n{costs}"


INSERTS = {  # what the database does for the rows an import writes, piece by piece
    "plain INSERT … SELECT": ([], ""),
    "… ON CONFLICT DO UPDATE … RETURNING (the import's shape)": (
        [], " ON CONFLICT (county_code, code) DO UPDATE SET geom = EXCLUDED.geom "
        "WHERE t.geom IS DISTINCT FROM EXCLUDED.geom RETURNING t.code, (t.xmax = 0)"),
    "plain, without the foreign-key checks": (["SET LOCAL session_replication_role = replica"],
                                              ""),
    "plain, without the revision and tile-cell triggers": (
        ["ALTER TABLE {table} DISABLE TRIGGER USER"], ""),
    "plain, without the GiST index": (["DROP INDEX ix_{table}_geom"], ""),
}  # fmt: skip


def breakdown(url: str, table: str, runs: int = 3) -> str:
    """The rows just imported inserted again as another county's, in transactions rolled back:
    what the foreign keys, the statement triggers and the GiST index each cost (CPU seconds of
    the server process, medians of `runs`)."""
    from geo.core.model import copy_columns

    columns = ", ".join(c for c in copy_columns(table) if c not in ("county_code", "id"))
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain) as conn:
        conn.execute(
            "INSERT INTO county (code, name, target_rate) VALUES ('629932', '对照县', 0.9)"
        )
        conn.execute(f"CREATE TEMP TABLE copied AS SELECT {columns} FROM {table}")
        conn.commit()
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        seconds: dict[str, list[float]] = {label: [] for label in INSERTS}
        for _ in range(runs):
            for label, (setup, tail) in INSERTS.items():
                for statement in setup:
                    conn.execute(statement.format(table=table))
                at = _backend_cpu(pid)
                conn.execute(f"INSERT INTO {table} AS t (county_code, {columns}) "
                             f"SELECT '629932', {columns} FROM copied{tail}")  # fmt: skip
                seconds[label].append(_backend_cpu(pid) - at)
                conn.rollback()
        rows = conn.execute("SELECT count(*) FROM copied").fetchone()[0]
    lines = [f"the database's share, {rows:,} rows into {table} (server CPU s, median):"]
    lines += [f"  {statistics.median(v):6.2f}  {label}" for label, v in seconds.items()]
    return "\n".join(lines)


def _backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the figures ---------------------------------------------------------------------------------


def _median(runs: list[dict], key: str) -> float:
    values = [r[key] for r in runs if key in r]
    return statistics.median(values) if values else float("nan")


def summarise(runs: dict[str, list[dict]], only: str | None) -> dict:
    """Medians per file and for the whole folder; ratios against ogr2ogr's spatial files."""
    ours, inproc, ref, onboard = (runs[k] for k in ("titlemap", "in_process", "ogr2ogr",
                                                    "onboard"))  # fmt: skip
    layers = [layer for layer, _ in _steps(only) if only is None or layer == only]
    spatial = [layer for layer in layers if layer in SPATIAL]
    per_file = {}
    for layer in layers:
        row = {"titlemap": _median(ours, layer), "in_process": _median(inproc, layer)}
        if layer in SPATIAL:
            row["ogr2ogr"] = _median(ref, layer)
            row["ratio"] = row["titlemap"] / row["ogr2ogr"]
            row["ratio_in_process"] = row["in_process"] / row["ogr2ogr"]
        per_file[layer] = row
    counted = [*layers, "county"] if only is None else layers

    def whole(run: dict, keys) -> float:
        return sum(run[key] for key in keys)

    reference = [whole(r, spatial) for r in ref]
    out = {
        "files": per_file,
        "titlemap": statistics.median(whole(r, counted) for r in ours),
        "in_process": statistics.median(whole(r, counted) for r in inproc),
        "ogr2ogr": statistics.median(reference),
        "ratio_runs": [
            round(whole(a, counted) / b, 2) for a, b in zip(ours, reference, strict=True)
        ],
    }
    out["ratio"] = out["titlemap"] / out["ogr2ogr"]
    out["ratio_in_process"] = out["in_process"] / out["ogr2ogr"]
    if only is None:  # the spatial files alone, as ogr2ogr loads them
        out["spatial"] = {
            "titlemap": statistics.median(whole(r, spatial) for r in ours),
            "in_process": statistics.median(whole(r, spatial) for r in inproc),
        }
    if onboard:
        out["onboard"] = statistics.median(r["onboard"] + r["county"] for r in onboard)
        out["ratio_onboard"] = out["onboard"] / out["ogr2ogr"]
    out["cpu"] = {key: _median(runs[key], "cpu") for key in runs}
    out["load"] = [round(r["load"], 2) for r in ours]
    out["counts"] = ours[-1]["counts"]
    return out


def print_table(result: dict, only: str | None) -> None:
    print()
    print("| file | titlemap command | the same import in process | ogr2ogr (COPY, GiST) | "
          "ratio (command) | ratio (in process) |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for layer, row in result["files"].items():
        mine = f"| {layer} | {row['titlemap']:.2f} s | {row['in_process']:.2f} s | "
        if "ogr2ogr" in row:
            print(f"{mine}{row['ogr2ogr']:.2f} s | {row['ratio']:.2f} | "
                  f"{row['ratio_in_process']:.2f} |")  # fmt: skip
        else:
            print(f"{mine}— | — | — |")
    what = f"{only} only" if only else "whole folder (county add + every file)"
    runs = ", ".join(map(str, result["ratio_runs"]))
    print(f"| **{what}** | **{result['titlemap']:.2f} s** | {result['in_process']:.2f} s | "
          f"**{result['ogr2ogr']:.2f} s** | **{result['ratio']:.2f}** (runs {runs}) | "
          f"{result['ratio_in_process']:.2f} |")  # fmt: skip
    if "spatial" in result:
        mine = result["spatial"]
        print(f"| the four spatial files | {mine['titlemap']:.2f} s | {mine['in_process']:.2f} s | "
              f"{result['ogr2ogr']:.2f} s | {mine['titlemap'] / result['ogr2ogr']:.2f} | "
              f"{mine['in_process'] / result['ogr2ogr']:.2f} |")  # fmt: skip
    if "onboard" in result:
        print(
            f"| titlemap onboard (+ county add) | {result['onboard']:.2f} s | | "
            f"{result['ogr2ogr']:.2f} s | {result['ratio_onboard']:.2f} | |"
        )
    cpu = ", ".join(f"{key} {value:.2f} s" for key, value in result["cpu"].items()
                    if value == value)  # fmt: skip
    print(f"\nCPU: {cpu} · load {result['load']} · rows {result['counts']}")
    best = min(result["ratio"], result.get("ratio_onboard", float("inf")))
    print(f"target ≤ {TARGET_RATIO} × ogr2ogr: {'met' if best <= TARGET_RATIO else 'NOT met'}")


def _run_line(runs: dict[str, list[dict]]) -> str:
    parts = []
    for key, values in runs.items():
        if values:
            steps = ", ".join(f"{k} {v:.2f}" for k, v in values[-1].items()
                              if isinstance(v, float) and k not in ("cpu", "load"))  # fmt: skip
            parts.append(f"{key} {steps}")
    return " · ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--compounds", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", choices=("compounds", "parcels"))
    parser.add_argument("--shapefile", action="store_true", help="compounds as a zipped GBK .shp")
    parser.add_argument("--folder", type=Path, help="write (and reuse) the county's files here")
    parser.add_argument("--keep", type=Path, help="keep the cluster here and reuse it")
    parser.add_argument("--profile", action="store_true", help="cProfile the largest import")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    kind = "shp" if args.shapefile else "gpkg"
    folder = args.folder or Path(f"/tmp/titlemap-bench-onboard-{args.compounds}-{kind}")
    work = Path(tempfile.mkdtemp(prefix="titlemap-bench-onboard-", dir="/tmp"))
    work.chmod(0o755)  # the cluster's postgres user must reach its data directory
    info = machine()
    gdal = subprocess.run(["ogr2ogr", "--version"], capture_output=True, text=True).stdout
    print(f"{info['cpu']}, {info['cores']} cores, {info['memory_gb']} GiB; {gdal.strip()}")
    print(f"the county's folder ({args.compounds:,} compounds) in {folder}:", flush=True)
    files = write_folder(args.compounds, folder, args.shapefile)
    for layer, path in files.items():
        print(f"  {layer}: {path.name} ({path.stat().st_size / 2**20:.1f} MiB)")
    db = Cluster(args.keep or work / "cluster")
    cpu = CommandCPU(db.cluster)
    sides = {
        "titlemap": lambda: titlemap_files(db, files, work, args.only),
        "in_process": lambda: titlemap_in_process(db, files, args.only),
        "ogr2ogr": lambda: ogr2ogr(db, files, args.only),
        "onboard": lambda: None if args.only else titlemap_onboard(db, files, work),
    }
    runs: dict[str, list[dict]] = {key: [] for key in sides}
    try:
        for side in sides.values():  # warm-up: the OS's file cache, the modules, the cluster
            side()
        for k in range(args.runs):
            load = os.getloadavg()[0]
            for key, side in sides.items():
                at = cpu.now()
                found = side()
                if found is not None:
                    runs[key].append(found | {"cpu": cpu.now() - at, "load": load})
            print(f"  run {k + 1}: {_run_line(runs)} · load {load:.2f}", flush=True)
        result = summarise(runs, args.only)
        if args.profile:
            print(profile(db, files, args.only or "compounds"))
    finally:
        if args.keep is None:
            db.cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
    print_table(result, args.only)
    if args.json:
        args.json.write_text(json.dumps(
            {"machine": info, "compounds": args.compounds, "format": kind, "only": args.only,
             "runs": runs, "result": result}, indent=2, ensure_ascii=False, default=str,
        ))  # fmt: skip


if __name__ == "__main__":
    main()
