"""Every county's parcel checks at once (issue 17): `run_checks_many(conn, counties)`.

The reports `geo.checks.run.run_parcel_checks` gives county by county — the same problems,
pieces, slivers and counts — from a handful of statements for all the counties together
(`county_code = ANY(…)`: parcels, compounds, links, planned areas, developers, closed ledger
entries, each read once, the shapes as WKB in one row of arrays), the geometry worked in
shapely 2 over arrays of every county's rows (geo/checks/shapes.py; its GEOS is newer and
faster than the one PostGIS links here), each county measured in its own Gauss-Krüger zone.
PostGIS stays the store; it still explains the few invalid shapes (`ST_IsValidReason`, the
SQL path's words) and finds the closed ledger entries.

What each check means is geo/checks/run.py's docstring; the words of every problem come from
the same builders as the SQL path (geo/checks/stages.py, geo/checks/ledger.py): the kernel
supplies the numbers. Where the two GEOS versions differ in the last digits the figures agree
to within a rounding (geo/checks/compare.py says how closely). Two differences by design:
the depth of land beyond parcels starts its buffers from the farthest corner
(`shapes.depths`: the same figure to within `DEPTH_STEP_M`), and a planned-area piece's point
(`ST_PointOnSurface`) may lie elsewhere in the same piece, where PostGIS's piece still holds
the cut points of `ST_Subdivide`.
"""

import math
import re
import time
from collections import Counter, defaultdict
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from types import SimpleNamespace as Row

import numpy as np
import shapely
from sqlalchemy import Connection

from geo import TitlemapError
from geo.checks import shapes
from geo.checks.ledger import CLOSED_SQL, closing_problem
from geo.checks.report import NOISE_M2, CheckReport, CheckSettings
from geo.checks.run import _Runner, build_report, default_workers
from geo.checks.stages import (
    CONFLICT_KINDS,
    TOUCH_M,
    Found,
    Plan,
    add_beyond,
    add_gap,
    add_overlap,
    add_planned,
    area_problem,
    arrears_problem,
    code_problem,
    developer_problem,
    geometry_problem,
    lonely_problem,
    name_compounds,
    orphan_problem,
)
from geo.core.codes import parcel_code_pattern
from geo.core.crs import measuring_epsg
from geo.query.compounds import County


def run_checks_many(
    conn: Connection,
    counties: list[str],
    settings: CheckSettings | None = None,
    workers: int | None = None,
) -> dict[str, CheckReport]:
    """Every check of every county in `counties`, as `run_parcel_checks` reports each.

    The counties are dealt out to `workers` groups (default: the CPU count, at most 4), each
    checked in a thread on a connection of `conn`'s snapshot (geo.checks.run's runner: the
    figures are those of one moment); GEOS lets go of the GIL, so the groups' geometry runs on
    as many cores. Developers and closed ledger entries are read meanwhile on one more."""
    settings = settings or CheckSettings()
    started = time.perf_counter()
    counties = list(dict.fromkeys(counties))
    n = max(1, min(workers or default_workers(), len(counties)))
    groups = [counties[k::n] for k in range(n)]
    with _Runner(conn, n + 1) as runner:
        side = runner.submit(
            lambda c: (
                _rows(c, DEVELOPERS_SQL, counties=counties),
                _rows(c, _closed_sql(), counties=counties, names=True),
            )
        )
        tasks = [runner.submit(lambda c, group=group: _checked(c, group, settings))
                 for group in groups[1:]]  # fmt: skip
        runs = [_checked(conn, groups[0], settings)] + [task.result() for task in tasks]
        developers, closed = side.result()
    run_of = {code: run for run in runs for code in run.index}
    for row in developers:
        run_of[row[0]].developer(row)
    for row in closed:
        run_of[row.county].closing(row)
    timings = runs[0].timings | {"total": time.perf_counter() - started}
    reports = {}
    for run in runs:
        for k, place in enumerate(run.places):
            found = run.found[k]
            found.counts = {key: found.counts[key] for key in ("parcels", "developers",
                                                               "compounds")}  # fmt: skip
            reports[place.info.code] = build_report(place.info, place.plan, found, timings,
                                                    "county", n)  # fmt: skip
    return {code: reports[code] for code in counties}


