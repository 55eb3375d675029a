"""Regions above the county: cities (地级市) and the province, their counties side by side.

A region is named by its GB/T 2260 code (a province ends 0000, a city 00); the counties it
holds are those whose code starts with its prefix (geo.core.codes.region_prefix), so nothing
links them but the codes. A region may set its own target (rate and deadline) for all its
counties; none means each county's own.

The overview ranks the counties by overall rate. Each county's figures come from
geo.ledger.stats (one county at a time, a one-county query) and are kept in `county_rollup`
with the county's data revision: while the revision has not moved the stored row is read, so
the province overview reads one row per county instead of every county's ledger. Overdue
tasks do not move the revision, so that column is counted live, in one grouped query.
"""

import json
import logging
import threading
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from geo import TitlemapError
from geo.core.codes import PROVINCES, in_region, region_level, region_prefix
from geo.core.dates import today
from geo.core.model import User
from geo.core.rates import rate
from geo.db.memo import memo_of
from geo.db.revisions import data_version
from geo.ledger.counties import county_settings
from geo.ledger.stats import burndown, rates, target
from geo.ledger.tasks import OVERDUE_SQL
from geo.ledger.users import may_read, may_see_region

log = logging.getLogger(__name__)

LEVEL_LABELS = {"province": "省", "city": "市"}
OUTLINE_TOLERANCE = 0.002  # degrees (≈ 200 m): county outlines at province zooms

# The figures of an overview row that add up over counties (totals are their sums).
SUMMED = ("compounds", "closed", "stalled", "units_task", "units_first_registered",
          "units_transferred", "units_sold", "units_registered", "units_in_scope",
          "resolved_this_month", "overdue_tasks")  # fmt: skip


class NoSuchRegion(TitlemapError):
    """No city or province has this code."""


# -- codes and values -----------------------------------------------------------------------


def region_code(value: Any) -> str:
    """A province's or a city's code, checked; one line saying what is wrong otherwise."""
    code = "" if value is None else str(value).strip()
    if len(code) != 6 or not code.isascii() or not code.isdigit():
        raise TitlemapError(f"省/市代码应为 6 位数字 / a region code has 6 digits: {code!r}")
    if code[:2] not in PROVINCES:
        raise TitlemapError(
            f"前两位“{code[:2]}”不是省份代码（如 62 甘肃省）/ {code[:2]} is no province (e.g. 62)"
        )
    if region_level(code) is None:
        raise TitlemapError(
            f"{code} 是县级代码：省代码以 0000 结尾，市代码以 00 结尾 / a county's code: a "
            "province's ends in 0000, a city's in 00"
        )
    return code


def _target(values: Mapping[str, Any]) -> dict[str, Any]:
    """target_rate (0–1, or blank for the counties' own) and target_deadline, checked."""
    checked: dict[str, Any] = {}
    if "target_rate" in values:
        blank = values["target_rate"] is None or str(values["target_rate"]).strip() == ""
        checked["target_rate"] = (
            None
            if blank
            else county_settings({"target_rate": values["target_rate"]})["target_rate"]
        )
    if "target_deadline" in values:
        checked["target_deadline"] = county_settings(
            {"target_deadline": values["target_deadline"]}
        )["target_deadline"]
    return checked


def _name(value: Any) -> str:
    name = "" if value is None else str(value).strip()
    if not name:
        raise TitlemapError("省/市名称不能为空 / a region needs a name")
    return name


# -- reading ----------------------------------------------------------------------------------

_REGIONS = """
    SELECT r.code, r.name, r.level, r.target_rate, r.target_deadline,
           (SELECT count(*) FROM county k WHERE k.code LIKE r.prefix || '%') AS counties
    FROM (SELECT *, CASE WHEN level = 'province' THEN left(code, 2) ELSE left(code, 4) END
          AS prefix FROM region) r
"""


def _describe(row) -> dict:
    return {
        "code": row.code,
        "name": row.name,
        "level": row.level,
        "level_label": LEVEL_LABELS[row.level],
        "target_rate": float(row.target_rate) if row.target_rate is not None else None,
        "target_deadline": row.target_deadline,
        "counties": row.counties,
    }


def list_regions(conn: Connection) -> list[dict]:
    """Every city and province, by code, with how many counties of this database they hold."""
    return [_describe(row) for row in conn.execute(text(_REGIONS + " ORDER BY r.code"))]


