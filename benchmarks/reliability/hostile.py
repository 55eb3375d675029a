"""Reliability, hostile input: every GET of the OpenAPI fuzzed, CQL2 filters attacked, sizes.

    .venv/bin/python -m benchmarks.reliability hostile [--rounds 3] [--schemathesis 0]
                                                       [--compounds 3000] [--keep DIR] [--url URL]

Against `titlemap serve` on a private database of the demo county:

- fuzz: for every GET operation of /openapi.json, --rounds rounds; in each, every parameter
  (path and query) gets a value from a fixed adversarial list (empty, extremes of numbers,
  wrong types, NaN, 10 000-character strings, quotes and SQL, unicode: RTL marks, astral
  characters, emoji), the others valid or left out. Goal: no 5xx.
- cql2: /ogc/collections/compounds/items?filter=… with quotes, comments, `;`, nesting 1 000
  deep, unknown functions, `pg_sleep(5)`, 20 000+ and 10 MB filters, filter-lang cql2-json
  (not supported: must be a 400), and seeded random token soup. Goal: 4xx with a reason,
  never 5xx; the pg_sleep filter answered in under 2 s (no SQL reaches the database unbound).
- sizes: limit / offset past their bounds, a body of 11 MB, the whole world as a layer's bbox
  at zoom 18, 20 000 codes in an export. Goal: each a 4xx or a bounded answer (< 10 s).
- --schemathesis N (when the `schemathesis` package is installed): its CLI over the same
  /openapi.json, N examples per operation, checks not_a_server_error and
  response_schema_conformance, writes with an editor's bearer token (a private database).
"""

import argparse
import json
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from benchmarks.reliability.edits import COUNTY, add_common, add_option, served

ITEMS = "/ogc/collections/compounds/items"
HUGE = "字" * 2_000  # 18 kB in the address: httpx refuses past 64 kB
VALUES = [
    "", "0", "-1", "1", "2147483648", "9223372036854775808", "-9223372036854775809",
    "1e309", "-1e309", "NaN", "Infinity", "0.0000001", "true", "[]", "{}", "null",
    "'", "\"", "' OR '1'='1", "1; DROP TABLE compound; --", "/* x */", "\\", "%", "_",
    "../../etc/passwd", "\u202e\u202d", "\U00020000\U0001f600", "ｃｏｕｎｔｙ", "9999-99-99",
    "2100-12-31", "-180,-90,180,90", "1,2,3", "a,b,c,d", HUGE,
]  # fmt: skip
SLEEP = "pg_sleep(5)"
CQL2 = [
    "name = 'x'' OR ''1''=''1'", "name = 'x'; SELECT pg_sleep(5); --'",
    f"{SLEEP} = 1", f"name = {SLEEP}", "name = 'a' -- comment", "name = 'a' /* c */",
    "name = 'a';", "; DROP TABLE compound", "unknown_fn(name) = 1", "NOFUNC()", "A_CONTAINS(x,1)",
    "T_AFTER(updated_at, TIMESTAMP('2020-01-01T00:00:00Z'))", "units_task + 1 > 2",
    "S_INTERSECTS(geometry, POINT(1e400 1e400))", "S_INTERSECTS(geometry, POLYGON((0 0)))",
    "name LIKE '%%%%%%%%%%%%%%%%%%%%%%%%'", "name IN (" + ",".join(["'a'"] * 5000) + ")",
    "(" * 1000 + "name = 'a'" + ")" * 1000, "NOT " * 1000 + "name = 'a'", "'" * 999,
    '"name" = \'a\'', '"pg_catalog.pg_sleep" = 1', "name = DATE('9999-99-99')",
    "name = 'a' AND " * 2000 + "TRUE", "name = '" + "字" * 25_000 + "'", "",
]  # fmt: skip
TOKENS = ["name", "units_task", "geometry", "=", "<>", "<", "(", ")", ",", "'a'", "'", "1",
          "-1e999", "AND", "OR", "NOT", "LIKE", "IN", "BETWEEN", "IS", "NULL", "CASEI",
          "S_INTERSECTS", "BBOX", "POINT", "pg_sleep", ";", "--", "/*", "TRUE", "DATE"]  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common(parser)
    add_option(parser, "--rounds", type=int, default=3, help="fuzz rounds per GET operation")
    add_option(parser, "--schemathesis", type=int, default=0,
               help="schemathesis examples per operation (0: not run)")  # fmt: skip


