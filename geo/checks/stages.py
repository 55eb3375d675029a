"""The SQL of the parcel checks: the plan a run follows and each stage's statements."""

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from sqlalchemy import Connection, text

from geo.checks.report import (
    CHECKS,
    NOISE_M2,
    CheckSettings,
    Problem,
    percent,
    side_of,
    sqm,
)
from geo.core.codes import (
    check_credit_code,
    check_parcel_code,
    credit_code_ok,
    is_parcel_code_attempt,
    parcel_code_pattern,
)
from geo.core.geometry import validity_words
from geo.core.model import PLANNED_AREA_LABELS, PlannedAreaKind

CONFLICT_KINDS = (PlannedAreaKind.PLANNED_ROAD.value, PlannedAreaKind.GREEN_SPACE.value)
TOUCH_M = 0.01  # a gap piece touches a parcel within 1 cm
SUBDIVIDE_VERTICES = 128
# Outlines that agree once points within 1e-9° (≈ 0.1 mm) of a straight line are dropped differ
# by at most a band that thin: cut points of one projection's straight line lie that close to
# the same line in another.
SIMPLIFY_DEG = 1e-9
DEPTH_STEP_M = 0.01  # how far land beyond its parcels reaches, to within this


# -- running -------------------------------------------------------------------------------------


@dataclass
class Plan:
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
class Found:
    problems: list[Problem] = field(default_factory=list)
    pieces: list[dict] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    slivers: list[tuple[float, str, str]] = field(default_factory=list)  # (m², parcel, parcel)
    bad_parcels: list[int] = field(default_factory=list)
    shares: list["Share"] = field(default_factory=list)

    def add(self, other: "Found") -> "Found":
        self.problems += other.problems
        self.pieces += other.pieces
        for key, value in other.counts.items():
            self.counts[key] = self.counts.get(key, 0) + value
        self.slivers += other.slivers
        self.bad_parcels += other.bad_parcels
        self.shares += other.shares
        return self


@dataclass
class Share:
    """One worker's part of the second phase: clusters (their parcels) and compounds, as
    PostgreSQL array literals ('{1,2,3}'): they go straight back as parameters."""

    parcels: str = "{}"
    clusters: str = "{}"  # the cluster of each parcel
    compounds: str = "{}"


# -- SQL pieces ----------------------------------------------------------------------------------


def fixed(alias: str, bad: str | None = "bad_p") -> str:
    """The geometry of `alias`, repaired when invalid: listed in `bad`, or tested on the spot."""
    invalid = (
        f"{alias}.id = ANY(CAST(:{bad} AS integer[]))" if bad else f"NOT ST_IsValid({alias}.geom)"
    )
    return (
        f"(CASE WHEN {invalid} "
        f"THEN ST_Multi(ST_CollectionExtract(ST_MakeValid({alias}.geom), 3)) "
        f"ELSE {alias}.geom END)"
    )


def piece_json(piece_id: str, kind: str, geojson: str, area: float, **props: Any) -> dict:
    properties = {"id": piece_id, "kind": kind, "label": CHECKS[kind][0]}
    properties |= {"area_m2": round(area, 2)} | props
    return {"type": "Feature", "id": piece_id, "geometry": json.loads(geojson),
            "properties": properties}  # fmt: skip


# -- phase 1: clusters; every parcel on its own --------------------------------------------------


def cluster_stage(conn: Connection, plan: Plan, n: int = 1) -> Found:
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
    return Found(shares=[Share(row.parcels, row.clusters, row.compounds) for row in rows])


def geometry_problem(row) -> Problem:
    if row.empty:
        return Problem("geometry", parcel=row.code, reason="图形为空",
                       reason_en="empty geometry")  # fmt: skip
    return Problem(
        "geometry", parcel=row.code, lon=row.bad_lon, lat=row.bad_lat,
        reason=f"图形无效：{validity_words(row.reason)}；面积、重叠等核查按修复后的图形"
        "（ST_MakeValid）计算",
        reason_en=f"invalid geometry: {row.reason}; other checks use the repaired shape "
        "(ST_MakeValid)",
    )  # fmt: skip


