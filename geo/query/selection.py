"""Which compounds a printed map shows, with the ledger facts a visit needs (plain data out).

A selection is made one way of four: by planned area (code, name, kind or its label such as
城东片区), by township (code or name), by a lon/lat box in EPSG:4490, or by a list of compound
codes or names (kept in the order given: that is the visit order). PostGIS does the choosing,
the measuring and the projecting; the answer is dataclasses whose geometries are shapely
objects in the county's Gauss-Krüger zone (metres, x = easting), so a drawing is true to scale.

Nothing here draws: maps/print/ lays the pages out from these facts.
"""

import itertools
import math
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
import shapely
from shapely import Geometry
from sqlalchemy import Connection, text

from geo import TitlemapError
from geo.core.dates import today
from geo.core.model import BLOCKER_LABELS, BLOCKER_LEAD, PLANNED_AREA_LABELS, STATUS_LABELS
from geo.core.rates import rate
from geo.query.compounds import NOT_ON_LEDGER, BBox, County, extent, get_county

MAX_COMPOUNDS = 500  # an area page beyond this is not a map one can read
TWO_OPT_LIMIT = 200  # beyond this the nearest-neighbour route is kept as it is
KINDS = ("planned_area", "township", "bbox", "compounds")
STATUS_TEXT = {s.value: label for s, label in STATUS_LABELS.items()} | {NOT_ON_LEDGER: "不在台账"}
BLOCKER_TEXT = {b.value: label for b, label in BLOCKER_LABELS.items()}
BLOCKER_DEPARTMENT = {b.value: dept for b, dept in BLOCKER_LEAD.items()}
KIND_TEXT = {k.value: label for k, label in PLANNED_AREA_LABELS.items()}


@dataclass(frozen=True)
class Parcel:
    """宗地 of a compound: drawn (GK) and recorded areas, land premium."""

    code: str
    area_m2: float
    recorded_area_m2: float | None
    land_use: str | None
    right_type: str | None
    premium_due: float | None
    premium_paid: float | None
    geom: Geometry

    @property
    def premium_owed(self) -> float:
        return max((self.premium_due or 0) - (self.premium_paid or 0), 0.0)


@dataclass(frozen=True)
class Overlap:
    """Where a compound lies inside a planned area (规划道路, 城东片区, …)."""

    code: str
    kind: str
    kind_label: str
    name: str
    area_m2: float
    share: float  # of the compound's area
    geom: Geometry


@dataclass(frozen=True)
class Event:
    """One entry of the ledger history (挂账销号), oldest first in CompoundFacts.history."""

    at: datetime
    user: str
    action: str
    changes: dict
    note: str | None
    status: str | None  # after the event


@dataclass
class CompoundFacts:
    """A compound with its ledger entry (None fields when it is not on the ledger)."""

    id: int
    code: str
    name: str
    address: str | None
    township: str | None
    developer: str | None
    developer_status: str | None  # normal / blacklisted / unreachable
    blacklist_reason: str | None
    buildings: int | None
    units_sold: int | None
    occupied_on: date | None
    area_m2: float
    geom: Geometry
    status: str
    on_ledger: bool
    ledger_no: str | None = None
    units_task: int | None = None
    units_first_registered: int | None = None
    units_transferred: int | None = None
    blockers: list[str] = field(default_factory=list)
    blocker_note: str | None = None
    lead_department: str | None = None
    cooperating_departments: list[str] = field(default_factory=list)
    supervising_leader: str | None = None
    plan: str | None = None
    task_force_lead: str | None = None
    deadline: date | None = None
    opened_on: date | None = None
    closed_on: date | None = None
    close_reason: str | None = None
    parcels: list[Parcel] = field(default_factory=list)
    overlaps: list[Overlap] = field(default_factory=list)
    history: list[Event] = field(default_factory=list)

    @property
    def status_label(self) -> str:
        return STATUS_TEXT.get(self.status, self.status)

    @property
    def first_rate(self) -> float | None:
        return rate(self.units_first_registered, self.units_task)

    @property
    def transfer_rate(self) -> float | None:
        """转移登记化解率 (geo.ledger.stats): transferred to buyers ÷ task units."""
        return rate(self.units_transferred, self.units_task)

    def overdue(self, on: date) -> bool:
        return bool(self.deadline and self.deadline < on and self.status != "closed")

    @property
    def blocker_labels(self) -> list[str]:
        return [BLOCKER_TEXT.get(b, b) for b in self.blockers]


