"""Benchmark: a 100-compound visit pack (cover + 100 A4 pages) on 2 cores. Target ≤ 60 s.

    .venv/bin/python benchmarks/print.py [--compounds 468] [--pages 100] [--keep FILE.pdf]

Generates the demo county with `--compounds` compounds (468, seed 1, puts exactly 100 of them
in 城东片区), loads it into a private PostGIS cluster of its own under /tmp (removed at the
end), selects 城东片区 (capped at `--pages` compounds) and times, in one run:

- the reference: every page drawn by one process (`workers=1`);
- titlemap's default: the pages split between two processes and merged (`workers=2`).

Each time covers reading the selection and its layers from PostGIS, the route, drawing and
writing the PDF. Reports pages, size, peak memory (this process and the largest worker) and
checks that the CJK font is embedded and every compound's name is in the text.
"""

import argparse
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from geo import demo as demo_county
from geo.db.cluster import LocalCluster
from geo.db.engine import make_engine
from geo.db.schema import upgrade
from geo.io.load import load_county
from geo.query.selection import select
from maps.fonts import print_font
from maps.print import plan_visit, render_visit

TARGET_S = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")


class Sampler(threading.Thread):
    """Every 50 ms: RSS and CPU time of this process and its descendants (the drawing workers
    hang under the forkserver), read from /proc; PostgreSQL's processes are left out."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_total = 0
        self.peak_one = 0
        self.cpu: dict[int, float] = {}
        self.stopped = threading.Event()

    def family(self) -> list[tuple[int, int, float]]:
        parents, stats = {}, {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                raw = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:
                continue
            name = raw[raw.index("(") + 1 : raw.rindex(")")]
            fields = raw[raw.rindex(")") + 2 :].split()
            pid = int(entry.name)
            parents[pid] = int(fields[1])
            if not name.startswith(("postgres", "pg_ctl", "runuser")):
                cpu = (int(fields[11]) + int(fields[12])) / TICK
                stats[pid] = (int(fields[21]) * PAGE, cpu)
        ours, me = [], os.getpid()
        for pid, (rss, cpu) in stats.items():
            walk = pid
            while walk and walk != me:
                walk = parents.get(walk, 0)
            if walk == me:
                ours.append((pid, rss, cpu))
        return ours

    def run(self) -> None:
        while not self.stopped.wait(0.05):
            ours = self.family()
            self.peak_total = max(self.peak_total, sum(rss for _, rss, _ in ours))
            self.peak_one = max([self.peak_one, *(rss for _, rss, _ in ours)])
            for pid, _, cpu in ours:
                self.cpu[pid] = max(self.cpu.get(pid, 0.0), cpu)

    def stop(self) -> tuple[float, float, float]:
        """(peak MiB of all processes together, of the largest one, CPU seconds spent)."""
        self.stopped.set()
        self.join()
        return self.peak_total / 2**20, self.peak_one / 2**20, sum(self.cpu.values())


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cores = len(os.sched_getaffinity(0))
    return f"{cpu}, {cores} cores, {mem:.0f} GiB, Python {platform.python_version()}"


def run(engine, pages: int, workers: int) -> tuple[float, float, bytes, list[str]]:
    started = time.perf_counter()
    with engine.connect() as conn:
        selection = select(conn, "629901", planned_area="城东片区")
        if len(selection.compounds) < pages:
            raise SystemExit(
                f"城东片区 has only {len(selection.compounds)} compounds: raise --compounds"
            )
        selection.compounds = selection.compounds[:pages]
        pack = plan_visit(conn, selection)
    read = time.perf_counter() - started
    body = render_visit(pack, workers=workers)
    return read, time.perf_counter() - started, body, [c.name for c in selection.compounds]


def check(body: bytes, names: list[str], pages: int) -> str:
    with tempfile.NamedTemporaryFile(suffix=".pdf") as handle:
        handle.write(body)
        handle.flush()
        info = subprocess.run(["pdfinfo", handle.name], capture_output=True, text=True).stdout
        found = int(
            next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages"))
        )
        fonts = subprocess.run(["pdffonts", handle.name], capture_output=True, text=True).stdout
        words = subprocess.run(["pdftotext", handle.name, "-"], capture_output=True, text=True)
    family = print_font().family.replace(" ", "")
    embedded = any(
        family in line and "CID TrueType" in line and " yes yes yes " in line
        for line in fonts.splitlines()
    )
    missing = [name for name in names if name not in words.stdout]
    assert found == pages + 1, f"{found} pages, expected {pages + 1}"
    assert embedded, fonts
    assert not missing, missing
    return f"{found} pages, font {print_font().family} embedded as CID TrueType, all names found"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--compounds", type=int, default=468, help="compounds in the county")
    parser.add_argument("--pages", type=int, default=100, help="compounds in the pack")
    parser.add_argument("--keep", type=Path, help="write the two-process pack here")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="titlemap-bench-print-", dir="/tmp"))
    cluster = LocalCluster(folder, free_port(), fsync=False)
    try:
        started = time.perf_counter()
        engine = make_engine(cluster.ensure_running())
        upgrade(engine)
        county = demo_county.generate(args.compounds, 1)
        load_county(engine, county, replace=True)
        print(
            f"setup: cluster + demo({args.compounds}, seed 1) loaded in "
            f"{time.perf_counter() - started:.1f} s"
        )
        print(f"machine: {machine()}")
        results = {}
        for label, workers in (("reference: 1 process", 1), ("titlemap: 2 processes", 2)):
            before = os.times()
            sampler = Sampler()
            sampler.start()
            read, total, body, names = run(engine, args.pages, workers)
            peak, largest, cpu = sampler.stop()
            load = os.getloadavg()[0]
            cpu -= before.user + before.system  # what this process had spent before the run
            verdict = check(body, names, args.pages)
            results[label] = total
            print(
                f"{label:24s} {total:6.1f} s wall, {cpu:5.1f} s CPU, peak RSS {largest:.0f} MiB "
                f"largest process / {peak:.0f} MiB all together, load average {load:.1f} "
                f"(PostGIS reads + route {read:.2f} s; {len(body) / 2**20:.1f} MiB PDF; {verdict})"
            )
            if workers == 2 and args.keep:
                args.keep.write_bytes(body)
        best = results["titlemap: 2 processes"]
        ok = "meets" if best <= TARGET_S else "MISSES"
        print(
            f"{args.pages}-compound visit pack on 2 cores: {best:.1f} s — {ok} the "
            f"{TARGET_S:.0f} s target; {results['reference: 1 process'] / best:.2f}× the "
            "one-process reference"
        )
        engine.dispose()
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