def code_stage(conn: Connection, plan: Plan) -> Found:
    """宗地代码: every code through `parcel_code_pattern` (Python's regular expressions are
    several times faster than PostgreSQL's here); the failures explained position by position,
    and a survey's own plot number (`is_parcel_code_attempt`) reported as no code yet."""
    codes = conn.execute(
        text(f"SELECT array_agg(p.code) FROM parcel p WHERE p.county_code = :county"
             f"{plan.only('p.id')}"), plan.params(),
    ).scalar() or []  # fmt: skip
    pattern = re.compile(parcel_code_pattern(plan.county))
    bad = [code for code in codes if not pattern.fullmatch(code)]
    found = Found()
    if not bad:
        return found
    rows = conn.execute(
        text(f"""
            SELECT p.code, ST_X(ST_PointOnSurface({fixed("p", None)})) AS lon,
                   ST_Y(ST_PointOnSurface({fixed("p", None)})) AS lat
            FROM parcel p WHERE p.county_code = :county AND p.code = ANY(:bad)
        """),
        plan.params(bad=bad),
    )  # fmt: skip
    for row in rows:
        found.problems.append(code_problem(row.code, plan.county, row.lon, row.lat))
    return found


def code_problem(code: str, county: str, lon: float | None, lat: float | None) -> Problem:
    """A code `parcel_code_pattern` refused, explained position by position."""
    if not is_parcel_code_attempt(code):  # a survey's own plot number: no code yet
        return Problem(
            "no_parcel_code", code, lon=lon, lat=lat,
            reason=f"尚无宗地代码：按勘测定界的本地编号“{code}”导入，赋码后更正",
            reason_en=f"no parcel code yet: imported by the survey's own number {code!r}",
        )  # fmt: skip
    failures = check_parcel_code(code, county)
    return Problem(
        "parcel_code", code, lon=lon, lat=lat, related=[f.rule for f in failures],
        reason="宗地代码有误：" + "；".join(f"第 {f.position} 位，{f.zh}" for f in failures),
        reason_en="wrong parcel code: "
        + "; ".join(f"position {f.position}: {f.en}" for f in failures),
    )  # fmt: skip


def validity_stage(conn: Connection, plan: Plan) -> Found:
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
    found = Found()
    for row in conn.execute(text(sql), plan.params()).all():
        found.bad_parcels.append(row.id)
        found.problems.append(geometry_problem(row))
    return found


def parcel_stage(conn: Connection, plan: Plan, n: int, k: int) -> Found:
    """Area, arrears and the link to a compound, for parcels with id % n = k (their shapes
    repaired where `validity_stage` found them invalid)."""
    s = plan.settings
    sql = f"""
        WITH linked AS (
            SELECT DISTINCT parcel_id FROM compound_parcel WHERE county_code = :county
        ), measured AS (
            SELECT c.*, ST_Area(ST_Transform(c.sg, :epsg)) AS drawn
            FROM (SELECT p.id, p.code, p.recorded_area_m2::float8 AS recorded,
                         p.premium_due::float8 AS due, p.premium_paid::float8 AS paid,
                         {fixed("p")} AS sg, l.parcel_id IS NULL AS orphan
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
                     AND ST_Relate({fixed("c", None)}, f.sg, '2********')
               ) END AS compounds_on_it
        FROM flagged f
    """
    params = plan.params(n=n, k=k, area_tol=s.area_tolerance,
                         arrears_tol=s.arrears_tolerance_yuan)  # fmt: skip
    count = "SELECT count(*) FROM parcel p WHERE p.county_code = :county AND p.id % :n = :k"
    found = Found(
        counts={"parcels": conn.execute(text(count + plan.only("p.id")), params).scalar()}
    )
    tol, owed_tol, epsg = s.area_tolerance, s.arrears_tolerance_yuan, plan.epsg
    problems = found.problems
    for code, recorded, due, paid, orphan, drawn, lon, lat, on_it in conn.execute(
        text(sql), params
    ).all():
        if recorded is None or recorded <= 0 or abs(drawn - recorded) > tol * recorded:
            problems.append(area_problem(code, lon, lat, drawn, recorded, tol, epsg))
        due, paid = due or 0.0, paid or 0.0
        if due - paid > owed_tol:
            problems.append(arrears_problem(code, lon, lat, due, paid))
        if orphan:
            problems.append(orphan_problem(code, lon, lat, on_it))
    return found


