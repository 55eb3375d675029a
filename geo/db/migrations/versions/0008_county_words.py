"""A county's own words and settings: closing rule, remembered ledger headers, original words.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 02:10:00

- county.closing_rule: when an entry counts as closed (all_transferred, first_registered,
  as_recorded); county.ledger_columns: the county's ledger headers → fields (--columns).
- ledger_entry.blocker_words / status_word, planned_area.kind_word: what the county wrote,
  kept beside the category it maps to (geo.core.vocabulary).
- Blocker `other` and planned-area kinds `district` (片区; was `east_district`, which named one
  area of the demo county, not a kind) and `other`.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = ("district", "urban_renewal", "civilised_city", "planned_road", "green_space",
         "planning_area", "other")  # fmt: skip
OLD_KINDS = ("east_district", "urban_renewal", "civilised_city", "planned_road", "green_space",
             "planning_area")  # fmt: skip
RULES = ("all_transferred", "first_registered", "as_recorded")


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.add_column("county", sa.Column("closing_rule", sa.Text(), nullable=False,
                                      server_default="all_transferred"))  # fmt: skip
    op.create_check_constraint("closing_rule_allowed", "county", _in("closing_rule", RULES))
    op.add_column("county", sa.Column("ledger_columns", JSONB(), nullable=False,
                                      server_default="{}"))  # fmt: skip
    op.add_column("ledger_entry", sa.Column("blocker_words", ARRAY(sa.Text()), nullable=False,
                                            server_default="{}"))  # fmt: skip
    op.add_column("ledger_entry", sa.Column("status_word", sa.Text()))
    op.add_column("planned_area", sa.Column("kind_word", sa.Text()))
    op.drop_constraint("kind_allowed", "planned_area", type_="check")
    op.execute("UPDATE planned_area SET kind = 'district', kind_word = coalesce(kind_word, name) "
               "WHERE kind = 'east_district'")  # fmt: skip
    op.create_check_constraint("kind_allowed", "planned_area", _in("kind", KINDS))


def downgrade() -> None:
    op.drop_constraint("kind_allowed", "planned_area", type_="check")
    op.execute("UPDATE planned_area SET kind = 'east_district' WHERE kind IN ('district', 'other')")
    op.create_check_constraint("kind_allowed", "planned_area", _in("kind", OLD_KINDS))
    op.drop_column("planned_area", "kind_word")
    op.drop_column("ledger_entry", "status_word")
    op.drop_column("ledger_entry", "blocker_words")
    op.drop_column("county", "ledger_columns")
    op.drop_constraint("closing_rule_allowed", "county", type_="check")
    op.drop_column("county", "closing_rule")
