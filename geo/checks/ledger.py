"""Ledger checks beside the parcel checks: entries closed against the county's closing rule.

A county's ledger sheet may close an entry its own rule would not (the record is the county's:
the import takes it as recorded, with a warning); this check keeps listing such entries, so a
closing that does not meet the rule is seen until it is put right. The rule itself is
geo.ledger.rules.closing_breach, the same words an edit is refused with.
"""

from sqlalchemy import Connection, text

from geo.checks.report import Problem
from geo.checks.stages import Found, Plan, fixed
from geo.core.dates import cn_date
from geo.core.model import CLOSING_RULE_LABELS, ClosingRule
from geo.ledger.rules import closing_breach

CLOSED_SQL = f"""
    SELECT c.code, c.name, e.status, e.units_task, e.units_first_registered,
           e.units_transferred, e.close_reason, e.closed_on,
           ST_X(ST_PointOnSurface(sc.g)) AS lon, ST_Y(ST_PointOnSurface(sc.g)) AS lat
    FROM ledger_entry e JOIN compound c ON c.county_code = e.county_code AND c.id = e.compound_id
    CROSS JOIN LATERAL (SELECT {fixed("c", None)} AS g OFFSET 0) sc
    WHERE e.county_code = :county AND e.status = 'closed'
    ORDER BY c.code
"""


def closing_rule_stage(conn: Connection, plan: Plan) -> Found:
    """Closed entries that do not meet the county's closing rule (county.closing_rule)."""
    if plan.parcels is not None:
        return Found()  # a parcel's page: not a ledger question
    rule = conn.execute(
        text("SELECT closing_rule FROM county WHERE code = :county"), plan.params()
    ).scalar_one()
    rows = conn.execute(text(CLOSED_SQL), plan.params()).all()
    found = Found()
    for row in rows:
        problem = closing_problem(row, rule)
        if problem is not None:
            found.problems.append(problem)
    return found


def closing_problem(row, rule: str) -> Problem | None:
    """A closed entry (a row of CLOSED_SQL) against the county's `rule`; None if it meets it."""
    breach = closing_breach(row, rule)
    if breach is None:
        return None
    label = CLOSING_RULE_LABELS[ClosingRule(rule)]
    done = row.units_first_registered if rule == "first_registered" else row.units_transferred
    zh, _, en = breach.partition(" / ")
    day = f"（{cn_date(row.closed_on)}）" if row.closed_on else ""
    return Problem(
        "closing_rule", compound=row.code, compound_name=row.name,
        related=[label], value=row.units_task - done,
        unit="套", lon=row.lon, lat=row.lat,
        reason=f"小区 {row.code} {row.name} 已销号{day}，不符合本县销号规则“{label}”：{zh}",
        reason_en=f"compound {row.code} is closed against the county's rule ({rule}): {en}",
    )  # fmt: skip
