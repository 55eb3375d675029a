"""Load a whole county — its layers as plain frames (`CountyFrames`) — into PostGIS in one
transaction.

Rows go in with COPY, which keeps a 100 000-compound county to seconds; geometries travel as
hex EWKB with their SRID. Either everything lands or nothing does. The columns written are the
model's (`geo.core.model.copy_columns`); links between layers travel as codes (a compound's
township code, a ledger row's compound code) and are turned into ids here.
"""

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import geopandas as gpd
import pandas as pd
import shapely
from psycopg.types.json import Jsonb
from sqlalchemy import Connection, Engine, text

from geo.core.crs import STORAGE_EPSG
from geo.core.model import copy_columns


@dataclass
class CountyFrames:
    """A county's layers, one frame each; the spatial ones (GeoDataFrames) in EPSG:4490.

    Columns are the tables' (`copy_columns`) except where a link travels as a code:
    compounds carry `township_code` and `developer_credit_code`; compound_parcels
    `compound_code` and `parcel_code`; ledger and ledger_events `compound_code`. Ledger lists
    (blockers, cooperating departments) are comma-joined text, ledger events' `changes` and
    `state` JSON (text or dicts). A frame may leave out a nullable column (the county's
    `gk_epsg`): it stays NULL.
    """

    county: gpd.GeoDataFrame
    townships: gpd.GeoDataFrame
    context: gpd.GeoDataFrame
    developers: pd.DataFrame
    compounds: gpd.GeoDataFrame
    parcels: gpd.GeoDataFrame
    compound_parcels: pd.DataFrame
    planned_areas: gpd.GeoDataFrame
    complaints: gpd.GeoDataFrame
    ledger: pd.DataFrame
    ledger_events: pd.DataFrame


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


def load_county(engine: Engine, frames: CountyFrames, replace: bool = False) -> LoadReport:
    """Load every layer of `frames`; with `replace`, the county's old rows go first."""
    county = str(frames.county["code"].iloc[0])
    with engine.begin() as conn:
        if county_exists(conn, county):
            if not replace:
                return LoadReport(county, loaded=False)
            conn.execute(text("DELETE FROM county WHERE code = :c"), {"c": county})
        counts = _load_all(conn, county, frames)
    return LoadReport(county, loaded=True, counts=counts)


def _entry_ids(conn: Connection, county: str) -> dict[str, int]:
    query = text(
        "SELECT c.code, e.id FROM ledger_entry e JOIN compound c ON c.id = e.compound_id "
        "WHERE e.county_code = :c"
    )
    return dict(conn.execute(query, {"c": county}).all())


def _load_all(conn: Connection, county: str, frames: CountyFrames) -> dict[str, int]:
    counts: dict[str, int] = {}

    def put(table: str, frame: pd.DataFrame, **derived: Callable) -> None:
        frame = frame.assign(county_code=county)
        if "geometry" in frame:
            frame = frame.assign(geom=ewkb(frame.geometry))
        columns = [c for c in copy_columns(table) if c in derived or c in frame]
        rows = _frame_rows(frame, columns, **derived)
        counts[table] = copy_rows(conn, table, columns, rows)

    put("county", frames.county)
    put("township", frames.townships)
    put("context_feature", frames.context)
    put("developer", frames.developers)
    townships = code_ids(conn, "township", county)
    developers = code_ids(conn, "developer", county, key="credit_code")
    put(
        "compound",
        frames.compounds,
        township_id=lambda r: townships.get(r["township_code"]),
        developer_id=lambda r: developers.get(r["developer_credit_code"]),
    )
    put("parcel", frames.parcels)
    compounds = code_ids(conn, "compound", county)
    parcels = code_ids(conn, "parcel", county)
    put(
        "compound_parcel",
        frames.compound_parcels,
        compound_id=lambda r: compounds[r["compound_code"]],
        parcel_id=lambda r: parcels[r["parcel_code"]],
    )
    put("planned_area", frames.planned_areas)
    put("complaint", frames.complaints)
    put(
        "ledger_entry",
        frames.ledger,
        compound_id=lambda r: compounds[r["compound_code"]],
        blockers=lambda r: _split(r["blockers"]),
        cooperating_departments=lambda r: _split(r["cooperating_departments"]),
        version=lambda r: 1,
        updated_by=lambda r: "demo",
    )
    entries = _entry_ids(conn, county)
    put(
        "ledger_event",
        frames.ledger_events,
        entry_id=lambda r: entries[r["compound_code"]],
        changes=lambda r: Jsonb(_json(r["changes"])),
        state=lambda r: Jsonb(_json(r["state"])),
    )
    return counts


def _json(value):
    return json.loads(value) if isinstance(value, str) else value
