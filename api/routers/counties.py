"""/api/counties: the counties this database serves; added and changed by admins.

- `GET /api/counties` — every county: code, name, province, target, deadline, closing rule,
  its zone and counts (compounds, parcels, ledger entries). Open, as reading is.
- `GET /api/counties/{code}` — one county.
- `POST /api/counties` (admin) — add a county: `code` and `name`, the rest optional.
- `PATCH /api/counties/{code}` (admin of that county) — change some of its settings, among
  them `map_public` (false: its map and API answer its own signed-in people only).

Values as geo.ledger.counties reads them (0.9 or "90%", "2026-12-31" or "2026年12月31日");
a wrong one is a 422 with one line, an existing code a 409, an unknown county a 404.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request
from sqlalchemy import Connection

from api.auth import actor_of, check_read, reader, require
from api.dependencies import connection, user_errors
from geo.core.model import Role, User
from geo.db.audit import act_as
from geo.ledger.counties import (
    SETTINGS,
    CountyExists,
    NoSuchCounty,
    add_county,
    describe_county,
    list_counties,
    set_county,
)
from geo.ledger.users import may_read

router = APIRouter(prefix="/api/counties", tags=["counties"])

SETTABLE = ", ".join(SETTINGS)
NEW_EXAMPLE = {
    "code": "620121", "name": "永登县", "target_rate": 0.9, "target_deadline": "2026-12-31",
    "ledger_cutoff": "2022-12-31", "closing_rule": "all_transferred",
}  # fmt: skip
PATCH_EXAMPLE = {"target_rate": "95%", "target_deadline": "2027-06-30"}


def _refusals(call, *args) -> dict:
    """`call(*args)`, its refusals as HTTP errors: 404 unknown, 409 existing, 422 the rest."""
    try:
        return call(*args)
    except NoSuchCounty as exc:
        raise HTTPException(404, str(exc)) from None
    except CountyExists as exc:
        raise HTTPException(409, str(exc)) from None


@router.get("", summary="所有县及其数据量 / every county with its settings and counts")
def counties(request: Request, conn: Annotated[Connection, Depends(connection)]) -> dict:
    """Every county the asker may read: a closed county only to its own people."""
    user = reader(request)
    return {
        "counties": [c for c in list_counties(conn) if may_read(user, c["code"], c["map_public"])]
    }


@router.get("/{code}", summary="一个县 / one county")
def county(request: Request, code: str, conn: Annotated[Connection, Depends(connection)]) -> dict:
    check_read(request, code)  # a closed county's settings are its own people's
    return _refusals(describe_county, conn, code)


@router.post(
    "",
    status_code=201,
    summary="添加县（管理员）/ add a county (admin)",
    description="必填 / required: code（6 位 GB/T 2260）, name；可选 / optional: " + SETTABLE,
)
def add(
    conn: Annotated[Connection, Depends(connection)],
    user: Annotated[User, Depends(require(Role.ADMIN))],
    body: Annotated[dict[str, Any], Body(openapi_examples={"county": {"value": NEW_EXAMPLE}})],
) -> dict:
    settings = {k: v for k, v in body.items() if k not in ("code", "name")}
    with user_errors():
        return _refusals(lambda: add_county(conn, body.get("code"), body.get("name"), **settings))


@router.patch(
    "/{code}",
    summary="修改本县设置（管理员）/ change a county's settings (its admin)",
    description="只改给出的项；null 清除省份、期限、截止日期、投影带 / only the fields given: "
    + SETTABLE,
)
def change(
    request: Request,
    code: str,
    conn: Annotated[Connection, Depends(connection)],
    user: Annotated[User, Depends(require(Role.ADMIN))],
    changes: Annotated[dict[str, Any], Body(openapi_examples={"target": {"value": PATCH_EXAMPLE}})],
) -> dict:
    if user.county_code != code:
        _refusals(describe_county, conn, code)  # an unknown county is a 404 for anyone
        raise HTTPException(403, f"只能修改本县设置 / only your own county's settings ({code})")
    act_as(conn, actor_of(request, user))  # the audit rows name the admin (map_public …)
    with user_errors():
        return _refusals(set_county, conn, code, changes)
