"""Request-scoped pieces shared by the routers: the county asked for, the database
connection, errors as 4xx, ETag revalidation."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Annotated

from annotated_types import Interval
from fastapi import HTTPException, Request
from pydantic import AfterValidator
from sqlalchemy import Connection

from api.auth import check_read, reader
from api.errors import OUTAGES
from geo import TitlemapError
from geo.core.model import User
from geo.ledger.regions import NoSuchRegion, get_region, readable_in
from geo.ledger.users import may_see_region

log = logging.getLogger(__name__)


def county_of(request: Request, county: str | None, conn: Connection | None = None) -> str:
    """The county a request asks for (`?county=`), else the app's own: TITLEMAP_COUNTY when
    that county is there, else the only one the database holds (`app.state.default_county`,
    decided when the app is made). `conn`: a connection the caller already holds."""
    state = request.app.state
    county = county or getattr(state, "default_county", None) or state.settings.county
    check_read(request, county, conn)  # a county may close its map to all but its own people
    return county


def region_of(request: Request, conn: Connection, code: str) -> tuple[dict, list[str]]:
    """A city or the province a request asks for, and those of its counties the asker may
    read (the one place pages, API and prints decide it): 404 unknown, 401/403 nothing."""
    try:
        region = get_region(conn, code)
    except NoSuchRegion as exc:
        raise HTTPException(404, str(exc)) from None
    user: User | None = reader(request)
    counties = readable_in(conn, code, user)
    if not may_see_region(user, code, counties):
        if user is None:
            raise HTTPException(401, "该省/市概览须登录查看 / sign in to see this region")
        raise HTTPException(403, f"{user.name} 无权查看该省/市 / not this region's")
    return region, counties


# A request's statements each end within this: one gone wrong (a vast geometry, a runaway
# join) answers 503 rather than hold a connection and a core for minutes.
STATEMENT_TIMEOUT = "30s"


def connection(request: Request) -> Iterator[Connection]:
    conn = request.app.state.engine.connect()
    try:
        conn.exec_driver_sql(f"SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}'")
        yield conn
    finally:
        _close(conn)


def _close(conn: Connection) -> None:
    """Give the connection back. Its ROLLBACK runs after the answer has started: a connection
    the database dropped meanwhile (a restart, a failover) is then one line in the log, not a
    traceback, and the answer already given stands."""
    try:
        conn.close()
    except OUTAGES as exc:  # SQLAlchemy has thrown the dead connection away by now
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        log.warning("connection lost after the answer: %s", first[0] if first else type(exc))


# A row's id as the database keeps it (integer): one past its range is refused by validation
# (422) before any query, not an "integer out of range" 500 from PostgreSQL (schemathesis).
RowId = Annotated[int, Interval(ge=1, le=2**31 - 1)]

FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2100, 12, 31)


def _a_ledger_day(day: date) -> date:
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(
            f"日期应在 {FIRST_DAY} 至 {LAST_DAY} 之间 / a date from {FIRST_DAY} to {LAST_DAY}"
        )
    return day


# A day a request asks about (as_of, until, the printed date): a ledger's years, not the
# calendar's last day, whose next day (the end of an as-of day) does not exist.
Day = Annotated[date, AfterValidator(_a_ledger_day)]


@contextmanager
def user_errors(status_code: int = 422) -> Iterator[None]:
    """Turn a TitlemapError (a message for the user) into an HTTP error with that message."""
    try:
        yield
    except TitlemapError as exc:
        raise HTTPException(status_code=status_code, detail=str(exc)) from None


def etag_matches(header: str | None, etag: str, variant: str = "") -> bool:
    """Whether an If-None-Match header holds `etag` (weak comparison, RFC 9110), also when
    the client holds another encoding of it, tagged `etag` + `variant` (e.g. "-gz")."""
    if not header:
        return False
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    if variant:
        tags |= {t.replace(variant, "") for t in tags}
    return "*" in tags or etag in tags