def arrears_problem(code: str, lon, lat, due: float, paid: float) -> Problem:
    owed = due - paid
    d, p, o = f"{due:,.2f}", f"{paid:,.2f}", f"{owed:,.2f}"  # each formatted once
    return Problem(
        "arrears", code, lon=lon, lat=lat, value=round(owed, 2), unit="元",
        reason=f"应缴土地出让金 {d} 元，已缴 {p} 元，欠缴 {o} 元",
        reason_en=f"land premium due {d}, paid {p}, owed {o} yuan",
    )  # fmt: skip


def orphan_problem(code: str, lon, lat, on_it: str | None) -> Problem:
    """`on_it`: the compounds standing on the parcel, joined by 、 (or None)."""
    return Problem(
        "orphan_parcel", code, lon=lon, lat=lat, related=on_it.split("、") if on_it else [],
        reason="宗地未关联任何小区" + (f"；其上有小区 {on_it}，但未建立关联" if on_it
                                      else "；其上也没有小区"),
        reason_en="the parcel belongs to no compound"
        + (f"; compounds {on_it} stand on it unlinked" if on_it else ""),
    )  # fmt: skip


def area_problem(code, lon, lat, drawn: float, recorded: float | None, tol: float,
                 epsg: int) -> Problem:  # fmt: skip
    if recorded is None or recorded <= 0:
        return Problem(
            "area", code, lon=lon, lat=lat, unit="m²",
            reason=f"没有登记面积，无法核对（图形面积 {sqm(drawn)}，EPSG:{epsg}）",
            reason_en=f"no recorded area to compare (drawn {drawn:.2f} m²)",
        )  # fmt: skip
    off = (drawn - recorded) / recorded
    return Problem(
        "area", code, lon=lon, lat=lat, value=round(100 * off, 3), unit="%",
        reason=f"图形面积 {sqm(drawn)}（EPSG:{epsg} 平面面积），登记面积 {sqm(recorded)}，"
        f"相差 {percent(off)}，超过面积容差 ±{percent(tol, False)}",
        reason_en=f"drawn {drawn:.2f} m² (EPSG:{epsg}) vs recorded {recorded:.2f} m²: "
        f"{off:+.2%}, beyond ±{tol:.2%}",
    )  # fmt: skip


# -- phase 2: overlaps in clusters, compounds on their parcels -----------------------------------


_COMPOUND_SQL = """
WITH members AS MATERIALIZED (
    SELECT m.id, m.cid, p.code, {safe_p} AS geom
    FROM unnest(CAST(:pids AS integer[]), CAST(:pcids AS integer[])) AS m(id, cid)
    JOIN parcel p ON p.county_code = :county AND p.id = m.id
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
    JOIN parcel b ON b.county_code = :county
     AND b.geom && a.geom AND a.id - b.id < 0  -- overlapping, so in a's cluster
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
    WHERE l.county_code = :county
    GROUP BY l.compound_id
), shapes AS MATERIALIZED (
    -- U, the union of a compound's parcels; their shapes are fetched only where needed
    SELECT o.compound_id AS id, c.code, c.name, o.ids, c.geom AS cg, CASE
        -- the cluster is exactly the compound's parcels: its union serves
        WHEN s.size = cardinality(o.ids) THEN s.u
        WHEN cardinality(o.ids) = 1 THEN {safe_p}
        ELSE (SELECT ST_Union({safe_b} ORDER BY b.id) FROM parcel b
              WHERE b.county_code = :county AND b.id = ANY(o.ids))
        END AS u
    FROM owned o JOIN compound c ON c.county_code = :county AND c.id = o.compound_id
    JOIN parcel p ON p.county_code = :county AND p.id = o.ids[1]
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
            WHERE p.county_code = :county AND p.id = ANY(s.ids)
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
           (SELECT array_agg(p.code ORDER BY p.code) FROM parcel p
            WHERE p.county_code = :county AND p.id = ANY(s.ids)) AS codes
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
       CASE WHEN f.kind = 'beyond' THEN ST_AsBinary(f.g) END AS piece_wkb,
       CASE WHEN f.kind = 'beyond' THEN ST_AsBinary(s.ug) END AS parcels_wkb,
       CASE WHEN f.kind <> 'overlap' OR ST_Area(f.g) > :overlap_tol
            THEN ST_AsGeoJSON(ST_Transform(f.g, 4490), 7) END AS geojson,
       ST_X(ST_Transform(ST_PointOnSurface(f.g), 4490)) AS lon,
       ST_Y(ST_Transform(ST_PointOnSurface(f.g), 4490)) AS lat
FROM found f LEFT JOIN suspects s ON s.id = f.compound_id
ORDER BY f.kind, s.code, f.codes, ST_Area(f.g) DESC
"""


