"""geo.ledger.rules: the one rule set (API, CLI and sheet alike) and the county's day.

Entries are changed in a session that is rolled back, so the session database stays the demo.
"""

from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from geo.core.model import Compound, LedgerEntry
from geo.ledger.rules import (
    LedgerRuleError,
    check_entry,
    closing_breach,
    find_entry,
    open_entry,
    status_from_figures,
    update_entry,
)

COUNTY = "629901"
# 01:30 on 8 December in Beijing, still 7 December in UTC
BEFORE_DAWN = datetime(2026, 12, 7, 17, 30, tzinfo=UTC)


def entry(**fields) -> SimpleNamespace:
    base = {"units_task": 10, "units_first_registered": 10, "units_transferred": 10,
            "status": "closed", "blockers": [], "close_reason": None,
            "opened_on": date(2025, 7, 1), "closed_on": date(2026, 11, 30)}  # fmt: skip
    return SimpleNamespace(**(base | fields))


def test_a_true_entry_passes():
    check_entry(entry())
    check_entry(entry(status="in_progress", closed_on=None))
    check_entry(entry(opened_on=None))  # no opening date: nothing to compare with
    check_entry(entry(closed_on=date(2025, 7, 1)))  # closed the day it was opened


def test_closed_before_opened_is_refused():
    with pytest.raises(LedgerRuleError) as refused:
        check_entry(entry(closed_on=date(2025, 6, 30)))
    assert str(refused.value) == (
        "销号日期 2025年6月30日 早于挂账日期 2025年7月1日 / closed before it was opened"
    )


def test_a_closing_date_needs_a_closed_entry():
    with pytest.raises(LedgerRuleError, match="但化解状态不是已销号 / a closing date on an"):
        check_entry(entry(status="first_registered"))


def test_transfers_above_the_task_are_refused_in_those_words():
    with pytest.raises(LedgerRuleError, match="转移登记套数 12 超过问题房屋套数 10"):
        check_entry(entry(units_transferred=12))  # above the first registrations too


def test_closing_short_of_the_rule_is_the_countys_rule_not_a_fact():
    """check_entry no longer refuses a closed entry with units left: the county's rule says."""
    short = entry(units_transferred=4)
    check_entry(short)
    assert closing_breach(short, "all_transferred") == (
        "销号需全部 10 套完成转移登记，或写明理由 / closing needs every task unit transferred "
        "(4/10) or a written reason (close_reason)"
    )
    assert closing_breach(entry(units_transferred=4, close_reason="回迁房另案"),
                          "all_transferred") is None  # fmt: skip
    assert closing_breach(short, "first_registered") is None
    fewer = entry(units_first_registered=6, units_transferred=4)
    assert "(6/10)" in closing_breach(fewer, "first_registered")
    assert closing_breach(fewer, "as_recorded") is None
    assert closing_breach(entry(status="in_progress", closed_on=None, units_transferred=0),
                          "all_transferred") is None  # fmt: skip


def test_a_status_from_the_figures_is_never_closed():
    assert status_from_figures(10, 0, 0) == "not_started"
    assert status_from_figures(10, 4, 0) == "in_progress"
    assert status_from_figures(10, 10, 3) == "first_registered"
    assert status_from_figures(10, 10, 10) == "first_registered"  # closing is the county's word


@pytest.fixture
def session(engine):
    with Session(engine) as db:
        yield db
        db.rollback()


def test_closing_before_dawn_in_beijing_dates_it_beijings_day(session, demo):
    code = demo.ledger[demo.ledger.status == "in_progress"].iloc[0].compound_code
    found = find_entry(session, COUNTY, code)
    changes = {"status": "closed", "close_reason": "测试 / test"}
    event = update_entry(session, found, changes, "test-rules", at=BEFORE_DAWN)
    assert found.closed_on == date(2026, 12, 8)
    assert event.at == BEFORE_DAWN and event.state["closed_on"] == "2026-12-08"


def test_opening_before_dawn_in_beijing_dates_it_beijings_day(session):
    compound = session.scalars(
        select(Compound)
        .outerjoin(LedgerEntry)
        .where(Compound.county_code == COUNTY, LedgerEntry.id.is_(None))
        .limit(1)
    ).one()
    opened = open_entry(session, compound, {"units_task": 5}, "test-rules", at=BEFORE_DAWN)
    assert opened.opened_on == date(2026, 12, 8)


def test_an_edit_that_would_close_before_opening_changes_nothing(session, demo):
    row = demo.ledger[demo.ledger.status == "closed"].iloc[0]
    found = find_entry(session, COUNTY, row.compound_code)
    version, events = found.version, len(found.events)
    early = row.opened_on - timedelta(days=1)
    with pytest.raises(LedgerRuleError, match="早于挂账日期"):
        update_entry(session, found, {"closed_on": early.isoformat()}, "test-rules")
    session.rollback()
    session.refresh(found)
    assert (found.closed_on, found.version, len(found.events)) == (row.closed_on, version, events)