def _things(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        compound = conn.execute(
            text("SELECT c.code FROM compound c JOIN ledger_entry e ON e.compound_id = c.id "
                 "WHERE c.county_code = :c ORDER BY c.code LIMIT 1"), {"c": COUNTY},
        ).scalar_one()  # fmt: skip
        parcel = conn.execute(
            text("SELECT code FROM parcel WHERE county_code = :c ORDER BY code LIMIT 1"),
            {"c": COUNTY},
        ).scalar_one()
    return {"compound": compound, "parcel": parcel}


def editor_token(engine: Engine, role: str = "editor") -> str:
    from geo.ledger.users import add_user

    with Session(engine) as session:
        session.execute(text("DELETE FROM app_user WHERE name = '模糊测试编辑'"))
        _, token = add_user(session, COUNTY, "模糊测试编辑", role)
        session.commit()
    return token


class Tally:
    """Answers by status, the 5xx kept, the slowest kept."""

    def __init__(self) -> None:
        self.statuses: Counter = Counter()
        self.errors: list[dict] = []
        self.slowest = (0.0, "")
        self.n = 0

    def ask(self, client: httpx.Client, method: str, url: str, **kwargs) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            response = client.request(method, url, **kwargs)
        except (
            httpx.HTTPError,
            httpx.InvalidURL,
        ) as exc:  # a refused connection or a reset: recorded, not raised
            self.statuses[type(exc).__name__] += 1
            return None
        seconds = time.perf_counter() - started
        self.n += 1
        self.statuses[str(response.status_code)] += 1
        label = f"{method} {url} {json.dumps(kwargs.get('params'), ensure_ascii=False)[:200]}"
        if seconds > self.slowest[0]:
            self.slowest = (seconds, label)
        if response.status_code >= 500:
            self.errors.append({"request": label, "status": response.status_code,
                                "text": response.text[:200]})  # fmt: skip
        return response

    def result(self) -> dict:
        return {
            "requests": self.n, "statuses": dict(sorted(self.statuses.items())),
            "server_errors": len(self.errors), "first_errors": self.errors[:5],
            "slowest_s": round(self.slowest[0], 3), "slowest": self.slowest[1][:240],
        }  # fmt: skip


def fuzz_openapi(
    base: str, engine: Engine, rounds: int, seed: int = 1, per_parameter: int = 8
) -> dict:
    """Every GET operation, each parameter in turn given `per_parameter` adversarial values
    (sampled per round), the path's other parameters valid."""
    things = _things(engine)
    chooser = random.Random(seed)
    tally = Tally()
    with httpx.Client(base_url=base, timeout=60) as client:
        spec = client.get("/openapi.json").json()
        for path, operations in sorted(spec["paths"].items()):
            if "get" not in operations:
                continue
            params = operations["get"].get("parameters", [])
            names = [p for p in params if p["in"] in ("path", "query")]
            valid = {p["name"]: _valid(p, things) for p in names if p["in"] == "path"}
            for _ in range(rounds):
                for target in names or [None]:
                    for value in chooser.sample(VALUES, per_parameter):
                        values = dict(valid)
                        if target is not None:
                            values[target["name"]] = value
                        url, query = _url(path, names, values)
                        tally.ask(client, "GET", url, params=query)
    return tally.result()


def _valid(parameter: dict, things: dict) -> str:
    name = parameter["name"]
    return {"code": things["compound"], "compound_code": things["compound"],
            "collectionId": "compounds", "featureId": things["compound"], "layer": "compounds",
            "period": "2026-11", "z": "14", "x": "12925", "y": "6480"}.get(name, "1")  # fmt: skip


def _url(path: str, names: list[dict], values: dict) -> tuple[str, dict]:
    url = path
    query = {}
    for p in names:
        if p["name"] not in values:
            continue
        if p["in"] == "path":
            url = url.replace("{" + p["name"] + "}", httpx.URL("/" + values[p["name"]]).raw_path
                              .decode()[1:] or "%20")  # fmt: skip
        else:
            query[p["name"]] = values[p["name"]]
    return url, query


def fuzz_cql2(base: str, random_filters: int = 200, seed: int = 1) -> dict:
    tally = Tally()
    chooser = random.Random(seed)
    sleep_seconds = []
    with httpx.Client(base_url=base, timeout=60) as client:
        for expression in CQL2:
            for lang in ("cql2-text", None):
                params = {"filter": expression} | ({"filter-lang": lang} if lang else {})
                started = time.perf_counter()
                tally.ask(client, "GET", ITEMS, params=params)
                if "pg_sleep" in expression:
                    sleep_seconds.append(time.perf_counter() - started)
        cql2_json = json.dumps({"op": "=", "args": [{"property": "name"}, "x"]})
        as_json = {"filter": cql2_json, "filter-lang": "cql2-json"}
        json_answer = tally.ask(client, "GET", ITEMS, params=as_json)
        for _ in range(random_filters):
            soup = " ".join(chooser.choice(TOKENS) for _ in range(chooser.randint(1, 30)))
            tally.ask(client, "GET", ITEMS, params={"filter": soup})
        # 10 MB: in the address (the server's own limit answers), and as a POST body
        ten_mb = "name = '" + "a" * (10 * 2**20) + "'"
        big_get = raw_status(base, ITEMS + "?filter=" + ten_mb.replace(" ", "%20"))
        big_post = tally.ask(client, "POST", ITEMS, content=ten_mb.encode(),
                             headers={"Content-Type": "text/plain"})  # fmt: skip
    result = tally.result()
    result |= {
        "pg_sleep_max_s": round(max(sleep_seconds), 3),
        "cql2_json": json_answer.status_code if json_answer is not None else "refused",
        "ten_mb_get": big_get,
        "ten_mb_post": big_post.status_code if big_post is not None else "connection closed",
    }
    return result


def raw_status(base: str, target: str, seconds: float = 20) -> str:
    """The status line the server answers to a GET of `target` sent as it is (no client-side
    limit on its length), or what happened to the connection."""
    host, port = httpx.URL(base).host, httpx.URL(base).port
    try:
        with socket.create_connection((host, port), timeout=seconds) as sock:
            sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                         .encode())  # fmt: skip
            head = sock.recv(200).decode("latin-1")
    except OSError as exc:
        return f"connection {type(exc).__name__}"
    return head.split("\r\n")[0] or "connection closed"


