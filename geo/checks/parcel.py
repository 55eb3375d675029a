"""One parcel's checks, for its page: the county's statements restricted to it."""

import json
import time
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import Connection, text

from geo import TitlemapError
from geo.checks.report import (
    CHECKS,
    CheckReport,
    CheckSettings,
    Problem,
    percent,
    sqm,
    yuan,
)
from geo.checks.run import build_report, square_degree_m2, tune
from geo.checks.stages import (
    CONFLICT_KINDS,
    Plan,
    cluster_stage,
    code_stage,
    compound_stage,
    fixed,
    name_overlap_compounds,
    parcel_stage,
    planned_stage,
    validity_stage,
)
from geo.query.compounds import get_county

NEIGHBOUR_M = 50.0  # the parcel page shows parcels this close


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
    tune(conn)
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
    kdeg = square_degree_m2(conn, county)
    plan = Plan(county, info.epsg, settings, kdeg, [parcel_id], compound_ids)
    near = Plan(county, info.epsg, settings, kdeg, nearby, compound_ids)
    found = cluster_stage(conn, near)
    found.add(validity_stage(conn, near))
    near.bad_parcels = plan.bad_parcels = sorted(found.bad_parcels)
    found.add(parcel_stage(conn, near, 1, 0))
    found.add(code_stage(conn, plan))
    found.add(planned_stage(conn, plan))
    found.add(compound_stage(conn, near, found.shares[0]))
    name_overlap_compounds(conn, plan, found)
    compound_codes = [c["code"] for c in compounds]
    found.problems = [p for p in found.problems if _concerns(p, code, compound_codes)]
    keep = {piece for p in found.problems for piece in p.pieces}
    found.pieces = [f for f in found.pieces if f["id"] in keep]
    found.slivers = [s for s in found.slivers if code in s[1:]]
    found.counts = {"parcels": 1, "compounds": len(compounds)}
    timings = {"total": time.perf_counter() - started}
    report = build_report(info, plan, found, timings, code, 1)
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
                   (SELECT count(*) FROM compound_parcel x
                    WHERE x.county_code = c.county_code AND x.compound_id = c.id) AS parcels
            FROM compound_parcel l
            JOIN compound c ON c.county_code = l.county_code AND c.id = l.compound_id
            LEFT JOIN ledger_entry e ON e.county_code = c.county_code AND e.compound_id = c.id
            WHERE l.county_code = :county AND l.parcel_id = :id ORDER BY c.code
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
                   ST_Area(ST_Transform({fixed("p", None)}, :epsg)) AS drawn_area_m2,
                   ST_Perimeter(ST_Transform({fixed("p", None)}, :epsg)) AS perimeter_m,
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
        "no_parcel_code": ("pass", "已有宗地代码"),
        "geometry": ("pass", "图形有效（ST_IsValid）"),
        "area": ("pass", f"图形面积 {sqm(drawn)}（EPSG:{epsg}），登记面积 "
                 f"{sqm(recorded or 0)}，相差 {percent(figures['area_difference'] or 0)}，"
                 f"在面积容差 ±{percent(s.area_tolerance, False)} 以内"),
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
    for check in ("parcel_code", "no_parcel_code", "geometry", "area", "overlap", "gap", "beyond",
                  "planned", "arrears", "orphan_parcel"):  # fmt: skip
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
    return "pass", f"应缴 {yuan(due)}，已缴 {yuan(paid or 0)}，无欠缴"


def _drawing(conn: Connection, epsg: int, parcel_id: int, compounds: list[str],
             report: CheckReport) -> tuple[list[dict], dict]:  # fmt: skip
    """Neighbours (within NEIGHBOUR_M, or in the same compound), and GK-zone GeoJSON of
    everything the page draws: every parcel around the parcel and its compounds."""
    flagged = {p.parcel for p in report.problems if p.parcel}
    rows = conn.execute(
        text(f"""
            WITH t AS (
                SELECT p.id, p.county_code, p.geom, ST_Transform({fixed("p", None)}, :epsg) AS g,
                       ST_Expand(ST_Collect(p.geom, (
                           SELECT ST_Collect(c.geom) FROM compound c
                           WHERE c.county_code = p.county_code AND c.code = ANY(:compounds))),
                           0.001) AS around
                FROM parcel p WHERE p.id = :id
            )
            SELECT o.id = t.id AS me, o.code, ST_Distance(og.g, t.g) AS distance,
                   ST_AsGeoJSON(og.g, 2) AS geojson,
                   (SELECT array_agg(c.code ORDER BY c.code) FROM compound_parcel l
                    JOIN compound c ON c.county_code = l.county_code AND c.id = l.compound_id
                    WHERE l.county_code = o.county_code AND l.parcel_id = o.id) AS compounds
            FROM t JOIN parcel o ON o.county_code = t.county_code AND o.geom && t.around
            CROSS JOIN LATERAL (SELECT ST_Transform({fixed("o", None)}, :epsg) AS g OFFSET 0) og
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
            SELECT c.code, c.name, ST_AsGeoJSON(ST_Transform({fixed("c", None)}, :epsg), 2) AS g
            FROM compound c WHERE c.county_code = :county AND c.code = ANY(:codes)
            ORDER BY c.code
        """),
        {"epsg": epsg, "county": report.county, "codes": compounds},
    ).all()
    planned_rows = conn.execute(
        text(f"""
            SELECT a.name, a.kind, ST_AsGeoJSON(ST_Transform(ST_Intersection(
                       {fixed("a", None)}, ST_Expand(t.geom, 0.003)), :epsg), 2) AS g
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