def compound_stage(conn: Connection, plan: Plan, share: Share) -> Found:
    """Overlaps in this worker's clusters; gaps and land beyond parcels of its compounds."""
    s = plan.settings
    sql = _COMPOUND_SQL.format(safe_p=fixed("p"), safe_b=fixed("b"), touch=TOUCH_M)
    params = plan.params(
        pids=share.parcels, pcids=share.clusters, comps=share.compounds, noise=NOISE_M2,
        r=s.gap_width_m / 2, gap_tol=s.gap_tolerance_m2, beyond_tol=s.beyond_tolerance_m2,
        least_tol=min(s.gap_tolerance_m2, s.beyond_tolerance_m2), simplify=SIMPLIFY_DEG,
        overlap_tol=s.overlap_tolerance_m2,
    )  # fmt: skip
    found = Found()
    numbered: Counter = Counter()
    for row in conn.execute(text(sql), params).all():
        if row.kind == "overlap":
            add_overlap(found, row, s)
            continue
        numbered[(row.kind, row.code)] += 1
        piece = f"{row.kind}:{row.code}:{numbered[(row.kind, row.code)]}"
        if row.kind == "gap":
            add_gap(found, row, piece)
            continue
        depth = farthest_m(shapely.from_wkb(bytes(row.piece_wkb)),
                           shapely.from_wkb(bytes(row.parcels_wkb)))  # fmt: skip
        add_beyond(found, row, piece, depth)
    return found


def add_overlap(found: Found, row, s: CheckSettings) -> None:
    a, b = row.codes
    if row.area <= s.overlap_tolerance_m2:
        found.slivers.append((row.area, a, b))
        return
    width = 2 * row.area / row.perimeter if row.perimeter else 0.0
    piece = f"overlap:{a}:{b}"
    found.pieces.append(piece_json(piece, "overlap", row.geojson, row.area, parcels=[a, b],
                                 width_m=round(width, 2)))  # fmt: skip
    for mine, other in ((a, b), (b, a)):
        found.problems.append(Problem(
            "overlap", parcel=mine, related=[other], value=round(row.area, 2), unit="m²",
            reason=f"与宗地 {other} 重叠 {sqm(row.area)}（平均宽约 {width:.1f} m），超过重叠容差 "
            f"{s.overlap_tolerance_m2:g} m²",
            reason_en=f"overlaps parcel {other} by {row.area:.2f} m² (about {width:.1f} m wide), "
            f"beyond {s.overlap_tolerance_m2:g} m²",
            lon=row.lon, lat=row.lat, pieces=[piece],
        ))  # fmt: skip


def add_gap(found: Found, row, piece: str) -> None:
    width = 2 * row.area / row.perimeter if row.perimeter else 0.0
    side, _ = side_of(row.azimuth)
    found.pieces.append(piece_json(piece, "gap", row.geojson, row.area, compound=row.code,
                                 parcels=row.codes, width_m=round(width, 2)))  # fmt: skip
    between = "、".join(row.codes)
    for code in row.codes:
        found.problems.append(Problem(
            "gap", parcel=code, compound=row.code, compound_name=row.name,
            related=[c for c in row.codes if c != code], value=round(row.area, 2), unit="m²",
            lon=row.lon, lat=row.lat, pieces=[piece],
            reason=f"小区 {row.code} 的宗地 {between} 之间有 {sqm(row.area)} 缝隙（平均宽约 "
            f"{width:.1f} m，在小区{side}部），不属于任何宗地",
            reason_en=f"a {row.area:.2f} m² gap (about {width:.1f} m wide) between parcels "
            f"{', '.join(row.codes)} of compound {row.code}",
        ))  # fmt: skip


