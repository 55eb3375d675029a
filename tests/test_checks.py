"""Parcel checks (geo.checks) on real PostGIS, against data nobody on the team generated.

Two databases of this module's own:
- 手工县 (629902): a small grid of parcels typed as coordinates below, each problem planted
  once, next to clean parcels; the checks must find exactly the planted problems.
- 示例县 (629901) from geo.demo: every problem its docstring plants is found, and nothing else,
  against an independent computation with shapely + pyproj on the generator's own frames.
"""

from dataclasses import dataclass, field
from io import BytesIO

import numpy as np
import openpyxl
import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon, box
from sqlalchemy import Engine, text

from geo import TitlemapError
from geo.checks.parcel import check_parcel
from geo.checks.report import CHECKS, CheckSettings
from geo.checks.run import run_parcel_checks
from geo.checks.xlsx import write_xlsx
from geo.core.codes import make_credit_code, parcel_code
from geo.core.crs import reproject, to_projected, transformer
from geo.db.engine import make_engine
from geo.db.schema import upgrade
from geo.io.load import ewkb

HAND = "629902"
GK = 4544  # CGCS2000 3-degree zone 35, where 手工县 (104.2°E) lies
X0, Y0 = (round(v) for v in transformer(4490, GK).transform(104.2, 35.9))


# -- 手工县: typed coordinates (metres east and north of X0, Y0 in the GK zone) -----------------


@dataclass
class Hand:
    """What was planted, by the keys `key(problem)` gives."""

    parcels: dict[str, str] = field(default_factory=dict)  # name → 宗地代码
    compounds: dict[str, str] = field(default_factory=dict)  # name → 小区编号
    expected: set[tuple[str, str]] = field(default_factory=set)
    bad_developer: str = ""


def bow_tie(x: float) -> Polygon:
    # Its edges cross at (x + 50, 30): invalid; ST_MakeValid gives two triangles of 1500 m².
    return Polygon([(x, 0), (x + 100, 60), (x + 100, 0), (x, 60), (x, 0)])


# name: (shape, recorded area, compound or None, code override, premium due, premium paid)
PARCELS = {
    "A1": box(0, 0, 50, 60), "A2": box(50, 0, 100, 60),          # clean pair, edges shared
    "B1": box(200, 0, 250, 60), "B2": box(248, 0, 300, 60),      # overlap 2 m × 60 m = 120 m²
    "C1": box(400, 0, 450, 60), "C2": box(449.99, 0, 500, 60),   # sliver 0.01 m × 60 m = 0.6 m²
    "D1": box(600, 0, 650, 60), "D2": box(650.5, 0, 700, 60),    # gap 0.5 m × 60 m = 30 m²
    "E1": box(800, 0, 880, 60),                                  # compound E reaches 20 m beyond
    "L1": bow_tie(1000),                                         # invalid geometry
    "F": box(0, 200, 100, 260),      # drawn 1.05 % above recorded
    "G": box(200, 200, 300, 260),    # drawn 0.95 % above recorded: passes
    "H": box(400, 200, 500, 260),    # a planned road runs through it
    "I": box(600, 200, 700, 260),    # land premium arrears
    "J": box(800, 200, 900, 260),    # no compound
    "M": box(1000, 200, 1100, 260),  # bad parcel-kind letter
    "N": box(1200, 200, 1300, 260),  # another county's prefix
    "O1": box(200, 400, 300, 460),   # clean, under a compound with a hostile name
}  # fmt: skip
COMPOUNDS = {
    "A": (box(0, 0, 100, 60), ["A1", "A2"]),
    "B": (box(200, 0, 300, 60), ["B1", "B2"]),
    "C": (box(400, 0, 500, 60), ["C1", "C2"]),
    "D": (box(600, 0, 700, 60), ["D1", "D2"]),
    "E": (box(800, 0, 900, 60), ["E1"]),
    "L": (MultiPolygon([Polygon([(1000, 0), (1050, 30), (1000, 60)]),
                        Polygon([(1100, 0), (1100, 60), (1050, 30)])]), ["L1"]),
    "F": (box(0, 200, 100, 260), ["F"]),
    "G": (box(200, 200, 300, 260), ["G"]),
    "H": (box(400, 200, 500, 260), ["H"]),
    "I": (box(600, 200, 700, 260), ["I"]),
    "M": (box(1000, 200, 1100, 260), ["M"]),
    "N": (box(1200, 200, 1300, 260), ["N"]),
    "K": (box(0, 400, 100, 460), []),  # no parcel
    "O": (box(200, 400, 300, 460), ["O1"]),
}  # fmt: skip
HOSTILE = '<script>alert("宗地")</script>花园 & "小区"'
PLANNED = [
    ("GH-1", "planned_road", "规划道路：纬一路", box(440, 150, 460, 310)),  # through H: 1200 m²
    ("GH-2", "planned_road", "规划道路：经二路", box(300, 150, 320, 310)),  # touches G's edge only
    ("GH-3", "green_space", "规划绿地：北园", box(600, 400, 700, 460)),    # on no parcel
    ("GH-4", "urban_renewal", "城市更新片区", box(150, 380, 350, 480)),    # not a conflict kind
]  # fmt: skip