@dataclass(frozen=True)
class Area:
    """What was asked for: its kind, a label for titles, and its outline (GK) if it has one."""

    kind: str
    label: str
    outline: Geometry | None = None
    codes: tuple[str, ...] = ()  # the planned areas or township chosen


@dataclass
class Selection:
    county: County
    area: Area
    compounds: list[CompoundFacts]
    printed_on: date
    ledger_as_of: datetime | None  # the latest history event among the compounds

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """GK bounds of the compounds (and of the asked-for area where it is small)."""
        geoms = [c.geom for c in self.compounds]
        return tuple(shapely.total_bounds(np.array(geoms, dtype=object)))

    def totals(self) -> dict:
        on = [c for c in self.compounds if c.on_ledger]
        task = sum(c.units_task or 0 for c in on)
        first = sum(c.units_first_registered or 0 for c in on)
        done = sum(c.units_transferred or 0 for c in on)
        return {
            "compounds": len(self.compounds),
            "on_ledger": len(on),
            "closed": sum(c.status == "closed" for c in on),
            "overdue": sum(c.overdue(self.printed_on) for c in on),
            "units_task": task,
            "units_first_registered": first,
            "units_transferred": done,
            "first_rate": rate(first, task),
            "transfer_rate": rate(done, task),
        }


@dataclass
class Layers:
    """What lies in a window of the map, in GK metres: drawn under and around the selection."""

    compounds: list[tuple[str, str, str, Geometry]]  # code, name, status, geom
    planned_areas: list[tuple[str, str, str, Geometry]]  # code, kind, name, geom
    context: list[tuple[str, str, Geometry]]  # kind (river/road), name, geom
    townships: list[tuple[str, str, Geometry]]  # code, name, geom
    parcels: list[tuple[str, Geometry]] = field(default_factory=list)  # code, geom


@dataclass
class Overview:
    """The county for an overview inset, simplified: outline, townships, rivers and roads."""

    outline: Geometry
    townships: list[tuple[str, Geometry]]
    context: list[tuple[str, str, Geometry]]
    town: Geometry | None  # the built-up area: union of the compounds' hull


def _wkb(value) -> Geometry | None:
    return None if value is None else shapely.from_wkb(bytes(value))


def _geom_sql(column: str, epsg: int, simplify: float = 0) -> str:
    projected = f"ST_Transform({column}, {int(epsg)})"
    if simplify:
        projected = f"ST_SimplifyPreserveTopology({projected}, {float(simplify)})"
    return f"ST_AsBinary({projected})"


# -- choosing ------------------------------------------------------------------------------------


def _planned_areas(conn: Connection, county: str, wanted: str) -> list:
    rows = conn.execute(
        text("SELECT id, code, kind, name FROM planned_area WHERE county_code = :c ORDER BY code"),
        {"c": county},
    ).all()
    value = wanted.strip()
    for match in (
        lambda r: r.code == value,
        lambda r: r.name == value,
        lambda r: r.kind == value or KIND_TEXT.get(r.kind) == value,
        lambda r: value and value in r.name,
    ):
        found = [r for r in rows if match(r)]
        if found:
            return found
    names = "、".join(r.name for r in rows) or "无 / none"
    raise TitlemapError(
        f"没有规划片区“{wanted}” / no planned area {wanted!r}; 可选 / known: {names}"
    )


def _township(conn: Connection, county: str, wanted: str):
    rows = conn.execute(
        text("SELECT id, code, name FROM township WHERE county_code = :c ORDER BY code"),
        {"c": county},
    ).all()
    value = wanted.strip()
    for match in (lambda r: value in (r.code, r.name), lambda r: value and value in r.name):
        found = [r for r in rows if match(r)]
        if len(found) == 1:
            return found[0]
    names = "、".join(r.name for r in rows) or "无 / none"
    raise TitlemapError(
        f"没有乡镇（街道）“{wanted}” / no township {wanted!r}; 可选 / known: {names}"
    )


