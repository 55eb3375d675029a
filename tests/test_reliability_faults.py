"""Issue 16, faults (the CI-short version of `python -m benchmarks.reliability faults`): what
tests/test_security.py's outage test lacks — the database stopped under load against a served
process, fresh data once it is back, and commands killed with SIGKILL halfway through."""

import httpx
import psycopg
import pytest
from fastapi import Depends, Request
from sqlalchemy import Connection, event

from api.app import create_app
from api.dependencies import connection
from api.errors import OUTAGES
from api.routers.compounds import compound_filter
from api.routers.tiles import tile_response
from benchmarks.reliability import libpq
from benchmarks.reliability.faults import import_file, kill_halfway, ledger_file, outage, titlemap
from benchmarks.serve import start_titlemap
from geo.core.settings import Settings
from tests.conftest import Server
from tests.test_security import own_cluster, town_tile  # noqa: F401  (own_cluster: to stop)

COUNTY = "629901"


@pytest.mark.slow
def test_an_outage_under_load_is_quick_503s_then_fresh_data(own_cluster):  # noqa: F811
    cluster, db = own_cluster
    url = db.url.render_as_string(hide_password=False)
    server = start_titlemap(url, 1)
    try:
        result = outage(server.base, libpq(url), cluster, 6, 4, before=2, after=3, warm=5)
    finally:
        server.stop()
    during = result["outage"]
    assert during["requests"] > 20 and during["statuses"].get("503"), during
    # 503s, or tiles from the cache; none waiting on the database (the pool's 30 s). The 1 s
    # figure is the benchmark's; on a busy CI machine a quick answer can take a second or two.
    # (An answer lost to a connection dropped under a finishing request is a race: not asserted.)
    assert during["max_ms"] < 5000, result["outage_bad"]
    assert not {s for s in during["statuses"] if s not in ("200", "503")} - {
        "RemoteProtocolError", "ReadError"}, result["outage_bad"]  # fmt: skip
    assert result["outage_503_one_line"] == during["statuses"]["503"], result["outage_503_reasons"]
    assert set(result["health_outage"]["statuses"]) == {"503"}, result["health_outage"]
    # back by itself, within seconds, and serving without errors
    assert result["recovered_s_after_start"] is not None and result["recovered_s_after_start"] < 10
    assert result["after"]["requests"] > 0 and result["after"]["errors"] == 0, result["after"]
    assert set(result["health_after"]["statuses"]) == {"200"}
    # a change made right after: the card and the tile cached before the outage show it
    fresh = result["fresh_after_recovery"]
    assert fresh["fresh"] == {"card": True, "tile": True}, fresh


def test_a_connection_lost_as_a_request_finishes_is_no_traceback(own_cluster, capfd):  # noqa: F811
    _, db = own_cluster
    app = create_app(Settings(), db)
    killer = libpq(db.url.render_as_string(hide_password=False))

    @app.get("/lost", include_in_schema=False)
    def lost(conn: Connection = Depends(connection)) -> dict:
        # the route's work is done; the database drops its connection (a restart, a failover)
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        with psycopg.connect(killer, autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s)", (pid,))
        return {"ok": True}

    server = Server(app)
    try:
        with httpx.Client(base_url=server.base) as client:
            response = client.get("/lost", timeout=10)
    finally:
        server.stop()  # the request's teardown, after its answer, done by then
    assert response.status_code in (200, 503)
    # uvicorn's own handler writes to stderr: "Exception in ASGI application" and the trace
    assert "Traceback" not in capfd.readouterr().err, "a traceback was logged"


def test_a_connection_dropped_before_a_tiles_first_read_is_an_outage_not_a_500(own_cluster):  # noqa: F811
    """CI saw a 500 as the database stopped: a tile's connection, alive when taken, was cut
    before the county's open-map flag was read on it; the flag's last value was used and the
    tile then read on the dead connection ("Can't reconnect until invalid transaction is rolled
    back", a 500). It must fail as an outage: the route then answers the held tile, or 503."""
    _, db = own_cluster
    app = create_app(Settings(), db)
    request = Request({"type": "http", "app": app, "headers": [], "query_string": b""})
    x, y = town_tile(db)
    with db.connect() as conn:  # the flag read once: the app holds its last value
        assert tile_response(request, conn, "compounds", 14, x, y, compound_filter(), COUNTY)
    killer = libpq(db.url.render_as_string(hide_password=False))

    def cut(dbapi_connection, *_) -> None:  # the database drops it as it is handed out
        with psycopg.connect(killer, autocommit=True) as other:
            pid = dbapi_connection.info.backend_pid
            other.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))

    event.listen(db.pool, "checkout", cut)
    try:
        with pytest.raises(OUTAGES), db.connect() as conn:
            tile_response(request, conn, "compounds", 14, x, y, compound_filter(), COUNTY)
    finally:
        event.remove(db.pool, "checkout", cut)


def _killed_and_then_whole(command: list[str], url: str) -> dict:
    result = kill_halfway(command, url)
    assert not result["finished_before_the_kill"] and result["had_written"], result
    # nothing of it kept, and its session gone within a few seconds
    assert result["unchanged"], (result["before"], result["after"])
    assert result["sessions_clean_after_s"] is not None, result["sessions_left"]
    whole = titlemap(*command, url=url)
    assert whole.returncode == 0, whole.stdout + whole.stderr
    return result


@pytest.mark.slow
def test_a_killed_import_leaves_nothing_partial(demo_database, tmp_path):
    with demo_database("reliability_killed") as engine:
        url = engine.url.render_as_string(hide_password=False)
        gpkg = import_file(2000, tmp_path)
        command = ["import", str(gpkg), "--layer", "compounds", "--county", COUNTY]
        result = _killed_and_then_whole(command, url)
        count = "SELECT count(*) FROM compound"
        with psycopg.connect(libpq(url)) as conn:  # the file was one to import: it adds 2 000
            assert conn.execute(count).fetchone()[0] == result["before"]["compounds"] + 2000


@pytest.mark.slow
def test_a_killed_ledger_import_leaves_nothing_partial(demo_database, tmp_path):
    with demo_database("reliability_killed_ledger") as engine:
        url = engine.url.render_as_string(hide_password=False)
        xlsx = ledger_file(150, tmp_path)
        result = _killed_and_then_whole(["ledger", "import", str(xlsx), "--county", COUNTY], url)
        with psycopg.connect(libpq(url)) as conn:  # whole, it changes every plan
            changed = conn.execute(
                "SELECT count(*) FROM ledger_entry WHERE plan LIKE '复核后：%'"
            ).fetchone()[0]
        assert changed == result["before"]["entries"]
