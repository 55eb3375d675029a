"""宗地核查 / parcel checks, computed in PostGIS over the county's GiST-indexed tables.

Before a certificate can be issued, land-resources staff must be sure of the land under a
compound. `run_parcel_checks(conn, county, settings)` checks every parcel (宗地) of a county in a
few set-based SQL statements; `check_parcel(conn, county, code, settings)` runs the very same
statements restricted to one parcel and its surroundings, for the parcel page; `write_xlsx`
writes a report as a problem list with Chinese headers.

The checks (`CHECKS`), and the SQL idea behind each:

- parcel_code 宗地代码: `geo.core.codes.check_parcel_code` (county prefix, digits, feature letters,
  sequence). A regular expression equal to those rules (`parcel_code_pattern`) lets PostgreSQL
  pass the good codes, so Python only explains the bad ones. no_parcel_code 尚无宗地代码: a
  survey's plot kept under its own number (`is_parcel_code_attempt`), to get its code later.
- geometry 图形有效: `ST_IsValid` / `ST_IsValidDetail` (and empty shapes), once per parcel, first.
  Every other check uses `ST_MakeValid` of an invalid shape, so one bad drawing cannot abort
  the run; it says so.
- area 面积核对: `ST_Area(ST_Transform(geom, gk))` in the county's Gauss-Krüger zone against the
  recorded area; a relative difference beyond `area_tolerance` (default 1 %) fails.
- overlap 宗地重叠: parcels are grouped into clusters of touching parcels with
  `ST_ClusterDBSCAN(geom, 0, 1)` (one window pass with an STR-tree inside); a cluster whose
  parcels' areas add up to more than the area of their `ST_Union` holds an overlap. Only there
  are pairs formed, on the GiST index (`b.geom && a.geom`), tested with
  `ST_Relate(a, b, '2********')` (interiors meet in an area) and cut with `ST_Intersection`.
  Pieces up to
  `overlap_tolerance_m2` are slivers: ignored and counted; below `NOISE_M2` they are
  floating-point noise of shared edges and not even counted.
- gap 宗地间缝隙: per compound with two or more parcels, U = the union of its parcels (the
  cluster's union when the cluster is exactly those parcels). Land between its parcels that
  belongs to none: holes of U (enclosed by them), and compound land outside U that a
  morphological closing `ST_Buffer(ST_Buffer(U, r, 'join=mitre'), -r, 'join=mitre')` fills
  (narrower than `gap_width_m`); pieces larger than `gap_tolerance_m2` touching at least two of
  its parcels are gaps. Only compounds with land outside U or holes in U get the buffers.
- beyond 超出宗地: `ST_Difference(compound, U)`, less the gaps already reported; pieces larger
  than `beyond_tolerance_m2`, with their area, the side of the compound and greatest depth
  (the farthest point of the piece from U: `farthest_m`, not its farthest vertex).
  Where the outlines of the compound and U agree once points within `SIMPLIFY_DEG` of a
  straight line are dropped (`ST_Simplify` + `ST_Normalize` + `ST_OrderingEquals`, exact), the
  difference is bounded by that band and the overlay is skipped.
- planned 规划冲突: planned roads and green space, taken into the GK zone (where their long
  straight edges were drawn) and cut into pieces of at most `SUBDIVIDE_VERTICES` vertices
  (`ST_Subdivide`), joined to parcels on the GiST index; an intersection beyond
  `planned_tolerance_m2` fails.
- arrears 欠缴出让金: premium due − paid > `arrears_tolerance_yuan`.
- orphan_parcel 宗地未关联小区 / compound_no_parcel 小区无宗地: anti-joins on compound_parcel; the
  reason names compounds or parcels lying on them without a link.
- credit_code 开发企业信用代码: `geo.core.codes.check_credit_code` on every developer of the county.
- closing_rule 销号不符合本县规则: closed ledger entries against the county's closing rule
  (`geo.ledger.rules.closing_breach`; geo/checks/ledger.py).

A county run splits the work into tasks and runs them on `workers` connections at once, all
reading one exported snapshot, so the figures are those of one moment: first the clusters
(dealt out to `workers` shares in the same statement, largest first, each compound with the
cluster of its first parcel) and the invalid shapes, with the small checks (codes, planned
areas, compounds without parcels, developers) filling the gaps; then the shares of overlaps,
gaps and beyond (the largest tasks first) and the per-parcel checks in `workers` parts by id.
Shares travel as PostgreSQL array literals, never as rows through Python. Every report
carries the tolerances and the Gauss-Krüger EPSG it measured in (`CheckReport.summary`), so a
reader can redo any figure.
"""

import math
import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace

from sqlalchemy import Connection, text

from geo.checks.ledger import closing_rule_stage
from geo.checks.report import (
    CHECKS,
    CheckReport,
    CheckSettings,
)
from geo.checks.stages import (
    Found,
    Plan,
    cluster_stage,
    code_stage,
    compound_stage,
    developer_stage,
    lonely_compounds,
    name_overlap_compounds,
    parcel_stage,
    planned_stage,
    validity_stage,
)
from geo.core.dates import now
from geo.query.compounds import get_county

MAX_WORKERS = 4


def default_workers() -> int:
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