def farthest_m(piece: shapely.Geometry, parcels: shapely.Geometry) -> float:
    """How far the farthest point of `piece` lies from `parcels` (both in metres), to within
    `DEPTH_STEP_M`: the least r whose buffer of the parcels covers the piece. The piece's
    outline, densified, gives a first figure — enough where the farthest point is on it —
    and the buffers settle the rest. A vertex alone will not do: a repaired bow-tie leaves
    pieces whose every corner lies on the parcels, and whose middle lies metres away."""
    if parcels.is_empty or piece.is_empty:
        return 0.0
    step = max(0.5, shapely.length(piece) / 4000)
    points = shapely.points(shapely.get_coordinates(shapely.segmentize(piece, step)))
    low = float(shapely.distance(points, parcels).max())  # a distance some point has
    return settle_depth(piece, parcels, low)


def settle_depth(piece: shapely.Geometry, parcels: shapely.Geometry, low: float) -> float:
    """`farthest_m` from `low`, a distance some point of `piece` has from `parcels`: the buffers
    settle it to within `DEPTH_STEP_M`."""
    one = np.array([piece], dtype=object), np.array([parcels], dtype=object)
    return float(settle_depths(*one, np.array([low]))[0])


def settle_depths(pieces: np.ndarray, parcels: np.ndarray, low: np.ndarray) -> np.ndarray:
    """`settle_depth` of many pieces at once, step for step: the least r to within
    `DEPTH_STEP_M`, from `low`, whose buffer of the parcels covers the piece."""
    low = np.array(low, dtype=float)
    done = ~np.isfinite(low)
    low[done] = 0.0
    high = low + DEPTH_STEP_M
    grow = np.flatnonzero(~done)
    while len(grow):  # doubling until a buffer covers the piece
        short = grow[~_covers(parcels[grow], high[grow], pieces[grow])]
        low[short], high[short] = high[short], 2 * high[short] + DEPTH_STEP_M
        grow = short
    halve = np.flatnonzero(~done & (high - low > DEPTH_STEP_M))
    while len(halve):  # then halving down to the step
        middle = (low[halve] + high[halve]) / 2
        covered = _covers(parcels[halve], middle, pieces[halve])
        high[halve[covered]], low[halve[~covered]] = middle[covered], middle[~covered]
        halve = halve[high[halve] - low[halve] > DEPTH_STEP_M]
    low[done] = 0.0
    return low


def _covers(parcels: np.ndarray, distance: np.ndarray, pieces: np.ndarray) -> np.ndarray:
    # 16 segments a quarter circle: the buffer falls short of the true one by 0.12 % at most
    return shapely.covers(shapely.buffer(parcels, distance, quad_segs=16), pieces)


def add_beyond(found: Found, row, piece: str, depth: float) -> None:
    side, side_en = side_of(row.azimuth)
    found.pieces.append(piece_json(piece, "beyond", row.geojson, row.area, compound=row.code,
                                 parcels=row.codes, depth_m=round(depth, 2),
                                 side=side))  # fmt: skip
    found.problems.append(Problem(
        "beyond", compound=row.code, compound_name=row.name, related=list(row.codes),
        value=round(row.area, 2), unit="m²", lon=row.lon, lat=row.lat, pieces=[piece],
        reason=f"小区 {row.code} 在{side}侧超出其宗地 {sqm(row.area)}，最远超出 {depth:.1f} m"
        f"（其宗地：{'、'.join(row.codes)}）",
        reason_en=f"compound {row.code} reaches {row.area:.2f} m² beyond its parcels on its "
        f"{side_en} side, up to {depth:.1f} m",
    ))  # fmt: skip


