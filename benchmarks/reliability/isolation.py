"""Reliability, isolation: a user of county A against county B, through every route.

    .venv/bin/python -m benchmarks.reliability isolation [--compounds 3000] [--keep DIR]
                                                         [--url URL] [--workers 1]

County B is the demo county (629901), its map closed (county.map_public = false); county A
(629902) is a neighbour with an admin of its own (the highest role: what it cannot do, nobody
of A can). Every route of the app (`app.routes`: the OpenAPI operations and the page routes)
that takes a county — a `county` query parameter anywhere in its dependencies, or a path
parameter naming one of B's things (a compound, parcel, task, file, user, bulletin period, a
tile of B's) — is called with A's admin token against B's things, `county=B`:

- reads (GET) must answer 401, 403 or 404;
- writes (POST, PATCH, PUT, DELETE) must answer 403 or 404 — a 422 (the body refused before
  the county was looked at) is counted apart, and B's data is checked unchanged after all of
  them (ledger_event, task, audit_log rows and the data revision of B);
- the same reads with B's own admin token are the control: they must mostly answer 2xx
  (else the first list proves nothing: a wrong address is a 404 too).

Then guessing: FailedTokens counts wrong tokens and wrong passwords per address (429 after its
limit); a user name attacked from many addresses is not slowed (no per-user count yet).
"""

import argparse
import re
from collections import Counter

import httpx
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from benchmarks.reliability.edits import add_common, served

B = "629901"  # the demo county: data, its map closed
A = "629902"  # the neighbour
PASSWORD = "reliability-isolation-2026"
READ_REFUSED = {401, 403, 404}
WRITE_REFUSED = {403, 404}
SKIP = {"/static/{path:path}", "/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect",
        "/health", "/signin", "/signout", "/api/me", "/account/password"}  # fmt: skip
# the same for every county (what OGC API - Features is and which properties a collection
# has): answered whoever asks, with `county` only echoed in the links
METADATA = {"/ogc", "/ogc/conformance", "/ogc/collections/{collectionId}/queryables",
            "/ogc/collections/{collectionId}/schema"}  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common(parser)


def routes(app) -> list[tuple[str, str, set[str], set[str]]]:
    """(method, path, query parameter names, path parameter names) of every route, the included
    routers' routes flattened (FastAPI ≥ 0.16x keeps them in `_IncludedRouter`s)."""
    from fastapi.routing import APIRoute

    def query_of(dependant) -> set[str]:
        names = {p.alias for p in dependant.query_params}
        for inner in dependant.dependencies:
            names |= query_of(inner)
        return names

    def walk(items, prefix=""):
        for route in items:
            inner = getattr(route, "original_router", None)
            if inner is not None:
                context = getattr(route, "include_context", None)
                yield from walk(inner.routes, prefix + (getattr(context, "prefix", "") or ""))
            else:
                yield prefix, route

    found = []
    for prefix, route in walk(app.routes):
        if not isinstance(route, APIRoute):
            continue
        query = query_of(route.dependant)
        path_names = set(re.findall(r"{(\w+)", prefix + route.path))
        for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
            found.append((method, prefix + route.path, query, path_names))
    return found