def _listed(conn: Connection, county: str, wanted: list[str]) -> list[int]:
    """Compound ids for codes or names, in the order given; every one must exist, once."""
    items = list(dict.fromkeys(w.strip() for w in wanted if w and w.strip()))
    rows = conn.execute(
        text(
            "SELECT id, code, name FROM compound WHERE county_code = :c "
            "AND (code = ANY(:items) OR name = ANY(:items)) ORDER BY code"
        ),
        {"c": county, "items": items},
    ).all()
    ids, unknown, ambiguous = [], [], []
    for item in items:
        by_code = [r for r in rows if r.code == item]
        found = by_code or [r for r in rows if r.name == item]
        if not found:
            unknown.append(item)
        elif len(found) > 1:
            ambiguous.append(f"{item}（{'、'.join(r.code for r in found)}）")
        elif found[0].id not in ids:
            ids.append(found[0].id)
    if unknown:
        raise TitlemapError(f"没有这些小区 / unknown compounds: {'、'.join(unknown)}")
    if ambiguous:
        raise TitlemapError(f"重名小区请用编号 / names shared by several, use codes: {ambiguous}")
    return ids


def _choose(conn: Connection, county: County, kind: str, value) -> tuple[Area, list[int]]:
    epsg = county.epsg
    params = {"c": county.code}
    if kind == "planned_area":
        areas = _planned_areas(conn, county.code, value)
        params["ids"] = [a.id for a in areas]
        ids = conn.execute(
            text(
                "SELECT DISTINCT c.id, c.code FROM compound c JOIN planned_area a "
                "ON a.id = ANY(:ids) AND c.geom && a.geom "
                "AND ST_Relate(c.geom, a.geom, 'T********') "  # interiors meet: no mere touching
                "WHERE c.county_code = :c ORDER BY c.code"
            ),
            params,
        ).scalars()
        outline = conn.execute(
            text(
                f"SELECT {_geom_sql('ST_Union(geom)', epsg)} FROM planned_area WHERE id = ANY(:ids)"
            ),
            params,
        ).scalar_one()
        label = areas[0].name if len(areas) == 1 else f"{value}（{len(areas)} 处）"
        area = Area(kind, label, _wkb(outline), tuple(a.code for a in areas))
        return area, list(ids)
    if kind == "township":
        town = _township(conn, county.code, value)
        params["t"] = town.id
        ids = conn.execute(
            text(
                "SELECT id FROM compound WHERE county_code = :c AND township_id = :t ORDER BY code"
            ),
            params,
        ).scalars()
        outline = conn.execute(
            text(f"SELECT {_geom_sql('geom', epsg)} FROM township WHERE id = :t"), params
        ).scalar_one()
        return Area(kind, town.name, _wkb(outline), (town.code,)), list(ids)
    if kind == "bbox":
        asked = value if isinstance(value, BBox) else BBox.parse(str(value))
        box = _over_compounds(conn, county, asked)
        if box is None:
            return Area(kind, _box_label(asked)), []
        params |= {"x0": box.minx, "y0": box.miny, "x1": box.maxx, "y1": box.maxy}
        envelope = "ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4490)"
        ids = conn.execute(
            text(
                f"SELECT id FROM compound WHERE county_code = :c AND geom && {envelope} "
                f"AND ST_Intersects(geom, {envelope}) ORDER BY code"
            ),
            params,
        ).scalars()
        outline = conn.execute(
            text(f"SELECT {_geom_sql(f'ST_Segmentize({envelope}, 0.0005)', epsg)}"), params
        ).scalar_one()
        return Area(kind, _box_label(box), _wkb(outline)), list(ids)
    if kind == "compounds":
        items = [value] if isinstance(value, str) else list(value)
        items = [part for item in items for part in str(item).replace("，", ",").split(",")]
        ids = _listed(conn, county.code, items)
        return Area(kind, "指定小区"), ids
    raise TitlemapError(f"选择方式应为 / select by one of {KINDS}: {kind!r}")


def _box_label(box: BBox) -> str:
    return f"范围 {box.minx:.4f},{box.miny:.4f} – {box.maxx:.4f},{box.maxy:.4f}"


def _over_compounds(conn: Connection, county: County, box: BBox) -> BBox | None:
    """The part of `box` over the county's compounds, None if none: it chooses the same
    compounds, and a box of the whole world is drawn as no more than the county."""
    bounds = extent(conn, county.code)
    if bounds is None:
        return None
    minx, miny = max(box.minx, bounds[0]), max(box.miny, bounds[1])
    maxx, maxy = min(box.maxx, bounds[2]), min(box.maxy, bounds[3])
    return BBox(minx, miny, maxx, maxy) if minx <= maxx and miny <= maxy else None


