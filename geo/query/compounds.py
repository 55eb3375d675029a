"""Compounds with their ledger status, as GeoJSON built by PostGIS (no Python round trip).

One filter (`CompoundFilter`) serves the list, the map's tiles, the counts and the search:
status, blocker category, lead department, township, planned area (or kind), overdue, a
name/code search and a bounding box — and `as_of`, which reads every ledger field as the
history stood at the end of that day (Beijing time), the way `geo.ledger.stats` counts it.
"""

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, text

from geo import TitlemapError
from geo.core.crs import measuring_epsg, sql_area
from geo.core.dates import BEIJING, BEIJING_ZONE, today
from geo.core.model import (
    BLOCKER_LABELS,
    PLANNED_AREA_LABELS,
    STATUS_LABELS,
    Blocker,
    LedgerStatus,
    PlannedAreaKind,
)
from geo.core.rates import rate, rate_sql
from geo.db import revisions
from geo.db.memo import memo_of
from geo.ledger.stats import as_of_bound, target

NOT_ON_LEDGER = "not_on_ledger"
NO_BLOCKER = "none"  # the blocker filter's word for "entries with no blocker recorded" (无卡点)
STATUS_FILTER_VALUES = (*(s.value for s in LedgerStatus), NOT_ON_LEDGER)
BLOCKER_FILTER_VALUES = (*(b.value for b in Blocker), NO_BLOCKER)
PLANNED_KIND_VALUES = tuple(k.value for k in PlannedAreaKind)
MAX_LIMIT = 10_000
MAX_OFFSET = 2**31 - 1  # features to skip: more than a county holds, within a bigint
ACTION_LABELS = {"open": "挂账", "update": "更新", "close": "销号", "reopen": "重新挂账",
                 "progress": "进展"}  # fmt: skip


@dataclass(frozen=True)
class BBox:
    """A lon/lat box in EPSG:4490."""

    minx: float
    miny: float
    maxx: float
    maxy: float

    @classmethod
    def parse(cls, value: str) -> "BBox":
        parts = value.split(",")
        try:
            minx, miny, maxx, maxy = (float(p) for p in parts)
        except ValueError:
            raise TitlemapError(
                f"bbox 应为 minx,miny,maxx,maxy 四个数 / bbox needs four numbers: {value!r}"
            ) from None
        if not (-180 <= minx < maxx <= 180 and -90 <= miny < maxy <= 90):
            raise TitlemapError(
                f"bbox 范围无效（经度在前、小值在前）/ invalid bbox (lon, min first): {value!r}"
            )
        return cls(minx, miny, maxx, maxy)

    def params(self) -> dict[str, float]:
        return {"minx": self.minx, "miny": self.miny, "maxx": self.maxx, "maxy": self.maxy}


ENVELOPE_SQL = "ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4490)"


@dataclass(frozen=True)
class County:
    code: str
    name: str
    epsg: int


def get_county(conn: Connection, code: str) -> County:
    row = conn.execute(
        text(
            "SELECT code, name, gk_epsg, ST_X(ST_Centroid(geom)) AS lon FROM county "
            "WHERE code = :code"
        ),
        {"code": code},
    ).first()
    if row is None:
        raise TitlemapError(f"没有这个县 / no such county: {code}")
    if row.lon is None and row.gk_epsg is None:
        raise TitlemapError(f"{row.name} 没有边界也没有设定投影带 / county has no boundary or zone")
    return County(row.code, row.name, measuring_epsg(row.lon, row.gk_epsg))


def status_labels_sql(column: str = "e.status") -> str:
    """A CASE mapping status codes to their Chinese labels, from the one table in geo.core.model."""
    whens = " ".join(f"WHEN '{s.value}' THEN '{label}'" for s, label in STATUS_LABELS.items())
    return f"CASE coalesce({column}, '{NOT_ON_LEDGER}') {whens} ELSE '不在台账' END"


def parse_words(values, allowed: tuple[str, ...], zh: str, en: str) -> tuple[str, ...]:
    """Values split on commas, checked against `allowed`."""
    words = tuple(dict.fromkeys(w.strip() for v in values or () for w in str(v).split(",")))
    words = tuple(w for w in words if w)
    unknown = sorted(set(words) - set(allowed))
    if unknown:
        raise TitlemapError(f"未知{zh} / unknown {en} {unknown}; 可选 / allowed: {list(allowed)}")
    return words


