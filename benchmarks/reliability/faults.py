"""Faults: the database stopped under load, and commands killed halfway.

    .venv/bin/python -m benchmarks.reliability faults [--fault-compounds 3000] [--outage 10]
                     [--fault-connections 8] [--import-compounds 20000]

In a private cluster of its own (never the --keep one, which other parts may be using: this
part stops its database), the demo county of --fault-compounds compounds, `titlemap serve` in
its own process, then:

1. **Outage.** --fault-connections clients run the load mix (benchmarks/reliability/load.py,
   without the print) and a probe asks /health four times a second. After 3 s the cluster is
   stopped (`LocalCluster.stop()`, pg_ctl -m fast) for --outage seconds, then started
   (`ensure_running()`); the server is not touched. Every answer is classed by when its
   request started: before, during the outage, while recovering (database up, the service
   not yet answering 200), after. Goals: during the outage every answer within 1 s, a 503
   with a one-line JSON `detail` or a 200 (a tile from the cache), never a 500 or a timeout;
   /health 503; recovery by itself within seconds; after it, no errors.
2. **Fresh data after recovery.** Before the outage a compound's card and its z14 tile are
   fetched (and cached). Right after the service answers again, the owner's connection changes
   that compound's ledger entry (plan and lead department). The card and the tile (asked with
   the old ETag) must show the change: no cache entry from before the outage, nor from before
   the change, served after it.
3. **Killed halfway.** `titlemap import FILE --layer compounds` (a GeoPackage of
   --import-compounds new compounds), `titlemap ledger import F.xlsx` (the county's ledger
   with every plan changed) and `titlemap print area --bbox …` each started, then its whole
   process group killed with SIGKILL: the imports as soon as pg_stat_activity shows their
   transaction has written (backend_xid set), the print at half its usual time (it writes
   nothing to the database). Goals: the tables as before (row counts and the ledger's
   checksum), no session left `idle in transaction` or holding a write within a few
   seconds, no half-written PDF. Each import is then run to its end, to show the file was
   one it would have imported.

A full disk under the data directory is not tried: that needs a small filesystem mounted
(root and `mount`), more than this harness should do to a machine.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psycopg

from benchmarks.reliability import COUNTY, database, free_port, libpq, sessions
from benchmarks.reliability.load import MIX, Mix, Record, make_plan, warm_up
from benchmarks.serve import start_titlemap
from geo.db.cluster import LocalCluster
from geo.query.tiles import tile_of

TITLEMAP = Path(sys.executable).parent / "titlemap"
REPO = Path(__file__).resolve().parent.parent.parent
LIGHT_MIX = MIX  # the load's mix (the print aside: one a minute would not fall in the outage)
ANSWER_WITHIN = 1.0
MARK = "故障演练"


def add_arguments(parser) -> None:
    group = parser.add_argument_group("faults")
    group.add_argument("--fault-compounds", type=int, default=3000, help="its county's size")
    group.add_argument("--outage", type=float, default=10, help="seconds the database is down")
    group.add_argument("--fault-connections", type=int, default=8, help="clients during it")
    group.add_argument("--import-compounds", type=int, default=20000,
                       help="compounds in the file whose import is killed")  # fmt: skip


# -- 1 and 2: the outage -----------------------------------------------------------------------


def _watch_health(base: str, stop: threading.Event, out: list) -> None:
    with httpx.Client(base_url=base, timeout=5) as client:
        while not stop.is_set():
            started, clock = time.monotonic(), time.perf_counter()
            try:
                status = client.get("/health").status_code
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            out.append(Record("health", started, time.perf_counter() - clock, status))
            stop.wait(0.25)


def one_line(record: Record) -> bool:
    """A 503's body: JSON whose detail is one line (the first 200 bytes are kept)."""
    return record.detail.startswith('{"detail":"') and "\\n" not in record.detail


