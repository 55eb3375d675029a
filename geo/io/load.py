"""Load a whole county (the demo county's frames) into PostGIS in one transaction.

Rows go in with COPY, which keeps a 100 000-compound county to seconds; geometries travel as
hex EWKB with their SRID. Either everything lands or nothing does.
"""

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import pandas as pd
import shapely
from psycopg.types.json import Jsonb
from sqlalchemy import Connection, Engine, text

from geo.core.crs import STORAGE_EPSG
from geo.demo.county import DemoCounty


@dataclass
class LoadReport:
    county: str
    loaded: bool
    counts: dict[str, int] = field(default_factory=dict)


def county_exists(conn: Connection, county: str) -> bool:
    return (
        conn.execute(text("SELECT 1 FROM county WHERE code = :c"), {"c": county}).first()
        is not None
    )


def ewkb(geoms: Iterable) -> list[str]:
    """Hex EWKB (with SRID 4490) for PostGIS text input; polygons promoted to multipolygons."""
    geoms = [shapely.MultiPolygon([g]) if isinstance(g, shapely.Polygon) else g for g in geoms]
    with_srid = shapely.set_srid(geoms, STORAGE_EPSG)
    return list(shapely.to_wkb(with_srid, hex=True, include_srid=True))


def _plain(value):
    """pandas' missing values and numpy scalars as what psycopg understands."""
    if value is None or (not isinstance(value, list | dict | str) and pd.isna(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def copy_rows(conn: Connection, table: str, columns: Sequence[str], rows: Iterable[tuple]) -> int:
    cursor = conn.connection.driver_connection.cursor()
    count = 0
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([_plain(v) for v in row])
            count += 1
    return count


def code_ids(conn: Connection, table: str, county: str, key: str = "code") -> dict[str, int]:
    query = text(f"SELECT {key}, id FROM {table} WHERE county_code = :c")
    return dict(conn.execute(query, {"c": county}).all())


def _split(value) -> list[str]:
    return [part for part in str(value or "").split(",") if part]


def _frame_rows(frame: pd.DataFrame, columns: Sequence[str], **derived: Callable) -> Iterable:
    """Rows of `columns` from `frame`; `derived` computes a column from the row instead."""
    for record in frame.to_dict("records"):
        yield tuple(derived[name](record) if name in derived else record[name] for name in columns)


def load_county(engine: Engine, demo: DemoCounty, replace: bool = False) -> LoadReport:
    """Load every layer of `demo`; with `replace`, the county's old rows go first."""
    county = str(demo.county["code"].iloc[0])
    with engine.begin() as conn:
        if county_exists(conn, county):
            if not replace:
                return LoadReport(county, loaded=False)
            conn.execute(text("DELETE FROM county WHERE code = :c"), {"c": county})
        counts = _load_all(conn, county, demo)
    return LoadReport(county, loaded=True, counts=counts)


COLUMNS = {
    "county": ["code", "name", "province", "target_rate", "target_deadline", "ledger_cutoff",
               "geom"],
    "township": ["county_code", "code", "name", "kind", "geom"],
    "context_feature": ["county_code", "kind", "name", "geom"],
    "developer": ["county_code", "name", "credit_code", "contact", "credit_status",
                  "blacklist_reason", "blacklisted_on"],
    "compound": ["county_code", "code", "name", "address", "township_id", "developer_id",
                 "buildings", "units_sold", "sold_on", "occupied_on", "geom"],
    "parcel": ["county_code", "code", "recorded_area_m2", "land_use", "right_type",
               "premium_due", "premium_paid", "geom"],
    "compound_parcel": ["compound_id", "parcel_id", "county_code"],
    "planned_area": ["county_code", "code", "kind", "name", "geom"],
    "complaint": ["county_code", "code", "received_on", "source", "text", "geom"],
    "ledger_entry": ["county_code", "compound_id", "ledger_no", "units_task",
                     "units_first_registered", "units_transferred", "status", "blockers",
                     "blocker_note", "lead_department", "cooperating_departments",
                     "supervising_leader", "plan", "task_force_lead", "deadline", "opened_on",
                     "closed_on", "close_reason", "version", "updated_by"],
    "ledger_event": ["county_code", "entry_id", "at", "user_name", "action", "changes", "state",
                     "note"],
}  # fmt: skip


def _entry_ids(conn: Connection, county: str) -> dict[str, int]:
    query = text(
        "SELECT c.code, e.id FROM ledger_entry e JOIN compound c ON c.id = e.compound_id "
        "WHERE e.county_code = :c"
    )
    return dict(conn.execute(query, {"c": county}).all())


def _load_all(conn: Connection, county: str, demo: DemoCounty) -> dict[str, int]:
    counts: dict[str, int] = {}

    def put(table: str, frame: pd.DataFrame, **derived: Callable) -> None:
        frame = frame.assign(county_code=county)
        if "geometry" in frame:
            frame = frame.assign(geom=ewkb(frame.geometry))
        rows = _frame_rows(frame, COLUMNS[table], **derived)
        counts[table] = copy_rows(conn, table, COLUMNS[table], rows)

    put("county", demo.county)
    put("township", demo.townships)
    put("context_feature", demo.context)
    put("developer", demo.developers)
    townships = code_ids(conn, "township", county)
    developers = code_ids(conn, "developer", county, key="credit_code")
    put(
        "compound",
        demo.compounds,
        township_id=lambda r: townships.get(r["township_code"]),
        developer_id=lambda r: developers.get(r["developer_credit_code"]),
    )
    put("parcel", demo.parcels)
    compounds = code_ids(conn, "compound", county)
    parcels = code_ids(conn, "parcel", county)
    put(
        "compound_parcel",
        demo.compound_parcels,
        compound_id=lambda r: compounds[r["compound_code"]],
        parcel_id=lambda r: parcels[r["parcel_code"]],
    )
    put("planned_area", demo.planned_areas)
    put("complaint", demo.complaints)
    put(
        "ledger_entry",
        demo.ledger,
        compound_id=lambda r: compounds[r["compound_code"]],
        blockers=lambda r: _split(r["blockers"]),
        cooperating_departments=lambda r: _split(r["cooperating_departments"]),
        version=lambda r: 1,
        updated_by=lambda r: "demo",
    )
    entries = _entry_ids(conn, county)
    put(
        "ledger_event",
        demo.ledger_events,
        entry_id=lambda r: entries[r["compound_code"]],
        changes=lambda r: Jsonb(_json(r["changes"])),
        state=lambda r: Jsonb(_json(r["state"])),
    )
    return counts


def _json(value):
    return json.loads(value) if isinstance(value, str) else value