def storage(shape):
    return reproject(shapely.affinity.translate(shape, X0, Y0), GK, 4490)


def build_handmade(url: str) -> tuple[Engine, Hand]:
    """The 手工县 database: every planted problem once, and clean parcels around them."""
    engine = make_engine(url)
    upgrade(engine)
    hand = Hand()
    good = make_credit_code(HAND, "12345678")
    bad = make_credit_code(HAND, "87654321")
    bad = bad[:17] + ("0" if bad[17] != "0" else "1")  # a typo in the check character
    hand.bad_developer = "手工置业有限公司"
    with engine.begin() as conn:

        def insert(sql: str, **values) -> int | None:
            result = conn.execute(text(sql), values)
            return result.scalar() if "RETURNING" in sql else None

        outline = storage(box(-300, -300, 1500, 700))
        insert("INSERT INTO county (code, name, province, target_rate, geom) "
               "VALUES (:c, '手工县', '甘肃省', 0.9, CAST(:g AS geometry))",
               c=HAND, g=ewkb([outline])[0])  # fmt: skip
        developers = {}
        for name, code in (("诚信房地产开发有限公司", good), (hand.bad_developer, bad)):
            developers[name] = insert(
                "INSERT INTO developer (county_code, name, credit_code, credit_status) "
                "VALUES (:c, :n, :k, 'normal') RETURNING id", c=HAND, n=name, k=code)  # fmt: skip
        parcel_ids = {}
        for k, (name, shape) in enumerate(PARCELS.items(), start=1):
            code = parcel_code(HAND, 1, 1, "GB", k)
            if name == "M":
                code = code[:13] + "I" + code[14:]  # GI: no such parcel kind
            if name == "N":
                code = "629903" + code[6:]
            hand.parcels[name] = code
            area = 3000.0 if name == "L1" else shape.area
            recorded = {"F": area / 1.0105, "G": area / 1.0095}.get(name, area)
            due = round(area * 800, 2)
            paid = 600_000.0 if name == "I" else due
            if name == "I":
                due = 1_000_000.0
            parcel_ids[name] = insert(
                "INSERT INTO parcel (county_code, code, recorded_area_m2, land_use, right_type, "
                "premium_due, premium_paid, geom) VALUES (:c, :code, :r, '0701', '出让', :due, "
                ":paid, CAST(:g AS geometry)) RETURNING id",
                c=HAND, code=code, r=round(recorded, 2), due=due, paid=paid,
                g=ewkb([storage(shape)])[0],
            )  # fmt: skip
        for name, (shape, members) in COMPOUNDS.items():
            code = f"XQ{HAND}-{name}"
            hand.compounds[name] = code
            developer = developers[hand.bad_developer if name == "A" else "诚信房地产开发有限公司"]
            compound_id = insert(
                "INSERT INTO compound (county_code, code, name, developer_id, geom) "
                "VALUES (:c, :code, :n, :d, CAST(:g AS geometry)) RETURNING id",
                c=HAND, code=code, n=HOSTILE if name == "O" else f"{name}区小区", d=developer,
                g=ewkb([storage(shape)])[0],
            )  # fmt: skip
            for member in members:
                insert("INSERT INTO compound_parcel (compound_id, parcel_id, county_code) "
                       "VALUES (:a, :b, :c)",
                       a=compound_id, b=parcel_ids[member], c=HAND)  # fmt: skip
        for code, kind, name, shape in PLANNED:
            insert("INSERT INTO planned_area (county_code, code, kind, name, geom) "
                   "VALUES (:c, :code, :k, :n, CAST(:g AS geometry))",
                   c=HAND, code=code, k=kind, n=name, g=ewkb([storage(shape)])[0])  # fmt: skip
    p, c = hand.parcels, hand.compounds
    hand.expected = {
        ("overlap", p["B1"]), ("overlap", p["B2"]),
        ("gap", p["D1"]), ("gap", p["D2"]),
        ("beyond", c["E"]),
        ("geometry", p["L1"]),
        ("area", p["F"]),
        ("planned", p["H"]),
        ("arrears", p["I"]),
        ("orphan_parcel", p["J"]),
        ("parcel_code", p["M"]), ("parcel_code", p["N"]),
        ("compound_no_parcel", c["K"]),
        ("credit_code", hand.bad_developer),
    }  # fmt: skip
    return engine, hand