def select(
    conn: Connection,
    county: str,
    *,
    planned_area: str | None = None,
    township: str | None = None,
    bbox: str | BBox | None = None,
    compounds: list[str] | str | None = None,
    printed_on: date | None = None,
    limit: int = MAX_COMPOUNDS,
) -> Selection:
    """The compounds one way selects (exactly one of the keyword choices), with their facts."""
    given = {
        k: v
        for k, v in (
            ("planned_area", planned_area),
            ("township", township),
            ("bbox", bbox),
            ("compounds", compounds),
        )
        if v not in (None, "", [])
    }
    if len(given) != 1:
        raise TitlemapError(
            "请只用一种方式选择：规划片区、乡镇、范围或小区列表 / "
            "choose exactly one of planned area, township, bbox or compounds"
        )
    ((kind, value),) = given.items()
    info = get_county(conn, county)
    area, ids = _choose(conn, info, kind, value)
    if not ids:
        raise TitlemapError(f"“{area.label}”内没有小区 / no compounds in {area.label}")
    if len(ids) > limit:
        raise TitlemapError(
            f"“{area.label}”有 {len(ids)} 个小区，超过 {limit} 个，请缩小范围 / "
            f"{len(ids)} compounds, more than {limit}: choose a smaller area"
        )
    facts = compound_facts(conn, info, ids)
    as_of = conn.execute(
        text(
            "SELECT max(ev.at) FROM ledger_event ev "
            "JOIN ledger_entry e ON e.county_code = ev.county_code AND e.id = ev.entry_id "
            "WHERE e.county_code = :county AND e.compound_id = ANY(:ids)"
        ),
        {"county": county, "ids": ids},
    ).scalar()
    return Selection(info, area, facts, printed_on or today(), as_of)


# -- facts ---------------------------------------------------------------------------------------


def compound_facts(conn: Connection, county: County, ids: list[int]) -> list[CompoundFacts]:
    """Facts of the compounds `ids`, in that order: ledger, parcels, overlaps, history."""
    epsg = county.epsg
    rows = conn.execute(
        text(
            f"""
            SELECT c.id, c.code, c.name, c.address, t.name AS township, d.name AS developer,
                   d.credit_status AS developer_status, d.blacklist_reason, c.buildings,
                   c.units_sold, c.occupied_on,
                   ST_Area(ST_Transform(c.geom, {int(epsg)})) AS area_m2,
                   {_geom_sql("c.geom", epsg)} AS geom,
                   e.id AS entry_id, coalesce(e.status, '{NOT_ON_LEDGER}') AS status,
                   e.ledger_no, e.units_task, e.units_first_registered, e.units_transferred,
                   e.blockers, e.blocker_note, e.lead_department, e.cooperating_departments,
                   e.supervising_leader, e.plan, e.task_force_lead, e.deadline, e.opened_on,
                   e.closed_on, e.close_reason
            FROM compound c
            LEFT JOIN ledger_entry e ON e.county_code = c.county_code AND e.compound_id = c.id
            LEFT JOIN township t ON t.county_code = c.county_code AND t.id = c.township_id
            LEFT JOIN developer d ON d.county_code = c.county_code AND d.id = c.developer_id
            WHERE c.county_code = :county AND c.id = ANY(:ids)
            """
        ),
        {"county": county.code, "ids": ids},
    ).mappings()
    by_id: dict[int, CompoundFacts] = {}
    entry_of: dict[int, int] = {}
    for r in rows:
        on = r["entry_id"] is not None
        if on:
            entry_of[r["entry_id"]] = r["id"]
        by_id[r["id"]] = CompoundFacts(
            id=r["id"],
            code=r["code"],
            name=r["name"],
            address=r["address"],
            township=r["township"],
            developer=r["developer"],
            developer_status=r["developer_status"],
            blacklist_reason=r["blacklist_reason"],
            buildings=r["buildings"],
            units_sold=r["units_sold"],
            occupied_on=r["occupied_on"],
            area_m2=float(r["area_m2"]),
            geom=_wkb(r["geom"]),
            status=r["status"],
            on_ledger=on,
            ledger_no=r["ledger_no"],
            units_task=r["units_task"],
            units_first_registered=r["units_first_registered"],
            units_transferred=r["units_transferred"],
            blockers=list(r["blockers"] or []),
            blocker_note=r["blocker_note"],
            lead_department=r["lead_department"],
            cooperating_departments=list(r["cooperating_departments"] or []),
            supervising_leader=r["supervising_leader"],
            plan=r["plan"],
            task_force_lead=r["task_force_lead"],
            deadline=r["deadline"],
            opened_on=r["opened_on"],
            closed_on=r["closed_on"],
            close_reason=r["close_reason"],
        )
    for r in conn.execute(
        text(
            f"""
            SELECT cp.compound_id, p.code, ST_Area(ST_Transform(p.geom, {int(epsg)})) AS area,
                   p.recorded_area_m2::float8 AS recorded, p.land_use, p.right_type,
                   p.premium_due::float8 AS due, p.premium_paid::float8 AS paid,
                   {_geom_sql("p.geom", epsg)} AS geom
            FROM compound_parcel cp
            JOIN parcel p ON p.county_code = cp.county_code AND p.id = cp.parcel_id
            WHERE cp.county_code = :county AND cp.compound_id = ANY(:ids) ORDER BY p.code
            """
        ),
        {"county": county.code, "ids": ids},
    ):
        by_id[r.compound_id].parcels.append(
            Parcel(
                r.code,
                float(r.area),
                r.recorded,
                r.land_use,
                r.right_type,
                r.due,
                r.paid,
                _wkb(r.geom),
            )
        )
    for r in conn.execute(
        text(
            f"""
            SELECT c.id AS compound_id, a.code, a.kind, a.name,
                   ST_Area(ST_Transform(x.g, {int(epsg)})) AS area,
                   {_geom_sql("x.g", epsg)} AS geom
            FROM compound c JOIN planned_area a
              ON a.county_code = c.county_code AND c.geom && a.geom
             AND ST_Relate(c.geom, a.geom, 'T********')
            CROSS JOIN LATERAL (SELECT ST_Intersection(c.geom, a.geom) AS g) x
            WHERE c.county_code = :county AND c.id = ANY(:ids) ORDER BY c.id, a.code
            """
        ),
        {"county": county.code, "ids": ids},
    ):
        fact = by_id[r.compound_id]
        share = float(r.area) / fact.area_m2 if fact.area_m2 else 0.0
        fact.overlaps.append(
            Overlap(
                r.code,
                r.kind,
                KIND_TEXT.get(r.kind, r.kind),
                r.name,
                float(r.area),
                share,
                _wkb(r.geom),
            )
        )
    if entry_of:
        for r in conn.execute(
            text(
                "SELECT entry_id, at, user_name, action, changes, note, state->>'status' AS s "
                "FROM ledger_event WHERE county_code = :county AND entry_id = ANY(:ids) "
                "ORDER BY entry_id, at, id"
            ),
            {"county": county.code, "ids": list(entry_of)},
        ):
            by_id[entry_of[r.entry_id]].history.append(
                Event(r.at, r.user_name, r.action, r.changes or {}, r.note, r.s)
            )
    return [by_id[i] for i in ids]