def get_region(conn: Connection, code: str) -> dict:
    """One region as `list_regions` shows it; NoSuchRegion when there is none."""
    row = conn.execute(text(_REGIONS + " WHERE r.code = :c"), {"c": str(code)}).first()
    if row is None:
        raise NoSuchRegion(
            f"没有这个省/市 / no such region: {code}（先添加 / add it: titlemap region add "
            f"{code} 名称）"
        )
    return _describe(row)


def counties_in(conn: Connection, region: str) -> list[str]:
    """The codes of this database's counties under `region`, in order."""
    query = text("SELECT code FROM county WHERE code LIKE :p ORDER BY code")
    return list(conn.scalars(query, {"p": region_prefix(region) + "%"}))


# -- writing (committed, like geo.ledger.counties) --------------------------------------------


def add_region(
    conn: Connection,
    code: str,
    name: str,
    target_rate: Any = None,
    target_deadline: Any = None,
) -> dict:
    """Add a city or the province; refused in one line for a bad code, name or target."""
    code = region_code(code)
    values = {"name": _name(name), **_target({"target_rate": target_rate,
                                              "target_deadline": target_deadline})}  # fmt: skip
    try:
        conn.execute(
            text(
                "INSERT INTO region (code, name, level, target_rate, target_deadline) "
                "VALUES (:code, :name, :level, :target_rate, :target_deadline)"
            ),
            {"code": code, "level": region_level(code), **values},
        )
        conn.commit()
    except IntegrityError:
        conn.rollback()
        raise TitlemapError(
            f"{code} 已存在 / region {code} exists already（修改用 / change it with titlemap "
            f"region set {code}）"
        ) from None
    return get_region(conn, code)


def set_region(conn: Connection, code: str, changes: Mapping[str, Any]) -> dict:
    """Change a region's name, target_rate (blank: the counties' own) or target_deadline."""
    unknown = sorted(set(changes) - {"name", "target_rate", "target_deadline"})
    if unknown or not changes:
        raise TitlemapError(
            f"可设 / settable: name, target_rate, target_deadline（收到 / got {unknown or '无'}）"
        )
    values = _target(changes)
    if "name" in changes:
        values["name"] = _name(changes["name"])
    get_region(conn, code)
    sets = ", ".join(f"{field} = :{field}" for field in values)
    conn.execute(text(f"UPDATE region SET {sets} WHERE code = :code"), {"code": code, **values})
    conn.commit()
    return get_region(conn, code)


# -- the overview -------------------------------------------------------------------------------


def _county_figures(conn: Connection, county: str, as_of: date | None) -> dict:
    """One county's overview figures from geo.ledger.stats (one-county queries)."""
    goal = target(conn, county)
    row = next(iter(rates(conn, county, as_of=as_of)), None)
    stalled = next(
        (r["compounds"] for r in rates(conn, county, by="status", as_of=as_of)
         if r["key"] == "stalled"), 0,
    )  # fmt: skip
    day = as_of or today()
    before = next(iter(rates(conn, county, as_of=day.replace(day=1) - timedelta(days=1))), None)
    figures = {
        field: (row or {}).get(field, 0)
        for field in ("compounds", "closed", "units_task", "units_first_registered",
                      "units_transferred", "units_sold")
    }  # fmt: skip
    task, done, sold = figures["units_task"], figures["units_transferred"], figures["units_sold"]
    registered, in_scope = (done, task) if goal.basis == "task" else (sold - task + done, sold)
    return {
        **figures,
        "stalled": stalled,
        "units_registered": registered,
        "units_in_scope": in_scope,
        "first_rate": (row or {}).get("first_rate"),
        "transfer_rate": (row or {}).get("transfer_rate"),
        "overall_rate": (row or {}).get("overall_rate"),
        "overall_rate_basis": goal.basis,
        "county_target_rate": float(goal.rate),
        "county_target_deadline": goal.deadline.isoformat() if goal.deadline else None,
        "resolved_this_month": done - (before or {}).get("units_transferred", 0),
    }


_ROLLUPS = """
    SELECT k.code, k.name, coalesce(d.revision, 0) AS current, r.revision, r.as_of, r.figures
    FROM county k
    LEFT JOIN data_revision d ON d.county_code = k.code
    LEFT JOIN county_rollup r ON r.county_code = k.code
    WHERE k.code = ANY(:codes) ORDER BY k.code
"""

_STORE = """
    INSERT INTO county_rollup (county_code, revision, as_of, figures, refreshed_at)
    VALUES (:county, :revision, :as_of, CAST(:figures AS jsonb), now())
    ON CONFLICT (county_code) DO UPDATE SET revision = EXCLUDED.revision,
        as_of = EXCLUDED.as_of, figures = EXCLUDED.figures, refreshed_at = EXCLUDED.refreshed_at
    WHERE county_rollup.revision <= EXCLUDED.revision
"""


