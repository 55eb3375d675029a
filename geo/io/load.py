"""Load a whole county — its layers as plain frames (`CountyFrames`) — into PostGIS in one
transaction.

Rows go in with COPY, which keeps a 100 000-compound county to seconds; geometries travel as
hex EWKB with their SRID. Either everything lands or nothing does. The columns written are the
model's (`geo.core.model.copy_columns`); links between layers travel as codes (a compound's
township code, a ledger row's compound code) and are turned into ids here.
"""

import itertools
import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

import geopandas as gpd
import pandas as pd
import shapely
from psycopg.types.json import Jsonb
from sqlalchemy import Connection, Engine, text

from geo.core.crs import STORAGE_EPSG
from geo.core.model import copy_columns
from geo.db import audit


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


SRID_BYTES = STORAGE_EPSG.to_bytes(4, "little")


def ewkb(geoms: Iterable) -> list[str]:
    """Hex EWKB (with SRID 4490) for PostGIS text input; polygons promoted to multipolygons.

    The SRID is spliced into little-endian WKB (the type's SRID flag 0x20 in its high byte, the
    SRID after it) and bytes.hex() does the hex: set_srid copies every geometry and shapely's
    own hex writer is slow, together 3× the time, for the same text."""
    geoms = list(geoms)
    if (shapely.get_type_id(geoms) == 3).any():
        geoms = [shapely.MultiPolygon([g]) if isinstance(g, shapely.Polygon) else g for g in geoms]
    plain = shapely.to_wkb(geoms, byte_order=1, include_srid=False)
    return [
        None if b is None else (b[:4] + bytes((b[4] | 0x20,)) + SRID_BYTES + b[5:]).hex().upper()
        for b in plain
    ]


# Values that are already what psycopg understands: most cells, checked by type alone (the
# pd.isna below costs a microsecond a value, a second over 100 000 rows of ten columns).
PLAIN_TYPES = frozenset({str, int, bool, date, datetime, type(None)})


def _plain(value):
    """pandas' missing values and numpy scalars as what psycopg understands."""
    if type(value) in PLAIN_TYPES:
        return value
    if type(value) is Decimal:
        return None if value.is_nan() else value
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


# COPY's text format (what psycopg's text dumpers write, built here a column at a time).
NULL = "\\N"
ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
SPECIAL_FLOATS = {"inf": "Infinity", "-inf": "-Infinity"}


def _field(value) -> str:
    """One value as a COPY text field."""
    value = _plain(value)
    if value is None:
        return NULL
    if isinstance(value, str):
        return value.translate(ESCAPES)
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, date):  # datetimes too: ISO, with their offset
        return value.isoformat()
    if isinstance(value, float):
        text_ = repr(value)
        return SPECIAL_FLOATS.get(text_, text_)
    return str(value).translate(ESCAPES)


def copy_fields(values: Sequence, safe: bool = False) -> list[str]:
    """A column's values as COPY text fields. `safe`: text that needs no escaping (hex EWKB),
    passed as it is. A column of one plain type is done in one comprehension."""
    kinds = set(map(type, values))
    none = type(None)
    if kinds <= {str, none}:
        if not safe:  # one scan of the whole column says whether any cell needs escaping
            joined = "".join(v for v in values if v is not None)
            safe = not any(c in joined for c in "\\\t\n\r")
        if safe:
            return list(values) if none not in kinds else [NULL if v is None else v for v in values]
        return [NULL if v is None else v.translate(ESCAPES) for v in values]
    if kinds <= {Decimal, none}:  # amounts: mostly distinct
        return [NULL if v is None or v.is_nan() else str(v) for v in values]
    if kinds <= {int, none} or kinds <= {date, none}:  # values that repeat: each written once
        texts = {v: str(v) if type(v) is int else v.isoformat() for v in set(values) - {None}}
        texts[None] = NULL
        return [texts[v] for v in values]
    return [_field(v) for v in values]


def copy_by_columns(
    conn: Connection,
    table: str,
    columns: Mapping[str, Sequence],
    safe: Collection[str] = (),
    step: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """COPY the equally long `columns` (name → values) into `table`: each column turned into
    text at once, the rows joined in C — what copy_rows does value by value. `safe` names
    columns of text needing no escaping; `progress(done, total)` is told every `step` rows."""
    fields = [copy_fields(values, name in safe) for name, values in columns.items()]
    total = len(fields[0]) if fields else 0
    step = step or total or 1
    lines = map("\t".join, zip(*fields, strict=True))
    cursor = conn.connection.driver_connection.cursor()
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for start in range(0, total, step):
            done = min(start + step, total)
            copy.write("\n".join(itertools.islice(lines, done - start)) + "\n")
            if progress is not None:
                progress(done, total)
    return total


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
            audit.bulk_load(conn)
            conn.execute(text("DELETE FROM county WHERE code = :c"), {"c": county})
        audit.bulk_load(conn)
        counts = _load_all(conn, county, frames)
        audit.record(conn, county, "county", "load", county, after={"replace": replace, **counts})
    return LoadReport(county, loaded=True, counts=counts)


def _entry_ids(conn: Connection, county: str) -> dict[str, int]:
    query = text(
        "SELECT c.code, e.id FROM ledger_entry e "
        "JOIN compound c ON c.county_code = e.county_code AND c.id = e.compound_id "
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
