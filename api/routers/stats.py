"""/api/stats: registration rates against the target, and the weekly burn-down."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import Connection

from api.dependencies import Day, connection, county_of, user_errors
from geo.ledger.stats import GROUPS, RATE_DEFINITIONS, burndown, rates, target

router = APIRouter(prefix="/api/stats", tags=["stats"])
DEFINITIONS = "\n\n".join(f"- **{name}**: {text}" for name, text in RATE_DEFINITIONS.items())


@router.get(
    "",
    summary="登记率 / registration rates",
    description="口径 / definitions:\n\n" + DEFINITIONS,
)
def get_rates(
    request: Request,
    conn: Annotated[Connection, Depends(connection)],
    by: Annotated[str, Query(description=f"分组 / group by: {', '.join(GROUPS)}")] = "county",
    as_of: Annotated[Day | None, Query(description="截至日期 / as of (YYYY-MM-DD)")] = None,
    county: str | None = None,
) -> dict:
    county = county_of(request, county)
    with user_errors():
        goal = target(conn, county)
        rows = rates(conn, county, by=by, as_of=as_of)
    return {
        "county": county,
        "by": by,
        "as_of": as_of.isoformat() if as_of else None,
        "target_rate": float(goal.rate),
        "target_deadline": goal.deadline.isoformat() if goal.deadline else None,
        "overall_rate_basis": goal.basis,
        "definitions": RATE_DEFINITIONS,
        "rows": rows,
    }


@router.get("/burndown", summary="每周未化解套数 / open task units per week")
def get_burndown(
    request: Request,
    conn: Annotated[Connection, Depends(connection)],
    until: Day | None = None,
    county: str | None = None,
) -> dict:
    county = county_of(request, county)
    with user_errors():
        target(conn, county)
        series = burndown(conn, county, until)
    return {"county": county, "weeks": series}