def key(problem) -> tuple[str, str]:
    if problem.check == "credit_code":
        return problem.check, problem.related[0]
    return problem.check, problem.parcel or problem.compound


@pytest.fixture(scope="module")
def handmade(new_database) -> tuple[Engine, Hand]:
    engine, hand = build_handmade(new_database("titlemap_checks_hand"))
    yield engine, hand
    engine.dispose()


def run(engine: Engine, county: str = HAND, settings: CheckSettings | None = None, workers=1):
    with engine.connect() as conn:
        return run_parcel_checks(conn, county, settings, workers=workers)


@pytest.mark.parametrize("workers", [1, 2])
def test_handmade_finds_exactly_the_planted_problems(handmade, workers):
    engine, hand = handmade
    report = run(engine, workers=workers)
    assert {key(p) for p in report.problems} == hand.expected
    overlaps = [p for p in report.problems if p.check == "overlap"]
    gaps = [p for p in report.problems if p.check == "gap"]
    assert len(overlaps) == 2 and len(gaps) == 2  # one per parcel of each pair, nothing twice
    assert report.counts == {"parcels": len(PARCELS), "compounds": len(COMPOUNDS),
                             "developers": 2}  # fmt: skip


def test_handmade_figures_can_be_redone(handmade):
    engine, hand = handmade
    report = run(engine)
    by = {key(p): p for p in report.problems}
    p, c = hand.parcels, hand.compounds
    assert by[("overlap", p["B1"])].value == pytest.approx(120, abs=0.01)
    assert by[("overlap", p["B1"])].related == [p["B2"]]
    assert "同一小区" in by[("overlap", p["B1"])].reason
    gap = by[("gap", p["D1"])]
    assert gap.value == pytest.approx(30, abs=0.01) and gap.related == [p["D2"]]
    beyond = by[("beyond", c["E"])]
    assert beyond.value == pytest.approx(1200, abs=0.01)
    assert "东侧" in beyond.reason and "20.0 m" in beyond.reason
    assert by[("area", p["F"])].value == pytest.approx(1.05, abs=0.01)  # per cent
    assert "EPSG:4544" in by[("area", p["F"])].reason
    assert by[("planned", p["H"])].value == pytest.approx(1200, abs=0.01)
    assert "纬一路" in by[("planned", p["H"])].reason
    assert by[("arrears", p["I"])].value == 400_000
    assert "自相交" in by[("geometry", p["L1"])].reason
    assert "第 14 位" in by[("parcel_code", p["M"])].reason
    assert "第 1–6 位" in by[("parcel_code", p["N"])].reason
    assert "校验码" in by[("credit_code", hand.bad_developer)].reason
    assert by[("credit_code", hand.bad_developer)].compound == c["A"]
    # Every problem with a place has one inside the county, and its pieces exist.
    pieces = {f["id"]: f for f in report.pieces}
    for problem in report.problems:
        for piece in problem.pieces:
            assert problem.id in pieces[piece]["properties"]["problems"]
    assert {f["properties"]["kind"] for f in report.pieces} == {"overlap", "gap", "beyond",
                                                               "planned"}  # fmt: skip