def _phase(records: list[Record]) -> dict:
    statuses: dict = {}
    for r in records:
        statuses[str(r.status)] = statuses.get(str(r.status), 0) + 1
    slow = [r for r in records if r.seconds > ANSWER_WITHIN]
    return {
        "requests": len(records),
        "statuses": statuses,
        "max_ms": round(1000 * max((r.seconds for r in records), default=0), 1),
        "over_1s": len(slow),
        "errors": sum(r.status != 200 for r in records),
    }


def change_entry(url_pg: str, code: str, n: int) -> str:
    """The owner's edit of one entry, as the command line or psql would: returns the mark."""
    mark = f"{MARK}{n}"
    with psycopg.connect(url_pg, autocommit=True) as conn:
        changed = conn.execute(
            "UPDATE ledger_entry SET plan = %s, lead_department = %s, version = version + 1 "
            "WHERE compound_id = (SELECT id FROM compound WHERE county_code = %s AND code = %s)",
            (f"{mark} 方案", mark, COUNTY, code),
        ).rowcount
    assert changed == 1, code
    return mark


def watched_compound(url_pg: str) -> tuple[str, str]:
    """A compound on the ledger and the path of its z14 tile."""
    with psycopg.connect(url_pg) as conn:
        code, x, y = conn.execute(
            "SELECT c.code, ST_X(ST_PointOnSurface(c.geom)), ST_Y(ST_PointOnSurface(c.geom)) "
            "FROM compound c JOIN ledger_entry e ON e.compound_id = c.id "
            "WHERE c.county_code = %s ORDER BY c.code LIMIT 1",
            (COUNTY,),
        ).fetchone()
    tx, ty = tile_of(x, y, 14)
    return code, f"/api/tiles/compounds/14/{tx}/{ty}.pbf?county={COUNTY}"


def shows(client: httpx.Client, code: str, tile: str, etag: str, mark: str) -> dict:
    """Whether the card and the tile (asked with the ETag from before) show `mark`."""
    card = client.get(f"/api/compounds/{code}/card?county={COUNTY}")
    answer = client.get(tile, headers={"If-None-Match": etag})
    return {
        "card": card.status_code == 200 and mark in card.text,
        "tile": answer.status_code == 200 and mark.encode() in answer.content,
    }


def fresh_after(client: httpx.Client, url_pg: str, code: str, tile: str, etag: str,
                n: int, within: float = 10) -> dict:  # fmt: skip
    """Change the entry, then ask until both show it: the first answer and the time taken."""
    mark = change_entry(url_pg, code, n)
    changed = time.monotonic()
    first = shows(client, code, tile, etag, mark)
    seen = dict(first)
    while not all(seen.values()) and time.monotonic() - changed < within:
        time.sleep(0.05)
        seen = shows(client, code, tile, etag, mark)
    return {"first_answer_fresh": first, "fresh": seen,
            "seconds_until_fresh": round(time.monotonic() - changed, 2)}  # fmt: skip