def _texts(values) -> tuple[str, ...]:
    """Free values (department names, codes): repeatable; commas split only codes."""
    return tuple(dict.fromkeys(str(v).strip() for v in values or () if str(v).strip()))


def escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True)
class CompoundFilter:
    """Which compounds: every field narrows the set; empty fields do not."""

    statuses: tuple[str, ...] = ()
    blockers: tuple[str, ...] = ()
    lead_departments: tuple[str, ...] = ()
    townships: tuple[str, ...] = ()  # township codes
    planned_areas: tuple[str, ...] = ()  # planned-area codes
    planned_kinds: tuple[str, ...] = ()
    overdue: bool | None = None
    q: str | None = None  # part of the name, or the start of the code
    codes: tuple[str, ...] = ()  # exactly these compounds
    as_of: date | None = None
    bbox: BBox | None = field(default=None, compare=False)

    @classmethod
    def make(
        cls,
        statuses=None,
        blockers=None,
        lead_departments=None,
        townships=None,
        planned_areas=None,
        planned_kinds=None,
        overdue: bool | None = None,
        q: str | None = None,
        as_of: date | None = None,
        bbox: BBox | str | None = None,
        codes=None,
    ) -> "CompoundFilter":
        """A filter from request values, checked: unknown statuses, blockers, kinds refused."""
        q = (q or "").strip() or None
        if q is not None and len(q) > 100:
            raise TitlemapError("搜索词过长 / search text too long (≤ 100)")
        return cls(
            statuses=parse_words(statuses, STATUS_FILTER_VALUES, "状态", "status"),
            blockers=parse_words(blockers, BLOCKER_FILTER_VALUES, "卡点", "blocker"),
            lead_departments=_texts(lead_departments),
            townships=tuple(w for v in _texts(townships) for w in v.split(",") if w),
            planned_areas=tuple(w for v in _texts(planned_areas) for w in v.split(",") if w),
            planned_kinds=parse_words(
                planned_kinds, PLANNED_KIND_VALUES, "规划类型", "planned kind"
            ),
            overdue=overdue,
            q=q,
            codes=_texts(codes),
            as_of=as_of,
            bbox=BBox.parse(bbox) if isinstance(bbox, str) else bbox,
        )

    def without_bbox(self) -> "CompoundFilter":
        return replace(self, bbox=None)


def ledger_join(as_of: date | None, local: bool = False) -> str:
    """A join giving each compound `c` its ledger row `x`: now, or as of the end of `as_of`.

    Columns: entry_id, status, units_task, first, transferred, blockers, lead_department,
    deadline. As of a date they come from the entry's latest event up to the end of that day
    (Beijing time), the rule of `geo.ledger.stats.entries_sql` (tests hold the two equal). For the
    whole county all events are ranked at once; for a few compounds (`local`: a map tile or a
    box) each looks up its own latest event through the (entry_id, at) index instead — 0.04 s
    instead of 0.5 s for a tile of a 100 000-compound county.
    """
    if as_of is None:
        return """
            LEFT JOIN (
                SELECT e.id AS entry_id, e.compound_id, e.status, e.units_task,
                       e.units_first_registered AS first, e.units_transferred AS transferred,
                       e.blockers, e.lead_department, e.deadline, e.county_code
                FROM ledger_entry e
            ) x ON x.county_code = c.county_code AND x.compound_id = c.id
        """
    fields = """
        ev.entry_id, ev.state->>'status' AS status,
        (ev.state->>'units_task')::int AS units_task,
        (ev.state->>'units_first_registered')::int AS first,
        (ev.state->>'units_transferred')::int AS transferred,
        ARRAY(SELECT jsonb_array_elements_text(ev.state->'blockers')) AS blockers,
        ev.state->>'lead_department' AS lead_department,
        (ev.state->>'deadline')::date AS deadline
    """
    if local:
        return f"""
            LEFT JOIN LATERAL (
                SELECT {fields}
                FROM ledger_entry e
                JOIN ledger_event ev ON ev.county_code = e.county_code AND ev.entry_id = e.id
                WHERE e.county_code = c.county_code AND e.compound_id = c.id
                  AND ev.at < CAST(:bound AS timestamptz)
                ORDER BY ev.at DESC, ev.id DESC
                LIMIT 1
            ) x ON true
        """
    return f"""
        LEFT JOIN (
            SELECT DISTINCT ON (ev.entry_id) e.compound_id, e.county_code, {fields}
            FROM ledger_event ev
            JOIN ledger_entry e ON e.county_code = ev.county_code AND e.id = ev.entry_id
            WHERE ev.county_code = :county AND ev.at < CAST(:bound AS timestamptz)
            ORDER BY ev.entry_id, ev.at DESC, ev.id DESC
        ) x ON x.county_code = c.county_code AND x.compound_id = c.id
    """