# -- what is around ------------------------------------------------------------------------------


def layers_in(
    conn: Connection,
    county: County,
    bounds: tuple[float, float, float, float],
    with_parcels: bool = False,
    simplify: float = 0,
) -> Layers:
    """Everything inside a GK window `bounds` (minx, miny, maxx, maxy in metres)."""
    epsg = county.epsg
    x0, y0, x1, y1 = bounds
    params = {"c": county.code, "x0": x0, "y0": y0, "x1": x1, "y1": y1}
    window = f"ST_Transform(ST_MakeEnvelope(:x0, :y0, :x1, :y1, {int(epsg)}), 4490)"
    clip_window = f"ST_MakeEnvelope(:x0, :y0, :x1, :y1, {int(epsg)})"

    def rows(sql: str):
        return conn.execute(text(sql), params).all()

    def clipped(column: str) -> str:
        # Clip in GK so long rivers and roads do not carry the whole county along.
        geom = f"ST_Intersection(ST_Transform({column}, {int(epsg)}), {clip_window})"
        if simplify:
            geom = f"ST_SimplifyPreserveTopology({geom}, {float(simplify)})"
        return f"ST_AsBinary({geom})"

    compounds = [
        (r.code, r.name, r.status, _wkb(r.g))
        for r in rows(
            f"SELECT c.code, c.name, coalesce(e.status, '{NOT_ON_LEDGER}') AS status, "
            f"{_geom_sql('c.geom', epsg, simplify)} AS g FROM compound c "
            "LEFT JOIN ledger_entry e ON e.county_code = c.county_code AND e.compound_id = c.id "
            f"WHERE c.county_code = :c AND c.geom && {window} ORDER BY c.code"
        )
    ]
    planned = [
        (r.code, r.kind, r.name, _wkb(r.g))
        for r in rows(
            f"SELECT code, kind, name, {clipped('geom')} AS g FROM planned_area "
            f"WHERE county_code = :c AND geom && {window} ORDER BY code"
        )
    ]
    context = [
        (r.kind, r.name, _wkb(r.g))
        for r in rows(
            f"SELECT kind, name, {clipped('geom')} AS g FROM context_feature "
            f"WHERE county_code = :c AND geom && {window} ORDER BY kind, id"
        )
    ]
    townships = [
        (r.code, r.name, _wkb(r.g))
        for r in rows(
            f"SELECT code, name, {clipped('geom')} AS g FROM township "
            f"WHERE county_code = :c AND geom && {window} ORDER BY code"
        )
    ]
    parcels = []
    if with_parcels:
        parcels = [
            (r.code, _wkb(r.g))
            for r in rows(
                f"SELECT code, {_geom_sql('geom', epsg)} AS g FROM parcel "
                f"WHERE county_code = :c AND geom && {window} ORDER BY code"
            )
        ]
    drop_empty = lambda items: [i for i in items if i[-1] is not None and not i[-1].is_empty]  # noqa: E731
    return Layers(
        drop_empty(compounds),
        drop_empty(planned),
        drop_empty(context),
        drop_empty(townships),
        drop_empty(parcels),
    )