def _checked(conn: Connection, counties: list[str], settings: CheckSettings) -> "_Run":
    """One group of counties through every geometry check (the coverage check in a thread of
    its own while the compounds are read)."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=1) as thread:
        run = _Run(conn, counties, settings, thread)
        run.timings["read"] = time.perf_counter() - started
        for name, stage in (("parcels", run.parcel_checks), ("overlaps", run.overlaps),
                            ("compounds", run.compound_checks), ("planned", run.planned),
                            ("lonely", run.lonely)):  # fmt: skip
            begun = time.perf_counter()
            stage()
            run.timings[name] = time.perf_counter() - begun
    return run


# -- reading -------------------------------------------------------------------------------------


@dataclass
class _Place:
    info: County
    plan: Plan
    closing_rule: str


DEVELOPERS_SQL = """
    SELECT d.county_code, d.name, d.credit_code,
           array_remove(array_agg(c.code ORDER BY c.code), NULL)
    FROM developer d
        LEFT JOIN compound c ON c.county_code = d.county_code AND c.developer_id = d.id
    WHERE d.county_code = ANY(%(counties)s) GROUP BY d.county_code, d.id
"""


def _closed_sql() -> str:
    """geo/checks/ledger.py's CLOSED_SQL for every county at once."""
    sql = CLOSED_SQL.replace("SELECT c.code,", "SELECT e.county_code AS county, c.code,", 1)
    sql = sql.replace("e.county_code = :county", "e.county_code = ANY(%(counties)s)", 1)
    assert "ANY(" in sql and "AS county" in sql, "CLOSED_SQL changed its shape"
    return sql


def _rows(conn: Connection, sql: str, names: bool = False, **params) -> list:
    """Rows straight from psycopg, binary (WKB as bytes), in `conn`'s transaction; with
    `names`, each as a namespace of its columns."""
    with conn.connection.driver_connection.cursor(binary=True) as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
        if names:
            columns = [column.name for column in cursor.description]
            return [Row(**dict(zip(columns, row, strict=True))) for row in rows]
        return rows


def _columns(conn: Connection, sql: str, width: int, **params) -> list[np.ndarray]:
    """The `width` columns of `sql`'s rows, each as one array: read as one row of arrays
    (`array_agg`), several times faster than row by row. The aggregates of one pass read the
    rows in the same order, so the columns align."""
    aggregates = ", ".join(f"array_agg(c{k})" for k in range(width))
    names = ", ".join(f"c{k}" for k in range(width))
    (row,) = _rows(conn, f"SELECT {aggregates} FROM ({sql}) AS t({names})", **params)
    return [np.array(column or [], dtype=object) for column in row]