def test_slivers_under_the_tolerance_are_ignored_and_counted(handmade):
    engine, hand = handmade
    report = run(engine)
    assert report.slivers["count"] == 1
    assert report.slivers["area_m2"] == pytest.approx(0.6, abs=0.001)
    flagged = {p.parcel for p in report.problems}
    assert hand.parcels["C1"] not in flagged and hand.parcels["C2"] not in flagged


def test_tolerances_are_configurable(handmade):
    engine, hand = handmade
    p, c = hand.parcels, hand.compounds
    strict = run(engine, settings=CheckSettings(overlap_tolerance_m2=0.5, area_tolerance=0.009))
    found = {key(x) for x in strict.problems}
    assert {("overlap", p["C1"]), ("overlap", p["C2"]), ("area", p["G"])} <= found
    assert strict.slivers["count"] == 0
    loose = run(engine, settings=CheckSettings(area_tolerance=0.011, planned_tolerance_m2=1500))
    found = {key(x) for x in loose.problems}
    assert ("area", p["F"]) not in found and ("planned", p["H"]) not in found
    # A gap wider than the width searched is compound land beyond its parcels instead.
    narrow = run(engine, settings=CheckSettings(gap_width_m=0.4))
    found = {key(x) for x in narrow.problems}
    assert ("gap", p["D1"]) not in found and ("beyond", c["D"]) in found


def test_settings_refuse_nonsense():
    for bad in ({"area_tolerance": -0.1}, {"area_tolerance": 1.5}, {"gap_width_m": 0},
                {"overlap_tolerance_m2": float("nan")}):  # fmt: skip
        with pytest.raises(TitlemapError):
            CheckSettings(**bad)


def test_every_report_names_its_tolerances_and_zone(handmade):
    engine, _ = handmade
    settings = CheckSettings(area_tolerance=0.02, overlap_tolerance_m2=0.25)
    report = run(engine, settings=settings)
    summary = report.summary()
    assert summary["gk_epsg"] == GK and "EPSG:4544" in summary["crs"] and "105°E" in summary["crs"]
    assert summary["tolerances"]["area_tolerance"] == 0.02
    assert summary["tolerances"]["overlap_tolerance_m2"] == 0.25
    assert set(summary["tolerances"]) == {
        "area_tolerance", "overlap_tolerance_m2", "gap_tolerance_m2", "gap_width_m",
        "beyond_tolerance_m2", "planned_tolerance_m2", "arrears_tolerance_yuan",
    }  # fmt: skip
    assert report.pieces_geojson()["summary"]["gk_epsg"] == GK
    assert report.to_dict()["summary"]["tolerances"] == summary["tolerances"]


