"""Load: --connections clients for --seconds on the county, over the mix a county's users make.

    .venv/bin/python -m benchmarks.reliability load [--compounds 100000] [--seconds 60]
                     [--connections 50] [--workers 1] [--runs 2] [--print-every 60] [--keep DIR]

`titlemap serve` in its own process on the demo county of --compounds compounds. Each client
is a thread with one keep-alive connection (httpx), drawing its next request from MIX:

- tiles z12–z16 of the compounds layer (`/api/tiles/compounds/{z}/{x}/{y}.pbf?county=…`):
  *cached* — a fixed set per zoom, fetched once before the run; *uncached* — z14–z16 tiles not
  asked yet in this run (when all have been asked, the county's revision is moved as
  benchmarks/serve.py's stale_every_tile does — a county loaded again — and they start over;
  that also stales the cached set once, counted as `revision_moves`);
- OGC items pages of 100 at random offsets, `/api/compounds?limit=100&bbox=…` around a
  compound, compound cards, `/api/stats`, parcel pages (`/parcels/{code}`, HTML);
- and one area map PDF a minute (`/print/area.pdf?bbox=…`, a few compounds), from a thread of
  its own, the first two seconds in.

Reported per run: requests/s, p50/p99/max per kind, errors (anything but a 200, or no answer
within 30 s; goal 0), the serving process's RSS (VmRSS from /proc) at the start, the end and
its peak (goal ≤ 400 MB per worker), PostgreSQL client sessions on the database (sampled each
second: all, active, idle in transaction). The mix runs --runs times on the same server: the
RSS at the end of the last against the end of the first says whether memory grows.
"""

import random
import statistics
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

import httpx
import psycopg

from benchmarks.reliability import (
    COUNTY,
    county_url,
    datname,
    libpq,
    load_average,
    sessions,
    summary,
    worker_rss,
)
from benchmarks.serve import stale_every_tile, start_titlemap
from geo.query.tiles import tile_of

TARGET_RSS_MB = 400
ZOOMS = (12, 13, 14, 15, 16)
FRESH_ZOOMS = (14, 15, 16)
MIX = {  # kind → weight
    "tile_cached": 30,
    "tile_uncached": 12,
    "ogc_items": 8,
    "compounds_bbox": 10,
    "card": 18,
    "stats": 6,
    "parcel_page": 8,
}
TIMEOUT = 30.0


def add_arguments(parser) -> None:
    group = parser.add_argument_group("load")
    group.add_argument("--connections", type=int, default=50, help="clients at once")
    group.add_argument("--workers", type=int, default=1, help="titlemap serve --workers")
    group.add_argument("--runs", type=int, default=2, help="the mix again on the same server")
    group.add_argument("--print-every", type=float, default=60, help="seconds between prints")
    group.add_argument("--warm-tiles", type=int, default=30, help="cached tiles per zoom")
    group.add_argument("--cache-mb", type=int, default=64, help="TITLEMAP_TILE_CACHE_MB")


@dataclass
class Plan:
    """What the clients ask for: paths drawn from the county's own compounds and parcels."""

    warm: list[str]
    fresh: list[str]
    codes: list[str]
    parcels: list[str]
    boxes: list[str]
    compounds: int
    print_box: str
    _left: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    revision_moves: int = 0

    def restart(self, url_pg: str) -> None:
        """Every tile stale (the revision moved) and every fresh tile unasked again."""
        stale_every_tile(url_pg)
        with self._lock:
            self._left = list(self.fresh)
            random.Random(len(self._left)).shuffle(self._left)

    def next_fresh(self, url_pg: str) -> str:
        with self._lock:
            if not self._left:
                try:
                    stale_every_tile(url_pg)
                    self.revision_moves += 1
                except psycopg.Error:
                    pass  # the database is down (benchmarks/reliability/faults.py): asked again
                self._left = list(self.fresh)
                random.Random(self.revision_moves).shuffle(self._left)
            return self._left.pop()

    def path(self, kind: str, rng: random.Random, url_pg: str) -> str:
        if kind == "tile_cached":
            return rng.choice(self.warm)
        if kind == "tile_uncached":
            return self.next_fresh(url_pg)
        if kind == "ogc_items":
            offset = rng.randrange(max(1, self.compounds - 100))
            return f"/ogc/collections/compounds/items?limit=100&offset={offset}&county={COUNTY}"
        if kind == "compounds_bbox":
            return f"/api/compounds?limit=100&bbox={rng.choice(self.boxes)}&county={COUNTY}"
        if kind == "card":
            return f"/api/compounds/{rng.choice(self.codes)}/card?county={COUNTY}"
        if kind == "stats":
            return f"/api/stats?county={COUNTY}"
        if kind == "parcel_page":
            return f"/parcels/{rng.choice(self.parcels)}?county={COUNTY}"
        if kind == "print":
            return f"/print/area.pdf?bbox={self.print_box}&county={COUNTY}"
        raise ValueError(kind)