def overview(conn: Connection, county: County) -> Overview:
    """The whole county, simplified to what a 5 cm inset can show."""
    epsg = county.epsg
    params = {"c": county.code}
    row = conn.execute(
        text(f"SELECT {_geom_sql('geom', epsg, 50)} AS g FROM county WHERE code = :c"), params
    ).first()
    townships = [
        (r.name, _wkb(r.g))
        for r in conn.execute(
            text(
                f"SELECT name, {_geom_sql('geom', epsg, 50)} AS g FROM township "
                "WHERE county_code = :c ORDER BY code"
            ),
            params,
        )
    ]
    context = [
        (r.kind, r.name, _wkb(r.g))
        for r in conn.execute(
            text(
                f"SELECT kind, name, {_geom_sql('geom', epsg, 50)} AS g FROM context_feature "
                "WHERE county_code = :c ORDER BY kind, id"
            ),
            params,
        )
    ]
    town = conn.execute(
        text(
            f"SELECT {_geom_sql('ST_ConvexHull(ST_Collect(geom))', epsg)} FROM compound "
            "WHERE county_code = :c"
        ),
        params,
    ).scalar()
    outline = _wkb(row.g) if row and row.g is not None else None
    if outline is None:
        outline = shapely.unary_union([g for _, g in townships]) if townships else None
    if outline is None:
        raise TitlemapError(f"{county.name} 没有边界 / the county has no boundary to draw")
    return Overview(outline, townships, context, _wkb(town))


# -- visit order ---------------------------------------------------------------------------------


def visit_order(points: list[tuple[float, float]], start: int | None = None) -> list[int]:
    """A short open route through `points` (GK metres): nearest neighbour, then 2-opt.

    Starts at `start`, else at the point nearest the north-west corner; returns indices.
    """
    n = len(points)
    if n <= 2:
        return list(range(n))
    xy = np.asarray(points, dtype=float)
    if start is None:
        corner = np.array([xy[:, 0].min(), xy[:, 1].max()])
        start = int(np.argmin(np.hypot(*(xy - corner).T)))
    dist = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    route, left = [start], set(range(n)) - {start}
    while left:
        here = route[-1]
        nxt = min(left, key=lambda j: dist[here, j])
        route.append(nxt)
        left.remove(nxt)
    improved, rounds = n <= TWO_OPT_LIMIT, 0
    while improved and rounds < 20:  # 2-opt on the open path
        improved, rounds = False, rounds + 1
        for i in range(1, n - 1):
            for j in range(i + 1, n):
                a, b = route[i - 1], route[i]
                c = route[j]
                d = route[j + 1] if j + 1 < n else None
                before = dist[a, b] + (dist[c, d] if d is not None else 0)
                after = dist[a, c] + (dist[b, d] if d is not None else 0)
                if after + 1e-9 < before:
                    route[i : j + 1] = reversed(route[i : j + 1])
                    improved = True
    return route


def route_length(points: list[tuple[float, float]], order: list[int]) -> float:
    return sum(math.dist(points[a], points[b]) for a, b in itertools.pairwise(order))