def county_rows(conn: Connection, counties: list[str], as_of: date | None = None) -> list[dict]:
    """Each county's figures (code, name and `_county_figures`), from its roll-up when that is
    of the county's current data revision and of today, else computed (and, for today, kept).
    The revision is read before computing: a row kept is never newer than its revision says."""
    day = as_of or today()
    rows, fresh = [], []
    for found in conn.execute(text(_ROLLUPS), {"codes": list(counties)}):
        current = found.revision == found.current and found.as_of == day == today()
        if current:
            figures = found.figures
        else:
            figures = _county_figures(conn, found.code, as_of if as_of != today() else None)
            if day == today():
                fresh.append({"county": found.code, "revision": found.current, "as_of": day,
                              "figures": json.dumps(figures)})  # fmt: skip
        rows.append({"code": found.code, "name": found.name, **figures, "from_rollup": current})
    if fresh:
        with conn.engine.begin() as writer:  # kept apart from the caller's transaction
            writer.execute(text(_STORE), fresh)
    return rows


def refresh_rollups(engine: Engine) -> int:
    """Roll up today's figures of every county under a region whose row is stale (an edit
    moved its revision, or a new day began); returns how many were computed. Done in the
    background while serving (`RollupKeeper`), so the first overview of the day reads rows
    instead of paying ≈ 0.24 s a county (24 s for a province of 100, docs/benchmarks.md)."""
    with engine.connect() as conn:
        codes = sorted({c for r in list_regions(conn) for c in counties_in(conn, r["code"])})
        rows = county_rows(conn, codes) if codes else []
    return sum(not row["from_rollup"] for row in rows)


class RollupKeeper:
    """`refresh_rollups` on its own thread: `start_s` after start, then every `every` s."""

    def __init__(self, engine: Engine, every: float, start_s: float = 60.0) -> None:
        self.engine, self.every, self.start_s = engine, every, start_s
        self.refreshed = 0  # counties computed so far (tests and logs)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rollups", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)  # a round under way ends on its own (a daemon)

    def _run(self) -> None:
        wait = min(self.start_s, self.every)  # the server's first minute is its own
        while not self._stopping.wait(wait):
            wait = self.every
            try:
                self.refreshed += refresh_rollups(self.engine)
            except SQLAlchemyError as exc:  # the database away: the next round tries again
                log.warning("roll-ups not refreshed / 汇总未刷新: %s", str(exc).splitlines()[0])


def overdue_counts(conn: Connection, counties: list[str], on: date | None = None) -> dict:
    """County → its overdue tasks on `on` (today in Beijing): one grouped query, the one rule."""
    query = text(
        f"SELECT t.county_code, count(*) FILTER (WHERE {OVERDUE_SQL}) AS overdue FROM task t "
        "WHERE t.county_code = ANY(:codes) GROUP BY 1"
    )
    return dict(conn.execute(query, {"codes": list(counties), "today": on or today()}).all())


def _ranked(rows: list[dict]) -> list[dict]:
    """Rows by overall rate, highest first (none last); equal rates share a rank."""
    rows = sorted(rows, key=lambda r: (r["overall_rate"] is None, -(r["overall_rate"] or 0),
                                       r["code"]))  # fmt: skip
    for position, row in enumerate(rows, 1):
        previous = rows[position - 2] if position > 1 else None
        same = previous is not None and previous["overall_rate"] == row["overall_rate"]
        row["rank"] = previous["rank"] if same else position
    return rows


def _goal(row: dict, region: dict) -> None:
    """The row's target: the region's when it sets one, else the county's own."""
    rate_, deadline = region["target_rate"], region["target_deadline"]
    row["target_rate"] = rate_ if rate_ is not None else row["county_target_rate"]
    own = row["county_target_deadline"]
    row["target_deadline"] = deadline or (date.fromisoformat(own) if own else None)
    row["meets_target"] = (
        row["overall_rate"] is not None and row["overall_rate"] >= (row["target_rate"])
    )


def _totals(rows: list[dict], region: dict) -> dict:
    sums = {field: sum(row[field] for row in rows) for field in SUMMED}
    task = sums["units_task"]
    overall = rate(sums["units_registered"], sums["units_in_scope"])
    goal = region["target_rate"]
    return {
        **sums,
        "counties": len(rows),
        "first_rate": rate(sums["units_first_registered"], task),
        "transfer_rate": rate(sums["units_transferred"], task),
        "overall_rate": overall,
        "target_rate": goal,
        "target_deadline": region["target_deadline"],
        "meets_target": None if goal is None else overall is not None and overall >= goal,
        "counties_meeting_target": sum(1 for row in rows if row["meets_target"]),
    }