def _tile(z: int, x: int, y: int) -> str:
    return f"/api/tiles/compounds/{z}/{x}/{y}.pbf?county={COUNTY}"


def make_plan(url_pg: str, warm_per_zoom: int = 30, seed: int = 1) -> Plan:
    rng = random.Random(seed)
    with psycopg.connect(url_pg) as conn:
        centres = conn.execute(
            "SELECT code, ST_X(p), ST_Y(p) FROM (SELECT code, ST_PointOnSurface(geom) AS p "
            "FROM compound WHERE county_code = %s) c ORDER BY code",
            (COUNTY,),
        ).fetchall()
        parcels = [r[0] for r in conn.execute(
            "SELECT code FROM parcel WHERE county_code = %s ORDER BY code", (COUNTY,))]  # fmt: skip
    codes = [c for c, _, _ in centres]
    warm, fresh = [], []
    for z in ZOOMS:
        tiles = sorted({tile_of(x, y, z) for _, x, y in centres})
        chosen = rng.sample(tiles, min(warm_per_zoom, len(tiles)))
        warm += [_tile(z, *t) for t in chosen]
        if z in FRESH_ZOOMS:
            fresh += [_tile(z, *t) for t in tiles if t not in set(chosen)]
    sample = rng.sample(centres, min(2000, len(centres)))
    boxes = [f"{x - 0.004:.5f},{y - 0.003:.5f},{x + 0.004:.5f},{y + 0.003:.5f}"
             for _, x, y in sample]  # fmt: skip
    _, x, y = rng.choice(centres)
    print_box = f"{x - 0.003:.5f},{y - 0.002:.5f},{x + 0.003:.5f},{y + 0.002:.5f}"
    return Plan(warm, fresh, rng.sample(codes, min(5000, len(codes))),
                rng.sample(parcels, min(5000, len(parcels))), boxes, len(codes),
                print_box)  # fmt: skip


@dataclass
class Record:
    kind: str
    started: float  # time.monotonic()
    seconds: float
    status: int | str  # the HTTP status, or the exception's name when there was no answer
    detail: str = ""