def name_overlap_compounds(conn: Connection, plan: Plan, found: Found) -> None:
    """Overlap problems name the compounds of both parcels (and say when they share one)."""
    codes = sorted(
        {c for p in found.problems if p.check == "overlap" for c in [p.parcel, *p.related]}
    )
    if not codes:
        return
    rows = conn.execute(
        text("""
            SELECT p.code, array_agg(c.code ORDER BY c.code) AS compounds
            FROM parcel p
            JOIN compound_parcel l ON l.county_code = p.county_code AND l.parcel_id = p.id
            JOIN compound c ON c.county_code = l.county_code AND c.id = l.compound_id
            WHERE p.county_code = :county AND p.code = ANY(:codes) GROUP BY p.code
        """),
        {"county": plan.county, "codes": codes},
    )
    name_compounds(found, {row.code: row.compounds for row in rows})


def name_compounds(found: Found, compounds: dict[str, list[str]]) -> None:
    """Each overlap problem's compounds (`compounds`: parcel code → its compounds' codes)."""
    for problem in found.problems:
        if problem.check != "overlap":
            continue
        mine = compounds.get(problem.parcel, [])
        problem.compound = "、".join(mine) or None
        if set(mine) & set(compounds.get(problem.related[0], [])):
            problem.reason = problem.reason.replace(" 重叠", "（同一小区）重叠", 1)


# -- compounds with no parcel, planned areas, developers -----------------------------------------


def lonely_compounds(conn: Connection, plan: Plan) -> Found:
    sql = f"""
        SELECT c.code, c.name, ST_X(ST_PointOnSurface(sc.g)) AS lon,
               ST_Y(ST_PointOnSurface(sc.g)) AS lat,
               (SELECT string_agg(p.code, '、' ORDER BY p.code) FROM parcel p
                WHERE p.county_code = :county AND p.geom && sc.g
                  AND ST_Relate({fixed("p", None)}, sc.g, '2********')) AS parcels_under
        FROM compound c CROSS JOIN LATERAL (SELECT {fixed("c", None)} AS g OFFSET 0) sc
        WHERE c.county_code = :county {plan.only("c.id", "cids")}
          AND NOT EXISTS (SELECT 1 FROM compound_parcel l
                          WHERE l.county_code = c.county_code AND l.compound_id = c.id)
    """
    total = "SELECT count(*) FROM compound c WHERE c.county_code = :county"
    params = plan.params()
    found = Found(counts={"compounds": conn.execute(text(total + plan.only("c.id", "cids")),
                                                     params).scalar_one()})  # fmt: skip
    for row in conn.execute(text(sql), params).all():
        found.problems.append(
            lonely_problem(row.code, row.name, row.lon, row.lat, row.parcels_under)
        )
    return found


def lonely_problem(code: str, name: str, lon, lat, under: str | None) -> Problem:
    """`under`: the parcels lying under the compound, joined by 、 (or None)."""
    return Problem(
        "compound_no_parcel", compound=code, compound_name=name,
        related=under.split("、") if under else [], lon=lon, lat=lat,
        reason=f"小区 {code} {name} 没有关联任何宗地"
        + (f"；其下有宗地 {under}，但未建立关联" if under else "；其下也没有宗地"),
        reason_en=f"compound {code} has no parcel linked"
        + (f"; parcels {under} lie under it unlinked" if under else ""),
    )  # fmt: skip


def planned_stage(conn: Connection, plan: Plan) -> Found:
    kinds = ", ".join(f"'{kind}'" for kind in CONFLICT_KINDS)
    sql = f"""
        WITH pieces AS MATERIALIZED (
            -- in the GK zone, where a planned road's long straight edges were drawn; cut into
            -- small pieces, each with a 4490 box (1 m wider: a GK-straight edge bulges a little)
            SELECT x.*, ST_Expand(ST_Transform(ST_Envelope(x.g), 4490), 0.00001) AS box
            FROM (SELECT a.id, a.code, a.name, a.kind,
                         ST_Subdivide(ST_Transform({fixed("a", None)}, :epsg),
                                      {SUBDIVIDE_VERTICES}) AS g
                  FROM planned_area a
                  WHERE a.county_code = :county AND a.kind IN ({kinds})) x
        ), hits AS (
            SELECT a.code AS area_code, a.name, a.kind, p.id, p.code,
                   ST_CollectionExtract(ST_Intersection(a.g, pg.g), 3) AS g
            FROM pieces a JOIN parcel p ON p.geom && a.box
            CROSS JOIN LATERAL (SELECT ST_Transform({fixed("p", None)}, :epsg) AS g OFFSET 0) pg
            WHERE p.county_code = :county {plan.only("p.id")} AND ST_Intersects(a.g, pg.g)
        ), pairs AS (
            SELECT area_code, name, kind, id, code, ST_Union(g) AS g
            FROM hits WHERE NOT ST_IsEmpty(g) GROUP BY area_code, name, kind, id, code
        )
        SELECT x.*, ST_AsGeoJSON(ST_Transform(x.g, 4490), 7) AS geojson,
               ST_X(ST_Transform(ST_PointOnSurface(x.g), 4490)) AS lon,
               ST_Y(ST_Transform(ST_PointOnSurface(x.g), 4490)) AS lat,
               ST_Area(ST_Transform({fixed("p", None)}, :epsg)) AS parcel_area
        FROM (SELECT pairs.*, ST_Area(pairs.g) AS area FROM pairs) x
        JOIN parcel p ON p.id = x.id
        WHERE x.area > :tol
    """
    tol = plan.settings.planned_tolerance_m2
    found = Found()
    for row in conn.execute(text(sql), plan.params(tol=tol)).all():
        add_planned(found, row, tol)
    return found