STATUS_SQL = f"coalesce(x.status, '{NOT_ON_LEDGER}')"
OVERDUE_SQL = "(x.deadline < CAST(:today AS date) AND x.status <> 'closed')"


def filter_sql(
    county: str, f: CompoundFilter, geom: str = "c.geom", local: bool = False
) -> tuple[str, str, dict]:
    """(FROM … joins, WHERE …, params) selecting compounds `c` with their ledger row `x`.

    `local`: the query also limits `c` to a small area (a tile), so the as-of ledger is
    looked up per compound.
    """
    where = ["c.county_code = :county"]
    params: dict[str, Any] = {"county": county, "today": f.as_of or today()}
    if f.as_of:
        params["bound"] = as_of_bound(f.as_of)
    if f.bbox:
        where.append(f"{geom} && {ENVELOPE_SQL}")
        params |= f.bbox.params()
    if f.statuses:
        where.append(f"{STATUS_SQL} = ANY(CAST(:statuses AS text[]))")
        params["statuses"] = list(f.statuses)
    if f.blockers:
        named = [b for b in f.blockers if b != NO_BLOCKER]
        either = []
        if named:
            either.append("x.blockers && CAST(:blockers AS text[])")
            params["blockers"] = named
        if NO_BLOCKER in f.blockers:
            either.append("(x.entry_id IS NOT NULL AND cardinality(x.blockers) = 0)")
        where.append(f"({' OR '.join(either)})")
    if f.lead_departments:
        where.append("x.lead_department = ANY(CAST(:leads AS text[]))")
        params["leads"] = list(f.lead_departments)
    if f.townships:
        where.append(
            "c.township_id IN (SELECT id FROM township WHERE county_code = :county "
            "AND code = ANY(CAST(:townships AS text[])))"
        )
        params["townships"] = list(f.townships)
    if f.planned_areas or f.planned_kinds:
        which = []
        if f.planned_areas:
            which.append("p.code = ANY(CAST(:planned AS text[]))")
            params["planned"] = list(f.planned_areas)
        if f.planned_kinds:
            which.append("p.kind = ANY(CAST(:planned_kinds AS text[]))")
            params["planned_kinds"] = list(f.planned_kinds)
        # Interiors meet: a compound only touching an area's edge is not in it.
        where.append(
            "EXISTS (SELECT 1 FROM planned_area p WHERE p.county_code = c.county_code "
            f"AND ({' AND '.join(which)}) AND p.geom && c.geom AND ST_Intersects(p.geom, c.geom) "
            "AND (ST_Covers(p.geom, c.geom) OR NOT ST_Touches(p.geom, c.geom)))"
        )
    if f.overdue is not None:
        where.append(OVERDUE_SQL if f.overdue else f"NOT coalesce({OVERDUE_SQL}, false)")
    if f.codes:
        where.append("c.code = ANY(CAST(:codes AS text[]))")
        params["codes"] = list(f.codes)
    if f.q:
        where.append("(c.name ILIKE :q_any ESCAPE '\\' OR c.code ILIKE :q_start ESCAPE '\\')")
        params |= {"q_any": f"%{escape_like(f.q)}%", "q_start": f"{escape_like(f.q)}%"}
    local = f.bbox is not None or local
    return f"FROM compound c {ledger_join(f.as_of, local)}", " AND ".join(where), params


def check_offset(offset: int) -> None:
    if not 0 <= offset <= MAX_OFFSET:
        raise TitlemapError(f"offset 应在 0 到 {MAX_OFFSET} 之间 / offset must be 0..{MAX_OFFSET}")


