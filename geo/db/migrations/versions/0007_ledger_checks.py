"""Ledger dates the database refuses: closed before opened, or a closing date on an open entry.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08 10:00:00

The unit counts were CHECKed from 0001 (units_task_nonnegative, first_within_task,
transferred_within_first); these two dates are facts about a row as well, so a writer that
bypasses geo.ledger.rules.check_entry (raw SQL, a load, a future endpoint) cannot break them
either. NULL passes a CHECK: an entry without an opening date, or not closed, is not refused.
An existing row that breaks one stops the upgrade, naming the compounds to fix first.
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

from geo import TitlemapError

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# name → (condition, what breaking it means); the same in geo.core.model.LedgerEntry
CHECKS = {
    "closed_after_opened": (
        "closed_on >= opened_on",
        "销号日期早于挂账日期 / closed before it was opened",
    ),
    "closed_on_only_closed": (
        "closed_on IS NULL OR status = 'closed'",
        "填了销号日期但未销号 / a closing date on an entry that is not closed",
    ),
}
SHOWN = 10


def _breaking(condition: str) -> list[str]:
    """Codes of the compounds (at most SHOWN) whose entry breaks `condition`."""
    rows = op.get_bind().execute(
        text(
            f"SELECT c.code FROM ledger_entry e JOIN compound c ON c.id = e.compound_id "
            f"WHERE NOT ({condition}) ORDER BY c.code LIMIT {SHOWN + 1}"
        )
    )
    return list(rows.scalars())


def upgrade() -> None:
    problems = []
    for condition, meaning in CHECKS.values():
        codes = _breaking(condition)
        if codes:
            more = " …" if len(codes) > SHOWN else ""
            problems.append(f"{meaning}: {', '.join(codes[:SHOWN])}{more}")
    if problems:
        raise TitlemapError(
            "台账中有行不成立，请先改正再升级 / ledger rows break the new checks, fix them "
            "first: " + "; ".join(problems)
        )
    for name, (condition, _) in CHECKS.items():
        op.create_check_constraint(name, "ledger_entry", condition)


def downgrade() -> None:
    for name in reversed(CHECKS):
        op.drop_constraint(name, "ledger_entry", type_="check")
