"""The county code in every key of a county's table: (county_code, id), composite foreign keys.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 11:20:00

Citus (geo.db.distribute, docs/scale.md) spreads a county's rows over shards by county_code,
and a shard can only enforce a primary key, a unique key or a foreign key that contains it.
So the county tables' keys become (county_code, id), the link table's (county_code,
compound_id, parcel_id), ledger_entry's one-entry-per-compound (county_code, compound_id),
and every foreign key between two county tables (county_code, x_id) → (county_code, id):
a row can no longer point at another county's row, on plain PostGIS too. `ON DELETE SET
NULL (x_id)` (PostgreSQL 15) clears the link and keeps the county. The ids stay serials,
unique by themselves; the ORM keeps `id` as each row's identity (geo.core.model).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# county tables keyed by a serial id
KEYED = ("township", "context_feature", "developer", "compound", "parcel", "ledger_entry",
         "ledger_event", "planned_area", "complaint", "task", "task_reply", "compound_file",
         "bulletin")  # fmt: skip

# (table, column, referenced table, on delete) — every foreign key between county tables
LINKS = (
    ("compound", "township_id", "township", "SET NULL"),
    ("compound", "developer_id", "developer", "SET NULL"),
    ("compound_parcel", "compound_id", "compound", "CASCADE"),
    ("compound_parcel", "parcel_id", "parcel", "CASCADE"),
    ("ledger_entry", "compound_id", "compound", "CASCADE"),
    ("ledger_event", "entry_id", "ledger_entry", "CASCADE"),
    ("task", "compound_id", "compound", "CASCADE"),
    ("task_reply", "task_id", "task", "CASCADE"),
    ("compound_file", "compound_id", "compound", "CASCADE"),
    ("compound_file", "task_id", "task", "SET NULL"),
)


def _add_link(table: str, column: str, target: str, on_delete: str, composite: bool) -> None:
    name = f"{table}_{column}_fkey"
    if composite:
        action = f"SET NULL ({column})" if on_delete == "SET NULL" else on_delete
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY (county_code, {column}) "
            f"REFERENCES {target} (county_code, id) ON DELETE {action}"
        )
    else:
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({column}) "
            f"REFERENCES {target} (id) ON DELETE {on_delete}"
        )


def _rekey(composite: bool) -> None:
    for table, column, _, _ in LINKS:
        op.drop_constraint(f"{table}_{column}_fkey", table, type_="foreignkey")
    for table in KEYED:
        op.drop_constraint(f"{table}_pkey", table, type_="primary")
        op.create_primary_key(
            f"{table}_pkey", table, ["county_code", "id"] if composite else ["id"]
        )
    op.drop_constraint("compound_parcel_pkey", "compound_parcel", type_="primary")
    link_key = ["compound_id", "parcel_id"]
    op.create_primary_key(
        "compound_parcel_pkey",
        "compound_parcel",
        ["county_code", *link_key] if composite else link_key,
    )
    if composite:
        op.drop_constraint("ledger_entry_compound_id_key", "ledger_entry", type_="unique")
        op.create_unique_constraint(
            "ledger_entry_county_code_compound_id_key",
            "ledger_entry",
            ["county_code", "compound_id"],
        )
    else:
        op.drop_constraint(
            "ledger_entry_county_code_compound_id_key", "ledger_entry", type_="unique"
        )
        op.create_unique_constraint("ledger_entry_compound_id_key", "ledger_entry", ["compound_id"])
    for link in LINKS:
        _add_link(*link, composite=composite)


# Lookups by an id alone (the ORM's get, the triggers' joins, ledger_entry by compound) lost
# their index when the key became (county_code, id): each became a sequential scan, and a
# 100 000-compound load took minutes in the tile-cell triggers. Plain indexes give them back
# (Citus allows an index without the distribution column; only unique ones must hold it).
ID_INDEXES = [(f"ix_{table}_id", table, "id") for table in KEYED] + [
    ("ix_ledger_entry_compound_id", "ledger_entry", "compound_id"),
    ("ix_compound_parcel_compound", "compound_parcel", "compound_id"),
]


def upgrade() -> None:
    _rekey(composite=True)
    for name, table, column in ID_INDEXES:
        op.create_index(name, table, [column])


def downgrade() -> None:
    for name, table, _ in ID_INDEXES:
        op.drop_index(name, table_name=table)
    _rekey(composite=False)
