"""Registration rates, computed independently from the demo frames and compared."""

import json
from datetime import date, datetime

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from geo.core import dates
from geo.core.settings import Settings
from geo.ledger.stats import burndown, rates


@pytest.fixture(scope="module")
def pristine(demo_database):
    """A database holding the demo exactly as generated (other tests edit the session one)."""
    with demo_database("stats_tests") as db:
        yield db


def by_hand(ledger, compounds):
    merged = ledger.merge(compounds[["code", "units_sold", "township_code"]],
                          left_on="compound_code", right_on="code")  # fmt: skip
    task = merged.units_task.sum()
    first = merged.units_first_registered.sum()
    done = merged.units_transferred.sum()
    sold = merged[["units_sold", "units_task"]].max(axis=1).sum()
    return {
        "first_rate": round(first / task, 4),
        "transfer_rate": round(done / task, 4),
        "overall_rate": round((sold - task + done) / sold, 4),
    }


def test_county_rates_equal_the_hand_computed_ones(pristine, demo):
    with pristine.connect() as conn:
        (row,) = rates(conn, "629901")
    expected = by_hand(demo.ledger, demo.compounds)
    for name, value in expected.items():
        assert row[name] == pytest.approx(value, abs=1e-4), name
    assert row["compounds"] == len(demo.ledger)
    assert row["target_rate"] == 0.9


def test_township_rates_add_up_to_the_county(pristine, demo):
    with pristine.connect() as conn:
        towns = rates(conn, "629901", by="township")
        (county,) = rates(conn, "629901")
    assert sum(r["units_task"] for r in towns) == county["units_task"]
    assert sum(r["units_transferred"] for r in towns) == county["units_transferred"]
    merged = demo.ledger.merge(demo.compounds, left_on="compound_code", right_on="code")
    for row in towns:
        part = merged[merged.township_code == row["key"]]
        assert row["units_task"] == part.units_task.sum()


def test_blocker_groups_count_each_entry_under_each_of_its_blockers(pristine, demo):
    with pristine.connect() as conn:
        groups = {r["key"]: r for r in rates(conn, "629901", by="blocker")}
    for code in ("land_premium", "developer"):
        has = demo.ledger[demo.ledger.blockers.str.split(",").apply(lambda b, c=code: c in b)]
        assert groups[code]["compounds"] == len(has)
        assert groups[code]["units_task"] == has.units_task.sum()


def test_rates_as_of_a_date_follow_the_history(pristine, demo):
    day = date(2025, 12, 31)
    events = demo.ledger_events
    events = events[events["at"].dt.date <= day]
    last = events.groupby("compound_code").tail(1)
    states = [json.loads(s) for s in last.state]
    task = sum(s["units_task"] for s in states)
    done = sum(s["units_transferred"] for s in states)
    with pristine.connect() as conn:
        (row,) = rates(conn, "629901", as_of=day)
    assert row["compounds"] == len(states)
    assert row["units_transferred"] == done
    assert row["transfer_rate"] == pytest.approx(round(done / task, 4))


def test_burndown_falls_and_ends_at_todays_ledger(pristine, demo):
    with pristine.connect() as conn:
        weeks = burndown(conn, "629901", until=date(2026, 11, 29))
    assert len(weeks) >= 70  # 18 months of weeks
    last = weeks[-1]
    assert last["units_task"] == demo.ledger.units_task.sum()
    assert last["units_transferred"] == demo.ledger.units_transferred.sum()
    opens = [w["open_units"] for w in weeks if w["entries"] == len(demo.ledger)]
    assert opens[0] > opens[-1]
    assert all(w["week_end"].weekday() == 6 for w in weeks)


def test_the_burndown_ends_with_beijings_week_by_default(pristine, monkeypatch):
    """Monday 01:00 in Beijing is still Sunday in UTC (and on a server in Europe): the default
    end is Beijing's day (geo.core.dates.today), so the last week is the one that Monday
    begins — not the server's local day."""
    moment = datetime(2031, 1, 6, 1, 0, tzinfo=dates.BEIJING)

    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):
            return moment.astimezone(tz) if tz else moment.replace(tzinfo=None)

    monkeypatch.setattr(dates, "datetime", Frozen)
    assert dates.today() == date(2031, 1, 6)
    with pristine.connect() as conn:
        weeks = burndown(conn, "629901")
    assert weeks[-1]["week_end"] == date(2031, 1, 12)


def test_stats_api_carries_definitions_and_target(pristine):
    client = TestClient(create_app(Settings(), pristine))
    body = client.get("/api/stats", params={"by": "lead_department"}).json()
    assert set(body["definitions"]) == {"first_rate", "transfer_rate", "overall_rate"}
    assert body["target_rate"] == 0.9
    assert {r["key"] for r in body["rows"]} >= {"住建局", "自然资源局"}
    assert client.get("/api/stats", params={"by": "colour"}).status_code == 422
    spec = client.get("/openapi.json").json()
    assert "首次登记化解率" in spec["paths"]["/api/stats"]["get"]["description"]