def test_xlsx_has_chinese_headers_and_the_basis_of_its_figures(handmade):
    engine, _ = handmade
    report = run(engine, settings=CheckSettings(area_tolerance=0.015))
    buffer = BytesIO()
    write_xlsx(report, buffer)
    book = openpyxl.load_workbook(BytesIO(buffer.getvalue()))
    assert book.sheetnames == ["问题清单", "汇总", "核查方法"]
    sheet = book["问题清单"]
    assert "宗地核查问题清单" in sheet["A1"].value
    assert "EPSG:4544" in sheet["A2"].value and "1.50%" in sheet["A2"].value
    headers = [cell.value for cell in sheet[3]]
    assert headers[:4] == ["序号", "问题编号", "核查项", "宗地代码"] and "问题说明" in headers
    rows = list(sheet.iter_rows(min_row=4, values_only=True))
    assert len(rows) == len(report.problems)
    assert {row[2] for row in rows} <= {label for label, _ in CHECKS.values()}
    totals = dict(book["汇总"].iter_rows(min_row=2, values_only=True))
    assert totals["投影 EPSG"] == GK and totals["面积容差（相对登记面积）"] == "1.50%"
    assert totals["核查宗地数"] == len(PARCELS)


def test_one_parcel_gets_the_same_verdicts_as_the_county_run(handmade):
    engine, hand = handmade
    report = run(engine)
    with engine.connect() as conn:
        for name, code in hand.parcels.items():
            checked = check_parcel(conn, HAND, code)
            failed = {r.check for r in checked.results if r.status == "fail"}
            mine = {p.check for p in report.problems if p.parcel == code}
            compounds = {x["code"] for x in checked.compounds}
            mine |= {p.check for p in report.problems
                     if p.check == "beyond" and p.compound in compounds}  # fmt: skip
            assert failed == mine, name
            assert all(r.reason for r in checked.results)
            assert checked.report.summary()["gk_epsg"] == GK


def test_one_parcel_explains_passes_too(handmade):
    engine, hand = handmade
    with engine.connect() as conn:
        checked = check_parcel(conn, HAND, hand.parcels["G"])
        bow = check_parcel(conn, HAND, hand.parcels["L1"])
        with pytest.raises(TitlemapError):
            check_parcel(conn, HAND, "629902001001GB99999")
    results = {r.check: r for r in checked.results}
    assert results["area"].status == "pass" and "+0.95%" in results["area"].reason
    assert results["gap"].status == "skip"
    assert checked.passed
    bow_results = {r.check: r for r in bow.results}
    assert bow_results["geometry"].status == "fail"
    assert bow_results["area"].status == "pass"  # measured on the repaired shape: 3000 m²
    assert bow.figures["drawn_area_m2"] == pytest.approx(3000, abs=0.01)


def test_land_beyond_a_repaired_bow_tie_is_as_deep_as_its_farthest_point(handmade):
    """Drift: the depth was that of the piece's farthest vertex, and a compound on a repaired
    bow-tie parcel read "… beyond its parcels, up to 0.0 m": every corner of the two triangles
    outside the bow-tie lies on it. The middle of the compound's long side is 30·50/√(30²+50²)
    ≈ 25.7 m from the parcel — measured in the GK zone, in a county of its own here."""
    engine, _ = handmade
    county = "629904"
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO county (code, name, target_rate, geom) "
                "VALUES (:c, '蝴蝶县', 0.9, CAST(:g AS geometry))"
            ),
            {"c": county, "g": ewkb([storage(box(-300, -300, 400, 400))])[0]},
        )
        parcel = conn.execute(
            text(
                "INSERT INTO parcel (county_code, code, recorded_area_m2, geom) "
                "VALUES (:c, :k, 3000, CAST(:g AS geometry)) RETURNING id"
            ),
            {
                "c": county,
                "k": parcel_code(county, 1, 1, "GB", 1),
                "g": ewkb([storage(bow_tie(0))])[0],
            },
        ).scalar_one()
        compound = conn.execute(
            text(
                "INSERT INTO compound (county_code, code, name, geom) "
                "VALUES (:c, 'HD-1', '蝴蝶小区', CAST(:g AS geometry)) RETURNING id"
            ),
            {"c": county, "g": ewkb([storage(box(0, 0, 100, 60))])[0]},
        ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO compound_parcel (compound_id, parcel_id, county_code) "
                "VALUES (:a, :b, :c)"
            ),
            {"a": compound, "b": parcel, "c": county},
        )
    beyond = [p for p in run(engine, county).problems if p.check == "beyond"]
    depth = 30 * 50 / np.hypot(30, 50)
    assert [p.value for p in beyond] == pytest.approx([1500, 1500], abs=0.01)
    assert all(f"最远超出 {depth:.1f} m" in p.reason for p in beyond), [p.reason for p in beyond]