class _Run:
    """The rows of every county, each as arrays; `found[k]` collects county k's problems."""

    def __init__(
        self, conn: Connection, counties: list[str], settings: CheckSettings, thread: Executor
    ) -> None:
        self.conn, self.settings, self.thread = conn, settings, thread
        self.timings: dict[str, float] = {}
        self.places = self._places(counties)
        self.index = {place.info.code: k for k, place in enumerate(self.places)}
        self.found = [Found(counts={"developers": 0}) for _ in self.places]
        self.epsg = np.array([place.info.epsg for place in self.places], dtype=int)
        self.kdeg = np.array([place.plan.m2_per_deg2 for place in self.places])
        self._parcels()
        self._compounds()

    def _places(self, counties: list[str]) -> list[_Place]:
        rows = _rows(self.conn, """
            SELECT code, name, gk_epsg, ST_X(ST_Centroid(geom)), ST_Y(ST_Centroid(geom)),
                   closing_rule
            FROM county WHERE code = ANY(%(counties)s)
        """, counties=counties)  # fmt: skip
        known = {row[0]: row for row in rows}
        places = []
        for code in counties:
            if code not in known:
                raise TitlemapError(f"没有这个县 / no such county: {code}")
            _, name, gk, lon, lat, rule = known[code]
            if lon is None and gk is None:
                raise TitlemapError(
                    f"{name} 没有边界也没有设定投影带 / county has no boundary or zone"
                )
            info = County(code, name, measuring_epsg(lon, gk))
            lat = 35.0 if lat is None else lat  # as geo.checks.run.square_degree_m2
            kdeg = 111_320 * math.cos(math.radians(lat)) * 110_574
            places.append(_Place(info, Plan(code, info.epsg, self.settings, kdeg), rule))
        return places

    def _parcels(self) -> None:
        county, ids, codes, recorded, due, paid, wkb = _columns(self.conn, """
            SELECT array_position(%(counties)s, county_code) - 1, id, code,
                   recorded_area_m2::float8, premium_due::float8, premium_paid::float8,
                   ST_AsBinary(geom)
            FROM parcel WHERE county_code = ANY(%(counties)s)
        """, 7, counties=list(self.index))  # fmt: skip
        self.p_county, self.p_id = county.astype(int), ids.astype(np.int64)
        self.p_code = codes
        self.p_recorded, self.p_due, self.p_paid = recorded, due, paid
        raw = shapely.from_wkb(wkb)
        self.p_empty = shapely.is_empty(raw)
        self.p_valid = shapely.is_valid(raw) & ~self.p_empty
        self.p_geom = shapes.repaired(raw, self.p_valid)  # every check uses the repaired shape
        self.p_zone = self.epsg[self.p_county]
        self.p_gk = shapes.to_zone(self.p_geom, self.p_zone)
        self.p_area = shapely.area(self.p_gk)
        self._flags = self.thread.submit(shapes.coverage_flags, self.p_geom)

    def _compounds(self) -> None:
        counties = list(self.index)
        county, ids, codes, names, wkb = _columns(self.conn, """
            SELECT array_position(%(counties)s, county_code) - 1, id, code, name,
                   ST_AsBinary(geom) FROM compound
            WHERE county_code = ANY(%(counties)s)
        """, 5, counties=counties)  # fmt: skip
        self.c_county, self.c_id = county.astype(int), ids.astype(np.int64)
        self.c_code, self.c_name = codes, names
        self.c_outline = shapely.from_wkb(wkb)
        self.c_geom = shapes.repaired(self.c_outline, shapely.is_valid(self.c_outline))
        links = _columns(self.conn, """
            SELECT array_position(%(counties)s, county_code) - 1, compound_id, parcel_id
            FROM compound_parcel WHERE county_code = ANY(%(counties)s)
        """, 3, counties=counties)  # fmt: skip
        county, compound, parcel = (np.array(c, dtype=np.int64) for c in links)
        c_row, c_ok = _find(self.c_county, self.c_id, county, compound)
        p_row, p_ok = _find(self.p_county, self.p_id, county, parcel)
        self.l_compound, self.l_parcel = c_row[c_ok & p_ok], p_row[c_ok & p_ok]

    # -- each parcel on its own ------------------------------------------------------------------

    def parcel_checks(self) -> None:
        """Validity, codes, area, arrears and links (validity_stage, code_stage, parcel_stage)."""
        s = self.settings
        for k, count in enumerate(np.bincount(self.p_county, minlength=len(self.places))):
            self.found[k].counts["parcels"] = int(count)
        self._validity()
        self._codes()
        recorded = np.array([np.nan if v is None else v for v in self.p_recorded], dtype=float)
        owed = np.array(
            [(d or 0.0) - (p or 0.0) for d, p in zip(self.p_due, self.p_paid, strict=True)]
        )
        no_record = np.isnan(recorded) | (recorded <= 0)
        with np.errstate(invalid="ignore"):
            off = np.abs(self.p_area - recorded) > s.area_tolerance * recorded
        orphan = np.ones(len(self.p_id), dtype=bool)
        orphan[self.l_parcel] = False
        flagged = np.flatnonzero(no_record | off | (owed > s.arrears_tolerance_yuan) | orphan)
        lon, lat = _lon_lat(shapely.point_on_surface(self.p_geom[flagged]))
        on_it = self._standing_on(flagged[orphan[flagged]])
        measure = (no_record | off)[flagged].tolist()
        owing = (owed > s.arrears_tolerance_yuan)[flagged].tolist()
        alone = orphan[flagged].tolist()
        columns = (self.p_county[flagged].tolist(), self.p_code[flagged].tolist(),
                   self.p_area[flagged].tolist(), self.p_recorded[flagged].tolist(),
                   self.p_zone[flagged].tolist(), self.p_due[flagged].tolist(),
                   self.p_paid[flagged].tolist())  # fmt: skip
        tol = s.area_tolerance
        rows = zip(*columns, strict=True)
        for i, (county, code, drawn, recorded, epsg, due, paid) in enumerate(rows):
            problems, x, y = self.found[county].problems, lon[i], lat[i]
            if measure[i]:
                problems.append(area_problem(code, x, y, drawn, recorded, tol, epsg))
            if owing[i]:
                problems.append(arrears_problem(code, x, y, due or 0.0, paid or 0.0))
            if alone[i]:
                problems.append(orphan_problem(code, x, y, on_it.get(flagged[i])))

    def _validity(self) -> None:
        bad = np.flatnonzero(~self.p_valid)
        if not len(bad):
            return
        # PostGIS's own words for what is wrong and where (a few shapes)
        ids = [int(i) for i in self.p_id[bad]]
        why = {row[0]: row[1:] for row in _rows(self.conn, """
            SELECT id, ST_IsValidReason(geom), ST_X((ST_IsValidDetail(geom)).location),
                   ST_Y((ST_IsValidDetail(geom)).location)
            FROM parcel WHERE id = ANY(%(ids)s) AND NOT ST_IsValid(geom)
        """, ids=ids)}  # fmt: skip
        for k in bad:
            reason, x, y = why.get(int(self.p_id[k]), ("Invalid", None, None))
            row = Row(code=self.p_code[k], empty=bool(self.p_empty[k]), reason=reason,
                      bad_lon=x, bad_lat=y)  # fmt: skip
            self.found[self.p_county[k]].problems.append(geometry_problem(row))

    def _codes(self) -> None:
        bad = np.zeros(len(self.p_code), dtype=bool)
        for k, place in enumerate(self.places):
            mine = np.flatnonzero(self.p_county == k)
            codes = self.p_code[mine].tolist()
            pattern = re.compile(parcel_code_pattern(place.info.code), re.MULTILINE)
            lines = "\n".join(codes)  # one pass of the regular expression over them all
            if lines.count("\n") == len(codes) - 1:
                good = {m.group(0) for m in pattern.finditer(lines)}
                bad[mine] = [code not in good for code in codes]
            else:  # a code holding a line break
                bad[mine] = [pattern.fullmatch(code) is None for code in codes]
        rows = np.flatnonzero(bad)
        lon, lat = _lon_lat(shapely.point_on_surface(self.p_geom[rows]))
        for k, x, y in zip(rows, lon, lat, strict=True):
            county = self.places[self.p_county[k]].info.code
            self.found[self.p_county[k]].problems.append(code_problem(self.p_code[k], county, x, y))

    def _standing_on(self, parcels: np.ndarray) -> dict[int, str]:
        """Parcel row → the compounds standing on it (interiors meet), joined by 、."""
        if not len(parcels) or not len(self.c_id):
            return {}
        p, c = _meeting(self.p_geom, self.p_county, parcels, self.c_geom, self.c_county)
        return _joined(p, self.c_code[c])

    # -- overlaps --------------------------------------------------------------------------------

    def overlaps(self) -> None:
        s = self.settings
        self.p_flagged = self._flags.result()  # only these can overlap anything
        a, b = shapes.overlapping_pairs(self.p_geom, self.p_county, self.p_flagged)
        first = self.p_id[a] < self.p_id[b]  # the SQL names the lower id first
        a, b = np.where(first, a, b), np.where(first, b, a)
        zone = self.p_zone[a]
        pieces = shapes.to_zone(shapes.intersections(self.p_geom[a], self.p_geom[b]), zone)
        area = shapely.area(pieces)
        keep = area > NOISE_M2
        a, b, pieces, area, zone = a[keep], b[keep], pieces[keep], area[keep], zone[keep]
        lon, lat = shapes.points_back(pieces, zone)
        perimeter = shapely.length(pieces)
        shown = area > s.overlap_tolerance_m2
        drawn = dict(zip(np.flatnonzero(shown),
                         shapes.geojson(shapes.from_zone(pieces[shown], zone[shown])),
                         strict=True))  # fmt: skip
        for k in range(len(a)):
            row = Row(codes=[self.p_code[a[k]], self.p_code[b[k]]], area=float(area[k]),
                      perimeter=float(perimeter[k]), geojson=drawn.get(k),
                      lon=_number(lon[k]), lat=_number(lat[k]))  # fmt: skip
            add_overlap(self.found[self.p_county[a[k]]], row, s)
        named = np.isin(self.l_parcel, np.concatenate([a, b]))
        compounds = _joined_lists(self.l_parcel[named], self.c_code[self.l_compound[named]])
        for county in np.unique(self.p_county[a]):
            codes = {self.p_code[k]: names for k, names in compounds.items()
                     if self.p_county[k] == county}  # fmt: skip
            name_compounds(self.found[county], codes)

    # -- compounds on their parcels: gaps and land beyond ----------------------------------------

    def compound_checks(self) -> None:
        """Gaps and land beyond parcels (compound_stage's `shapes` … `beyond`)."""
        s = self.settings
        owned, owner = np.unique(self.l_compound, return_inverse=True)
        if not len(owned):
            return
        county = self.c_county[owned]
        exact = ~self.p_flagged[self.l_parcel]  # edges matching exactly: a coverage union
        union = shapes.unions(self.p_geom[self.l_parcel], owner, len(owned), exact)
        least = min(s.gap_tolerance_m2, s.beyond_tolerance_m2)
        # A compound drawn exactly as its parcels has no land off them. The SQL's shortcut for
        # the rest (`shapes.same_outline`: outlines equal but for points within SIMPLIFY_DEG of
        # a line) skips only differences below half the least tolerance — which no check
        # reports either — and here costs more than the differences it saves.
        skip = shapes.identical(self.c_outline[owned], union)
        diff = np.full(len(owned), shapes.EMPTY, dtype=object)
        rest = np.flatnonzero(~skip)
        diff[rest] = shapely.difference(self.c_geom[owned[rest]], union[rest])
        suspect = (shapely.area(diff) * self.kdeg[county] > least / 2) | shapes.has_holes(union)
        rows = np.flatnonzero(suspect)
        if not len(rows):
            return
        zone = self.epsg[county[rows]]
        ug = shapes.to_zone(union[rows], zone)
        dg = shapes.to_zone(diff[rows], zone)
        order = np.argsort(owner, kind="stable")
        bounds = np.searchsorted(owner[order], rows), np.searchsorted(owner[order], rows + 1)
        members = [self.l_parcel[order[i:j]] for i, j in zip(*bounds, strict=True)]
        gaps = self._gaps(ug, dg, members)
        beyond = self._beyond(dg, gaps, members)
        self._report_pieces(owned[rows], zone, ug, gaps, beyond)

    def _gaps(self, ug, dg, members) -> list[tuple]:
        """Gaps between two or more of a suspect's parcels: (suspect, piece, codes, area)."""
        s = self.settings
        where = np.flatnonzero([len(m) > 1 for m in members])
        if not len(where):
            return []
        closed = shapes.closing(ug[where], s.gap_width_m / 2)
        near = shapes.intersections(dg[where], closed)
        holes = np.array([shapely.multipolygons(h) if (h := shapes.holes_of(g)) else shapes.EMPTY
                          for g in ug[where]], dtype=object)  # fmt: skip
        pieces, at = shapely.get_parts(shapely.union(near, holes), return_index=True)
        area = shapely.area(pieces)
        big = area > s.gap_tolerance_m2
        out = []
        for piece, k, size in zip(pieces[big], where[at[big]], area[big], strict=True):
            parcels = members[k]
            touching = shapely.dwithin(self.p_gk[parcels], piece, TOUCH_M)
            codes = sorted(self.p_code[parcels[touching]])
            if len(codes) >= 2:
                out.append((k, piece, codes, float(size)))
        return out

    def _beyond(self, dg, gaps, members) -> list[tuple]:
        """A suspect's land beyond its parcels less its gaps: (suspect, piece, codes, area)."""
        s = self.settings
        rest = dg.copy()
        by_suspect = defaultdict(list)
        for k, piece, _, _ in gaps:
            by_suspect[k].append(piece)
        for k, pieces in by_suspect.items():
            rest[k] = shapely.difference(dg[k], shapely.union_all(pieces))
        pieces, at = shapely.get_parts(rest, return_index=True)
        area = shapely.area(pieces)
        big = np.flatnonzero(area > s.beyond_tolerance_m2)
        codes = {k: sorted(self.p_code[members[k]]) for k in np.unique(at[big])}
        return [(at[i], pieces[i], codes[at[i]], float(area[i])) for i in big]

    def _report_pieces(self, compounds, zone, ug, gaps, beyond) -> None:
        """Every gap and beyond piece, numbered per compound as the SQL orders them."""
        pieces = [("gap", *g) for g in gaps] + [("beyond", *b) for b in beyond]
        pieces.sort(key=lambda p: (p[0], self.c_code[compounds[p[1]]], p[3], -p[4]))
        if not pieces:
            return
        at = np.array([p[1] for p in pieces])
        shape = np.array([p[2] for p in pieces], dtype=object)
        where = zone[at]
        lon, lat = shapes.points_back(shape, where)
        drawn = shapes.geojson(shapes.from_zone(shape, where))
        outline = shapes.to_zone(self.c_geom[compounds[at]], where)
        turn = shapes.azimuth(outline, shape)
        perimeter = shapely.length(shape)
        far = np.zeros(len(pieces))
        is_beyond = np.array([p[0] == "beyond" for p in pieces])
        far[is_beyond] = shapes.depths(shape[is_beyond], ug[at[is_beyond]])
        numbered: Counter = Counter()
        for k, (kind, _, _, codes, area) in enumerate(pieces):
            compound = compounds[at[k]]
            code = self.c_code[compound]
            numbered[(kind, code)] += 1
            row = Row(code=code, name=self.c_name[compound], codes=codes, area=area,
                      perimeter=float(perimeter[k]), azimuth=turn[k], geojson=drawn[k],
                      lon=_number(lon[k]), lat=_number(lat[k]))  # fmt: skip
            found = self.found[self.c_county[compound]]
            piece_id = f"{kind}:{code}:{numbered[(kind, code)]}"
            if kind == "gap":
                add_gap(found, row, piece_id)
            else:
                add_beyond(found, row, piece_id, float(far[k]))

    # -- planned roads and green space -----------------------------------------------------------

    def planned(self) -> None:
        tol = self.settings.planned_tolerance_m2
        county, codes, names, kinds, wkb = _columns(self.conn, """
            SELECT array_position(%(counties)s, county_code) - 1, code, name, kind,
                   ST_AsBinary(geom)
            FROM planned_area WHERE county_code = ANY(%(counties)s) AND kind = ANY(%(kinds)s)
        """, 5, counties=list(self.index), kinds=list(CONFLICT_KINDS))  # fmt: skip
        if not len(county) or not len(self.p_id):
            return
        county = county.astype(int)
        raw = shapely.from_wkb(wkb)
        zone = self.epsg[county]
        areas = shapes.to_zone(shapes.repaired(raw, shapely.is_valid(raw)), zone)
        tree = shapely.STRtree(self.p_gk)
        a, p = tree.query(areas, predicate="intersects")
        same = county[a] == self.p_county[p]
        a, p = a[same], p[same]
        pieces = shapes.intersections(areas[a], self.p_gk[p])
        area = shapely.area(pieces)
        keep = ~shapely.is_empty(pieces) & (area > tol)
        a, p, pieces, area = a[keep], p[keep], pieces[keep], area[keep]
        lon, lat = shapes.points_back(pieces, zone[a])
        drawn = shapes.geojson(shapes.from_zone(pieces, zone[a]))
        for k in range(len(a)):
            row = Row(kind=kinds[a[k]], name=names[a[k]], area=float(area[k]),
                      parcel_area=float(self.p_area[p[k]]), code=self.p_code[p[k]],
                      area_code=codes[a[k]], geojson=drawn[k], lon=_number(lon[k]),
                      lat=_number(lat[k]))  # fmt: skip
            add_planned(self.found[county[a[k]]], row, tol)

    # -- compounds with no parcel, developers, closed ledger entries ------------------------------

    def lonely(self) -> None:
        for k, count in enumerate(np.bincount(self.c_county, minlength=len(self.places))):
            self.found[k].counts["compounds"] = int(count)
        alone = np.ones(len(self.c_id), dtype=bool)
        alone[self.l_compound] = False
        rows = np.flatnonzero(alone)
        if not len(rows):
            return
        under: dict[int, str] = {}
        if len(self.p_id):
            c, p = _meeting(self.c_geom, self.c_county, rows, self.p_geom, self.p_county)
            under = _joined(c, self.p_code[p])
        lon, lat = _lon_lat(shapely.point_on_surface(self.c_geom[rows]))
        for k, x, y in zip(rows, lon, lat, strict=True):
            problem = lonely_problem(self.c_code[k], self.c_name[k], x, y, under.get(k))
            self.found[self.c_county[k]].problems.append(problem)

    def developer(self, row: tuple) -> None:
        county, name, credit_code, compounds = row
        found = self.found[self.index[county]]
        found.counts["developers"] += 1
        problem = developer_problem(name, credit_code, compounds)
        if problem is not None:
            found.problems.append(problem)

    def closing(self, row: Row) -> None:
        k = self.index[row.county]
        problem = closing_problem(row, self.places[k].closing_rule)
        if problem is not None:
            self.found[k].problems.append(problem)


