"""/api/ledger: reading with history, edits with roles and versions, closing rules."""

from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from api.app import create_app
from geo.core.dates import cn_date
from geo.core.settings import Settings
from geo.ledger.users import add_user


@pytest.fixture(scope="module")
def client(engine):
    return TestClient(create_app(Settings(), engine))


@pytest.fixture(scope="module")
def tokens(engine):
    made = {}
    with Session(engine) as session:
        session.execute(text("DELETE FROM app_user WHERE name LIKE 'test-%'"))
        for role in ("viewer", "editor", "admin"):
            _, made[role] = add_user(session, "629901", f"test-{role}", role)
        session.commit()
    return made


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def open_entry(client, demo):
    """A fresh copy of an open ledger entry's code; the test may change it."""
    row = demo.ledger[(demo.ledger.status == "in_progress")].iloc[0]
    return row.compound_code


def test_entry_comes_with_its_history(client, demo):
    code = demo.ledger.compound_code.iloc[0]
    body = client.get(f"/api/ledger/{code}").json()
    assert body["compound_code"] == code
    events = demo.ledger_events[demo.ledger_events.compound_code == code]
    assert len(body["history"]) == len(events)
    assert body["history"][0]["action"] == "open"


def test_unknown_compound_is_404(client):
    assert client.get("/api/ledger/XQ-NOPE").status_code == 404


def test_writing_needs_a_token_and_a_role(client, tokens, open_entry):
    current = client.get(f"/api/ledger/{open_entry}").json()
    edit = {"version": current["version"], "changes": {"plan": "x"}}
    assert client.patch(f"/api/ledger/{open_entry}", json=edit).status_code == 401
    bad = client.patch(f"/api/ledger/{open_entry}", json=edit, headers=auth("forged"))
    assert bad.status_code == 401
    viewer = client.patch(f"/api/ledger/{open_entry}", json=edit, headers=auth(tokens["viewer"]))
    assert viewer.status_code == 403
    assert client.get(f"/api/ledger/{open_entry}").json()["plan"] == current["plan"]


def test_an_edit_lands_in_the_history_with_its_user(client, tokens, open_entry):
    current = client.get(f"/api/ledger/{open_entry}").json()
    new_first = current["units_first_registered"] + 1
    response = client.patch(
        f"/api/ledger/{open_entry}",
        json={
            "version": current["version"],
            "changes": {"units_first_registered": new_first},
            "note": "第二栋完成首次登记",
        },
        headers=auth(tokens["editor"]),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["version"] == current["version"] + 1
    last = body["history"][-1]
    assert last["user"] == "test-editor"
    assert last["changes"] == {
        "units_first_registered": [current["units_first_registered"], new_first]
    }
    assert last["note"] == "第二栋完成首次登记"


def test_an_edit_on_an_old_version_gets_409_and_changes_nothing(client, tokens, open_entry):
    current = client.get(f"/api/ledger/{open_entry}").json()
    first = client.patch(
        f"/api/ledger/{open_entry}",
        json={"version": current["version"], "changes": {"plan": "甲的方案"}},
        headers=auth(tokens["editor"]),
    )
    assert first.status_code == 200
    stale = client.patch(
        f"/api/ledger/{open_entry}",
        json={"version": current["version"], "changes": {"plan": "乙的方案"}},
        headers=auth(tokens["admin"]),
    )
    assert stale.status_code == 409
    assert client.get(f"/api/ledger/{open_entry}").json()["plan"] == "甲的方案"


def test_untrue_figures_are_refused(client, tokens, open_entry):
    current = client.get(f"/api/ledger/{open_entry}").json()
    response = client.patch(
        f"/api/ledger/{open_entry}",
        json={"version": current["version"], "changes": {"units_transferred": 10**6}},
        headers=auth(tokens["editor"]),
    )
    assert response.status_code == 422
    assert "transfers exceed" in response.json()["detail"]


def test_closing_needs_every_unit_or_a_reason(client, tokens, demo):
    code = demo.ledger[demo.ledger.status == "first_registered"].iloc[0].compound_code
    current = client.get(f"/api/ledger/{code}").json()
    assert current["units_transferred"] < current["units_task"]
    refused = client.post(
        f"/api/ledger/{code}/close",
        json={"version": current["version"]},
        headers=auth(tokens["editor"]),
    )
    assert refused.status_code == 422
    assert "reason" in refused.json()["detail"]
    closed = client.post(
        f"/api/ledger/{code}/close",
        json={"version": current["version"], "reason": "剩余 3 套为回迁安置房，另案处理"},
        headers=auth(tokens["editor"]),
    )
    assert closed.status_code == 200, closed.text
    body = closed.json()
    assert body["status"] == "closed" and body["closed_on"]
    assert body["history"][-1]["action"] == "close"


def _refused_unchanged(client, tokens, code: str, changes: dict) -> str:
    """PATCH `changes`; assert a 422 of one line and the entry and its history as they were."""
    before = client.get(f"/api/ledger/{code}").json()
    response = client.patch(
        f"/api/ledger/{code}",
        json={"version": before["version"], "changes": changes},
        headers=auth(tokens["editor"]),
    )
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail
    assert client.get(f"/api/ledger/{code}").json() == before
    return detail


def test_a_closing_date_before_the_opening_date_is_refused(client, tokens, demo):
    """The sheet refused this long ago; the API accepted it until the rules became one."""
    row = demo.ledger[demo.ledger.status == "closed"].iloc[0]
    early = row.opened_on - timedelta(days=1)
    detail = _refused_unchanged(client, tokens, row.compound_code, {"closed_on": str(early)})
    assert detail == (  # word for word what the sheet says (test_ledger_sheet)
        f"销号日期 {cn_date(early)} 早于挂账日期 {cn_date(row.opened_on)} / closed before it "
        "was opened"
    )
    later = row.closed_on + timedelta(days=1)
    detail = _refused_unchanged(client, tokens, row.compound_code, {"opened_on": str(later)})
    assert "早于挂账日期" in detail


def test_a_closing_date_on_an_open_entry_is_refused(client, tokens, open_entry):
    detail = _refused_unchanged(client, tokens, open_entry, {"closed_on": "2026-11-30"})
    assert detail == (
        "填了销号日期 2026年11月30日，但化解状态不是已销号 / a closing date on an entry that is "
        "not closed"
    )


def test_the_ledger_defaults_to_beijings_today(client, monkeypatch):
    """Before 08:00 Beijing the UTC day is yesterday: the ledger is as of Beijing's day."""
    import api.routers.ledger as ledger_router

    monkeypatch.setattr(ledger_router, "today", lambda: date(2031, 1, 2))
    assert client.get("/api/ledger").json()["as_of"] == "2031-01-02"
