"""Request-scoped pieces shared by the routers: the county asked for, the database
connection, errors as 4xx, ETag revalidation."""

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import HTTPException, Request
from sqlalchemy import Connection

from geo import TitlemapError


def county_of(request: Request, county: str | None) -> str:
    """The county a request asks for (`?county=`), else the app's own (TITLEMAP_COUNTY)."""
    return county or request.app.state.settings.county


def connection(request: Request) -> Iterator[Connection]:
    with request.app.state.engine.connect() as conn:
        yield conn


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