def overview(
    conn: Connection,
    region_code: str,
    counties: list[str] | None = None,
    as_of: date | None = None,
) -> dict:
    """The region's counties side by side, ranked, with their totals.

    `counties`: those the asker may read (None: all of the region's); the others of the region
    are counted as `withheld`, never shown. `as_of`: the ledger as it stood that day (the
    overdue column counts against that day too, with the tasks as they are now)."""
    region = get_region(conn, region_code)
    every = counties_in(conn, region_code)
    shown = every if counties is None else [c for c in every if c in set(counties)]
    rows = county_rows(conn, shown, as_of)
    overdue = overdue_counts(conn, shown, as_of)
    for row in rows:
        row["overdue_tasks"] = int(overdue.get(row["code"], 0))
        _goal(row, region)
    region.pop("counties")
    return {
        "region": region,
        "as_of": as_of or today(),
        "counties": _ranked(rows),
        "totals": _totals(rows, region),
        "withheld": len(every) - len(shown),
    }


def region_burndown(
    conn: Connection, region_code: str, counties: list[str] | None = None, until: date | None = None
) -> dict:
    """Per county the weekly burn-down (geo.ledger.stats.burndown) with its deadline and
    target (the region's when it sets them). Each county's series is kept with its data
    revision (`memo_of`): one pass over a county's history is ~0.4 s at 85 000 events, and a
    province page asked for a hundred of them on every view (41 s, docs/benchmarks.md)."""
    region = get_region(conn, region_code)
    memo, until = memo_of(conn.engine), until or today()
    every = counties_in(conn, region_code)
    shown = every if counties is None else [c for c in every if c in set(counties)]
    names = dict(conn.execute(text("SELECT code, name FROM county WHERE code = ANY(:c)"),
                              {"c": shown}).all())  # fmt: skip
    series = []
    for county in shown:
        goal = target(conn, county)
        series.append({
            "code": county,
            "name": names[county],
            "target_rate": region["target_rate"] if region["target_rate"] is not None
            else float(goal.rate),
            "target_deadline": region["target_deadline"] or goal.deadline,
            "series": memo(("burndown", county, data_version(conn, county), until),
                           lambda county=county: burndown(conn, county, until)),
        })  # fmt: skip
    return {"region": region["code"], "counties": series, "withheld": len(every) - len(shown)}


def county_outlines(conn: Connection, counties: list[str]) -> dict:
    """The counties' boundaries as a GeoJSON FeatureCollection (EPSG:4490 lon/lat), simplified
    for province zooms; a county without a boundary is left out."""
    query = text(
        "SELECT code, name, ST_AsGeoJSON(ST_SimplifyPreserveTopology(geom, :tolerance), 6) "
        "AS geometry FROM county WHERE code = ANY(:codes) AND geom IS NOT NULL ORDER BY code"
    )
    rows = conn.execute(query, {"codes": list(counties), "tolerance": OUTLINE_TOLERANCE})
    features = [
        {"type": "Feature", "id": row.code, "geometry": json.loads(row.geometry),
         "properties": {"code": row.code, "name": row.name}}
        for row in rows
    ]  # fmt: skip
    return {"type": "FeatureCollection", "features": features}


def readable_in(conn: Connection, region: str, user: User | None) -> list[str]:
    """The region's counties `user` may read (geo.ledger.users.may_read: the open ones, its
    own and given ones, every one under its own region)."""
    query = text("SELECT code, map_public FROM county WHERE code LIKE :p ORDER BY code")
    rows = conn.execute(query, {"p": region_prefix(region) + "%"})
    return [row.code for row in rows if may_read(user, row.code, row.map_public)]


def visible_regions(conn: Connection, user: User | None) -> list[dict]:
    """The regions `user` sees (geo.ledger.users.may_see_region), each with `readable`: how
    many of its counties the user may read."""
    public = dict(conn.execute(text("SELECT code, map_public FROM county")).all())
    seen = []
    for region in list_regions(conn):
        inside = [code for code in public if in_region(code, region["code"])]
        readable = [code for code in inside if may_read(user, code, public[code])]
        if may_see_region(user, region["code"], readable):
            seen.append({**region, "readable": len(readable)})
    return seen