def outage(base: str, url_pg: str, cluster: LocalCluster, connections: int, down: float,
           before: float = 3, after: float = 10, warm: int = 20) -> dict:  # fmt: skip
    """Stop the database under load for `down` seconds, start it; classify every answer."""
    plan = make_plan(url_pg, warm)
    warm_up(base, plan)
    code, tile = watched_compound(url_pg)
    health: list[Record] = []
    stop = threading.Event()
    with httpx.Client(base_url=base, timeout=10) as client:
        card = client.get(f"/api/compounds/{code}/card?county={COUNTY}")
        cached = client.get(tile)
        assert card.status_code == 200 and cached.status_code == 200
        etag = cached.headers["etag"]
        mix = Mix(base, url_pg, plan, connections, LIGHT_MIX, print_every=None, timeout=10)
        mix.sample = False
        total = before + down + after + 30  # stopped below, once recovered and `after` passed
        runner = threading.Thread(target=mix.run, args=(total,), daemon=True)
        prober = threading.Thread(target=_watch_health, args=(base, stop, health), daemon=True)
        runner.start()
        prober.start()
        time.sleep(before)
        down_from = time.monotonic()
        cluster.stop()
        down_at = time.monotonic()
        time.sleep(down)
        up_from = time.monotonic()
        cluster.ensure_running()
        up_at = time.monotonic()
        recovered = None
        while time.monotonic() - up_at < 60:
            try:
                ok = client.get(f"/api/compounds?limit=1&county={COUNTY}").status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok:
                recovered = time.monotonic()
                break
            time.sleep(0.05)
        fresh = fresh_after(client, url_pg, code, tile, etag, 1) if recovered else None
        time.sleep(after)
        mix.stop.set()
        stop.set()
        runner.join(60)
        prober.join(10)
    end = recovered or float("inf")
    records = mix.records
    during = [r for r in records if down_from <= r.started < up_from]
    unavailable = [r for r in during if r.status == 503]
    result = {
        "down_s": round(up_from - down_from, 1),
        "stop_took_s": round(down_at - down_from, 2),
        "start_took_s": round(up_at - up_from, 2),
        "recovered_s_after_start": round(end - up_at, 2) if recovered else None,
        "before": _phase([r for r in records if r.started < down_from]),
        "outage": _phase(during),
        "outage_503_one_line": sum(map(one_line, unavailable)),
        "outage_503_reasons": sorted({r.detail[:120] for r in unavailable})[:3],
        "outage_bad": [
            f"{r.kind} {r.status} {r.seconds:.2f}s {r.detail[:100]}"
            for r in during
            if r.status not in (200, 503) or r.seconds > ANSWER_WITHIN
        ][:5],
        "recovering": _phase([r for r in records if up_from <= r.started < end]),
        "after": _phase([r for r in records if r.started >= end]),
        "health_outage": _phase([r for r in health if down_at <= r.started < up_from]),
        "health_after": _phase([r for r in health if r.started >= end]),
        "fresh_after_recovery": fresh,
    }
    return result


# -- 3: killed halfway -------------------------------------------------------------------------

FINGERPRINT = """
SELECT (SELECT count(*) FROM compound), (SELECT count(*) FROM developer),
       (SELECT count(*) FROM ledger_entry), (SELECT count(*) FROM ledger_event),
       (SELECT md5(string_agg(e::text, '|' ORDER BY e.id)) FROM ledger_entry e)
"""


def fingerprint(url_pg: str) -> dict:
    with psycopg.connect(url_pg) as conn:
        row = conn.execute(FINGERPRINT).fetchone()
    return dict(zip(("compounds", "developers", "entries", "events", "ledger_md5"), row,
                    strict=True))  # fmt: skip


def cli_env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TITLEMAP_")}
    env.pop("DATABASE_URL", None)
    return env | {"DATABASE_URL": url, "TITLEMAP_COUNTY": COUNTY, "COLUMNS": "200"}