def size_limits(base: str, engine: Engine) -> dict:
    """Each size past its bound: (status, seconds)."""
    token = editor_token(engine)
    things = _things(engine)
    editor = {"Authorization": f"Bearer {token}"}
    codes = ",".join(f"{i:019d}" for i in range(20_000))
    asks = {
        "compounds limit 10^9": ("GET", "/api/compounds", {"params": {"limit": 10**9}}),
        "ogc limit 10^9": ("GET", ITEMS, {"params": {"limit": 10**9}}),
        "ogc offset 2^63": ("GET", ITEMS, {"params": {"offset": 2**63}}),
        "history limit 10^9": ("GET", "/api/history", {"params": {"limit": 10**9}}),
        "world bbox z18": ("GET", "/api/layers/parcels",
                           {"params": {"bbox": "-180,-90,180,90", "zoom": 18}}),
        "overlaps world": ("GET", "/api/overlaps", {"params": {"bbox": "-180,-90,180,90"}}),
        "export 3 000 codes": ("GET", "/api/exports/parcels.txt",
                                         {"params": {"codes": codes[:60_000]}}),
        "body 11 MB": ("PATCH", f"/api/ledger/{things['compound']}",
                       {"content": b'{"version": 1, "note": "' + b"a" * (11 * 2**20) + b'"}',
                        "headers": editor | {"Content-Type": "application/json"}}),
        "upload 600 MB announced": ("POST", "/api/ledger/import",
                                    {"content": b"x" * 1024, "headers": editor | {
                                        "Content-Type": "multipart/form-data; boundary=b"}}),
        "tile z30": ("GET", "/api/tiles/compounds/30/0/0.pbf", {"params": {"county": COUNTY}}),
        "print 3 000 compounds": ("GET", "/print/visit.pdf",
                                  {"params": {"compounds": codes[:60_000]}}),
    }  # fmt: skip
    found = {}
    tally = Tally()
    with httpx.Client(base_url=base, timeout=120) as client:
        for label, (method, url, kwargs) in asks.items():
            started = time.perf_counter()
            response = tally.ask(client, method, url, **kwargs)
            found[label] = {
                "status": response.status_code if response is not None else "closed",
                "seconds": round(time.perf_counter() - started, 3),
            }
    return {"asks": found} | tally.result()


def schemathesis_run(base: str, engine: Engine, examples: int) -> dict:
    """Schemathesis's CLI over /openapi.json (when installed), bounded per operation."""
    # beside this Python, else on PATH (a venv of its own keeps its pins out of titlemap's)
    beside = Path(sys.executable).parent / "schemathesis"
    cli = str(beside) if beside.exists() else shutil.which("schemathesis")
    if cli is None:
        return {"ran": False, "why": "schemathesis not installed"}
    token = editor_token(engine)
    command = [cli, "run", f"{base}/openapi.json", "--checks",
               "not_a_server_error,response_schema_conformance", "--max-examples",
               str(examples), "-H", f"Authorization: Bearer {token}", "--no-color"]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=3600, cwd=tempfile.gettempdir()
    )  # its .schemathesis/ cache: not in the repo
    output = Path(tempfile.gettempdir()) / f"schemathesis-{time.strftime('%Y%m%d-%H%M%S')}.txt"
    output.write_text(done.stdout + done.stderr)  # the failures and their curl commands
    return {"ran": True, "returncode": done.returncode,
            "seconds": round(time.perf_counter() - started, 1), "output": str(output),
            "summary": done.stdout[-3000:]}  # fmt: skip


def run(args) -> dict:
    from geo.db.engine import make_engine

    with served(args, "reliability_hostile") as (base, url):
        engine = make_engine(url)
        try:
            result = {
                "fuzz": fuzz_openapi(base, engine, args.rounds),
                "cql2": fuzz_cql2(base),
                "sizes": size_limits(base, engine),
            }
            if args.schemathesis:
                result["schemathesis"] = schemathesis_run(base, engine, args.schemathesis)
        finally:
            engine.dispose()
    result["ok"] = not any(result[k]["server_errors"] for k in ("fuzz", "cql2", "sizes"))
    return {"hostile": result}
