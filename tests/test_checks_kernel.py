"""Every county's checks at once, in shapely (geo.checks.kernel.run_checks_many, issue 17): the
same reports as geo.checks.run.run_parcel_checks county by county — on a province of four small
demo counties, on the demo county with its planted problems, on 手工县 of tests/test_checks.py,
and on 难例县, a county made to hold each hard case once — compared by geo.checks.compare."""

import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon, box
from sqlalchemy import text

from geo import TitlemapError
from geo.checks import shapes
from geo.checks.compare import problem_keys, same_reports, same_words
from geo.checks.kernel import run_checks_many
from geo.checks.report import CheckSettings
from geo.checks.run import run_parcel_checks
from geo.core.codes import parcel_code
from geo.db.engine import make_engine
from geo.demo.province import generate_province, load_province
from geo.io.load import ewkb
from tests.conftest import run_cli
from tests.test_checks import HAND, bow_tie, build_handmade, storage

HARD = "629905"
NORTH = 2000.0  # 难例县 lies this far north of 手工县, in the same GK zone


def compare(engine, counties: list[str], settings: CheckSettings | None = None) -> dict:
    """Both paths on `counties`; assert they agree county by county; the kernel's reports."""
    with engine.connect() as conn:
        by_sql = {c: run_parcel_checks(conn, c, settings, workers=1) for c in counties}
    with engine.connect() as conn:
        by_kernel = run_checks_many(conn, counties, settings)
    assert list(by_kernel) == counties
    for county in counties:
        assert same_reports(by_sql[county], by_kernel[county]) == [], county
        assert by_sql[county].counts == by_kernel[county].counts
    return by_kernel


# -- a province of four small demo counties ------------------------------------------------------


@pytest.fixture(scope="module")
def province(head_database):
    engine = make_engine(head_database("titlemap_kernel_province"))
    load_province(engine, generate_province(compounds=40))
    yield engine
    engine.dispose()


@pytest.mark.slow  # the province: four demo counties generated and loaded
def test_a_province_gives_each_county_its_own_report(province):
    with province.connect() as conn:
        counties = list(conn.execute(text("SELECT code FROM county ORDER BY code")).scalars())
    assert len(counties) == 4
    reports = compare(province, counties)
    assert all(report.problems for report in reports.values())
    # each county's problems are its own: no parcel of another county is named
    for county, report in reports.items():
        assert all(p.parcel is None or p.parcel.startswith(county) for p in report.problems)


@pytest.mark.slow  # the province: four demo counties generated and loaded
def test_any_number_of_groups_gives_the_same_reports(province):
    with province.connect() as conn:
        counties = list(conn.execute(text("SELECT code FROM county ORDER BY code")).scalars())
        one = run_checks_many(conn, counties, workers=1)
        three = run_checks_many(conn, counties[::-1], workers=3)
    assert list(three) == counties[::-1]
    for county in counties:
        assert same_reports(one[county], three[county]) == []
        assert problem_keys(one[county]) == problem_keys(three[county])


def test_the_demo_county_with_its_planted_problems(engine):
    reports = compare(engine, ["629901"])
    checks = {p.check for p in reports["629901"].problems}
    assert {"overlap", "beyond", "area", "planned", "orphan_parcel"} <= checks


# -- 手工县 and 难例县: every hard case once ------------------------------------------------------


# The long sides of the ring hold the corners of the short ones: edges shared exactly (a corner
# between two vertices of a neighbour's edge does not lie on it once taken to EPSG:4490).
RING = (Polygon([(800, 0), (900, 0), (900, 30), (870, 30), (840, 30), (800, 30)]),
        Polygon([(800, 60), (840, 60), (870, 60), (900, 60), (900, 90), (800, 90)]))  # fmt: skip
# name: (shape in metres east and north of 难例县's corner, or None for an empty shape)
HARD_PARCELS = {
    "dup1": box(0, 0, 50, 60), "dup2": box(0, 0, 50, 60),          # a duplicated parcel
    "outer": box(200, 0, 300, 60), "inner": box(220, 10, 240, 30),  # a parcel inside another
    "bow": bow_tie(400),                                            # invalid: a bow-tie
    "empty": None,                                                  # an empty shape
    "ring1": RING[0], "ring2": RING[1],                             # four parcels round a
    "ring3": box(800, 30, 840, 60), "ring4": box(870, 30, 900, 60), # 30 × 30 m hole
    "left": box(1000, 0, 1040, 60), "right": box(1041, 0, 1070, 60),  # 1 m gap; 30 m beyond
    "under": box(1200, 0, 1250, 60),                                # no compound; one over it
    "bad_code": box(1400, 0, 1450, 60),                             # a wrong code
}  # fmt: skip
HARD_COMPOUNDS = {
    "DUP": (box(0, 0, 50, 60), ["dup1", "dup2"]),
    "NEST": (box(200, 0, 300, 60), ["outer", "inner"]),
    "BOW": (box(400, 0, 500, 60), ["bow"]),
    "EMPTY": (box(600, 0, 650, 60), ["empty"]),
    "RING": (box(800, 0, 900, 90), ["ring1", "ring2", "ring3", "ring4"]),
    "GAP": (box(1000, 0, 1100, 60), ["left", "right"]),
    "LONELY": (box(1200, 0, 1250, 60), []),
    "CODE": (box(1400, 0, 1450, 60), ["bad_code"]),
}
HARD_PLANNED = [("NR-1", "planned_road", "规划道路：纬九路", box(850, -20, 860, 110))]


