"""/api/compounds: compounds with their ledger status as GeoJSON."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import Connection

from api.dependencies import connection, user_errors
from geo.compounds import MAX_LIMIT, STATUS_FILTER_VALUES, BBox, compounds_geojson

router = APIRouter(prefix="/api", tags=["compounds"])

STATUS_HELP = "化解状态，可多选或逗号分隔 / ledger status, repeat or comma-separate: " + ", ".join(
    STATUS_FILTER_VALUES
)


@router.get(
    "/compounds",
    summary="小区及其化解状态 / compounds with their ledger status (GeoJSON)",
    response_class=Response,
    responses={200: {"content": {"application/geo+json": {}}}},
)
def list_compounds(
    request: Request,
    conn: Annotated[Connection, Depends(connection)],
    bbox: Annotated[
        str | None, Query(description="minx,miny,maxx,maxy in EPSG:4490 (经度,纬度)")
    ] = None,
    status: Annotated[list[str] | None, Query(description=STATUS_HELP)] = None,
    county: Annotated[str | None, Query(description="县级行政区划代码 / county code")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 1000,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    statuses = [s for value in status or [] for s in value.split(",") if s]
    with user_errors():
        body = compounds_geojson(
            conn,
            county or request.app.state.settings.county,
            bbox=BBox.parse(bbox) if bbox else None,
            statuses=statuses,
            limit=limit,
            offset=offset,
        )
    return Response(body, media_type="application/geo+json")