def prepare(engine: Engine) -> dict:
    """A's admin and B's admin (tokens), B private, and one of each of B's things."""
    from geo.ledger.users import add_user

    with Session(engine) as session:
        session.execute(
            text("INSERT INTO county (code, name, target_rate) VALUES (:c, '邻县', 0.9) "
                 "ON CONFLICT DO NOTHING"), {"c": A},
        )  # fmt: skip
        session.execute(text("DELETE FROM app_user WHERE name IN ('甲县管理员', '乙县管理员')"))
        _, a_token = add_user(session, A, "甲县管理员", "admin", password=PASSWORD)
        b_user, b_token = add_user(session, B, "乙县管理员", "admin", password=PASSWORD)
        session.execute(text("UPDATE county SET map_public = false WHERE code = :c"), {"c": B})
        row = session.execute(
            text("SELECT c.id, c.code, e.version FROM compound c JOIN ledger_entry e "
                 "ON e.compound_id = c.id WHERE c.county_code = :c ORDER BY c.code LIMIT 1"),
            {"c": B},
        ).one()  # fmt: skip
        parcel = session.execute(
            text("SELECT code FROM parcel WHERE county_code = :c ORDER BY code LIMIT 1"), {"c": B}
        ).scalar_one()
        task = session.execute(
            text("INSERT INTO task (county_code, compound_id, department, action, due_on, "
                 "status, created_by, created_at, version, updated_at) VALUES (:c, :id, '住建局', "
                 "'隔离测试', current_date + 30, 'assigned', '乙县管理员', now(), 1, now()) "
                 "RETURNING id"), {"c": B, "id": row.id},
        ).scalar_one()  # fmt: skip
        file_id = session.execute(
            text("SELECT id FROM compound_file WHERE county_code = :c LIMIT 1"), {"c": B}
        ).scalar()
        b_id = b_user.id
        session.commit()
    tile, point = _tile_of(engine)
    return {"point": point,
        "a_token": a_token, "b_token": b_token, "compound": row.code, "version": row.version,
        "parcel": parcel, "task": task, "file": file_id or 1, "user": b_id, "tile": tile,
    }  # fmt: skip


def _tile_of(engine: Engine) -> tuple[tuple[int, int, int], tuple[float, float]]:
    from geo.query.tiles import tile_of

    with engine.connect() as conn:
        x, y = conn.execute(
            text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM compound "
                 "WHERE county_code = :c ORDER BY code LIMIT 1) s"), {"c": B},
        ).one()  # fmt: skip
    return (14, *tile_of(x, y, 14)), (x, y)


def fill(path: str, things: dict) -> str | None:
    """The path with B's things in its parameters; None for one we cannot fill."""
    z, x, y = things["tile"]
    by_name = {
        "compound_code": things["compound"], "plot": things["parcel"], "task_id": things["task"],
        "file_id": things["file"], "user_id": things["user"], "period": "2026-11",
        "collectionId": "compounds", "collection_id": "compounds",
        "featureId": things["compound"], "feature_id": things["compound"],
        "z": z, "x": x, "y": y, "layer": "compounds",
    }  # fmt: skip
    if path.startswith("/api/counties/"):
        by_name["code"] = B
    elif path.startswith("/parcels/"):
        by_name["code"] = things["parcel"]
    else:
        by_name["code"] = things["compound"]

    def value(match: re.Match) -> str:
        return str(by_name.get(match.group(1), "?"))

    filled = re.sub(r"{(\w+)(?::\w+)?}", value, path)
    return None if "?" in filled else filled


def takes_a_county(path: str, query: set[str], names: set[str]) -> bool:
    return "county" in query or bool(names) or path.startswith(("/tiles", "/api/tiles"))


def body(things: dict) -> dict:
    """A write body most writers accept as well-formed: their refusal is then the county's."""
    return {"version": things["version"], "changes": {"plan": "越权修改"}, "note": "越权修改",
            "text": "越权", "target_rate": 0.5, "compound": things["compound"],
            "department": "住建局", "action": "越权", "due_on": "2030-01-01", "role": "viewer",
            "active": False, "password": "越权修改密码-2026", "map_public": True}  # fmt: skip


def b_state(engine: Engine) -> dict:
    with engine.connect() as conn:
        return {
            table: conn.execute(
                text(f"SELECT count(*) FROM {table} WHERE county_code = :c"), {"c": B}
            ).scalar_one()
            for table in ("ledger_event", "task", "audit_log", "app_user", "compound_file")
        } | {
            "revision": conn.execute(
                text("SELECT revision FROM data_revision WHERE county_code = :c"), {"c": B}
            ).scalar(),
            "map_public": conn.execute(
                text("SELECT map_public FROM county WHERE code = :c"), {"c": B}
            ).scalar_one(),
        }