def build_hard(engine) -> None:
    """难例县: each hard case once, beside 手工县 in the same database."""

    def at(shape):
        return storage(shapely.affinity.translate(shape, 0, NORTH))

    with engine.begin() as conn:

        def insert(sql: str, **values) -> int | None:
            result = conn.execute(text(sql), values)
            return result.scalar() if "RETURNING" in sql else None

        insert("INSERT INTO county (code, name, target_rate, geom) "
               "VALUES (:c, '难例县', 0.9, CAST(:g AS geometry))",
               c=HARD, g=ewkb([at(box(-300, -300, 1800, 400))])[0])  # fmt: skip
        developer = insert("INSERT INTO developer (county_code, name, credit_code, credit_status) "
                           "VALUES (:c, '无码置业有限公司', NULL, 'normal') RETURNING id",
                           c=HARD)  # fmt: skip
        ids = {}
        for k, (name, shape) in enumerate(HARD_PARCELS.items(), start=1):
            code = parcel_code(HARD, 1, 1, "GB", k)
            if name == "bad_code":
                code = code[:13] + "I" + code[14:]
            geom = "MULTIPOLYGON EMPTY" if shape is None else ewkb([at(shape)])[0]
            recorded = 100.0 if shape is None else 3000.0 if name == "bow" else shape.area
            ids[name] = insert(
                "INSERT INTO parcel (county_code, code, recorded_area_m2, premium_due, "
                "premium_paid, geom) VALUES (:c, :code, :r, 100, 100, "
                + ("ST_GeomFromText(:g, 4490)" if shape is None else "CAST(:g AS geometry)")
                + ") RETURNING id",
                c=HARD, code=code, r=round(recorded, 2), g=geom,
            )  # fmt: skip
        for name, (shape, members) in HARD_COMPOUNDS.items():
            compound = insert(
                "INSERT INTO compound (county_code, code, name, developer_id, geom) "
                "VALUES (:c, :code, :n, :d, CAST(:g AS geometry)) RETURNING id",
                c=HARD, code=f"NL-{name}", n=f"{name}小区", d=developer, g=ewkb([at(shape)])[0],
            )  # fmt: skip
            for member in members:
                insert("INSERT INTO compound_parcel (compound_id, parcel_id, county_code) "
                       "VALUES (:a, :b, :c)", a=compound, b=ids[member], c=HARD)  # fmt: skip
        # closed with 20 of 50 homes transferred and no reason: against the county's rule
        insert("INSERT INTO ledger_entry (county_code, compound_id, units_task, "
               "units_first_registered, units_transferred, status, closed_on, blockers, "
               "cooperating_departments, measures, version) SELECT county_code, id, 50, 50, 20, "
               "'closed', DATE '2026-06-30', '{}', '{}', '{}', 1 FROM compound "
               "WHERE county_code = :c AND code = 'NL-RING'", c=HARD)  # fmt: skip
        for code, kind, name, shape in HARD_PLANNED:
            insert("INSERT INTO planned_area (county_code, code, kind, name, geom) "
                   "VALUES (:c, :code, :k, :n, CAST(:g AS geometry))",
                   c=HARD, code=code, k=kind, n=name, g=ewkb([at(shape)])[0])  # fmt: skip


@pytest.fixture(scope="module")
def hard(new_database):
    engine, _ = build_handmade(new_database("titlemap_kernel_hard"))
    build_hard(engine)
    yield engine
    engine.dispose()


