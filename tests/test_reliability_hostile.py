"""Issue 16, hostile input (CI-short): GETs of the OpenAPI fuzzed, CQL2 filters attacked, sizes
past their bounds: never a 5xx, the pg_sleep filter answered at once, each size bounded."""

import pytest

from api.app import create_app
from benchmarks.reliability.hostile import fuzz_cql2, fuzz_openapi, size_limits
from geo.core.settings import Settings
from tests.conftest import Server


@pytest.fixture(scope="module")
def served(demo_database):
    with demo_database("reliability_hostile") as db:
        server = Server(create_app(Settings(), db))
        try:
            yield server.base, db
        finally:
            server.stop()


def test_fuzzed_parameters_never_answer_5xx(served):
    base, db = served
    result = fuzz_openapi(base, db, rounds=1, per_parameter=3)  # the benchmark asks 8 each
    assert result["requests"] > 200
    assert result["server_errors"] == 0, result["first_errors"]


def test_hostile_cql2_filters_are_refused_with_a_reason(served):
    base, _ = served
    result = fuzz_cql2(base, random_filters=100)
    assert result["server_errors"] == 0, result["first_errors"]
    assert result["pg_sleep_max_s"] < 2
    assert result["cql2_json"] == 400


def test_every_size_has_a_bound(served):
    base, db = served
    result = size_limits(base, db)
    assert result["server_errors"] == 0, result["first_errors"]
    for label, answer in result["asks"].items():
        assert answer["seconds"] < 10, (label, answer)
    assert result["asks"]["body 11 MB"]["status"] == 413
