"""The schema built by alembic: county code everywhere, GiST indexes, history append-only,
no lost updates on the ledger."""

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import CheckConstraint, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from geo import TitlemapError
from geo.core.model import Base, LedgerEntry
from geo.db.engine import make_engine
from geo.db.schema import alembic_config, check_schema, current_revision, head_revision, upgrade

SPATIAL = ["county", "township", "context_feature", "compound", "parcel", "planned_area",
           "complaint"]  # fmt: skip


def test_schema_is_at_head(engine):
    head = ScriptDirectory.from_config(alembic_config(None)).get_current_head()
    assert head is not None and head == head_revision()
    assert current_revision(engine) == head == check_schema(engine)


def test_an_old_schema_is_named_with_what_to_run(new_database):
    old = make_engine(new_database("titlemap_old_schema"))
    with pytest.raises(TitlemapError, match="no schema"):
        check_schema(old)
    upgrade(old, "0002")
    with pytest.raises(TitlemapError, match="titlemap db upgrade") as refused:
        check_schema(old)
    assert "0002" in str(refused.value)
    upgrade(old)
    assert check_schema(old) == head_revision()
    old.dispose()


def test_every_table_carries_the_county_code(engine):
    with engine.connect() as conn:
        tables = conn.execute(
            text(
                "SELECT table_name FROM information_schema.columns "
                "WHERE table_schema = 'public' AND column_name IN ('county_code', 'code') "
                "AND (table_name <> 'county' OR column_name = 'code')"
            )
        ).scalars()
        # a sign-in session belongs to its user, who carries the county
        assert set(Base.metadata.tables) - {"login_session"} <= set(tables)


@pytest.mark.parametrize("table", SPATIAL)
def test_geometries_are_4490_with_a_gist_index(engine, table):
    with engine.connect() as conn:
        srid = conn.execute(
            text("SELECT srid FROM geometry_columns WHERE f_table_name = :t"), {"t": table}
        ).scalar_one()
        index = conn.execute(
            text("SELECT indexdef FROM pg_indexes WHERE tablename = :t AND indexdef LIKE '%gist%'"),
            {"t": table},
        ).scalar_one()
    assert srid == 4490
    assert "(geom)" in index


def test_ledger_history_cannot_be_rewritten(engine):
    with engine.connect() as conn:
        with pytest.raises(DBAPIError, match="append-only"):
            conn.execute(text("UPDATE ledger_event SET note = 'rewritten' WHERE id = 1"))
        conn.rollback()


# constraint → a raw UPDATE that breaks it (on an entry of the status given, or any)
BROKEN = {
    "units_task_nonnegative": ("SET units_task = -1, units_first_registered = 0, "
                               "units_transferred = 0", None),
    "first_within_task": ("SET units_first_registered = units_task + 1", None),
    "transferred_within_first": ("SET units_transferred = units_first_registered + 1", None),
    "closed_after_opened": ("SET closed_on = opened_on - 1", "closed"),
    "closed_on_only_closed": ("SET closed_on = opened_on + 1", "in_progress"),
}  # fmt: skip


@pytest.mark.parametrize("name", BROKEN)
def test_impossible_ledger_rows_are_refused_by_the_database(engine, name):
    """What check_entry refuses the database refuses too, whoever writes the row."""
    change, status = BROKEN[name]
    where = f"WHERE status = '{status}'" if status else ""
    with engine.connect() as conn:
        # a negative task breaks first_within_task (0 ≤ first ≤ task) as well: either may say so
        either = f"{name}|first_within_task" if name == "units_task_nonnegative" else name
        with pytest.raises(IntegrityError, match=f'check constraint "({either})"'):
            conn.execute(
                text(
                    f"UPDATE ledger_entry {change} "
                    f"WHERE id = (SELECT min(id) FROM ledger_entry {where})"
                )
            )
        conn.rollback()


def test_the_model_declares_the_checks_the_database_has(engine):
    """Model and migrations agree on ledger_entry's CHECK constraints."""
    declared = {c.name for c in LedgerEntry.__table__.constraints if isinstance(c, CheckConstraint)}
    with engine.connect() as conn:
        present = set(
            conn.execute(
                text(
                    "SELECT conname FROM pg_constraint "
                    "WHERE conrelid = 'ledger_entry'::regclass AND contype = 'c'"
                )
            ).scalars()
        )
    assert declared == present
    assert set(BROKEN) | {"status_allowed"} == present


def test_an_edit_on_an_old_version_is_refused(engine):
    """Two people open the same entry; the second save must not overwrite the first."""
    with Session(engine) as first, Session(engine) as second:
        entry_a = first.scalars(select(LedgerEntry).order_by(LedgerEntry.id).limit(1)).one()
        entry_b = second.get(LedgerEntry, entry_a.id)
        entry_id, version, original = entry_a.id, entry_a.version, entry_a.plan
        entry_a.plan = "先办后补：第一人的修改"
        first.commit()
        entry_b.plan = "第二人的修改"
        with pytest.raises(StaleDataError):
            second.commit()
    with Session(engine) as check:
        saved = check.get(LedgerEntry, entry_id)
        assert saved.plan == "先办后补：第一人的修改"
        assert saved.version == version + 1
        # put the demo row back for other tests
        check.execute(
            update(LedgerEntry)
            .where(LedgerEntry.id == saved.id)
            .values(version=version, plan=original)
        )
        check.commit()
