"""宗地核查 / parcel checks, computed in PostGIS over the county's GiST-indexed tables.

Before a certificate can be issued, land-resources staff must be sure of the land under a
compound. `run_parcel_checks(conn, county, settings)` checks every parcel (宗地) of a county in a
few set-based SQL statements; `check_parcel(conn, county, code, settings)` runs the very same
statements restricted to one parcel and its surroundings, for the parcel page; `write_xlsx`
writes a report as a problem list with Chinese headers.

The checks (`CHECKS`), and the SQL idea behind each:

- parcel_code 宗地代码: `geo.core.codes.check_parcel_code` (county prefix, digits, feature letters,
  sequence). A regular expression equal to those rules (`parcel_code_pattern`) lets PostgreSQL
  pass the good codes, so Python only explains the bad ones.
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
  than `beyond_tolerance_m2`, with their area, the side of the compound and greatest depth.
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

import json
import math
import os
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, text

from geo import TitlemapError
from geo.core.codes import (
    check_credit_code,
    check_parcel_code,
    credit_code_ok,
    parcel_code_pattern,
)
from geo.core.model import PLANNED_AREA_LABELS, PlannedAreaKind
from geo.query.compounds import get_county

TZ = ZoneInfo("Asia/Shanghai")
CONFLICT_KINDS = (PlannedAreaKind.PLANNED_ROAD.value, PlannedAreaKind.GREEN_SPACE.value)
NOISE_M2 = 1e-4  # overlaps smaller than 1 cm² are float noise along shared edges
TOUCH_M = 0.01  # a gap piece touches a parcel within 1 cm
SUBDIVIDE_VERTICES = 128
# Outlines that agree once points within 1e-9° (≈ 0.1 mm) of a straight line are dropped differ
# by at most a band that thin: cut points of one projection's straight line lie that close to
# the same line in another.
SIMPLIFY_DEG = 1e-9
MAX_WORKERS = 4
NEIGHBOUR_M = 50.0  # the parcel page shows parcels this close

# check id → (Chinese, English), in report order.
CHECKS: dict[str, tuple[str, str]] = {
    "parcel_code": ("宗地代码", "parcel code"),
    "geometry": ("图形有效性", "valid geometry"),
    "area": ("面积核对", "drawn vs recorded area"),
    "overlap": ("宗地重叠", "overlap with other parcels"),
    "gap": ("宗地间缝隙", "gap between parcels of a compound"),
    "beyond": ("小区超出宗地", "compound beyond its parcels"),
    "planned": ("压占规划道路或绿地", "planned road or green space"),
    "arrears": ("欠缴土地出让金", "land premium arrears"),
    "orphan_parcel": ("宗地未关联小区", "parcel with no compound"),
    "compound_no_parcel": ("小区无宗地", "compound with no parcel"),
    "credit_code": ("开发企业信用代码", "developer credit code"),
}
# How each check is computed, for the report's 核查方法 sheet and the parcel page.
CHECK_METHODS = {
    "parcel_code": "按 GB/T 37346 逐位核对：本县行政区划代码、地籍区、地籍子区、宗地特征码、顺序号",
    "geometry": "PostGIS ST_IsValid；无效图形按 ST_MakeValid 修复后参与其余核查",
    "area": "图形在本县高斯-克吕格投影下的平面面积与登记面积之差，超过面积容差即不通过",
    "overlap": "与其他宗地的交集面积（ST_Intersection）；不超过重叠容差的碎片忽略并计数",
    "gap": "同一小区各宗地之间不属于任何宗地的土地：被其宗地围住的，或在小区范围内、"
    "窄于缝隙搜索宽度（各宗地合并后先外扩再内缩该宽度的一半可填满）且夹在两宗及以上宗地之间的",
    "beyond": "小区范围减去其宗地（及已报缝隙）后剩余的部分，给出面积、方位和最远超出距离",
    "planned": "宗地与规划道路、规划绿地的交集面积",
    "arrears": "应缴土地出让金减已缴金额",
    "orphan_parcel": "宗地未与任何小区建立关联",
    "compound_no_parcel": "小区未与任何宗地建立关联",
    "credit_code": "按 GB 32100 核对开发企业统一社会信用代码（含组织机构代码校验码和末位校验码）",
}
VALIDITY_WORDS = {
    "Ring Self-intersection": "环自相交",
    "Self-intersection": "自相交",
    "Too few points in geometry component": "构成部分点数过少",
    "Hole lies outside shell": "内环位于外环之外",
    "Nested holes": "内环相互嵌套",
    "Interior is disconnected": "内部不连通",
    "Nested shells": "外环相互嵌套",
    "Duplicate Rings": "环重复",
    "Invalid Coordinate": "坐标无效",
    "Ring is not closed": "环未闭合",
}
SIDES = ("北", "东北", "东", "东南", "南", "西南", "西", "西北")
SIDES_EN = ("north", "north-east", "east", "south-east", "south", "south-west", "west",
            "north-west")  # fmt: skip


# -- settings ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckSettings:
    """Tolerances of the parcel checks; every report repeats them."""

    area_tolerance: float = 0.01  # |drawn − recorded| / recorded
    overlap_tolerance_m2: float = 1.0  # overlaps up to this are slivers: ignored and counted
    gap_tolerance_m2: float = 1.0
    gap_width_m: float = 10.0  # gaps narrower than this are searched; wider land is "beyond"
    beyond_tolerance_m2: float = 1.0
    planned_tolerance_m2: float = 1.0
    arrears_tolerance_yuan: float = 0.0

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TitlemapError(f"容差 {item.name} 应为数 / tolerance must be a number")
            if not math.isfinite(value) or value < 0:
                raise TitlemapError(
                    f"容差 {item.name} 应为非负数 / tolerance {item.name} must be ≥ 0: {value!r}"
                )
        if self.area_tolerance >= 1:
            raise TitlemapError(
                f"面积容差是比例，如 0.01 表示 1 % / area_tolerance is a fraction (0.01 = 1 %): "
                f"{self.area_tolerance}"
            )
        if not 0 < self.gap_width_m <= 100:
            raise TitlemapError(
                f"缝隙搜索宽度应在 0–100 m 之间 / gap_width_m must be in (0, 100]: "
                f"{self.gap_width_m}"
            )

    def describe(self) -> list[dict]:
        """Each tolerance with its Chinese and English label, value, unit and words."""
        words = {
            "area_tolerance": ("面积容差（相对登记面积）", "area tolerance, of the recorded area"),
            "overlap_tolerance_m2": ("重叠容差（不超过此面积的碎片忽略并计数）",
                                     "overlap tolerance (slivers up to it ignored, counted)"),
            "gap_tolerance_m2": ("缝隙容差", "gap tolerance"),
            "gap_width_m": ("缝隙搜索宽度（更宽的空地计入超出宗地）",
                            "widest gap searched (wider land counts as beyond)"),
            "beyond_tolerance_m2": ("超出宗地容差", "beyond-parcel tolerance"),
            "planned_tolerance_m2": ("规划冲突容差", "planned-area conflict tolerance"),
            "arrears_tolerance_yuan": ("欠缴容差", "arrears tolerance"),
        }  # fmt: skip
        units = {"area_tolerance": "%", "gap_width_m": "m", "arrears_tolerance_yuan": "元"}
        out = []
        for name, (zh, en) in words.items():
            value = getattr(self, name)
            unit = units.get(name, "m²")
            shown = _percent(value, signed=False) if unit == "%" else f"{value:g} {unit}"
            out.append({"name": name, "zh": zh, "en": en, "value": value, "unit": unit,
                        "text": shown})  # fmt: skip
        return out

    def line(self) -> str:
        """The tolerances in one Chinese line, for report headers."""
        return "；".join(f"{t['zh'].split('（')[0]} {t['text']}" for t in self.describe())


# -- results -------------------------------------------------------------------------------------


@dataclass(slots=True)
class Problem:
    """One failed check: what, where, the figure and the reason in words."""

    check: str
    parcel: str | None = None  # 宗地代码
    compound: str | None = None  # 小区编号 (several joined by 、)
    compound_name: str | None = None
    related: list[str] = field(default_factory=list)  # other parcels, planned areas, developer
    value: float | None = None
    unit: str | None = None
    reason: str = ""
    reason_en: str = ""
    lon: float | None = None
    lat: float | None = None
    pieces: list[str] = field(default_factory=list)
    id: str = ""

    @property
    def label(self) -> str:
        return CHECKS[self.check][0]

    def as_dict(self) -> dict:
        return {
            "id": self.id, "check": self.check, "check_label": self.label,
            "parcel": self.parcel, "compound": self.compound,
            "compound_name": self.compound_name, "related": list(self.related),
            "value": self.value, "unit": self.unit, "reason": self.reason,
            "reason_en": self.reason_en, "lon": self.lon, "lat": self.lat,
            "pieces": list(self.pieces),
        }  # fmt: skip


@dataclass
class CheckReport:
    county: str
    county_name: str
    epsg: int
    settings: CheckSettings
    generated_at: datetime
    counts: dict[str, int]
    problems: list[Problem]
    pieces: list[dict]  # GeoJSON features in EPSG:4490
    slivers: dict[str, float]
    timings: dict[str, float] = field(default_factory=dict)
    scope: str = "county"  # or the parcel code, for check_parcel
    workers: int = 1

    def summary(self) -> dict:
        by_check = Counter(p.check for p in self.problems)
        return {
            "county": self.county,
            "county_name": self.county_name,
            "scope": self.scope,
            "gk_epsg": self.epsg,
            "crs": crs_words(self.epsg),
            "storage_epsg": 4490,
            "generated_at": self.generated_at.isoformat(timespec="seconds"),
            "tolerances": {t["name"]: t["value"] for t in self.settings.describe()},
            "tolerance_words": self.settings.describe(),
            "noise_floor_m2": NOISE_M2,
            "checked": self.counts,
            "problems": len(self.problems),
            "problems_by_check": {
                check: {"label": CHECKS[check][0], "count": by_check.get(check, 0)}
                for check in CHECKS
            },
            "parcels_with_problems": len({p.parcel for p in self.problems if p.parcel}),
            "slivers_ignored": self.slivers,
            "seconds": round(self.timings.get("total", 0.0), 3),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "workers": self.workers,
        }

    def to_dict(self) -> dict:
        return {"summary": self.summary(), "problems": [p.as_dict() for p in self.problems]}

    def pieces_geojson(self) -> dict:
        """The problem pieces (overlaps, gaps, land beyond parcels, planned conflicts) as a layer.

        The summary rides along as a foreign member, so the layer alone says how it was made."""
        return {
            "type": "FeatureCollection",
            "name": f"{self.county_name}宗地核查问题图斑",
            "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4490"}},
            "summary": self.summary(),
            "features": self.pieces,
        }


def crs_words(epsg: int) -> str:
    zone = epsg - 4534 + 25 if 4534 <= epsg <= 4554 else epsg - 4513 + 25
    return f"CGCS2000 3 度带高斯-克吕格投影 第 {zone} 带（中央经线 {3 * zone}°E），EPSG:{epsg}"


# -- running -------------------------------------------------------------------------------------


@dataclass
class _Plan:
    """What one run looks at and how: the county, or a few parcels (the parcel page)."""

    county: str
    epsg: int
    settings: CheckSettings
    m2_per_deg2: float  # roughly, to skip float noise before measuring exactly
    parcels: list[int] | None = None  # None: the whole county
    compounds: list[int] | None = None
    bad_parcels: list[int] = field(default_factory=list)

    def params(self, **extra) -> dict:
        return {
            "county": self.county,
            "epsg": self.epsg,
            "ids": self.parcels or [],
            "cids": self.compounds or [],
            "bad_p": self.bad_parcels,
            "kdeg": self.m2_per_deg2,
            **extra,
        }

    def only(self, column: str, key: str = "ids") -> str:
        if (self.parcels if key == "ids" else self.compounds) is None:
            return ""
        return f" AND {column} = ANY(CAST(:{key} AS integer[]))"


@dataclass
class _Found:
    problems: list[Problem] = field(default_factory=list)
    pieces: list[dict] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    slivers: list[tuple[float, str, str]] = field(default_factory=list)  # (m², parcel, parcel)
    bad_parcels: list[int] = field(default_factory=list)
    shares: list["_Share"] = field(default_factory=list)

    def add(self, other: "_Found") -> "_Found":
        self.problems += other.problems
        self.pieces += other.pieces
        for key, value in other.counts.items():
            self.counts[key] = self.counts.get(key, 0) + value
        self.slivers += other.slivers
        self.bad_parcels += other.bad_parcels
        self.shares += other.shares
        return self


@dataclass
class _Share:
    """One worker's part of the second phase: clusters (their parcels) and compounds, as
    PostgreSQL array literals ('{1,2,3}'): they go straight back as parameters."""

    parcels: str = "{}"
    clusters: str = "{}"  # the cluster of each parcel
    compounds: str = "{}"


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
    plan = _Plan(county, info.epsg, settings, _m2_per_deg2(conn, county))
    n = max(1, workers or default_workers())
    timings: dict[str, float] = {}
    with _Runner(conn, n) as runner:
        # First what the rest depends on: clusters (and their shares) and the invalid shapes.
        first = [runner.submit(lambda c: _clusters(c, plan, n)),
                 runner.submit(lambda c: _validity_stage(c, plan))]  # fmt: skip
        # Codes, planned areas, compounds without parcels and developers feed nothing else:
        # they fill the gaps, on a copy of the plan (they test validity themselves).
        own = replace(plan)
        stages = (_planned_stage, _developer_stage, _lonely_compounds, _code_stage)
        small = [runner.submit(lambda c, stage=stage: stage(c, own)) for stage in stages]
        found = _gather(task.result() for task in first)
        timings["validity, clusters"] = time.perf_counter() - started
        plan.bad_parcels = sorted(found.bad_parcels)
        # The largest tasks first, so that the workers finish together.
        second = [runner.submit(lambda c, share=share: _compound_stage(c, plan, share))
                  for share in found.shares]  # fmt: skip
        second += [runner.submit(_part(_parcel_stage, plan, n, k)) for k in range(n)]
        found.add(_gather(task.result() for task in second + small))
    _name_overlap_compounds(conn, plan, found)
    timings["total"] = time.perf_counter() - started
    return _report(info, plan, found, timings, "county", n)


def _part(stage, plan: _Plan, n: int, k: int) -> Callable[[Connection], _Found]:
    return lambda conn: stage(conn, plan, n, k)


def _gather(parts) -> _Found:
    found = _Found()
    for part in parts:
        found.add(part)
    return found


class _Runner:
    """Tasks on `conn` alone, or on `workers` connections sharing its snapshot."""

    def __init__(self, conn: Connection, workers: int) -> None:
        self.conn = conn
        _tune(conn)
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

    def submit(self, task: Callable[[Connection], _Found]) -> Future:
        if self.pool is not None:
            return self.pool.submit(self._on_own_connection, task)
        done: Future = Future()
        done.set_result(task(self.conn))
        return done

    def _on_own_connection(self, task: Callable[[Connection], _Found]) -> _Found:
        with self.conn.engine.connect() as own:
            own = own.execution_options(isolation_level="REPEATABLE READ")
            own.execute(text(f"SET TRANSACTION SNAPSHOT '{self.snapshot}'"))
            _tune(own, parallel=False)  # the workers are the parallelism
            try:
                return task(own)
            finally:
                own.rollback()


def _tune(conn: Connection, parallel: bool = True) -> None:
    # For this transaction only: JIT compiles for longer than these queries run, and the
    # unions want more than the default 4 MB to stay in memory.
    conn.execute(
        text(
            "SELECT set_config('jit', 'off', true), set_config('work_mem', '256MB', true), "
            "set_config('max_parallel_workers_per_gather', :gather, true)"
        ),
        {"gather": "2" if parallel else "0"},
    )


def _m2_per_deg2(conn: Connection, county: str) -> float:
    """About how many m² a square degree holds in the county: to skip float noise cheaply.

    Only ever compared against half a tolerance, before the exact figure in the GK zone."""
    lat = conn.execute(
        text("SELECT ST_Y(ST_Centroid(geom)) FROM county WHERE code = :c"), {"c": county}
    ).scalar()
    lat = 35.0 if lat is None else lat
    return 111_320 * math.cos(math.radians(lat)) * 110_574


def _report(info, plan: _Plan, found: _Found, timings: dict, scope: str,
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
    return CheckReport(info.code, info.name, info.epsg, plan.settings, datetime.now(TZ),
                       found.counts, problems, pieces, slivers, timings, scope,
                       workers)  # fmt: skip


# -- SQL pieces ----------------------------------------------------------------------------------


def _safe(alias: str, bad: str | None = "bad_p") -> str:
    """The geometry of `alias`, repaired when invalid: listed in `bad`, or tested on the spot."""
    invalid = (
        f"{alias}.id = ANY(CAST(:{bad} AS integer[]))" if bad else f"NOT ST_IsValid({alias}.geom)"
    )
    return (
        f"(CASE WHEN {invalid} "
        f"THEN ST_Multi(ST_CollectionExtract(ST_MakeValid({alias}.geom), 3)) "
        f"ELSE {alias}.geom END)"
    )


def _side(azimuth: float | None) -> tuple[str, str]:
    if azimuth is None:
        return "", ""
    k = int(((math.degrees(azimuth) + 22.5) % 360) // 45)
    return SIDES[k], SIDES_EN[k]


def _m2(value: float) -> str:
    return f"{value:,.1f} m²" if abs(value) >= 10 else f"{value:,.2f} m²"


def _yuan(value: float) -> str:
    return f"{value:,.2f} 元"


def _percent(value: float, signed: bool = True) -> str:
    return f"{value:+.2%}" if signed else f"{value:.2%}"


def _feature(piece_id: str, kind: str, geojson: str, area: float, **props: Any) -> dict:
    properties = {"id": piece_id, "kind": kind, "label": CHECKS[kind][0]}
    properties |= {"area_m2": round(area, 2)} | props
    return {"type": "Feature", "id": piece_id, "geometry": json.loads(geojson),
            "properties": properties}  # fmt: skip


def _validity_words(reason: str | None) -> str:
    if not reason:
        return "无效"
    for english, chinese in VALIDITY_WORDS.items():
        if reason.startswith(english):
            return chinese + reason[len(english) :]
    return reason


# -- phase 1: clusters; every parcel on its own --------------------------------------------------


def _clusters(conn: Connection, plan: _Plan, n: int = 1) -> _Found:
    """Clusters of touching parcels: `ST_ClusterDBSCAN(geom, 0, 1)`, one pass over GEOS' own
    STR-tree (its distances are liblwgeom's, which an invalid shape cannot upset), shared out
    over `n` workers in the same statement: clusters in turn, largest first; a compound goes
    with the cluster of its first parcel, so the cluster's union serves as the compound's."""
    sql = f"""
        WITH c AS MATERIALIZED (
            SELECT p.id, ST_ClusterDBSCAN(p.geom, 0, 1) OVER () AS cid
            FROM parcel p WHERE p.county_code = :county {plan.only("p.id")}
        ), turns AS MATERIALIZED (
            SELECT s.cid, (row_number() OVER (ORDER BY s.size DESC, s.cid) - 1) % :n AS k
            FROM (SELECT cid, count(*) AS size FROM c WHERE cid IS NOT NULL GROUP BY cid
                  HAVING count(*) > 1) s
        ), members AS MATERIALIZED (
            SELECT c.id, c.cid, t.k FROM c JOIN turns t ON t.cid = c.cid
        ), parts AS (
            -- two aggregates of one pass read the rows in the same order: ids and clusters align
            SELECT k, string_agg(id::text, ',') AS parcels, string_agg(cid::text, ',') AS clusters
            FROM members GROUP BY k
        ), compounds AS (
            SELECT coalesce(m.k, f.compound_id % :n) AS k,
                   string_agg(f.compound_id::text, ',') AS compounds
            FROM (SELECT l.compound_id, min(l.parcel_id) AS first FROM compound_parcel l
                  WHERE l.county_code = :county {plan.only("l.compound_id", "cids")}
                  GROUP BY l.compound_id) f
            LEFT JOIN members m ON m.id = f.first
            GROUP BY 1
        )
        SELECT g.k, '{{' || coalesce(p.parcels, '') || '}}' AS parcels,
               '{{' || coalesce(p.clusters, '') || '}}' AS clusters,
               '{{' || coalesce(o.compounds, '') || '}}' AS compounds
        FROM generate_series(0, :n - 1) g(k)
        LEFT JOIN parts p ON p.k = g.k LEFT JOIN compounds o ON o.k = g.k
        ORDER BY g.k
    """
    rows = conn.execute(text(sql), plan.params(n=n)).all()
    return _Found(shares=[_Share(row.parcels, row.clusters, row.compounds) for row in rows])


def _geometry_problem(row) -> Problem:
    if row.empty:
        return Problem("geometry", parcel=row.code, reason="图形为空",
                       reason_en="empty geometry")  # fmt: skip
    return Problem(
        "geometry", parcel=row.code, lon=row.bad_lon, lat=row.bad_lat,
        reason=f"图形无效：{_validity_words(row.reason)}；面积、重叠等核查按修复后的图形"
        "（ST_MakeValid）计算",
        reason_en=f"invalid geometry: {row.reason}; other checks use the repaired shape "
        "(ST_MakeValid)",
    )  # fmt: skip


def _code_stage(conn: Connection, plan: _Plan) -> _Found:
    """宗地代码: every code through `parcel_code_pattern` (Python's regular expressions are
    several times faster than PostgreSQL's here); the failures explained position by position."""
    codes = conn.execute(
        text(f"SELECT array_agg(p.code) FROM parcel p WHERE p.county_code = :county"
             f"{plan.only('p.id')}"), plan.params(),
    ).scalar() or []  # fmt: skip
    pattern = re.compile(parcel_code_pattern(plan.county))
    bad = [code for code in codes if not pattern.fullmatch(code)]
    found = _Found()
    if not bad:
        return found
    rows = conn.execute(
        text(f"""
            SELECT p.code, ST_X(ST_PointOnSurface({_safe("p", None)})) AS lon,
                   ST_Y(ST_PointOnSurface({_safe("p", None)})) AS lat
            FROM parcel p WHERE p.county_code = :county AND p.code = ANY(:bad)
        """),
        plan.params(bad=bad),
    )  # fmt: skip
    for row in rows:
        failures = check_parcel_code(row.code, plan.county)
        found.problems.append(Problem(
            "parcel_code", row.code, lon=row.lon, lat=row.lat, related=[f.rule for f in failures],
            reason="宗地代码有误：" + "；".join(f"第 {f.position} 位，{f.zh}" for f in failures),
            reason_en="wrong parcel code: "
            + "; ".join(f"position {f.position}: {f.en}" for f in failures),
        ))  # fmt: skip
    return found


def _validity_stage(conn: Connection, plan: _Plan) -> _Found:
    """图形有效: the invalid or empty parcels, which every other check then repairs."""
    sql = f"""
        SELECT v.id, v.code, v.empty,
               CASE WHEN NOT v.valid THEN ST_IsValidReason(v.geom) END AS reason,
               CASE WHEN NOT v.valid THEN ST_X((ST_IsValidDetail(v.geom)).location) END AS bad_lon,
               CASE WHEN NOT v.valid THEN ST_Y((ST_IsValidDetail(v.geom)).location) END AS bad_lat
        FROM (SELECT p.id, p.code, p.geom, ST_IsValid(p.geom) AS valid, ST_IsEmpty(p.geom) AS empty
              FROM parcel p WHERE p.county_code = :county {plan.only("p.id")} OFFSET 0) v
        WHERE NOT v.valid OR v.empty
    """
    found = _Found()
    for row in conn.execute(text(sql), plan.params()).all():
        found.bad_parcels.append(row.id)
        found.problems.append(_geometry_problem(row))
    return found


def _parcel_stage(conn: Connection, plan: _Plan, n: int, k: int) -> _Found:
    """Area, arrears and the link to a compound, for parcels with id % n = k (their shapes
    repaired where `_validity_stage` found them invalid)."""
    s = plan.settings
    sql = f"""
        WITH linked AS (
            SELECT DISTINCT parcel_id FROM compound_parcel WHERE county_code = :county
        ), measured AS (
            SELECT c.*, ST_Area(ST_Transform(c.sg, :epsg)) AS drawn
            FROM (SELECT p.id, p.code, p.recorded_area_m2::float8 AS recorded,
                         p.premium_due::float8 AS due, p.premium_paid::float8 AS paid,
                         {_safe("p")} AS sg, l.parcel_id IS NULL AS orphan
                  FROM parcel p LEFT JOIN linked l ON l.parcel_id = p.id
                  WHERE p.county_code = :county AND p.id % :n = :k {plan.only("p.id")}
                  OFFSET 0) c
        ), flagged AS (
            SELECT m.*, ST_PointOnSurface(m.sg) AS pt FROM measured m
            WHERE m.orphan OR m.recorded IS NULL OR m.recorded <= 0
               OR abs(m.drawn - m.recorded) > :area_tol * m.recorded
               OR coalesce(m.due, 0) - coalesce(m.paid, 0) > :arrears_tol
            OFFSET 0
        )
        SELECT f.code, f.recorded, f.due, f.paid, f.orphan, f.drawn,
               ST_X(f.pt) AS lon, ST_Y(f.pt) AS lat,
               CASE WHEN f.orphan THEN (
                   SELECT string_agg(c.code, '、' ORDER BY c.code) FROM compound c
                   WHERE c.county_code = :county AND c.geom && f.sg
                     AND ST_Relate({_safe("c", None)}, f.sg, '2********')
               ) END AS compounds_on_it
        FROM flagged f
    """
    params = plan.params(n=n, k=k, area_tol=s.area_tolerance,
                         arrears_tol=s.arrears_tolerance_yuan)  # fmt: skip
    count = "SELECT count(*) FROM parcel p WHERE p.county_code = :county AND p.id % :n = :k"
    found = _Found(
        counts={"parcels": conn.execute(text(count + plan.only("p.id")), params).scalar()}
    )
    tol, owed_tol, epsg = s.area_tolerance, s.arrears_tolerance_yuan, plan.epsg
    problems = found.problems
    for code, recorded, due, paid, orphan, drawn, lon, lat, on_it in conn.execute(
        text(sql), params
    ).all():
        if recorded is None or recorded <= 0 or abs(drawn - recorded) > tol * recorded:
            problems.append(_area_problem(code, lon, lat, drawn, recorded, tol, epsg))
        due, paid = due or 0.0, paid or 0.0
        if due - paid > owed_tol:
            owed = due - paid
            d, p, o = f"{due:,.2f}", f"{paid:,.2f}", f"{owed:,.2f}"  # each formatted once
            problems.append(Problem(
                "arrears", code, lon=lon, lat=lat, value=round(owed, 2), unit="元",
                reason=f"应缴土地出让金 {d} 元，已缴 {p} 元，欠缴 {o} 元",
                reason_en=f"land premium due {d}, paid {p}, owed {o} yuan",
            ))  # fmt: skip
        if orphan:
            problems.append(Problem(
                "orphan_parcel", code, lon=lon, lat=lat, related=on_it.split("、") if on_it else [],
                reason="宗地未关联任何小区" + (f"；其上有小区 {on_it}，但未建立关联" if on_it
                                              else "；其上也没有小区"),
                reason_en="the parcel belongs to no compound"
                + (f"; compounds {on_it} stand on it unlinked" if on_it else ""),
            ))  # fmt: skip
    return found


def _area_problem(code, lon, lat, drawn: float, recorded: float | None, tol: float,
                  epsg: int) -> Problem:  # fmt: skip
    if recorded is None or recorded <= 0:
        return Problem(
            "area", code, lon=lon, lat=lat, unit="m²",
            reason=f"没有登记面积，无法核对（图形面积 {_m2(drawn)}，EPSG:{epsg}）",
            reason_en=f"no recorded area to compare (drawn {drawn:.2f} m²)",
        )  # fmt: skip
    off = (drawn - recorded) / recorded
    return Problem(
        "area", code, lon=lon, lat=lat, value=round(100 * off, 3), unit="%",
        reason=f"图形面积 {_m2(drawn)}（EPSG:{epsg} 平面面积），登记面积 {_m2(recorded)}，"
        f"相差 {_percent(off)}，超过面积容差 ±{_percent(tol, False)}",
        reason_en=f"drawn {drawn:.2f} m² (EPSG:{epsg}) vs recorded {recorded:.2f} m²: "
        f"{off:+.2%}, beyond ±{tol:.2%}",
    )  # fmt: skip


# -- phase 2: overlaps in clusters, compounds on their parcels -----------------------------------


_COMPOUND_SQL = """
WITH members AS MATERIALIZED (
    SELECT m.id, m.cid, p.code, {safe_p} AS geom
    FROM unnest(CAST(:pids AS integer[]), CAST(:pcids AS integer[])) AS m(id, cid)
    JOIN parcel p ON p.id = m.id
), clusters AS MATERIALIZED (
    -- clusters of touching parcels with their union: where the parcels' areas add up to more
    -- than the union, two of them overlap
    SELECT cid, count(*) AS size, sum(ST_Area(geom)) AS summed, ST_Union(geom) AS u
    FROM members GROUP BY cid
), overlapping AS (
    SELECT 'overlap'::text AS kind, NULL::integer AS compound_id, ARRAY[a.code, b.code] AS codes,
           ST_Transform(ST_CollectionExtract(ST_Intersection(a.geom, {safe_b}), 3), :epsg) AS g
    FROM clusters s
    JOIN members a ON a.cid = s.cid
    JOIN parcel b ON b.geom && a.geom AND a.id - b.id < 0  -- overlapping, so in a's cluster
    WHERE (s.summed - ST_Area(s.u)) * :kdeg > :noise / 2
      AND ST_Relate(a.geom, {safe_b}, '2********')
), owned AS MATERIALIZED (
    -- each compound with its parcels, and the cluster they all lie in, if they share one
    SELECT l.compound_id, array_agg(l.parcel_id) AS ids,
           CASE WHEN count(m.cid) = count(*) AND min(m.cid) = max(m.cid) THEN min(m.cid) END
               AS cid
    FROM compound_parcel l
    JOIN unnest(CAST(:comps AS integer[])) AS x(id) ON x.id = l.compound_id
    LEFT JOIN members m ON m.id = l.parcel_id
    GROUP BY l.compound_id
), shapes AS MATERIALIZED (
    -- U, the union of a compound's parcels; their shapes are fetched only where needed
    SELECT o.compound_id AS id, c.code, c.name, o.ids, c.geom AS cg, CASE
        -- the cluster is exactly the compound's parcels: its union serves
        WHEN s.size = cardinality(o.ids) THEN s.u
        WHEN cardinality(o.ids) = 1 THEN {safe_p}
        ELSE (SELECT ST_Union({safe_b} ORDER BY b.id) FROM parcel b WHERE b.id = ANY(o.ids))
        END AS u
    FROM owned o JOIN compound c ON c.id = o.compound_id
    JOIN parcel p ON p.id = o.ids[1]
    LEFT JOIN clusters s ON s.cid = o.cid
), measured AS MATERIALIZED (
    -- c minus U; skipped where both outlines are the same once points lying within
    -- :simplify of a straight line are dropped (an exact test), which bounds the difference
    -- by a band that thin along both outlines. Only then is the compound's validity needed.
    SELECT x.id, x.code, x.name, x.ids, x.u, x.cg AS outline, CASE
        WHEN ST_OrderingEquals(ST_Normalize(ST_Multi(ST_Simplify(x.cg, :simplify))),
                               ST_Normalize(ST_Multi(ST_Simplify(x.u, :simplify))))
             AND 2 * :simplify * (ST_Perimeter(x.cg) + ST_Perimeter(x.u)) * :kdeg
                 < :least_tol / 2
        THEN NULL
        WHEN ST_IsValid(x.cg) THEN x.cg
        ELSE ST_Multi(ST_CollectionExtract(ST_MakeValid(x.cg), 3)) END AS cg
    FROM shapes x
), differences AS MATERIALIZED (
    SELECT m.*, CASE WHEN m.cg IS NULL THEN ST_GeomFromText('POLYGON EMPTY', 4490)
                     ELSE ST_Difference(m.cg, m.u) END AS diff
    FROM measured m
), suspects AS MATERIALIZED (
    -- compound land not on its parcels, or land enclosed by them: measured exactly
    SELECT m.id, m.code, m.name, m.ids, ST_Transform(m.u, :epsg) AS ug,
           ST_Transform(m.diff, :epsg) AS dg,
           ST_Transform(coalesce(m.cg, CASE WHEN ST_IsValid(m.outline) THEN m.outline
               ELSE ST_Multi(ST_CollectionExtract(ST_MakeValid(m.outline), 3)) END), :epsg) AS cg
    FROM differences m
    WHERE ST_Area(m.diff) * :kdeg > :least_tol / 2 OR ST_NRings(m.u) > ST_NumGeometries(m.u)
), gaps AS MATERIALIZED (
    -- land between two or more of a compound's parcels: enclosed by them, or inside the
    -- compound and within the closing of their union (narrower than gap_width_m)
    SELECT s.id, piece.geom AS g,
           (SELECT array_agg(p.code ORDER BY p.code) FROM parcel p
            WHERE p.id = ANY(s.ids)
              AND ST_DWithin(ST_Transform({safe_p}, :epsg), piece.geom, {touch})) AS codes
    FROM suspects s
    CROSS JOIN LATERAL ST_Dump(ST_Union(
        ST_Intersection(s.dg, ST_Buffer(ST_Buffer(s.ug, :r, 'join=mitre'), -:r, 'join=mitre')),
        coalesce((SELECT ST_Collect(ST_MakePolygon(ST_InteriorRingN(d.geom, i)))
                  FROM ST_Dump(s.ug) d, generate_series(1, ST_NumInteriorRings(d.geom)) i),
                 ST_GeomFromText('POLYGON EMPTY', :epsg)))) piece
    WHERE cardinality(s.ids) > 1 AND ST_Area(piece.geom) > :gap_tol
), real_gaps AS (
    SELECT * FROM gaps WHERE cardinality(codes) >= 2
), beyond AS (
    SELECT s.id, piece.geom AS g,
           (SELECT array_agg(p.code ORDER BY p.code) FROM parcel p WHERE p.id = ANY(s.ids)) AS codes
    FROM suspects s
    CROSS JOIN LATERAL ST_Dump(ST_Difference(s.dg, coalesce(
        (SELECT ST_Union(r.g) FROM real_gaps r WHERE r.id = s.id),
        ST_GeomFromText('POLYGON EMPTY', :epsg)))) piece
    WHERE ST_Area(piece.geom) > :beyond_tol
), found AS (
    SELECT 'gap'::text AS kind, id AS compound_id, codes, g FROM real_gaps
    UNION ALL SELECT 'beyond', id, codes, g FROM beyond
    UNION ALL SELECT kind, compound_id, codes, g FROM overlapping WHERE ST_Area(g) > :noise
)
SELECT f.kind, f.codes, s.code, s.name, ST_Area(f.g) AS area, ST_Perimeter(f.g) AS perimeter,
       ST_Azimuth(ST_Centroid(s.cg), ST_Centroid(f.g)) AS azimuth,
       CASE WHEN f.kind = 'beyond' THEN (
           SELECT max(ST_Distance(d.geom, s.ug)) FROM ST_DumpPoints(f.g) d) END AS depth,
       CASE WHEN f.kind <> 'overlap' OR ST_Area(f.g) > :overlap_tol
            THEN ST_AsGeoJSON(ST_Transform(f.g, 4490), 7) END AS geojson,
       ST_X(ST_Transform(ST_PointOnSurface(f.g), 4490)) AS lon,
       ST_Y(ST_Transform(ST_PointOnSurface(f.g), 4490)) AS lat
FROM found f LEFT JOIN suspects s ON s.id = f.compound_id
ORDER BY f.kind, s.code, f.codes, ST_Area(f.g) DESC
"""


def _compound_stage(conn: Connection, plan: _Plan, share: _Share) -> _Found:
    """Overlaps in this worker's clusters; gaps and land beyond parcels of its compounds."""
    s = plan.settings
    sql = _COMPOUND_SQL.format(safe_p=_safe("p"), safe_b=_safe("b"), touch=TOUCH_M)
    params = plan.params(
        pids=share.parcels, pcids=share.clusters, comps=share.compounds, noise=NOISE_M2,
        r=s.gap_width_m / 2, gap_tol=s.gap_tolerance_m2, beyond_tol=s.beyond_tolerance_m2,
        least_tol=min(s.gap_tolerance_m2, s.beyond_tolerance_m2), simplify=SIMPLIFY_DEG,
        overlap_tol=s.overlap_tolerance_m2,
    )  # fmt: skip
    found = _Found()
    numbered: Counter = Counter()
    for row in conn.execute(text(sql), params).all():
        if row.kind == "overlap":
            _overlap(found, row, s)
            continue
        numbered[(row.kind, row.code)] += 1
        piece = f"{row.kind}:{row.code}:{numbered[(row.kind, row.code)]}"
        (_gap if row.kind == "gap" else _beyond)(found, row, piece)
    return found


def _overlap(found: _Found, row, s: CheckSettings) -> None:
    a, b = row.codes
    if row.area <= s.overlap_tolerance_m2:
        found.slivers.append((row.area, a, b))
        return
    width = 2 * row.area / row.perimeter if row.perimeter else 0.0
    piece = f"overlap:{a}:{b}"
    found.pieces.append(_feature(piece, "overlap", row.geojson, row.area, parcels=[a, b],
                                 width_m=round(width, 2)))  # fmt: skip
    for mine, other in ((a, b), (b, a)):
        found.problems.append(Problem(
            "overlap", parcel=mine, related=[other], value=round(row.area, 2), unit="m²",
            reason=f"与宗地 {other} 重叠 {_m2(row.area)}（平均宽约 {width:.1f} m），超过重叠容差 "
            f"{s.overlap_tolerance_m2:g} m²",
            reason_en=f"overlaps parcel {other} by {row.area:.2f} m² (about {width:.1f} m wide), "
            f"beyond {s.overlap_tolerance_m2:g} m²",
            lon=row.lon, lat=row.lat, pieces=[piece],
        ))  # fmt: skip


def _gap(found: _Found, row, piece: str) -> None:
    width = 2 * row.area / row.perimeter if row.perimeter else 0.0
    side, _ = _side(row.azimuth)
    found.pieces.append(_feature(piece, "gap", row.geojson, row.area, compound=row.code,
                                 parcels=row.codes, width_m=round(width, 2)))  # fmt: skip
    between = "、".join(row.codes)
    for code in row.codes:
        found.problems.append(Problem(
            "gap", parcel=code, compound=row.code, compound_name=row.name,
            related=[c for c in row.codes if c != code], value=round(row.area, 2), unit="m²",
            lon=row.lon, lat=row.lat, pieces=[piece],
            reason=f"小区 {row.code} 的宗地 {between} 之间有 {_m2(row.area)} 缝隙（平均宽约 "
            f"{width:.1f} m，在小区{side}部），不属于任何宗地",
            reason_en=f"a {row.area:.2f} m² gap (about {width:.1f} m wide) between parcels "
            f"{', '.join(row.codes)} of compound {row.code}",
        ))  # fmt: skip


def _beyond(found: _Found, row, piece: str) -> None:
    side, side_en = _side(row.azimuth)
    found.pieces.append(_feature(piece, "beyond", row.geojson, row.area, compound=row.code,
                                 parcels=row.codes, depth_m=round(row.depth, 2),
                                 side=side))  # fmt: skip
    found.problems.append(Problem(
        "beyond", compound=row.code, compound_name=row.name, related=list(row.codes),
        value=round(row.area, 2), unit="m²", lon=row.lon, lat=row.lat, pieces=[piece],
        reason=f"小区 {row.code} 在{side}侧超出其宗地 {_m2(row.area)}，最远超出 {row.depth:.1f} m"
        f"（其宗地：{'、'.join(row.codes)}）",
        reason_en=f"compound {row.code} reaches {row.area:.2f} m² beyond its parcels on its "
        f"{side_en} side, up to {row.depth:.1f} m",
    ))  # fmt: skip


def _name_overlap_compounds(conn: Connection, plan: _Plan, found: _Found) -> None:
    """Overlap problems name the compounds of both parcels (and say when they share one)."""
    codes = sorted(
        {c for p in found.problems if p.check == "overlap" for c in [p.parcel, *p.related]}
    )
    if not codes:
        return
    rows = conn.execute(
        text("""
            SELECT p.code, array_agg(c.code ORDER BY c.code) AS compounds
            FROM parcel p JOIN compound_parcel l ON l.parcel_id = p.id
            JOIN compound c ON c.id = l.compound_id
            WHERE p.county_code = :county AND p.code = ANY(:codes) GROUP BY p.code
        """),
        {"county": plan.county, "codes": codes},
    )
    compounds = {row.code: row.compounds for row in rows}
    for problem in found.problems:
        if problem.check != "overlap":
            continue
        mine = compounds.get(problem.parcel, [])
        problem.compound = "、".join(mine) or None
        if set(mine) & set(compounds.get(problem.related[0], [])):
            problem.reason = problem.reason.replace(" 重叠", "（同一小区）重叠", 1)


# -- compounds with no parcel, planned areas, developers -----------------------------------------


def _lonely_compounds(conn: Connection, plan: _Plan) -> _Found:
    sql = f"""
        SELECT c.code, c.name, ST_X(ST_PointOnSurface(sc.g)) AS lon,
               ST_Y(ST_PointOnSurface(sc.g)) AS lat,
               (SELECT string_agg(p.code, '、' ORDER BY p.code) FROM parcel p
                WHERE p.county_code = :county AND p.geom && sc.g
                  AND ST_Relate({_safe("p", None)}, sc.g, '2********')) AS parcels_under
        FROM compound c CROSS JOIN LATERAL (SELECT {_safe("c", None)} AS g OFFSET 0) sc
        WHERE c.county_code = :county {plan.only("c.id", "cids")}
          AND NOT EXISTS (SELECT 1 FROM compound_parcel l WHERE l.compound_id = c.id)
    """
    total = "SELECT count(*) FROM compound c WHERE c.county_code = :county"
    params = plan.params()
    found = _Found(counts={"compounds": conn.execute(text(total + plan.only("c.id", "cids")),
                                                     params).scalar_one()})  # fmt: skip
    for row in conn.execute(text(sql), params).all():
        under = row.parcels_under
        found.problems.append(Problem(
            "compound_no_parcel", compound=row.code, compound_name=row.name,
            related=under.split("、") if under else [], lon=row.lon, lat=row.lat,
            reason=f"小区 {row.code} {row.name} 没有关联任何宗地"
            + (f"；其下有宗地 {under}，但未建立关联" if under else "；其下也没有宗地"),
            reason_en=f"compound {row.code} has no parcel linked"
            + (f"; parcels {under} lie under it unlinked" if under else ""),
        ))  # fmt: skip
    return found


def _planned_stage(conn: Connection, plan: _Plan) -> _Found:
    kinds = ", ".join(f"'{kind}'" for kind in CONFLICT_KINDS)
    sql = f"""
        WITH pieces AS MATERIALIZED (
            -- in the GK zone, where a planned road's long straight edges were drawn; cut into
            -- small pieces, each with a 4490 box (1 m wider: a GK-straight edge bulges a little)
            SELECT x.*, ST_Expand(ST_Transform(ST_Envelope(x.g), 4490), 0.00001) AS box
            FROM (SELECT a.id, a.code, a.name, a.kind,
                         ST_Subdivide(ST_Transform({_safe("a", None)}, :epsg),
                                      {SUBDIVIDE_VERTICES}) AS g
                  FROM planned_area a
                  WHERE a.county_code = :county AND a.kind IN ({kinds})) x
        ), hits AS (
            SELECT a.code AS area_code, a.name, a.kind, p.id, p.code,
                   ST_CollectionExtract(ST_Intersection(a.g, pg.g), 3) AS g
            FROM pieces a JOIN parcel p ON p.geom && a.box
            CROSS JOIN LATERAL (SELECT ST_Transform({_safe("p", None)}, :epsg) AS g OFFSET 0) pg
            WHERE p.county_code = :county {plan.only("p.id")} AND ST_Intersects(a.g, pg.g)
        ), pairs AS (
            SELECT area_code, name, kind, id, code, ST_Union(g) AS g
            FROM hits WHERE NOT ST_IsEmpty(g) GROUP BY area_code, name, kind, id, code
        )
        SELECT x.*, ST_AsGeoJSON(ST_Transform(x.g, 4490), 7) AS geojson,
               ST_X(ST_Transform(ST_PointOnSurface(x.g), 4490)) AS lon,
               ST_Y(ST_Transform(ST_PointOnSurface(x.g), 4490)) AS lat,
               ST_Area(ST_Transform({_safe("p", None)}, :epsg)) AS parcel_area
        FROM (SELECT pairs.*, ST_Area(pairs.g) AS area FROM pairs) x
        JOIN parcel p ON p.id = x.id
        WHERE x.area > :tol
    """
    tol = plan.settings.planned_tolerance_m2
    found = _Found()
    for row in conn.execute(text(sql), plan.params(tol=tol)).all():
        kind = PLANNED_AREA_LABELS[PlannedAreaKind(row.kind)]
        what = f"“{row.name}”" if row.name.startswith(kind) else f"{kind}“{row.name}”"
        share = row.area / row.parcel_area if row.parcel_area else 0.0
        part = f"{share:.1%}" if share >= 0.001 else "不足 0.1%"
        piece = f"planned:{row.code}:{row.area_code}"
        found.pieces.append(_feature(piece, "planned", row.geojson, row.area, parcels=[row.code],
                                     planned=row.name, planned_kind=kind))  # fmt: skip
        found.problems.append(Problem(
            "planned", parcel=row.code, related=[row.name], value=round(row.area, 2), unit="m²",
            lon=row.lon, lat=row.lat, pieces=[piece],
            reason=f"压占{what} {_m2(row.area)}（占宗地 {part}），超过规划冲突容差 {tol:g} m²",
            reason_en=f"{row.area:.2f} m² ({share:.1%} of the parcel) under {row.kind} "
            f"{row.name!r}, beyond {tol:g} m²",
        ))  # fmt: skip
    return found


def _developer_stage(conn: Connection, plan: _Plan) -> _Found:
    if plan.parcels is not None:
        return _Found()
    sql = """
        SELECT d.name, d.credit_code,
               array_remove(array_agg(c.code ORDER BY c.code), NULL) AS compounds
        FROM developer d LEFT JOIN compound c ON c.developer_id = d.id
        WHERE d.county_code = :county GROUP BY d.id, d.name, d.credit_code
    """
    rows = conn.execute(text(sql), plan.params()).all()
    found = _Found(counts={"developers": len(rows)})
    for row in rows:
        if credit_code_ok(row.credit_code):
            continue  # the fast path; the full check explains the rest position by position
        failures = check_credit_code(row.credit_code or "")
        if failures:
            found.problems.append(Problem(
                "credit_code", compound="、".join(row.compounds) or None,
                related=[row.name, row.credit_code or ""],
                reason=f"开发企业 {row.name} 的统一社会信用代码“{row.credit_code or ''}”有误："
                + "；".join(f"第 {f.position} 位，{f.zh}" for f in failures),
                reason_en=f"credit code {row.credit_code!r} of {row.name}: "
                + "; ".join(f"position {f.position}: {f.en}" for f in failures),
            ))  # fmt: skip
    return found


# -- one parcel, for its page --------------------------------------------------------------------


@dataclass
class CheckResult:
    check: str
    label: str
    status: str  # pass / fail / skip
    reason: str
    problems: list[Problem] = field(default_factory=list)


@dataclass
class ParcelCheck:
    """One parcel: its figures, every check with pass or fail and why, and what to draw.

    `map` holds GeoJSON geometries in the county's GK zone (metres, x east): the parcel, its
    neighbours, its compounds, planned roads and green space nearby and the problem pieces."""

    code: str
    figures: dict
    compounds: list[dict]
    results: list[CheckResult]
    neighbours: list[dict]
    map: dict
    report: CheckReport

    @property
    def passed(self) -> bool:
        return all(r.status != "fail" for r in self.results)


def find_parcel(conn: Connection, county: str, code: str) -> int | None:
    row = conn.execute(
        text("SELECT id FROM parcel WHERE county_code = :c AND code = :code"),
        {"c": county, "code": code},
    ).first()
    return None if row is None else row.id


def check_parcel(
    conn: Connection, county: str, code: str, settings: CheckSettings | None = None
) -> ParcelCheck:
    """Every check for the parcel `code`, by the same SQL as a county run, limited to it."""
    settings = settings or CheckSettings()
    started = time.perf_counter()
    info = get_county(conn, county)
    parcel_id = find_parcel(conn, county, code)
    if parcel_id is None:
        raise TitlemapError(f"本县没有宗地 {code} / no parcel {code} in county {county}")
    _tune(conn)
    compounds = _compounds_of(conn, county, parcel_id)
    around = conn.execute(
        text("""
            SELECT array_agg(DISTINCT o.id) FROM parcel t JOIN parcel o
              ON o.county_code = t.county_code AND o.geom && ST_Expand(t.geom, 0.0005)
            WHERE t.id = :id
            UNION ALL
            SELECT array_agg(DISTINCT l.parcel_id) FROM compound_parcel l
            WHERE l.compound_id = ANY(CAST(:cids AS integer[]))
        """),
        {"id": parcel_id, "cids": [c["id"] for c in compounds]},
    ).scalars().all()  # fmt: skip
    nearby = sorted({i for ids in around if ids for i in ids} | {parcel_id})
    compound_ids = [c["id"] for c in compounds]
    kdeg = _m2_per_deg2(conn, county)
    plan = _Plan(county, info.epsg, settings, kdeg, [parcel_id], compound_ids)
    near = _Plan(county, info.epsg, settings, kdeg, nearby, compound_ids)
    found = _clusters(conn, near)
    found.add(_validity_stage(conn, near))
    near.bad_parcels = plan.bad_parcels = sorted(found.bad_parcels)
    found.add(_parcel_stage(conn, near, 1, 0))
    found.add(_code_stage(conn, plan))
    found.add(_planned_stage(conn, plan))
    found.add(_compound_stage(conn, near, found.shares[0]))
    _name_overlap_compounds(conn, plan, found)
    compound_codes = [c["code"] for c in compounds]
    found.problems = [p for p in found.problems if _concerns(p, code, compound_codes)]
    keep = {piece for p in found.problems for piece in p.pieces}
    found.pieces = [f for f in found.pieces if f["id"] in keep]
    found.slivers = [s for s in found.slivers if code in s[1:]]
    found.counts = {"parcels": 1, "compounds": len(compounds)}
    timings = {"total": time.perf_counter() - started}
    report = _report(info, plan, found, timings, code, 1)
    figures = _figures(conn, info.epsg, parcel_id)
    results = _results(report, figures, compounds)
    neighbours, drawing = _drawing(conn, info.epsg, parcel_id, compound_codes, report)
    return ParcelCheck(code, figures, compounds, results, neighbours, drawing, report)


def _concerns(problem: Problem, code: str, compounds: list[str]) -> bool:
    if problem.parcel is not None:
        return problem.parcel == code
    return bool(problem.compound and set(problem.compound.split("、")) & set(compounds))


def _compounds_of(conn: Connection, county: str, parcel_id: int) -> list[dict]:
    rows = conn.execute(
        text("""
            SELECT c.id, c.code, c.name, c.address, e.status,
                   (SELECT count(*) FROM compound_parcel x WHERE x.compound_id = c.id) AS parcels
            FROM compound_parcel l JOIN compound c ON c.id = l.compound_id
            LEFT JOIN ledger_entry e ON e.compound_id = c.id
            WHERE l.parcel_id = :id AND c.county_code = :county ORDER BY c.code
        """),
        {"id": parcel_id, "county": county},
    )
    return [dict(row._mapping) for row in rows]


def _figures(conn: Connection, epsg: int, parcel_id: int) -> dict:
    row = conn.execute(
        text(f"""
            SELECT p.code, p.recorded_area_m2::float8 AS recorded_area_m2, p.land_use,
                   p.right_type, p.premium_due::float8 AS premium_due,
                   p.premium_paid::float8 AS premium_paid,
                   ST_Area(ST_Transform({_safe("p", None)}, :epsg)) AS drawn_area_m2,
                   ST_Perimeter(ST_Transform({_safe("p", None)}, :epsg)) AS perimeter_m,
                   ST_NPoints(p.geom) AS vertices,
                   ST_X(ST_PointOnSurface(p.geom)) AS lon, ST_Y(ST_PointOnSurface(p.geom)) AS lat
            FROM parcel p WHERE p.id = :id
        """),
        {"id": parcel_id, "epsg": epsg},
    ).one()
    figures = dict(row._mapping)
    recorded, drawn = figures["recorded_area_m2"], figures["drawn_area_m2"]
    figures["area_difference"] = (drawn - recorded) / recorded if recorded else None
    due, paid = figures["premium_due"], figures["premium_paid"]
    figures["premium_owed"] = None if due is None else due - (paid or 0)
    figures["gk_epsg"] = epsg
    return figures


def _results(report: CheckReport, figures: dict, compounds: list[dict]) -> list[CheckResult]:
    """Pass, fail or skip for each check that concerns a parcel, always with the reason."""
    s = report.settings
    problems: dict[str, list[Problem]] = defaultdict(list)
    for problem in report.problems:
        problems[problem.check].append(problem)
    epsg = report.epsg
    drawn, recorded = figures["drawn_area_m2"], figures["recorded_area_m2"]
    codes = "、".join(c["code"] for c in compounds)
    several = [c for c in compounds if c["parcels"] > 1]
    passes = {
        "parcel_code": ("pass", "宗地代码符合 GB/T 37346：本县代码、地籍区、地籍子区、特征码、"
                        "顺序号均无误"),
        "geometry": ("pass", "图形有效（ST_IsValid）"),
        "area": ("pass", f"图形面积 {_m2(drawn)}（EPSG:{epsg}），登记面积 "
                 f"{_m2(recorded or 0)}，相差 {_percent(figures['area_difference'] or 0)}，"
                 f"在面积容差 ±{_percent(s.area_tolerance, False)} 以内"),
        "overlap": ("pass", f"未与其他宗地重叠超过 {s.overlap_tolerance_m2:g} m²"
                    + (f"（附近忽略碎片 {report.slivers['count']} 处）"
                       if report.slivers["count"] else "")),
        "gap": ("pass", f"与同一小区其他宗地之间没有大于 {s.gap_tolerance_m2:g} m² 的缝隙")
        if several else ("skip", "所属小区只有这一宗地，或未关联小区，无需检查缝隙"),
        "beyond": ("pass", f"所属小区 {codes} 未超出其宗地（容差 {s.beyond_tolerance_m2:g} m²）")
        if compounds else ("skip", "未关联小区，无法检查"),
        "planned": ("pass", f"未压占规划道路或规划绿地（容差 {s.planned_tolerance_m2:g} m²）"),
        "arrears": _arrears_pass(figures),
        "orphan_parcel": ("pass", f"已关联小区 {codes}"),
    }  # fmt: skip
    results = []
    for check in ("parcel_code", "geometry", "area", "overlap", "gap", "beyond", "planned",
                  "arrears", "orphan_parcel"):  # fmt: skip
        found = problems.get(check, [])
        if found:
            reason = "；".join(dict.fromkeys(p.reason for p in found))
            results.append(CheckResult(check, CHECKS[check][0], "fail", reason, found))
        else:
            status, reason = passes[check]
            results.append(CheckResult(check, CHECKS[check][0], status, reason))
    return results


def _arrears_pass(figures: dict) -> tuple[str, str]:
    due, paid = figures["premium_due"], figures["premium_paid"]
    if due is None:
        return "skip", "没有应缴出让金数据"
    if figures["right_type"] == "划拨" and not due:
        return "pass", "划拨用地，无应缴出让金"
    return "pass", f"应缴 {_yuan(due)}，已缴 {_yuan(paid or 0)}，无欠缴"


def _drawing(conn: Connection, epsg: int, parcel_id: int, compounds: list[str],
             report: CheckReport) -> tuple[list[dict], dict]:  # fmt: skip
    """Neighbours (within NEIGHBOUR_M, or in the same compound), and GK-zone GeoJSON of
    everything the page draws: every parcel around the parcel and its compounds."""
    flagged = {p.parcel for p in report.problems if p.parcel}
    rows = conn.execute(
        text(f"""
            WITH t AS (
                SELECT p.id, p.county_code, p.geom, ST_Transform({_safe("p", None)}, :epsg) AS g,
                       ST_Expand(ST_Collect(p.geom, (
                           SELECT ST_Collect(c.geom) FROM compound c
                           WHERE c.county_code = p.county_code AND c.code = ANY(:compounds))),
                           0.001) AS around
                FROM parcel p WHERE p.id = :id
            )
            SELECT o.id = t.id AS me, o.code, ST_Distance(og.g, t.g) AS distance,
                   ST_AsGeoJSON(og.g, 2) AS geojson,
                   (SELECT array_agg(c.code ORDER BY c.code) FROM compound_parcel l
                    JOIN compound c ON c.id = l.compound_id WHERE l.parcel_id = o.id) AS compounds
            FROM t JOIN parcel o ON o.county_code = t.county_code AND o.geom && t.around
            CROSS JOIN LATERAL (SELECT ST_Transform({_safe("o", None)}, :epsg) AS g OFFSET 0) og
            ORDER BY o.id <> t.id, ST_Distance(og.g, t.g), o.code
        """),
        {"id": parcel_id, "epsg": epsg, "compounds": compounds},
    ).all()  # fmt: skip
    parcels, neighbours = [], []
    for row in rows:
        item = {"code": row.code, "me": row.me, "geometry": json.loads(row.geojson),
                "compounds": row.compounds or [], "distance_m": round(row.distance, 2)}  # fmt: skip
        parcels.append(item)
        if not row.me and (row.distance <= NEIGHBOUR_M or set(item["compounds"]) & set(compounds)):
            neighbours.append({k: v for k, v in item.items() if k != "geometry"})
    compound_rows = conn.execute(
        text(f"""
            SELECT c.code, c.name, ST_AsGeoJSON(ST_Transform({_safe("c", None)}, :epsg), 2) AS g
            FROM compound c WHERE c.county_code = :county AND c.code = ANY(:codes)
            ORDER BY c.code
        """),
        {"epsg": epsg, "county": report.county, "codes": compounds},
    ).all()
    planned_rows = conn.execute(
        text(f"""
            SELECT a.name, a.kind, ST_AsGeoJSON(ST_Transform(ST_Intersection(
                       {_safe("a", None)}, ST_Expand(t.geom, 0.003)), :epsg), 2) AS g
            FROM parcel t JOIN planned_area a ON a.county_code = t.county_code
                 AND a.geom && ST_Expand(t.geom, 0.003)
            WHERE t.id = :id AND a.kind = ANY(:kinds)
        """),
        {"id": parcel_id, "epsg": epsg, "kinds": list(CONFLICT_KINDS)},
    ).all()
    pieces = []
    for feature in report.pieces:
        shape = conn.execute(
            text("SELECT ST_AsGeoJSON(ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON(:g), 4490), "
                 ":epsg), 2)"),
            {"g": json.dumps(feature["geometry"]), "epsg": epsg},
        ).scalar_one()  # fmt: skip
        pieces.append({"id": feature["id"], "kind": feature["properties"]["kind"],
                       "label": feature["properties"]["label"],
                       "area_m2": feature["properties"]["area_m2"],
                       "geometry": json.loads(shape)})  # fmt: skip
    for item in parcels:
        item["flagged"] = item["code"] in flagged
    drawing = {
        "epsg": epsg,
        "parcels": parcels,
        "compounds": [{"code": r.code, "name": r.name, "geometry": json.loads(r.g)}
                      for r in compound_rows],
        "planned": [{"name": r.name, "kind": r.kind, "geometry": json.loads(r.g)}
                    for r in planned_rows if r.g],
        "pieces": pieces,
    }  # fmt: skip
    return neighbours, drawing


# -- xlsx ----------------------------------------------------------------------------------------

XLSX_COLUMNS = (
    ("序号", 6), ("问题编号", 14), ("核查项", 16), ("宗地代码", 22), ("小区编号", 16),
    ("小区名称", 16), ("相关宗地、规划或企业", 30), ("数值", 12), ("单位", 6),
    ("问题说明", 80), ("经度", 12), ("纬度", 12), ("图斑编号", 30),
)  # fmt: skip


def write_xlsx(report: CheckReport, target: str | Path | IO[bytes]) -> None:
    """The problem list (问题清单) with Chinese headers, a summary (汇总) with the tolerances
    and the GK zone, and how each check is computed (核查方法)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    book = Workbook(write_only=True)
    sheet = book.create_sheet("问题清单")
    bold, wrap = Font(bold=True), Alignment(wrap_text=True, vertical="top")
    head_fill = PatternFill("solid", fgColor="DDDDDD")
    last = get_column_letter(len(XLSX_COLUMNS))
    for k, (_, width) in enumerate(XLSX_COLUMNS, start=1):
        sheet.column_dimensions[get_column_letter(k)].width = width
    sheet.freeze_panes = "A4"

    def cell(value, font=None, fill=None, align=None) -> WriteOnlyCell:
        out = WriteOnlyCell(sheet, value)
        if font:
            out.font = font
        if fill:
            out.fill = fill
        if align:
            out.alignment = align
        return out

    summary = report.summary()
    sheet.append([cell(f"{report.county_name}（{report.county}）宗地核查问题清单",
                       Font(bold=True, size=14))])  # fmt: skip
    sheet.merged_cells.add(f"A1:{last}1")
    sheet.append([cell(
        f"核查时间：{summary['generated_at']}；面积计算：{crs_words(report.epsg)}；"
        f"容差：{report.settings.line()}；共 {len(report.problems)} 个问题",
        align=wrap)])  # fmt: skip
    sheet.merged_cells.add(f"A2:{last}2")
    sheet.append([cell(name, bold, head_fill) for name, _ in XLSX_COLUMNS])
    for k, p in enumerate(report.problems, start=1):
        sheet.append([
            k, p.id, p.label, p.parcel or "", p.compound or "", p.compound_name or "",
            "、".join(p.related), p.value, p.unit or "", p.reason,
            None if p.lon is None else round(p.lon, 7), None if p.lat is None else round(p.lat, 7),
            "、".join(p.pieces),
        ])  # fmt: skip
    sheet.auto_filter.ref = f"A3:{last}{len(report.problems) + 3}"

    totals = book.create_sheet("汇总")
    totals.column_dimensions["A"].width = 40
    totals.column_dimensions["B"].width = 60
    totals.append([cell("项目", bold, head_fill), cell("内容", bold, head_fill)])
    rows = [
        ("县（区）", f"{report.county_name}（{report.county}）"),
        ("核查范围", "全县" if report.scope == "county" else f"宗地 {report.scope}"),
        ("核查时间", summary["generated_at"]),
        ("面积计算投影", crs_words(report.epsg)),
        ("投影 EPSG", report.epsg),
        ("存储坐标系", "CGCS2000 地理坐标，EPSG:4490"),
        *[(t["zh"], t["text"]) for t in report.settings.describe()],
        ("浮点噪声下限（更小的重叠不计）", f"{NOISE_M2:g} m²"),
        ("核查宗地数", report.counts.get("parcels", 0)),
        ("核查小区数", report.counts.get("compounds", 0)),
        ("核查开发企业数", report.counts.get("developers", 0)),
        ("忽略的重叠碎片（处）", report.slivers["count"]),
        ("忽略的重叠碎片总面积（m²）", report.slivers["area_m2"]),
        ("有问题的宗地数", summary["parcels_with_problems"]),
        ("问题总数", len(report.problems)),
        *[(f"问题数：{item['label']}", item["count"])
          for item in summary["problems_by_check"].values()],
        ("用时（秒）", summary["seconds"]),
    ]  # fmt: skip
    for name, value in rows:
        totals.append([name, value])

    methods = book.create_sheet("核查方法")
    methods.column_dimensions["A"].width = 22
    methods.column_dimensions["B"].width = 100
    methods.append([cell("核查项", bold, head_fill), cell("计算方法", bold, head_fill)])
    for check, (label, _) in CHECKS.items():
        methods.append([label, CHECK_METHODS[check]])
    book.save(target)
