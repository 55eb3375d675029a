"""/api/regions: a city (地级市) or the province, its counties side by side.

- `GET /api/regions` — the regions the asker sees: those of its own region, and any holding a
  county it may read.
- `GET /api/regions/{code}` — one region: name, level, target.
- `GET /api/regions/{code}/overview?as_of=` — the counties ranked by overall rate, their
  totals; counties the asker may not read (closed maps of others) are left out and counted
  as `withheld`.
- `GET /api/regions/{code}/counties.geojson` — the counties' outlines with the overview's
  figures as properties (a county without a boundary is only in the overview).
- `GET /api/regions/{code}/burndown?until=` — each county's weekly burn-down and deadline.

Who reads which county is decided by geo.ledger.users (may_read, may_see_region); an unknown
region is a 404, a region the asker sees nothing of a 403 (401 when not signed in).
"""

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from api.auth import reader
from api.dependencies import Day, connection, region_of
from geo.ledger.regions import (
    county_outlines,
    overview,
    region_burndown,
    visible_regions,
)
from geo.ledger.stats import RATE_DEFINITIONS
from maps.styles import county_class

router = APIRouter(prefix="/api/regions", tags=["regions"])


class Region(BaseModel):
    code: str
    name: str
    level: str
    level_label: str
    target_rate: float | None = None
    target_deadline: date | None = None


class RegionListed(Region):
    counties: int
    readable: int


class Regions(BaseModel):
    regions: list[RegionListed]


class Figures(BaseModel):
    compounds: int
    closed: int
    stalled: int
    units_task: int
    units_first_registered: int
    units_transferred: int
    units_sold: int
    units_registered: int
    units_in_scope: int
    first_rate: float | None
    transfer_rate: float | None
    overall_rate: float | None
    target_rate: float | None
    target_deadline: date | None
    meets_target: bool | None
    resolved_this_month: int
    overdue_tasks: int


class CountyRow(Figures):
    code: str
    name: str
    overall_rate_basis: str
    rank: int
    target_class: str = Field(description="met / near / behind / none (maps.styles.county_class)")


class Totals(Figures):
    counties: int
    counties_meeting_target: int


class Overview(BaseModel):
    region: Region
    as_of: date
    counties: list[CountyRow]
    totals: Totals
    withheld: int
    definitions: dict[str, str]


class Week(BaseModel):
    week_end: date
    entries: int
    closed: int
    units_task: int
    units_first_registered: int
    units_transferred: int
    open_units: int
    first_rate: float | None
    transfer_rate: float | None


class CountyBurndown(BaseModel):
    code: str
    name: str
    target_rate: float
    target_deadline: date | None
    series: list[Week]


class RegionBurndown(BaseModel):
    region: str
    counties: list[CountyBurndown]
    withheld: int


class Outlines(BaseModel):
    type: str = "FeatureCollection"
    features: list[dict[str, Any]]


Conn = Annotated[Connection, Depends(connection)]


@router.get("", summary="可查看的省、市 / the regions the asker sees")
def regions(request: Request, conn: Conn) -> Regions:
    return Regions(regions=visible_regions(conn, reader(request)))


@router.get("/{code}", summary="一个省或市 / one region", responses={404: {}})
def region(request: Request, code: str, conn: Conn) -> Region:
    found, _ = region_of(request, conn, code)
    return Region(**found)


@router.get(
    "/{code}/overview",
    summary="各县化解进度排名 / the counties ranked",
    description="口径 / definitions: 总计的比率由各县合计套数算得 / totals' rates from the "
    "summed units, each county's overall rate over its own basis.",
)
def region_overview(
    request: Request,
    code: str,
    conn: Conn,
    as_of: Annotated[Day | None, Query(description="截至日期 / as of (YYYY-MM-DD)")] = None,
) -> Overview:
    _, counties = region_of(request, conn, code)
    return Overview(**_classed(conn, code, counties, as_of), definitions=RATE_DEFINITIONS)


def _classed(conn: Connection, code: str, counties: list[str], as_of=None) -> dict:
    """The overview, each county with its class against target (the page colours by it)."""
    figures = overview(conn, code, counties, as_of)
    for row in figures["counties"]:
        row["target_class"] = county_class(row)
    return figures


@router.get(
    "/{code}/counties.geojson",
    summary="各县边界及其指标 / county outlines with their figures",
)
def region_outlines(request: Request, code: str, conn: Conn) -> Outlines:
    _, counties = region_of(request, conn, code)
    figures = {row["code"]: row for row in _classed(conn, code, counties)["counties"]}
    outlines = county_outlines(conn, counties)
    for feature in outlines["features"]:
        row = CountyRow(**figures[feature["id"]])
        feature["properties"] = row.model_dump(mode="json")
    return Outlines(**outlines)


@router.get("/{code}/burndown", summary="各县每周未化解套数 / each county's burn-down")
def burndown(
    request: Request,
    code: str,
    conn: Conn,
    until: Annotated[Day | None, Query(description="截至 / until (YYYY-MM-DD)")] = None,
) -> RegionBurndown:
    _, counties = region_of(request, conn, code)
    return RegionBurndown(**region_burndown(conn, code, counties, until))