class Mix:
    """--connections client threads over the plan for `seconds`, and the samplers."""

    def __init__(self, base: str, url_pg: str, plan: Plan, connections: int,
                 mix: dict[str, int] | None = None, print_every: float | None = 60,
                 server_pid: int | None = None, timeout: float = TIMEOUT):  # fmt: skip
        self.base, self.url_pg, self.plan = base, url_pg, plan
        self.connections, self.print_every, self.server_pid = connections, print_every, server_pid
        self.mix = mix or MIX
        self.timeout = timeout
        self.sample = True  # the sessions and the server's RSS, each second
        self.records: list[Record] = []
        self.samples: list[dict] = []
        self._lock = threading.Lock()
        self.stop = threading.Event()

    def _one(self, client: httpx.Client, kind: str, path: str) -> Record:
        started, clock = time.monotonic(), time.perf_counter()
        try:
            response = client.get(path)
            status, body = response.status_code, response.content
            detail = "" if status == 200 else body[:200].decode(errors="replace")
        except httpx.HTTPError as exc:
            status, detail = type(exc).__name__, str(exc)[:200]
        record = Record(kind, started, time.perf_counter() - clock, status, detail)
        with self._lock:
            self.records.append(record)
        return record

    def _client(self, seed: int) -> None:
        rng = random.Random(seed)
        kinds, weights = list(self.mix), list(self.mix.values())
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        with httpx.Client(base_url=self.base, timeout=self.timeout, limits=limits) as client:
            while not self.stop.is_set():
                kind = rng.choices(kinds, weights)[0]
                self._one(client, kind, self.plan.path(kind, rng, self.url_pg))

    def _printer(self) -> None:
        if not self.print_every:
            return
        with httpx.Client(base_url=self.base, timeout=120) as client:
            if self.stop.wait(2):
                return
            while True:
                self._one(client, "print", self.plan.path("print", random.Random(0), ""))
                if self.stop.wait(self.print_every):
                    return

    def _sampler(self) -> None:
        with psycopg.connect(self.url_pg, autocommit=True) as conn:
            name = conn.info.dbname
            while not self.stop.is_set():
                sample = {"at": time.monotonic()}
                try:
                    sample |= sessions(conn, name)
                except psycopg.Error:
                    pass
                if self.server_pid:
                    sample["rss_mb"] = worker_rss(self.server_pid)
                self.samples.append(sample)
                self.stop.wait(1)

    def run(self, seconds: float) -> dict:
        self.stop.clear()
        threads = [threading.Thread(target=self._client, args=(i,), daemon=True)
                   for i in range(self.connections)]  # fmt: skip
        threads.append(threading.Thread(target=self._printer, daemon=True))
        if self.sample:
            threads.append(threading.Thread(target=self._sampler, daemon=True))
        started = time.monotonic()
        for thread in threads:
            thread.start()
        self.stop.wait(seconds)
        self.stop.set()
        for thread in threads:
            thread.join(self.timeout + 120)
        return self.report(time.monotonic() - started)

    def report(self, wall: float) -> dict:
        by_kind: dict[str, list[Record]] = defaultdict(list)
        for record in self.records:
            by_kind[record.kind].append(record)
        kinds = {}
        for kind, records in sorted(by_kind.items()):
            kinds[kind] = summary([r.seconds for r in records]) | {
                "errors": sum(r.status != 200 for r in records)
            }
        errors = [r for r in self.records if r.status != 200]
        sampled = [s for s in self.samples if "total" in s]
        rss = [s["rss_mb"] for s in self.samples if s.get("rss_mb")]
        return {
            "connections": self.connections,
            "seconds": round(wall, 1),
            "requests": len(self.records),
            "per_s": round(len(self.records) / wall, 1),
            "errors": len(errors),
            "first_errors": [f"{r.kind} {r.status} {r.detail[:120]}" for r in errors[:5]],
            "kinds": kinds,
            "rss_mb": {"start": round(rss[0]), "end": round(rss[-1]), "peak": round(max(rss))}
            if rss
            else None,
            "pg_sessions": {
                "max": max(s["total"] for s in sampled),
                "median": statistics.median(s["total"] for s in sampled),
                "max_active": max(s["active"] for s in sampled),
                "max_idle_in_transaction": max(s["idle_in_transaction"] for s in sampled),
            }
            if sampled
            else None,
            "revision_moves": self.plan.revision_moves,
        }


def warm_up(base: str, plan: Plan) -> None:
    """The cached set fetched once; one request of each kind (imports, PROJ, the memo)."""
    rng = random.Random(0)
    with httpx.Client(base_url=base, timeout=120) as client:
        for path in plan.warm:
            client.get(path).raise_for_status()
        for kind in [k for k in MIX if k != "tile_uncached"] + ["print"]:
            client.get(plan.path(kind, rng, "")).raise_for_status()


def runs(base: str, url_pg: str, plan: Plan, connections: int, seconds: float, count: int,
         print_every: float | None, server_pid: int | None) -> list[dict]:  # fmt: skip
    """The mix `count` times on one server, each from a stale revision and a warm cached set."""
    results = []
    for i in range(count):
        plan.restart(url_pg)
        time.sleep(0.2)  # the server's notice
        warm_up(base, plan)
        mix = Mix(base, url_pg, plan, connections, print_every=print_every, server_pid=server_pid)
        result = mix.run(seconds)
        print(f"  run {i + 1}: {result['per_s']} req/s, {result['errors']} errors, "
              f"RSS {result['rss_mb']}", flush=True)  # fmt: skip
        results.append(result)
    return results


def run(args) -> dict:
    url = county_url(args)
    url_pg = libpq(url)
    plan = make_plan(url_pg, args.warm_tiles)
    print(f"  {plan.compounds} compounds, {len(plan.warm)} cached tiles, {len(plan.fresh)} "
          f"uncached ones, load average {load_average():.1f}", flush=True)  # fmt: skip
    server = start_titlemap(url, args.workers, cache_mb=args.cache_mb)
    try:
        results = runs(server.base, url_pg, plan, args.connections, args.seconds, args.runs,
                       args.print_every, server.proc.pid)  # fmt: skip
    finally:
        server.stop()
    ends = [r["rss_mb"]["end"] for r in results if r["rss_mb"]]
    return {
        "compounds": plan.compounds,
        "database": datname(url),
        "workers": args.workers,
        "tile_cache_mb": args.cache_mb,
        "load_average_after": round(load_average(), 2),
        "runs": results,
        "rss_growth_mb": ends[-1] - ends[0] if len(ends) > 1 else None,
        "rss_goal_mb": TARGET_RSS_MB,
    }