def run_parcel_checks(
    conn: Connection,
    county: str,
    settings: CheckSettings | None = None,
    workers: int | None = None,
) -> CheckReport:
    """Every check on every parcel, compound and developer of `county`.

    With `workers` > 1 (default: the CPU count, at most 4) the work is split over as many
    extra connections reading `conn`'s snapshot; if `conn` has written anything not yet
    committed, the run stays on `conn` alone, so it sees those writes."""
    settings = settings or CheckSettings()
    started = time.perf_counter()
    info = get_county(conn, county)
    plan = Plan(county, info.epsg, settings, square_degree_m2(conn, county))
    n = max(1, workers or default_workers())
    timings: dict[str, float] = {}
    with _Runner(conn, n) as runner:
        # First what the rest depends on: clusters (and their shares) and the invalid shapes.
        first = [runner.submit(lambda c: cluster_stage(c, plan, n)),
                 runner.submit(lambda c: validity_stage(c, plan))]  # fmt: skip
        # Codes, planned areas, compounds without parcels and developers feed nothing else:
        # they fill the gaps, on a copy of the plan (they test validity themselves).
        own = replace(plan)
        stages = (planned_stage, developer_stage, lonely_compounds, code_stage,
                  closing_rule_stage)  # fmt: skip
        small = [runner.submit(lambda c, stage=stage: stage(c, own)) for stage in stages]
        found = _gather(task.result() for task in first)
        timings["validity, clusters"] = time.perf_counter() - started
        plan.bad_parcels = sorted(found.bad_parcels)
        # The largest tasks first, so that the workers finish together.
        second = [runner.submit(lambda c, share=share: compound_stage(c, plan, share))
                  for share in found.shares]  # fmt: skip
        second += [runner.submit(_part(parcel_stage, plan, n, k)) for k in range(n)]
        found.add(_gather(task.result() for task in second + small))
    name_overlap_compounds(conn, plan, found)
    timings["total"] = time.perf_counter() - started
    return build_report(info, plan, found, timings, "county", n)


def _part(stage, plan: Plan, n: int, k: int) -> Callable[[Connection], Found]:
    return lambda conn: stage(conn, plan, n, k)


def _gather(parts) -> Found:
    found = Found()
    for part in parts:
        found.add(part)
    return found


class _Runner:
    """Tasks on `conn` alone, or on `workers` connections sharing its snapshot."""

    def __init__(self, conn: Connection, workers: int) -> None:
        self.conn = conn
        tune(conn)
        wrote = conn.execute(text("SELECT txid_current_if_assigned()")).scalar() is not None
        autocommit = getattr(conn.connection.driver_connection, "autocommit", False)
        self.pool = None
        if workers > 1 and not wrote and not autocommit:  # a snapshot needs a transaction
            self.snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            self.pool = ThreadPoolExecutor(max_workers=workers)

    def __enter__(self) -> "_Runner":
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)

    def submit(self, task: Callable[[Connection], Found]) -> Future:
        if self.pool is not None:
            return self.pool.submit(self._on_own_connection, task)
        done: Future = Future()
        done.set_result(task(self.conn))
        return done

    def _on_own_connection(self, task: Callable[[Connection], Found]) -> Found:
        with self.conn.engine.connect() as own:
            own = own.execution_options(isolation_level="REPEATABLE READ")
            own.execute(text(f"SET TRANSACTION SNAPSHOT '{self.snapshot}'"))
            tune(own, parallel=False)  # the workers are the parallelism
            try:
                return task(own)
            finally:
                own.rollback()


def tune(conn: Connection, parallel: bool = True) -> None:
    # For this transaction only: JIT compiles for longer than these queries run, and the
    # unions want more than the default 4 MB to stay in memory.
    conn.execute(
        text(
            "SELECT set_config('jit', 'off', true), set_config('work_mem', '256MB', true), "
            "set_config('max_parallel_workers_per_gather', :gather, true)"
        ),
        {"gather": "2" if parallel else "0"},
    )


def square_degree_m2(conn: Connection, county: str) -> float:
    """About how many m² a square degree holds in the county: to skip float noise cheaply.

    Only ever compared against half a tolerance, before the exact figure in the GK zone."""
    lat = conn.execute(
        text("SELECT ST_Y(ST_Centroid(geom)) FROM county WHERE code = :c"), {"c": county}
    ).scalar()
    lat = 35.0 if lat is None else lat
    return 111_320 * math.cos(math.radians(lat)) * 110_574


def build_report(info, plan: Plan, found: Found, timings: dict, scope: str,
            workers: int) -> CheckReport:  # fmt: skip
    order = {check: k for k, check in enumerate(CHECKS)}
    problems = sorted(found.problems, key=lambda p: (order[p.check], p.parcel or "",
                                                     p.compound or "", p.related))  # fmt: skip
    numbers: Counter = Counter()
    for problem in problems:
        numbers[problem.check] += 1
        problem.id = f"{problem.check}-{numbers[problem.check]}"
    problem_of: dict[str, list[str]] = defaultdict(list)
    for problem in problems:
        for piece in problem.pieces:
            problem_of[piece].append(problem.id)
    pieces = sorted(found.pieces, key=lambda f: f["id"])
    for feature in pieces:
        feature["properties"]["problems"] = problem_of.get(feature["id"], [])
    slivers = {"count": len(found.slivers), "area_m2": round(sum(s[0] for s in found.slivers), 4)}
    return CheckReport(info.code, info.name, info.epsg, plan.settings, now(),
                       found.counts, problems, pieces, slivers, timings, scope,
                       workers)  # fmt: skip