def compounds_geojson(
    conn: Connection,
    county: str,
    bbox: BBox | None = None,
    statuses: list[str] | None = None,
    limit: int = 1000,
    offset: int = 0,
    filters: CompoundFilter | None = None,
) -> str:
    """A GeoJSON FeatureCollection of compounds with ledger fields, ordered by code.

    `bbox` and `statuses` narrow `filters` further; with `filters.as_of` the ledger fields are
    as the history stood that day (`version` stays the entry's current one).
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise TitlemapError(f"limit 应在 1 到 {MAX_LIMIT} 之间 / limit must be 1..{MAX_LIMIT}")
    check_offset(offset)
    f = filters or CompoundFilter()
    if statuses:
        f = replace(f, statuses=parse_words(statuses, STATUS_FILTER_VALUES, "状态", "status"))
    if bbox:
        f = replace(f, bbox=bbox)
    info = get_county(conn, county)
    source, where, params = filter_sql(county, f)
    params |= {"limit": limit, "offset": offset}
    sql = f"""
        WITH matched AS (
            SELECT c.id, c.code, x.entry_id, x.status, x.units_task, x.first, x.transferred,
                   x.blockers, x.lead_department, x.deadline
            {source}
            WHERE {where}
        ), page AS (
            SELECT m.* FROM matched m ORDER BY m.code LIMIT :limit OFFSET :offset
        )
        SELECT json_build_object(
            'type', 'FeatureCollection',
            'numberMatched', (SELECT count(*) FROM matched),
            'numberReturned', (SELECT count(*) FROM page),
            'features', coalesce(json_agg(f.feature ORDER BY f.code), '[]'::json)
        )::text
        FROM (
            SELECT c.code, json_build_object(
                'type', 'Feature',
                'id', c.code,
                'geometry', ST_AsGeoJSON(c.geom, 7)::json,
                'properties', json_build_object(
                    'code', c.code,
                    'name', c.name,
                    'address', c.address,
                    'township', t.name,
                    'developer', d.name,
                    'developer_credit_status', d.credit_status,
                    'units_sold', c.units_sold,
                    'area_m2', round({sql_area("c.geom", info.epsg)}::numeric, 1),
                    'on_ledger', x.entry_id IS NOT NULL,
                    'status', {STATUS_SQL},
                    'status_label', {status_labels_sql("x.status")},
                    'units_task', x.units_task,
                    'units_first_registered', x.first,
                    'units_transferred', x.transferred,
                    'first_rate', {rate_sql("x.first", "x.units_task")},
                    'transfer_rate', {rate_sql("x.transferred", "x.units_task")},
                    'blockers', x.blockers,
                    'lead_department', x.lead_department,
                    'deadline', x.deadline,
                    'overdue', {OVERDUE_SQL},
                    'version', e.version
                )
            ) AS feature
            FROM page x
            JOIN compound c ON c.county_code = :county AND c.id = x.id
            LEFT JOIN ledger_entry e ON e.county_code = c.county_code AND e.id = x.entry_id
            LEFT JOIN township t ON t.county_code = c.county_code AND t.id = c.township_id
            LEFT JOIN developer d ON d.county_code = c.county_code AND d.id = c.developer_id
        ) f
    """
    return conn.execute(text(sql), params).scalar_one()


def summary(conn: Connection, county: str, filters: CompoundFilter | None = None) -> dict:
    """How many compounds (and task units) the filter keeps, by status."""
    get_county(conn, county)
    f = filters or CompoundFilter()
    source, where, params = filter_sql(county, f)
    sql = f"""
        SELECT {STATUS_SQL} AS status, count(*) AS compounds,
               coalesce(sum(x.units_task), 0) AS units_task,
               coalesce(sum(x.first), 0) AS units_first_registered,
               coalesce(sum(x.transferred), 0) AS units_transferred,
               count(*) FILTER (WHERE {OVERDUE_SQL}) AS overdue
        {source} WHERE {where} GROUP BY 1
    """
    rows = {r.status: r for r in conn.execute(text(sql), params)}
    by_status = {s: (rows[s].compounds if s in rows else 0) for s in STATUS_FILTER_VALUES}
    total = lambda name: int(sum(getattr(r, name) for r in rows.values()))  # noqa: E731
    return {
        "county": county,
        "as_of": f.as_of.isoformat() if f.as_of else None,
        "compounds": sum(by_status.values()),
        "by_status": by_status,
        "overdue": total("overdue"),
        "units_task": total("units_task"),
        "units_first_registered": total("units_first_registered"),
        "units_transferred": total("units_transferred"),
    }


def data_version(conn: Connection, county: str) -> tuple:
    """(revision, changed_at): the county's data revision, which triggers bump on every
    statement changing what maps draw (compounds, parcels, ledger, planned areas, complaints,
    townships, context, the county; migration 0003). Every cache of drawn data keys on it
    (the revision, in the engine's memo: geo.db.memo; the time also goes into HTTP ETags).
    (0, None) for no such county. Held in memory where a server watches the database
    (geo.db.revisions)."""
    return revisions.data_version(conn, county)


def extent(conn: Connection, county: str) -> list[float] | None:
    """[minx, miny, maxx, maxy] of the county's compounds (else its outline), EPSG:4490.

    Kept per data version: reading 100 000 outlines takes a quarter of a second."""

    def compute() -> list[float] | None:
        row = None
        for sql in (  # one plain aggregate each: PostgreSQL scans in parallel then
            "SELECT ST_Extent(geom) AS b FROM compound WHERE county_code = :c",
            "SELECT ST_Extent(geom) AS b FROM county WHERE code = :c",
        ):
            row = conn.execute(
                text(f"SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM ({sql}) s"),
                {"c": county},
            ).first()
            if row is not None and row[0] is not None:
                break
        return None if row is None or row[0] is None else [float(v) for v in row]

    key = ("extent", county, data_version(conn, county)[0])
    return memo_of(conn.engine)(key, compute)


def layer_counts(conn: Connection, county: str) -> dict[str, int]:
    """How many compounds, parcels and complaints the county holds."""
    row = conn.execute(
        text(
            "SELECT (SELECT count(*) FROM compound WHERE county_code = :c) AS compounds, "
            "(SELECT count(*) FROM parcel WHERE county_code = :c) AS parcels, "
            "(SELECT count(*) FROM complaint WHERE county_code = :c) AS complaints"
        ),
        {"c": county},
    ).one()
    return row._asdict()


def map_options(conn: Connection, county: str) -> dict:
    """What the map's filters offer: townships, planned areas, lead departments, blockers."""
    info = get_county(conn, county)
    goal = target(conn, county)
    townships = conn.execute(
        text("SELECT code, name FROM township WHERE county_code = :c ORDER BY code"), {"c": county}
    ).all()
    planned = conn.execute(
        text(
            "SELECT code, name, kind FROM planned_area WHERE county_code = :c ORDER BY kind, code"
        ),
        {"c": county},
    ).all()
    leads = conn.scalars(
        text(
            "SELECT DISTINCT lead_department FROM ledger_entry WHERE county_code = :c "
            "AND lead_department IS NOT NULL ORDER BY 1"
        ),
        {"c": county},
    ).all()
    first_event = conn.scalar(
        text(
            f"SELECT min((at AT TIME ZONE '{BEIJING_ZONE}')::date) FROM ledger_event "
            "WHERE county_code = :c"
        ),
        {"c": county},
    )
    counts = layer_counts(conn, county)
    kind_labels = {k.value: label for k, label in PLANNED_AREA_LABELS.items()}
    return {
        "county": {"code": info.code, "name": info.name, "gk_epsg": info.epsg},
        "target_rate": float(goal.rate),
        "target_deadline": goal.deadline.isoformat() if goal.deadline else None,
        "extent": extent(conn, county),
        "counts": counts,
        "today": today().isoformat(),
        "history_start": first_event.isoformat() if first_event else None,
        "townships": [{"code": r.code, "name": r.name} for r in townships],
        "planned_areas": [
            {"code": r.code, "name": r.name, "kind": r.kind, "kind_label": kind_labels.get(r.kind)}
            for r in planned
        ],
        "planned_kinds": [{"code": k, "label": v} for k, v in kind_labels.items()],
        "lead_departments": list(leads),
        "blockers": [{"code": b.value, "label": label} for b, label in BLOCKER_LABELS.items()]
        + [{"code": NO_BLOCKER, "label": "无卡点"}],
        "statuses": [{"code": s.value, "label": label} for s, label in STATUS_LABELS.items()]
        + [{"code": NOT_ON_LEDGER, "label": "不在台账"}],
    }


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def compound_card(conn: Connection, county: str, code: str, as_of: date | None = None) -> dict:
    """Everything the map's card shows for one compound, with its ledger history.

    `ledger` is the entry now; with `as_of`, `as_of_state` is how it stood that day. Rates:
    first = first-registered ÷ task units, transfer = transferred ÷ task units, overall as
    the county's basis counts it (geo.ledger.stats.RATE_DEFINITIONS).
    """
    info = get_county(conn, county)
    goal = target(conn, county)
    row = (
        conn.execute(
            text(f"""
            SELECT c.id, c.code, c.name, c.address, c.buildings, c.units_sold, c.sold_on,
                   c.occupied_on, t.code AS township_code, t.name AS township,
                   d.name AS developer, d.credit_code AS developer_credit_code,
                   d.credit_status AS developer_credit_status,
                   d.blacklist_reason AS developer_blacklist_reason,
                   d.blacklisted_on AS developer_blacklisted_on,
                   round({sql_area("c.geom", info.epsg)}::numeric, 1)::float8 AS area_m2,
                   ST_AsGeoJSON(c.geom, 7)::json AS geometry,
                   ARRAY[ST_XMin(c.geom), ST_YMin(c.geom), ST_XMax(c.geom), ST_YMax(c.geom)]
                       AS bbox,
                   e.id AS entry_id
            FROM compound c
            LEFT JOIN township t ON t.county_code = c.county_code AND t.id = c.township_id
            LEFT JOIN developer d ON d.county_code = c.county_code AND d.id = c.developer_id
            LEFT JOIN ledger_entry e ON e.county_code = c.county_code AND e.compound_id = c.id
            WHERE c.county_code = :county AND c.code = :code
        """),
            {"county": county, "code": code},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise TitlemapError(f"没有这个小区 / no such compound: {code}")
    card = {k: _iso(v) for k, v in row.items() if k not in ("id", "entry_id")}
    card["on_ledger"] = row["entry_id"] is not None
    card["developer_blacklisted"] = row["developer_credit_status"] == "blacklisted"
    card["ledger"] = None
    card["history"] = []
    card["as_of"] = as_of.isoformat() if as_of else None
    card["as_of_state"] = None
    day = today()
    if row["entry_id"] is not None:
        e = (
            conn.execute(text("SELECT * FROM ledger_entry WHERE id = :id"), {"id": row["entry_id"]})
            .mappings()
            .one()
        )
        ledger = {k: _iso(v) for k, v in e.items() if k not in ("id", "county_code", "compound_id")}
        ledger["updated_at"] = _iso(e["updated_at"])
        card["ledger"] = ledger | _figures(e, row["units_sold"], goal.basis, day)
        events = conn.execute(
            text(
                "SELECT at, user_name, action, changes, state, note FROM ledger_event "
                "WHERE entry_id = :id ORDER BY at, id"
            ),
            {"id": row["entry_id"]},
        ).mappings()
        for ev in events:
            card["history"].append({
                "at": ev["at"].astimezone(BEIJING).isoformat(),
                "user": ev["user_name"],
                "action": ev["action"],
                "action_label": ACTION_LABELS.get(ev["action"], ev["action"]),
                "changes": ev["changes"],
                "note": ev["note"],
                "state": ev["state"],
            })  # fmt: skip
        if as_of is not None:
            bound = datetime.fromisoformat(as_of_bound(as_of))
            before = [ev for ev in card["history"] if datetime.fromisoformat(ev["at"]) < bound]
            if before:
                state = dict(before[-1]["state"])
                deadline = date.fromisoformat(state["deadline"]) if state.get("deadline") else None
                figures = {
                    "units_task": state["units_task"],
                    "units_first_registered": state["units_first_registered"],
                    "units_transferred": state["units_transferred"],
                    "status": state["status"],
                    "deadline": deadline,
                }
                card["as_of_state"] = state | _figures(
                    figures, row["units_sold"], goal.basis, as_of
                )
    return card


def _figures(entry, units_sold: int | None, basis: str, day: date) -> dict:
    task, first, done = (
        entry["units_task"],
        entry["units_first_registered"],
        entry["units_transferred"],
    )
    sold = max(units_sold or task, task)
    overall = rate(done, task) if basis == "task" else rate(sold - task + done, sold)
    status = entry["status"]
    deadline = entry["deadline"]
    return {
        "status_label": next((v for k, v in STATUS_LABELS.items() if k.value == status), status),
        "first_rate": rate(first, task),
        "transfer_rate": rate(done, task),
        "overall_rate": overall,
        "overall_basis": basis,
        "overdue": bool(deadline and deadline < day and status != LedgerStatus.CLOSED.value),
    }
