"""The demo county's frames: their columns and types, the same generated or read back."""

from dataclasses import dataclass
from datetime import date, datetime

import geopandas as gpd
import pandas as pd

from geo.core.crs import STORAGE_EPSG
from geo.io.load import CountyFrames


@dataclass
class DemoCounty(CountyFrames):
    """The layers of a county, named as in LAYERS; spatial ones in EPSG:4490.

    Types (see SCHEMA): dates are `datetime.date` (None where missing), `ledger_events.at` is
    datetime64[us, Asia/Shanghai], text is pandas `str` except the nullable columns (object,
    None), lists (ledger blockers, cooperating departments) are comma-joined text, and
    `changes` / `state` are JSON text.
    """


# -- column types: generate() and read() both pass every frame through `_conform` -------------

TEXT, TEXT_OR_NONE, INT, FLOAT, DATE, DATE_OR_NONE, MOMENT = (
    "text", "text?", "int", "float", "date", "date?", "moment")  # fmt: skip

SCHEMA: dict[str, dict[str, str]] = {
    "county": {"code": TEXT, "name": TEXT, "province": TEXT, "target_rate": FLOAT,
               "target_deadline": DATE, "ledger_cutoff": DATE},
    "townships": {"code": TEXT, "name": TEXT, "kind": TEXT},
    "context": {"kind": TEXT, "name": TEXT},
    "developers": {"credit_code": TEXT, "name": TEXT, "contact": TEXT, "credit_status": TEXT,
                   "blacklist_reason": TEXT_OR_NONE, "blacklisted_on": DATE_OR_NONE},
    "compounds": {"code": TEXT, "name": TEXT, "address": TEXT, "township_code": TEXT,
                  "developer_credit_code": TEXT, "buildings": INT, "units_sold": INT,
                  "sold_on": DATE, "occupied_on": DATE},
    "parcels": {"code": TEXT, "recorded_area_m2": FLOAT, "land_use": TEXT, "right_type": TEXT,
                "premium_due": FLOAT, "premium_paid": FLOAT},
    "compound_parcels": {"compound_code": TEXT, "parcel_code": TEXT},
    "planned_areas": {"code": TEXT, "kind": TEXT, "name": TEXT},
    "complaints": {"code": TEXT, "received_on": DATE, "source": TEXT, "text": TEXT},
    "ledger": {"compound_code": TEXT, "ledger_no": TEXT, "units_task": INT,
               "units_first_registered": INT, "units_transferred": INT, "status": TEXT,
               "blockers": TEXT, "blocker_note": TEXT, "lead_department": TEXT,
               "cooperating_departments": TEXT, "supervising_leader": TEXT, "plan": TEXT,
               "task_force_lead": TEXT, "deadline": DATE, "opened_on": DATE,
               "closed_on": DATE_OR_NONE, "close_reason": TEXT_OR_NONE},
    "ledger_events": {"compound_code": TEXT, "at": MOMENT, "user_name": TEXT, "action": TEXT,
                      "changes": TEXT, "state": TEXT, "note": TEXT},
}  # fmt: skip
SPATIAL = ("county", "townships", "context", "compounds", "parcels", "planned_areas",
           "complaints")  # fmt: skip
MOMENT_DTYPE = "datetime64[us, Asia/Shanghai]"

# -- frames ----------------------------------------------------------------------------------


def _conform(frame: pd.DataFrame, layer: str) -> pd.DataFrame:
    """Column order and types of one layer, the same whether generated or read back."""
    out = pd.DataFrame(index=pd.RangeIndex(len(frame)))
    for column, kind in SCHEMA[layer].items():
        values = frame[column].tolist()
        if kind == TEXT:
            out[column] = pd.Series(values, dtype="str")
        elif kind == TEXT_OR_NONE:
            out[column] = pd.Series(
                [v if isinstance(v, str) else None for v in values], dtype=object
            )
        elif kind == INT:
            out[column] = pd.Series(values, dtype="int64")
        elif kind == FLOAT:
            out[column] = pd.Series(values, dtype="float64")
        elif kind in (DATE, DATE_OR_NONE):
            out[column] = pd.Series([_as_date(v) for v in values], dtype=object)
        else:
            moments = pd.to_datetime(pd.Series(values, dtype=object), format="ISO8601", utc=True)
            out[column] = moments.dt.tz_convert("Asia/Shanghai").astype(MOMENT_DTYPE)
    if layer in SPATIAL:
        geometry = (
            frame.geometry.values if isinstance(frame, gpd.GeoDataFrame) else frame["geometry"]
        )
        return gpd.GeoDataFrame(
            out, geometry=gpd.GeoSeries(list(geometry)).values, crs=STORAGE_EPSG
        )
    return out


def _as_date(value) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value:
        return date.fromisoformat(value[:10])
    return None
