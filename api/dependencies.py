"""Request-scoped pieces shared by the routers: the database connection, errors as 4xx."""

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import HTTPException, Request
from sqlalchemy import Connection

from geo import TitlemapError


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
