"""Issue 16, load (the CI-short version of `python -m benchmarks.reliability load`): 20 clients
over the county's whole mix for a few seconds, twice, against `titlemap serve` in its own
process — no errors, memory that does not keep growing, no session left in a transaction."""

import time

import psycopg
import pytest

from benchmarks.reliability import libpq, sessions
from benchmarks.reliability.load import MIX, TARGET_RSS_MB, make_plan, runs
from benchmarks.serve import start_titlemap

CLIENTS, SECONDS = 20, 5


@pytest.fixture(scope="module")
def served(demo_database):
    with demo_database("reliability_load") as engine:
        url = engine.url.render_as_string(hide_password=False)
        server = start_titlemap(url, 1)
        try:
            yield server, libpq(url)
        finally:
            server.stop()


@pytest.mark.slow
def test_twenty_clients_over_the_mix_get_no_errors_and_memory_stays(served):
    server, url_pg = served
    plan = make_plan(url_pg, 10)
    first, second = runs(server.base, url_pg, plan, CLIENTS, SECONDS, 2, print_every=60,
                         server_pid=server.proc.pid)  # fmt: skip
    for result in (first, second):
        assert result["errors"] == 0, result["first_errors"]
        assert set(result["kinds"]) == set(MIX) | {"print"}, result["kinds"]  # all were asked
        assert result["requests"] > 2 * CLIENTS  # it ran (the rate is the benchmark's)
        assert result["rss_mb"]["peak"] <= TARGET_RSS_MB, result["rss_mb"]
    # lenient: a few tens of MB settle in the second run (caches filling), not a leak's slope
    assert second["rss_mb"]["end"] - first["rss_mb"]["end"] < 50, (first, second)
    # once the clients stop, no session stays inside a transaction
    deadline = time.monotonic() + 5
    with psycopg.connect(url_pg, autocommit=True) as conn:
        while (left := sessions(conn, conn.info.dbname))["idle_in_transaction"]:
            assert time.monotonic() < deadline, left
            time.sleep(0.1)