def titlemap(*args: str, url: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([str(TITLEMAP), *args], env=cli_env(url), capture_output=True,
                          text=True, timeout=timeout, cwd=REPO)  # fmt: skip


def kill_halfway(args: list[str], url: str, at_write: bool = True, after: float | None = None,
                 limit: float = 300, settle: float = 10) -> dict:  # fmt: skip
    """Start `titlemap ARGS`, SIGKILL its process group once its transaction has written
    (`at_write`) or `after` seconds; then wait up to `settle` s for its session to go.
    Returns when it was killed, whether it had written, and what PostgreSQL kept of it."""
    url_pg = libpq(url)
    before = fingerprint(url_pg)
    with psycopg.connect(url_pg, autocommit=True) as watch:
        name = watch.info.dbname
        proc = subprocess.Popen([str(TITLEMAP), *args], env=cli_env(url), cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)  # fmt: skip
        started = time.monotonic()
        written = False
        while proc.poll() is None and time.monotonic() - started < limit:
            if at_write and sessions(watch, name)["writing"]:
                written = True
                break
            if after is not None and time.monotonic() - started >= after:
                break
            time.sleep(0.01)
        finished = proc.poll() is not None
        if not finished:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        killed_at = time.monotonic() - started
        left, clean_after = sessions(watch, name), None
        while time.monotonic() - started - killed_at < settle:
            left = sessions(watch, name)
            if not left["idle_in_transaction"] and not left["writing"]:
                clean_after = round(time.monotonic() - started - killed_at, 2)
                break
            time.sleep(0.05)
    after_kill = fingerprint(url_pg)
    return {
        "killed_after_s": round(killed_at, 2),
        "finished_before_the_kill": finished,
        "had_written": written,
        "unchanged": after_kill == before,
        "before": before,
        "after": after_kill,
        "sessions_left": left,
        "sessions_clean_after_s": clean_after,
    }


def import_file(n: int, folder: Path) -> Path:
    """A GeoPackage of `n` compounds new to the demo county (its seed's shapes, new codes)."""
    import pyogrio

    from geo import demo as demo_county
    from geo.demo.files import _for_file

    frame = demo_county.generate(n, 1).compounds.copy()
    frame["code"] = frame["code"].str.replace(f"XQ{COUNTY}-", f"XQ{COUNTY}-K", regex=False)
    frame["name"] = frame["name"] + "（新）"
    path = folder / f"小区-{n}.gpkg"
    pyogrio.write_dataframe(_for_file(frame, "compounds"), path, layer="compounds",
                            driver="GPKG")  # fmt: skip
    return path


def ledger_file(n: int, folder: Path) -> Path:
    """The county's ledger (--fault-compounds, seed 1) with every plan changed."""
    import dataclasses

    from geo import demo as demo_county
    from geo.demo.files import write_ledger_xlsx

    county = demo_county.generate(n, 1)
    ledger = county.ledger.copy()
    ledger["plan"] = "复核后：" + ledger["plan"].fillna("")
    path = folder / "化解台账.xlsx"
    write_ledger_xlsx(dataclasses.replace(county, ledger=ledger), path)
    return path


def killed_commands(url: str, county_size: int, import_size: int, folder: Path) -> dict:
    """The three commands killed halfway; each import then run to its end."""
    results = {}
    gpkg = import_file(import_size, folder)
    command = ["import", str(gpkg), "--layer", "compounds", "--county", COUNTY]
    results["import"] = kill_halfway(command, url)
    full = titlemap(*command, url=url)
    results["import"]["then_whole"] = _last_line(full)
    xlsx = ledger_file(county_size, folder)
    command = ["ledger", "import", str(xlsx), "--county", COUNTY]
    results["ledger_import"] = kill_halfway(command, url)
    full = titlemap(*command, url=url)
    results["ledger_import"]["then_whole"] = _last_line(full)
    pdf = folder / "area.pdf"
    plan = make_plan(libpq(url), 1)
    command = ["print", "area", "--bbox", plan.print_box, "--county", COUNTY, "-o", str(pdf)]
    started = time.monotonic()
    whole = titlemap(*command, url=url)
    usual = time.monotonic() - started
    assert whole.returncode == 0 and pdf.exists(), whole.stderr
    pdf.unlink()
    results["print"] = kill_halfway(command, url, at_write=False, after=usual / 2)
    results["print"] |= {"usual_s": round(usual, 2), "pdf_left": pdf.exists()}
    return results


def _last_line(done: subprocess.CompletedProcess) -> str:
    lines = (done.stdout + done.stderr).strip().splitlines()
    return f"exit {done.returncode}: " + (lines[-1][:160] if lines else "")


def run(args) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="titlemap-reliability-faults-", dir="/tmp"))
    folder.chmod(0o755)
    cluster = LocalCluster(folder / "cluster", free_port(), fsync=False)
    cluster.ensure_running()
    server = None
    try:
        url = database(cluster, f"faults_{args.fault_compounds}", args.fault_compounds)
        url_pg = libpq(url)
        server = start_titlemap(url, 1)
        result = {"compounds": args.fault_compounds}
        result["outage"] = outage(server.base, url_pg, cluster, args.fault_connections,
                                  args.outage)  # fmt: skip
        server.stop()
        server = None
        result["killed"] = killed_commands(url, args.fault_compounds, args.import_compounds,
                                           folder)  # fmt: skip
        return result
    finally:
        if server:
            server.stop()
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)
