"""Loading a county: every row lands, twice loads nothing twice, a failure lands nothing; plain
frames do (not only the demo's), with the model's columns."""

import dataclasses

import pytest
from sqlalchemy import text

from geo.core.model import Base, copy_columns
from geo.db.engine import make_engine
from geo.io.load import CountyFrames, load_county

TABLES = {
    "township": "townships",
    "context_feature": "context",
    "developer": "developers",
    "compound": "compounds",
    "parcel": "parcels",
    "compound_parcel": "compound_parcels",
    "planned_area": "planned_areas",
    "complaint": "complaints",
    "ledger_entry": "ledger",
    "ledger_event": "ledger_events",
}


def row_counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}


@pytest.fixture(scope="module")
def scratch_engine(head_database):
    scratch = make_engine(head_database("load_tests"))
    yield scratch
    scratch.dispose()


def test_every_demo_row_is_in_the_database(scratch_engine, demo):
    load_county(scratch_engine, demo, replace=True)
    counts = row_counts(scratch_engine)
    for table, layer in TABLES.items():
        assert counts[table] == len(getattr(demo, layer)), table


def test_loading_twice_duplicates_nothing(scratch_engine, demo):
    first = load_county(scratch_engine, demo, replace=True)
    assert first.loaded
    before = row_counts(scratch_engine)
    again = load_county(scratch_engine, demo)
    assert not again.loaded
    assert row_counts(scratch_engine) == before
    replaced = load_county(scratch_engine, demo, replace=True)
    assert replaced.loaded
    assert row_counts(scratch_engine) == before


def test_a_failing_load_leaves_the_database_unchanged(scratch_engine, demo):
    load_county(scratch_engine, demo, replace=True)
    before = row_counts(scratch_engine)
    broken = demo.ledger.copy()
    # transferred above first registration breaks a CHECK on the last-but-one table
    broken.loc[broken.index[-1], "units_transferred"] = 10**6
    bad = dataclasses.replace(demo, ledger=broken)
    with pytest.raises(Exception, match="transferred_within_first"):
        load_county(scratch_engine, bad, replace=True)
    assert row_counts(scratch_engine) == before


def test_links_and_foreign_keys_resolve(engine):
    with engine.connect() as conn:
        orphans = conn.execute(
            text("SELECT count(*) FROM compound WHERE township_id IS NULL OR developer_id IS NULL")
        ).scalar_one()
        wrong_township = conn.execute(
            text(
                "SELECT count(*) FROM compound c JOIN township t ON t.id = c.township_id "
                "WHERE NOT ST_Intersects(t.geom, ST_PointOnSurface(c.geom))"
            )
        ).scalar_one()
    assert orphans == 0
    assert wrong_township == 0


def test_plain_frames_load_with_the_models_columns(scratch_engine, demo):
    """load_county takes any CountyFrames; a column the model has and the demo leaves out (the
    county's gk_epsg) is written when a frame brings it."""
    frames = CountyFrames(
        **{f.name: getattr(demo, f.name) for f in dataclasses.fields(CountyFrames)}
    )
    frames.county = demo.county.assign(gk_epsg=4544)
    report = load_county(scratch_engine, frames, replace=True)
    assert report.loaded and report.counts["compound"] == len(demo.compounds)
    with scratch_engine.connect() as conn:
        assert conn.execute(text("SELECT gk_epsg FROM county")).scalar_one() == 4544


def test_copy_columns_follow_the_model():
    assert copy_columns("compound_parcel") == ["compound_id", "parcel_id", "county_code"]
    ledger = copy_columns("ledger_entry")
    assert "id" not in ledger and "updated_at" not in ledger and ledger[0] == "county_code"
    assert "overall_rate_basis" not in copy_columns("county")  # the server's default
    table = Base.metadata.tables["parcel"]
    assert copy_columns("parcel") == [c.name for c in table.columns if c.name != "id"]