# -- 示例县: every planted problem found, nothing else --------------------------------------------


@pytest.fixture(scope="module")
def demo_engine(demo_database):
    with demo_database("titlemap_checks_demo") as engine:
        yield engine


@pytest.fixture(scope="module")
def demo_report(demo_engine):
    return run(demo_engine, "629901", workers=2)


def oracle(demo) -> dict[str, set]:
    """The planted problems, worked out with shapely in the GK zone from the generator's frames."""
    parcels, compounds = demo.parcels, demo.compounds
    pg = to_projected(parcels.geometry.values, GK)
    cg = to_projected(compounds.geometry.values, GK)
    codes = parcels["code"].tolist()
    area = shapely.area(pg)
    recorded = parcels["recorded_area_m2"].to_numpy()
    links = demo.compound_parcels
    linked = set(links["parcel_code"])
    tree = shapely.STRtree(pg)
    left, right = tree.query(pg, predicate="intersects")
    keep = left < right
    overlap = shapely.area(shapely.intersection(pg[left[keep]], pg[right[keep]]))
    pairs = {(codes[a], codes[b]) for a, b, size in zip(left[keep], right[keep], overlap,
                                                        strict=True) if size > 1}  # fmt: skip
    index = {code: k for k, code in enumerate(codes)}
    beyond = set()
    for k, code in enumerate(compounds["code"]):
        mine = links.loc[links["compound_code"] == code, "parcel_code"]
        if len(mine):
            union = shapely.union_all(pg[[index[m] for m in mine]])
            if shapely.area(shapely.difference(cg[k], union)) > 1:
                beyond.add(code)
    planned = demo.planned_areas
    conflict = to_projected(planned.geometry.values[planned["kind"].isin(
        ["planned_road", "green_space"]).to_numpy()], GK)  # fmt: skip
    under = {
        codes[k]
        for k in range(len(codes))
        if any(shapely.area(shapely.intersection(pg[k], a)) > 1 for a in conflict)
    }
    owed = (parcels["premium_due"] - parcels["premium_paid"]).to_numpy()
    return {
        "area": {codes[k] for k in np.flatnonzero(np.abs(area - recorded) > 0.01 * recorded)},
        "overlap": {c for pair in pairs for c in pair},
        "overlap_pairs": pairs,
        "beyond": beyond,
        "orphan_parcel": set(codes) - linked,
        "compound_no_parcel": set(compounds["code"]) - set(links["compound_code"]),
        "planned": under,
        "arrears": {codes[k] for k in np.flatnonzero(owed > 0)},
    }


def test_demo_planted_problems_match_the_docstring_counts(demo, demo_report):
    found = {check: {p.parcel or p.compound for p in demo_report.problems if p.check == check}
             for check in CHECKS}  # fmt: skip
    # geo/demo/__init__.py: at n=150, seed 1 — 4 compounds with no parcel, 4 beyond their parcels, 3
    # overlapping pairs, 9 parcels with a wrong recorded area, 2 parcels with no compound.
    assert len(found["compound_no_parcel"]) == 4
    assert len(found["beyond"]) == 4
    assert len(found["overlap"]) == 6
    assert len(found["area"]) == 9
    assert len(found["orphan_parcel"]) == 2
    # ≈10 compounds cut by planned roads or green space: all but the one without parcels.
    links = demo.compound_parcels.groupby("parcel_code")["compound_code"].apply(set).to_dict()
    cut = {c for code in found["planned"] for c in links.get(code, ())}
    assert len(cut) == 9
    for check in ("gap", "geometry", "parcel_code", "credit_code"):
        assert found[check] == set(), check


