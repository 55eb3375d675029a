"""Issue 16, isolation (CI-short): a user of county A can neither read county B (its map
closed) nor write it through any route; guessed passwords and tokens are slowed per address."""

import json

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from benchmarks.reliability.isolation import PASSWORD, cross_county, prepare
from geo.core.settings import Settings
from tests.conftest import Server


@pytest.fixture(scope="module")
def db(demo_database):
    with demo_database("reliability_isolation") as engine:
        yield engine


@pytest.fixture(scope="module")
def result(db):
    app = create_app(Settings(), db)
    server = Server(app)
    try:
        return cross_county(server.base, app, db)
    finally:
        server.stop()


def test_a_user_of_another_county_reads_and_writes_nothing_of_a_private_county(result):
    leaks = result["leaks"]
    report = json.dumps(leaks, ensure_ascii=False, indent=1)
    assert result["routes_checked"] > 60 and result["writes"] > 15
    assert not leaks, report
    assert result["b_unchanged"], (result["b_before"], result["b_after"], result["b_audit_added"])
    # the control: B's own admin reaches most of the same reads (the addresses are real)
    control = result["control_own_admin"]
    assert control.get("200", 0) >= 0.8 * result["reads"], control


def test_wrong_passwords_from_one_address_are_slowed(db):
    prepare(db)
    app = create_app(Settings(), db)
    limit = app.state.failed_tokens.limit
    guesser = TestClient(app, client=("10.9.0.1", 5000))
    answers = [  # a different name each time: the address alone reaches the limit
        guesser.post("/signin", data={"name": f"猜{i}", "password": f"guess-{i}-000"},
                     follow_redirects=False).status_code
        for i in range(limit + 2)
    ]  # fmt: skip
    assert answers == [401] * limit + [429] * 2
    # even the right password waits there: the address is slowed, not the guess
    right = guesser.post("/signin", data={"name": "乙县管理员", "password": PASSWORD},
                         follow_redirects=False)  # fmt: skip
    assert right.status_code == 429 and right.headers["Retry-After"]
    other = TestClient(app, client=("10.9.0.2", 5000))
    assert other.post("/signin", data={"name": "乙县管理员", "password": PASSWORD},
                      follow_redirects=False).status_code == 303  # fmt: skip


def test_one_user_name_guessed_from_many_addresses_is_slowed(db):
    prepare(db)
    app = create_app(Settings(), db)
    limit = app.state.failed_tokens.limit
    for i in range(limit + 2):  # each address once: far under its own limit
        guesser = TestClient(app, client=(f"10.8.0.{i + 1}", 5000))
        wrong = guesser.post("/signin", data={"name": "乙县管理员", "password": f"guess-{i}-00"},
                             follow_redirects=False)  # fmt: skip
        assert wrong.status_code == (401 if i < limit else 429)
    fresh = TestClient(app, client=("10.7.0.1", 5000))
    right = fresh.post("/signin", data={"name": "乙县管理员", "password": PASSWORD},
                       follow_redirects=False)  # fmt: skip
    assert right.status_code == 429  # the name is under attack: slowed wherever from
    other = fresh.post("/signin", data={"name": "甲县管理员", "password": PASSWORD},
                       follow_redirects=False)  # fmt: skip
    assert other.status_code == 303  # another person from the same address signs in
