"""The city / province overview page (issue 17): `GET /regions/{code}[?as_of=]`.

The page is the frame — title, the as-of day, the region's target and deadline, a link to the
A3 print — and maps/static/titlemap/pages/region.js fills it from the JSON API
(api.routers.regions): the counties' map coloured against target, the ranking table, a
burn-down per county. Who sees which county is the API's rule (`api.dependencies.region_of`:
the counties the reader may read; the others are left out and counted as withheld), so the
page and its data never disagree. Not signed in and nothing open to read: the sign-in; a
stranger: a 403 page.
"""

from datetime import date
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from sqlalchemy import Connection

from api.auth import reader
from api.dependencies import Day, connection, region_of
from api.pages import html_page
from api.routers.account import page_context, refused_page, to_sign_in
from geo.core.dates import cn_date, today
from maps.styles import TARGET_CLASSES
from maps.webmap import static_url

router = APIRouter(tags=["regions"])


def _words(region: dict) -> str:
    """The region's goal in a line: its own target and deadline, or the counties' own."""
    target, deadline = region.get("target_rate"), region.get("target_deadline")
    goal = "各县区按本县目标" if target is None else f"总体登记率 ≥ {float(target) * 100:.1f}%"
    return goal + (f"，完成时限 {cn_date(deadline)}" if deadline else "")


@router.get("/regions/{code}", include_in_schema=False)
def region_page(
    request: Request,
    code: str,
    conn: Annotated[Connection, Depends(connection)],
    as_of: Annotated[Day | None, Query(description="截至日期 / as of (YYYY-MM-DD)")] = None,
) -> Response:
    user = reader(request)
    try:
        region, _counties = region_of(request, conn, code)
    except HTTPException as exc:
        if exc.status_code == 401:
            return to_sign_in(request)
        return refused_page(request, user, exc.detail, status=exc.status_code)
    day: date = as_of or today()
    dated = f"?{urlencode({'as_of': as_of.isoformat()})}" if as_of else ""
    api = f"/api/regions/{code}"
    context = page_context(
        request, user, title=f"{region['name']}不动产登记化解进度总览", region=region,
        as_of=cn_date(day), goal=_words(region), print_url=f"/print/region/{code}.pdf{dated}",
        overview_url=f"{api}/overview{dated}", outlines_url=f"{api}/counties.geojson",
        burndown_url=f"{api}/burndown", classes=TARGET_CLASSES,
        css=[static_url("vendor/leaflet/leaflet.css"), static_url("titlemap/region.css")],
        scripts=[static_url("vendor/leaflet/leaflet.js"), static_url("titlemap/core.js"),
                 static_url("titlemap/pages/region.js")],
    )  # fmt: skip
    return html_page("region.html", **context)