def test_demo_finds_every_planted_problem_and_flags_no_clean_parcel(demo, demo_report):
    expected = oracle(demo)
    for check in ("area", "overlap", "beyond", "orphan_parcel", "compound_no_parcel", "planned",
                  "arrears"):  # fmt: skip
        found = {p.parcel or p.compound for p in demo_report.problems if p.check == check}
        assert found == expected[check], check
    pairs = {tuple(sorted([p.parcel, p.related[0]]))
             for p in demo_report.problems if p.check == "overlap"}  # fmt: skip
    assert pairs == expected["overlap_pairs"]
    assert demo_report.slivers["count"] == 0


def test_demo_figures_agree_with_shapely(demo, demo_report):
    parcels = demo.parcels.set_index("code")
    for problem in demo_report.problems:
        if problem.check == "area":
            shape = to_projected(parcels.loc[problem.parcel, "geometry"], GK)
            recorded = parcels.loc[problem.parcel, "recorded_area_m2"]
            assert problem.value == pytest.approx(100 * (shape.area / recorded - 1), abs=0.001)
        if problem.check == "overlap":
            a, b = (to_projected(parcels.loc[c, "geometry"], GK)
                    for c in (problem.parcel, problem.related[0]))  # fmt: skip
            assert problem.value == pytest.approx(a.intersection(b).area, rel=1e-4)


def test_workers_give_the_same_report(demo_engine, demo_report):
    alone = run(demo_engine, "629901", workers=1)
    assert [p.as_dict() for p in alone.problems] == [p.as_dict() for p in demo_report.problems]
    assert alone.pieces == demo_report.pieces


def test_workers_beyond_the_cores_give_the_same_report(demo_engine, demo_report):
    # Three shares on two cores: clusters and compounds are dealt out in SQL, none twice.
    three = run(demo_engine, "629901", workers=3)
    assert [p.as_dict() for p in three.problems] == [p.as_dict() for p in demo_report.problems]
    assert three.pieces == demo_report.pieces
    assert three.slivers == demo_report.slivers


def test_shares_hold_every_cluster_and_compound_once(demo_engine):
    from geo.checks.stages import Plan, cluster_stage

    with demo_engine.connect() as conn:
        plan = Plan("629901", GK, CheckSettings(), 1e10)
        shares = cluster_stage(conn, plan, 3).shares
        linked = set(conn.execute(text(
            "SELECT DISTINCT compound_id FROM compound_parcel WHERE county_code = '629901'"
        )).scalars())  # fmt: skip
        touching = set(conn.execute(text("""
            SELECT DISTINCT a.id FROM parcel a JOIN parcel b ON a.id <> b.id
              AND a.county_code = b.county_code AND ST_Intersects(a.geom, b.geom)
            WHERE a.county_code = '629901'
        """)).scalars())  # fmt: skip

    def ids(literal: str) -> list[int]:
        return [int(v) for v in literal.strip("{}").split(",") if v]

    parcels = [i for s in shares for i in ids(s.parcels)]
    compounds = [i for s in shares for i in ids(s.compounds)]
    assert len(shares) == 3 and all(ids(s.parcels) for s in shares)
    assert len(parcels) == len(set(parcels)) and set(parcels) == touching
    assert len(compounds) == len(set(compounds)) and set(compounds) == linked
    for share in shares:  # a cluster never straddles two shares
        clusters = ids(share.clusters)
        assert len(clusters) == len(ids(share.parcels))
        others = {c for s in shares if s is not share for c in ids(s.clusters)}
        assert not set(clusters) & others