def test_every_hard_case_gives_the_same_answers_both_ways(hard):
    reports = compare(hard, [HARD, HAND])
    found = {(p.check, p.parcel or p.compound) for p in reports[HARD].problems}
    code = {name: parcel_code(HARD, 1, 1, "GB", k) for k, name in enumerate(HARD_PARCELS, 1)}
    for check, name in (("overlap", "dup1"), ("overlap", "dup2"), ("overlap", "outer"),
                        ("overlap", "inner"), ("geometry", "bow"), ("geometry", "empty"),
                        ("area", "empty"), ("gap", "ring1"), ("gap", "ring4"),
                        ("gap", "left"), ("gap", "right"), ("orphan_parcel", "under")):  # fmt: skip
        assert (check, code[name]) in found, (check, name)
    assert ("beyond", "NL-GAP") in found and ("beyond", "NL-EMPTY") in found
    assert ("compound_no_parcel", "NL-LONELY") in found
    assert ("closing_rule", "NL-RING") in found
    assert ("planned", code["ring3"]) not in found  # the road runs through the hole only
    assert {p.check for p in reports[HARD].problems} >= {"planned", "credit_code", "parcel_code"}
    gap = [p for p in reports[HARD].problems if p.check == "gap" and p.compound == "NL-RING"]
    assert gap and gap[0].value == pytest.approx(30 * 30, abs=0.01)
    beyond = [p for p in reports[HARD].problems if p.check == "beyond" and p.compound == "NL-GAP"]
    assert [p.value for p in beyond] == pytest.approx([30 * 60], abs=0.01)  # the gap left out
    assert "最远超出 30.0 m" in beyond[0].reason


def test_other_tolerances_give_the_same_answers(hard):
    settings = CheckSettings(overlap_tolerance_m2=500, gap_tolerance_m2=100, gap_width_m=3,
                             beyond_tolerance_m2=0, area_tolerance=0.001)  # fmt: skip
    reports = compare(hard, [HAND, HARD], settings)
    assert reports[HARD].slivers["count"] >= 1  # the nested parcel's 400 m² is a sliver now


def test_an_unknown_county_is_refused(hard):
    with hard.connect() as conn, pytest.raises(TitlemapError, match="没有这个县"):
        run_checks_many(conn, [HAND, "629999"])


# -- the pieces the kernel relies on -------------------------------------------------------------


def test_the_coverage_screen_catches_a_duplicate_and_a_contained_parcel():
    tiles = [box(0, 0, 1, 1), box(1, 0, 2, 1), box(0, 1, 1, 2)]  # a clean coverage
    cases = {
        "duplicate": [*tiles, box(0, 0, 1, 1)],
        "contained": [*tiles, box(1.2, 0.2, 1.4, 0.4)],
        "crossing": [*tiles, box(0.5, 0.5, 1.5, 1.5)],
    }
    group = np.zeros(4, dtype=int)
    for name, geoms in cases.items():
        a, b = shapes.overlapping_pairs(np.array(geoms, dtype=object), group)
        assert 3 in set(a) | set(b), name
    a, b = shapes.overlapping_pairs(np.array(tiles, dtype=object), group[:3])
    assert len(a) == 0  # edges shared exactly: nothing to test
    other = np.array([0, 0, 0, 1])  # the same duplicate in another county: not a pair
    a, b = shapes.overlapping_pairs(np.array(cases["duplicate"], dtype=object), other)
    assert len(a) == 0


def test_numbers_may_differ_only_in_their_last_digit():
    assert same_words("重叠 120.0 m²（平均宽约 2.0 m）", "重叠 120.1 m²（平均宽约 2.0 m）")
    assert not same_words("重叠 120.0 m²", "重叠 120.2 m²")
    assert not same_words("与宗地 A 重叠", "与宗地 B 重叠")


def test_problem_keys_hold_what_must_be_equal(hard):
    with hard.connect() as conn:
        report = run_checks_many(conn, [HARD])[HARD]
    keys = problem_keys(report)
    assert len(keys) == len(report.problems)
    assert all(key[1] in {p.check for p in report.problems} for key in keys)


def test_a_city_is_checked_from_the_command_line_county_by_county(province, tmp_path):
    # `titlemap check region`: the province office's one command, each county's own list
    import openpyxl

    url = province.url.render_as_string(hide_password=False)
    result = run_cli("check", "region", "620100", "--xlsx-dir", str(tmp_path),
                     env={"DATABASE_URL": url})  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    with province.connect() as conn:
        expected = {c: run_parcel_checks(conn, c) for c in ("620101", "620102")}
    for county, report in expected.items():
        assert f"（{county}）" in result.stdout and f"{len(report.problems):,}" in result.stdout
        sheet = openpyxl.load_workbook(tmp_path / f"{county}-宗地核查.xlsx")["问题清单"]
        ids = {row[1] for row in sheet.iter_rows(values_only=True) if row and row[1]}
        assert {p.id for p in report.problems} <= ids
    assert sorted(p.name for p in tmp_path.iterdir()) == ["620101-宗地核查.xlsx",
                                                          "620102-宗地核查.xlsx"]  # fmt: skip
    missing = run_cli("check", "region", "630000", env={"DATABASE_URL": url})
    assert missing.returncode != 0 and "没有这个省/市" in missing.stderr + missing.stdout