def add_planned(found: Found, row, tol: float) -> None:
    """A parcel on a planned road or green space: its piece and problem."""
    kind = PLANNED_AREA_LABELS[PlannedAreaKind(row.kind)]
    what = f"“{row.name}”" if row.name.startswith(kind) else f"{kind}“{row.name}”"
    share = row.area / row.parcel_area if row.parcel_area else 0.0
    part = f"{share:.1%}" if share >= 0.001 else "不足 0.1%"
    piece = f"planned:{row.code}:{row.area_code}"
    found.pieces.append(piece_json(piece, "planned", row.geojson, row.area, parcels=[row.code],
                                 planned=row.name, planned_kind=kind))  # fmt: skip
    found.problems.append(Problem(
        "planned", parcel=row.code, related=[row.name], value=round(row.area, 2), unit="m²",
        lon=row.lon, lat=row.lat, pieces=[piece],
        reason=f"压占{what} {sqm(row.area)}（占宗地 {part}），超过规划冲突容差 {tol:g} m²",
        reason_en=f"{row.area:.2f} m² ({share:.1%} of the parcel) under {row.kind} "
        f"{row.name!r}, beyond {tol:g} m²",
    ))  # fmt: skip


def developer_stage(conn: Connection, plan: Plan) -> Found:
    if plan.parcels is not None:
        return Found()
    sql = """
        SELECT d.name, d.credit_code,
               array_remove(array_agg(c.code ORDER BY c.code), NULL) AS compounds
        FROM developer d
            LEFT JOIN compound c ON c.county_code = d.county_code AND c.developer_id = d.id
        WHERE d.county_code = :county GROUP BY d.id, d.name, d.credit_code
    """
    rows = conn.execute(text(sql), plan.params()).all()
    found = Found(counts={"developers": len(rows)})
    for row in rows:
        problem = developer_problem(row.name, row.credit_code, row.compounds)
        if problem is not None:
            found.problems.append(problem)
    return found


def developer_problem(name: str, credit_code: str | None, compounds: list[str]) -> Problem | None:
    """A developer's credit code, missing or wrong (None when it is right)."""
    if credit_code_ok(credit_code):
        return None  # the fast path; the full check explains the rest position by position
    if not credit_code:  # a developer a file named without its code
        return Problem(
            "credit_code", compound="、".join(compounds) or None, related=[name, ""],
            reason=f"开发企业 {name} 尚无统一社会信用代码，请补录",
            reason_en=f"developer {name} has no credit code yet",
        )  # fmt: skip
    failures = check_credit_code(credit_code)
    if not failures:
        return None
    return Problem(
        "credit_code", compound="、".join(compounds) or None,
        related=[name, credit_code or ""],
        reason=f"开发企业 {name} 的统一社会信用代码“{credit_code or ''}”有误："
        + "；".join(f"第 {f.position} 位，{f.zh}" for f in failures),
        reason_en=f"credit code {credit_code!r} of {name}: "
        + "; ".join(f"position {f.position}: {f.en}" for f in failures),
    )  # fmt: skip
