"""Issue 16, edits (CI-short): pairs of saves of one entry with one version, released together:
one wins, the other gets 409, nothing is lost, one ledger_event per save."""

import pytest

from api.app import create_app
from benchmarks.reliability.edits import ok, simultaneous_saves
from geo.core.settings import Settings
from tests.conftest import Server


@pytest.fixture(scope="module")
def served(demo_database):
    with demo_database("reliability_edits") as db:
        server = Server(create_app(Settings(), db))
        try:
            yield server.base, db
        finally:
            server.stop()


def test_simultaneous_saves_one_wins_the_other_gets_409(served):
    base, db = served
    result = simultaneous_saves(base, db, pairs=20)
    assert result["pairs"] == 20
    assert result["one_win_one_409"] == 20, result["pairs_wrong"]
    assert result["statuses"] == {"200": 20, "409": 20}
    assert result["lost_update_count"] == 0, result["lost_updates"]
    assert result["ledger_events_added"] == result["saves_200"] == 20
    assert ok(result)