# -- small helpers -------------------------------------------------------------------------------


def _find(county: np.ndarray, ids: np.ndarray, their_county: np.ndarray, their_ids: np.ndarray):
    """The rows of (county, id) pairs among `county`, `ids`, and whether each is there."""
    keys = county.astype(np.int64) << 32 | ids
    order = np.argsort(keys)
    wanted = their_county << 32 | their_ids
    at = np.minimum(np.searchsorted(keys[order], wanted), max(len(keys) - 1, 0))
    if not len(keys):
        return at, np.zeros(len(wanted), dtype=bool)
    return order[at], keys[order][at] == wanted


def _number(value) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def _lon_lat(points: np.ndarray) -> tuple[list, list]:
    return tuple(_numbers(v) for v in shapes.xy(points))


def _numbers(values: np.ndarray) -> list:
    """Floats, None for NaN (SQL's NULL)."""
    return np.where(np.isnan(values), None, values).tolist()


def _joined_lists(keys: np.ndarray, values: np.ndarray) -> dict[int, list[str]]:
    out: dict[int, list[str]] = defaultdict(list)
    for key, value in zip(keys, values, strict=True):
        out[int(key)].append(value)
    return {key: sorted(names) for key, names in out.items()}


def _meeting(
    geom: np.ndarray,
    county: np.ndarray,
    rows: np.ndarray,
    other: np.ndarray,
    other_county: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (row of `rows`, row of `other`) of one county whose interiors meet in an area:
    compounds standing on a parcel, parcels lying under a compound."""
    mine, theirs = shapely.STRtree(other).query(geom[rows])  # boxes that meet (`&&`)
    a, b = rows[mine], theirs
    same = county[a] == other_county[b]
    a, b = a[same], b[same]
    meet = shapely.relate_pattern(other[b], geom[a], shapes.ANY_AREA)
    return a[meet], b[meet]


def _joined(keys: np.ndarray, values: np.ndarray) -> dict[int, str]:
    """key → its values, sorted, joined by 、 (as `string_agg(… ORDER BY …)`)."""
    return {key: "、".join(names) for key, names in _joined_lists(keys, values).items()}