def cross_county(base: str, app, engine: Engine) -> dict:
    """Every county-taking route of `app` called by A's admin against B (see the module)."""
    things = prepare(engine)
    before = b_state(engine)
    a = {"Authorization": f"Bearer {things['a_token']}"}
    b = {"Authorization": f"Bearer {things['b_token']}"}
    checked, leaks, unfilled, reads = [], [], [], []
    statuses: Counter = Counter()
    control: Counter = Counter()
    with httpx.Client(base_url=base, timeout=60, follow_redirects=False) as client:
        for method, path, query, names in routes(app):
            if path in SKIP or path in METADATA or not takes_a_county(path, query, names):
                continue
            url = fill(path, things)
            if url is None:
                unfilled.append(f"{method} {path}")
                continue
            params = {"county": B}
            if path == "/parcels/at":
                params |= {"lon": things["point"][0], "lat": things["point"][1]}
            if method == "GET":
                answer = client.get(url, params=params, headers=a)
                allowed = READ_REFUSED
                reads.append((url, params))
            else:
                answer = client.request(method, url, params=params, headers=a, json=body(things))
                allowed = WRITE_REFUSED | {422}
            statuses[answer.status_code] += 1
            checked.append({"route": f"{method} {path}", "status": answer.status_code})
            if answer.status_code not in allowed:
                leaks.append({"route": f"{method} {path}", "url": url, "status": answer.status_code,
                              "text": answer.text[:160]})  # fmt: skip
    after = b_state(engine)
    with httpx.Client(base_url=base, timeout=60, follow_redirects=False) as client:
        for url, params in reads:  # B's own admin: after the check (its exports are audited)
            own = client.get(url, params=params, headers=b).status_code
            control[own // 100 * 100 if own not in (404, 503) else own] += 1
    with engine.connect() as conn:
        audit_added = [
            dict(r._mapping) for r in conn.execute(
                text("SELECT * FROM audit_log WHERE county_code = :c ORDER BY id DESC LIMIT :n"),
                {"c": B, "n": max(0, after["audit_log"] - before["audit_log"])},
            )
        ]  # fmt: skip
    writes_422 = [c["route"] for c in checked if c["status"] == 422]
    return {
        "routes_checked": len(checked),
        "metadata_routes_skipped": sorted(METADATA),
        "reads": sum(c["route"].startswith("GET ") for c in checked),
        "writes": sum(not c["route"].startswith("GET ") for c in checked),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "leaks": leaks,
        "writes_422": writes_422,
        "b_unchanged": before == after,
        "b_before": before,
        "b_audit_added": [{k: str(v)[:120] for k, v in row.items()} for row in audit_added],
        "b_after": after,
        "control_own_admin": {str(k): v for k, v in sorted(control.items())},
        "unfilled": unfilled,
        "checked": checked,
    }


# -- guessing ------------------------------------------------------------------------------------


def guessing(base: str, engine: Engine, limit: int = 20) -> dict:
    """Wrong tokens and passwords from one address until 429; then one user name from many
    addresses (X-Forwarded-For is not trusted: in-process only, see the tests)."""
    prepare(engine)
    with httpx.Client(base_url=base, timeout=60) as client:
        tokens = [
            client.get("/api/me", headers={"Authorization": f"Bearer guess-{i}"}).status_code
            for i in range(limit + 3)
        ]
        passwords = [
            client.post("/signin", data={"name": "乙县管理员", "password": f"guess-{i}-0000"},
                        follow_redirects=False).status_code
            for i in range(3)
        ]  # fmt: skip
    return {
        "wrong_tokens": dict(Counter(map(str, tokens))),
        "first_429_after": tokens.index(429) if 429 in tokens else None,
        "passwords_after_tokens": dict(Counter(map(str, passwords))),
    }


def run(args) -> dict:
    from api.app import create_app
    from geo.core.settings import Settings
    from geo.db.engine import make_engine

    with served(args, "reliability_isolation") as (base, url):
        engine = make_engine(url)
        try:
            app = create_app(Settings(), engine)  # for its route list only
            result = cross_county(base, app, engine)
            result["guessing"] = guessing(base, engine)
        finally:
            engine.dispose()
    result.pop("checked")
    result["ok"] = not result["leaks"] and result["b_unchanged"]
    return {"isolation": result}
