"""/api/compounds: compounds with their ledger status as GeoJSON; counts; the map's card."""

from types import SimpleNamespace
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from sqlalchemy import Connection

from api.auth import reader
from api.dependencies import Day, connection, county_of, user_errors
from geo import TitlemapError
from geo.core.model import LedgerStatus
from geo.ledger.rules import closing_needs, closing_rule_of
from geo.ledger.users import may_edit_entry
from geo.query.compounds import (
    BLOCKER_FILTER_VALUES,
    MAX_LIMIT,
    MAX_OFFSET,
    PLANNED_KIND_VALUES,
    STATUS_FILTER_VALUES,
    BBox,
    CompoundFilter,
    compound_card,
    compounds_geojson,
    summary,
)
from geo.query.overlaps import overlap_rows

router = APIRouter(prefix="/api", tags=["compounds"])

STATUS_HELP = "化解状态，可多选或逗号分隔 / ledger status, repeat or comma-separate: " + ", ".join(
    STATUS_FILTER_VALUES
)
KIND_HELP = "与之重叠的规划片区类型 / overlapping planned-area kind: " + ", ".join(
    PLANNED_KIND_VALUES
)
BLOCKER_HELP = "卡点类别（任一）/ blocker category (any of): " + ", ".join(BLOCKER_FILTER_VALUES)


def compound_filter(
    status: Annotated[list[str] | None, Query(description=STATUS_HELP)] = None,
    blocker: Annotated[list[str] | None, Query(description=BLOCKER_HELP)] = None,
    lead_department: Annotated[
        list[str] | None, Query(description="牵头单位 / lead department, e.g. 住建局")
    ] = None,
    township: Annotated[
        list[str] | None, Query(description="乡镇（街道）代码 / township code")
    ] = None,
    planned_area: Annotated[
        list[str] | None, Query(description="与之重叠的规划片区编号 / overlapping planned area")
    ] = None,
    planned_kind: Annotated[
        list[str] | None,
        Query(
            description="与之重叠的规划片区类型 / planned-area kind: "
            + ", ".join(PLANNED_KIND_VALUES)
        ),
    ] = None,
    overdue: Annotated[
        bool | None, Query(description="逾期未办结 / past the deadline and not closed")
    ] = None,
    q: Annotated[
        str | None, Query(description="名称包含或编号开头 / name contains, or code starts with")
    ] = None,
    code: Annotated[list[str] | None, Query(description="小区编号 / exact compound codes")] = None,
    as_of: Annotated[
        Day | None, Query(description="按该日台账历史 / the ledger as it stood that day")
    ] = None,
) -> CompoundFilter:
    """The compound filter from the query string (shared by the list, tiles and overlaps)."""
    try:
        return CompoundFilter.make(
            statuses=status,
            blockers=blocker,
            lead_departments=lead_department,
            townships=township,
            planned_areas=planned_area,
            planned_kinds=planned_kind,
            overdue=overdue,
            q=q,
            as_of=as_of,
            codes=code,
        )
    except TitlemapError as exc:
        raise HTTPException(422, str(exc)) from None


Filter = Annotated[CompoundFilter, Depends(compound_filter)]


@router.get(
    "/compounds",
    summary="小区及其化解状态 / compounds with their ledger status (GeoJSON)",
    response_class=Response,
    responses={200: {"content": {"application/geo+json": {}}}},
)
def list_compounds(
    request: Request,
    conn: Annotated[Connection, Depends(connection)],
    filters: Filter,
    bbox: Annotated[
        str | None, Query(description="minx,miny,maxx,maxy in EPSG:4490 (经度,纬度)")
    ] = None,
    county: Annotated[str | None, Query(description="县级行政区划代码 / county code")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 1000,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    with user_errors():
        body = compounds_geojson(
            conn,
            county_of(request, county),
            bbox=BBox.parse(bbox) if bbox else None,
            limit=limit,
            offset=offset,
            filters=filters,
        )
    return Response(body, media_type="application/geo+json")


@router.get(
    "/compounds/summary",
    summary="符合条件的小区数（按状态）/ how many compounds the filter keeps, by status",
)
def compounds_summary(
    request: Request,
    conn: Annotated[Connection, Depends(connection)],
    filters: Filter,
    county: str | None = None,
) -> dict:
    with user_errors():
        return summary(conn, county_of(request, county), filters)


def permissions(request: Request, county: str, ledger: dict | None) -> dict:
    """What the request's user (cookie or bearer: api.auth.reader) may do with the entry:
    edit it (geo.ledger.users.may_edit_entry) and close it (the same, while it is open)."""
    if ledger is None:
        return {"edit": False, "close": False}
    entry = SimpleNamespace(
        county_code=county,
        lead_department=ledger["lead_department"],
        cooperating_departments=ledger["cooperating_departments"],
    )
    edit = may_edit_entry(reader(request), entry)
    return {"edit": edit, "close": edit and ledger["status"] != LedgerStatus.CLOSED}


@router.get(
    "/compounds/{code}/card",
    summary="小区卡片：台账、企业、历史、规划重叠 / one compound's card for the map",
    description="`may`：当前用户能否更新进展、销号（按牵头/配合单位）；`closing`：本县销号规则"
    "及销号所需（理由）。/ `may`: whether the asker may edit or close the entry (their "
    "department leads or co-operates); `closing`: the county's closing rule and what closing "
    "needs. Per user: `Cache-Control: private, no-cache`, `Vary: Cookie, Authorization`.",
)
def card(
    request: Request,
    response: Response,
    code: str,
    conn: Annotated[Connection, Depends(connection)],
    as_of: Annotated[
        Day | None, Query(description="同时给出该日的台账状态 / also the state on that day")
    ] = None,
    county: str | None = None,
) -> dict:
    county = county_of(request, county)
    with user_errors(404):
        data = compound_card(conn, county, code, as_of)
    data["overlaps"] = overlap_rows(conn, county, filters=CompoundFilter(codes=(code,)))
    ledger = data["ledger"]
    data["may"] = permissions(request, county, ledger)
    rule = closing_rule_of(conn, county) if ledger else None
    data["closing"] = closing_needs(SimpleNamespace(**ledger), rule) if ledger else None
    # `may` is the asker's own: no cache keeps one person's answer for another
    response.headers["Cache-Control"] = "private, no-cache"
    response.headers["Vary"] = "Cookie, Authorization"
    return data
