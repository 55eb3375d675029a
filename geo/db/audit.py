"""Who is acting, for the audit triggers (migration 0009): settings local to a transaction.

The triggers on the tables people change write one audit_log row per row changed, naming
`titlemap.actor`, `.department` and `.address` of the transaction; without them, the database
role. A bulk load (a county's files, hundreds of thousands of rows) says `bulk_load` instead:
one row for the file, naming what came in.
"""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from psycopg import sql
from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Actor:
    """A person (or the command line) and where they act from."""

    name: str
    department: str | None = None
    address: str | None = None


def act_as(conn: Connection | Session, actor: Actor) -> None:
    """Name `actor` in every audit row of the current transaction."""
    _set_local(
        conn,
        {"actor": actor.name, "department": actor.department or "", "address": actor.address or ""},
    )


def _set_local(conn: Connection | Session, settings: dict[str, str]) -> None:
    """`SET LOCAL titlemap.<name>` for the rest of the transaction. SET LOCAL rather than
    set_config(): on Citus the audit triggers run on the workers, and Citus sends SET LOCAL on
    to them (citus.propagate_set_commands, geo.db.citus) but not set_config(). Quoted by
    psycopg for the connection, on the transaction's own connection."""
    connection = conn.connection() if isinstance(conn, Session) else conn
    statements = [
        sql.SQL("SET LOCAL {} = {}").format(sql.Identifier("titlemap", name), sql.Literal(value))
        for name, value in settings.items()
    ]
    connection.connection.driver_connection.execute(sql.SQL("; ").join(statements))


# The person a request or a command acts for: each request (api.auth) or command (cli.common)
# sets it; transactions begun meanwhile on a named engine carry it (`name_actors`).
_acting: ContextVar["Actor | None"] = ContextVar("titlemap_actor", default=None)


@contextmanager
def acting(actor: Actor) -> Iterator[None]:
    """Name `actor` in the audit rows of every transaction begun within."""
    token = _acting.set(actor)
    try:
        yield
    finally:
        _acting.reset(token)


def act_for(actor: Actor | None) -> None:
    """Name `actor` from here to the end of the current context (a request, a command)."""
    _acting.set(actor)


def _begin(conn: Connection) -> None:
    actor = _acting.get()
    if actor is not None:
        act_as(conn, actor)


def name_actors(engine: Engine) -> None:
    """Every transaction of `engine` names the acting person (once per engine)."""
    if not event.contains(engine, "begin", _begin):
        event.listen(engine, "begin", _begin)


def bulk_load(conn: Connection | Session) -> None:
    """Turn the row triggers off for the rest of the transaction: a bulk load is traced as
    the one row its caller then records (what came in, the counts)."""
    _set_local(conn, {"audit": "summary"})


def record(
    conn: Connection | Session,
    county: str,
    object_kind: str,
    action: str,
    object_id: str | None = None,
    before: dict | None = None,
    after: dict | None = None,
) -> None:
    """Append one row by hand: what no table change shows (a sign-in, an export, a load).
    `county`: the county the row is filed under — a city's or the province's user's own
    actions under its region's code (on Citus every row needs one: it says where the row
    lives)."""
    conn.execute(
        text(
            "INSERT INTO audit_log (at, actor, department, address, county_code, object_kind, "
            "object_id, action, before, after) VALUES (clock_timestamp(), "
            "coalesce(nullif(current_setting('titlemap.actor', true), ''), session_user::text), "
            "nullif(current_setting('titlemap.department', true), ''), "
            "nullif(current_setting('titlemap.address', true), ''), "
            ":county, :kind, :id, :action, CAST(:before AS jsonb), CAST(:after AS jsonb))"
        ),
        {
            "county": county, "kind": object_kind, "id": object_id, "action": action,
            "before": _json(before), "after": _json(after),
        },
    )  # fmt: skip


def _json(value: dict | None) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, default=str)
