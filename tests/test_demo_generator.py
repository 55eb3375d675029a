"""The demo county generator: determinism, the rules each layer keeps, planted problems, files.

Pure Python (no database): n=150 as the demo ships, n=3000 for the large-n layout.
"""

import json
from collections import defaultdict
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal
from openpyxl import load_workbook

from geo import demo
from geo.core.codes import PARCEL_CODE_RE, is_valid_credit_code
from geo.core.crs import transformer
from geo.core.model import BLOCKER_LEAD, Blocker, LedgerStatus, PlannedAreaKind

N = 150


@pytest.fixture(scope="module")
def county() -> demo.DemoCounty:
    return demo.generate(N, seed=1)


@pytest.fixture(scope="module")
def big() -> demo.DemoCounty:
    return demo.generate(3000, seed=1)


def in_gk(geoms) -> np.ndarray:
    """Geometries in the county's Gauss-Krüger zone (EPSG:4544), to measure in metres."""
    to_gk = transformer(4490, demo.GK_EPSG)

    def move(xy):
        return np.column_stack(to_gk.transform(xy[:, 0], xy[:, 1]))

    return shapely.transform(np.asarray(geoms, dtype=object), move)


def assert_same(a: demo.DemoCounty, b: demo.DemoCounty) -> None:
    for layer in demo.LAYERS:
        left, right = getattr(a, layer), getattr(b, layer)
        if layer in demo.SPATIAL:
            assert_geodataframe_equal(left, right, check_less_precise=False)
        else:
            pd.testing.assert_frame_equal(left, right)


def planned(county: demo.DemoCounty, kind: PlannedAreaKind):
    areas = county.planned_areas
    return areas[areas["kind"] == kind.value]


def parcels_of(county: demo.DemoCounty) -> dict[str, list[int]]:
    row = {code: i for i, code in enumerate(county.parcels["code"])}
    owned = defaultdict(list)
    for compound, parcel in county.compound_parcels.itertuples(index=False):
        owned[compound].append(row[parcel])
    return owned


# -- determinism and shape of the frames ---------------------------------------------------


def test_same_seed_same_county(county):
    assert_same(county, demo.generate(N, seed=1))


def test_another_seed_another_county(county):
    other = demo.generate(N, seed=2)
    assert not county.compounds.geometry.geom_equals(other.compounds.geometry).all()


def test_columns_and_types(county):
    for layer in demo.LAYERS:
        frame = getattr(county, layer)
        expected = list(demo.SCHEMA[layer]) + (["geometry"] if layer in demo.SPATIAL else [])
        assert list(frame.columns) == expected, layer
        if layer in demo.SPATIAL:
            assert frame.crs.to_epsg() == 4490 and frame.geometry.name == "geometry"
            minx, miny, maxx, maxy = frame.total_bounds
            assert 103.5 < minx < maxx < 104.7 and 35.5 < miny < maxy < 36.2  # x = longitude
    assert isinstance(county.compounds["sold_on"].iloc[0], date)
    assert str(county.ledger_events["at"].dtype) == "datetime64[us, Asia/Shanghai]"
    assert county.ledger_events["at"].iloc[0].utcoffset().total_seconds() == 8 * 3600


def test_codes_are_unique(county):
    for layer in ("townships", "compounds", "parcels", "planned_areas", "complaints"):
        assert getattr(county, layer)["code"].is_unique, layer
    assert county.developers["credit_code"].is_unique
    assert county.ledger["compound_code"].is_unique and county.ledger["ledger_no"].is_unique
    assert county.compounds["name"].is_unique and county.developers["name"].is_unique


# -- land ----------------------------------------------------------------------------------


def test_county_row(county):
    row = county.county.iloc[0]
    assert (row["code"], row["name"], row["province"]) == ("629901", "示例县", "甘肃省")
    assert row["target_rate"] == 0.9
    assert row["target_deadline"] == date(2026, 12, 31)
    assert row["ledger_cutoff"] == date(2025, 6, 30)
    shape = in_gk(county.county.geometry.values)[0]
    assert shape.is_valid and shape.geom_type == "MultiPolygon"
    minx, miny, maxx, maxy = shape.bounds
    assert 35_000 < maxx - minx < 46_000 and 25_000 < maxy - miny < 35_000
    lon, lat = county.county.geometry.iloc[0].centroid.coords[0]
    assert abs(lon - 104.1) < 0.05 and abs(lat - 35.85) < 0.05


def test_townships_partition_the_county(county):
    towns = county.townships
    assert towns["code"].tolist() == [f"629901{k:03d}" for k in range(1, 6)]
    assert set(towns["kind"]) <= {"街道", "镇", "乡"}
    shapes = in_gk(towns.geometry.values)
    whole = in_gk(county.county.geometry.values)[0]
    assert abs(sum(s.area for s in shapes) - whole.area) < 1.0  # m², of ≈ 9·10⁸
    for i in range(5):
        for j in range(i + 1, 5):
            assert shapely.intersection(shapes[i], shapes[j]).area < 1e-3
    # The town lies in the two 街道.
    assert set(county.compounds["township_code"]) <= {"629901001", "629901002"}


def test_context_lines(county):
    context = county.context
    assert (context["kind"] == "river").sum() == 1 and 3 <= (context["kind"] == "road").sum() <= 5
    assert "清水河" in set(context["name"]) and "G309国道" in set(context["name"])
    assert (context.geom_type == "LineString").all()
    boundary = county.county.geometry.iloc[0].buffer(1e-6)
    assert all(boundary.covers(line) for line in context.geometry)
    river = context[context["kind"] == "river"].geometry.iloc[0]
    xs = [x for x, _ in river.coords]
    assert xs[-1] - xs[0] > 0.3  # west to east across the county


# -- compounds -----------------------------------------------------------------------------


def test_compounds_are_apart_and_inside(county):
    shapes = in_gk(county.compounds.geometry.values)
    assert shapely.is_valid(shapes).all()
    left, right = shapely.STRtree(shapes).query(shapes, predicate="intersects")
    assert (left == right).all()  # no compound touches another
    whole = county.county.geometry.iloc[0]
    plan_area = planned(county, PlannedAreaKind.PLANNING_AREA).geometry.iloc[0]
    assert shapely.within(county.compounds.geometry.values, whole).all()
    assert shapely.within(county.compounds.geometry.values, plan_area).all()
    sides = [
        np.hypot(*np.diff(np.array(r.exterior.coords[:3]), axis=0).T)
        for r in shapely.oriented_envelope(shapes)
    ]
    assert 45 < min(s.min() for s in sides) and max(s.max() for s in sides) < 300


def test_compound_attributes(county):
    c = county.compounds
    assert len(c) == N and c["code"].iloc[0] == "XQ629901-0001"
    assert c["units_sold"].between(40, 1200).all() and c["buildings"].between(1, 30).all()
    assert all(date(2000, 1, 1) <= d <= date(2022, 12, 31) for d in c["sold_on"])
    assert all(
        s < o <= date(2024, 12, 31) for s, o in zip(c["sold_on"], c["occupied_on"], strict=True)
    )
    assert set(c["developer_credit_code"]) <= set(county.developers["credit_code"])
    names = dict(zip(county.townships["code"], county.townships["name"], strict=True))
    assert all(
        a.startswith(names[t]) for a, t in zip(c["address"], c["township_code"], strict=True)
    )
    townships = dict(
        zip(county.townships["code"], in_gk(county.townships.geometry.values), strict=True)
    )
    centroids = shapely.centroid(in_gk(c.geometry.values))  # as the generator measures
    assert all(townships[t].contains(p) for t, p in zip(c["township_code"], centroids, strict=True))


def test_developers(county):
    devs = county.developers
    assert len(devs) == 40
    assert all(is_valid_credit_code(code) for code in devs["credit_code"])
    status = devs["credit_status"].value_counts().to_dict()
    assert status == {"normal": 34, "blacklisted": 4, "unreachable": 2}
    blacklisted = devs[devs["credit_status"] == "blacklisted"]
    assert blacklisted["blacklist_reason"].notna().all()
    assert all(isinstance(d, date) for d in blacklisted["blacklisted_on"])
    assert devs.loc[devs["credit_status"] == "normal", "blacklisted_on"].isna().all()


# -- parcels and the planted problems -------------------------------------------------------


def test_parcel_codes(county):
    codes = county.parcels["code"]
    assert all(PARCEL_CODE_RE.match(code) for code in codes)
    assert all(code.startswith("629901") and code[12:14] == "GB" for code in codes)
    assert set(codes.str[6:9]) <= {f"{k:03d}" for k in range(1, 6)}


def test_planted_parcel_problems(county):
    compounds = in_gk(county.compounds.geometry.values)
    parcels = in_gk(county.parcels.geometry.values)
    owned = parcels_of(county)
    no_parcel = [c for c in county.compounds["code"] if c not in owned]
    beyond, overlapping = 0, 0
    for i, code in enumerate(county.compounds["code"]):
        mine = owned.get(code, [])
        if not mine:
            continue
        outside = shapely.difference(compounds[i], shapely.union_all(parcels[mine])).area
        beyond += outside > 1.0
        uncovered_parcels = shapely.difference(shapely.union_all(parcels[mine]), compounds[i])
        assert uncovered_parcels.area < 1.0  # parcels never reach past their compound
        for a in range(len(mine)):
            for b in range(a + 1, len(mine)):
                overlapping += shapely.intersection(parcels[mine[a]], parcels[mine[b]]).area > 1
    orphans = set(county.parcels["code"]) - set(county.compound_parcels["parcel_code"])
    assert (len(no_parcel), beyond, overlapping, len(orphans)) == (4, 4, 3, 2)
    error = (county.parcels["recorded_area_m2"] / shapely.area(parcels) - 1).abs()
    assert (error > 0.03).sum() == 9 and error.max() < 0.105
    assert error[error <= 0.03].max() < 0.005


def test_land_premium(county):
    parcels = county.parcels.set_index("code")
    owned = county.compound_parcels.groupby("compound_code")["parcel_code"].apply(list)
    assert (
        set(parcels["land_use"]) <= {"0701", "05"} and (parcels["land_use"] == "0701").mean() > 0.9
    )
    assert (parcels["right_type"] == "出让").mean() > 0.85
    assert (parcels["premium_paid"] <= parcels["premium_due"]).all()
    for row in county.ledger.itertuples():
        if row.compound_code not in owned:
            continue
        mine = parcels.loc[owned[row.compound_code]]
        if "land_premium" in row.blockers.split(","):
            assert (mine["premium_paid"] < mine["premium_due"]).all()
            assert "万元" in row.blocker_note
        else:
            assert (mine["premium_paid"] == mine["premium_due"]).all()


# -- planned areas -------------------------------------------------------------------------


def test_planned_areas(county):
    areas = county.planned_areas
    assert set(areas["kind"]) <= {k.value for k in PlannedAreaKind}
    counts = areas["kind"].value_counts()
    assert counts["planning_area"] == counts["district"] == 1
    assert counts["urban_renewal"] == counts["civilised_city"] == 1
    assert 2 <= counts["planned_road"] <= 3 and 2 <= counts["green_space"] <= 3
    shapes = county.compounds.geometry.values
    east = planned(county, PlannedAreaKind.DISTRICT).geometry.iloc[0]
    assert 0.15 <= shapely.within(shapes, east).mean() <= 0.25
    cut = np.zeros(len(shapes), dtype=bool)
    for kind in (PlannedAreaKind.PLANNED_ROAD, PlannedAreaKind.GREEN_SPACE):
        for shape in planned(county, kind).geometry:
            cut |= shapely.intersects(shape, shapes)
    assert 0.05 <= cut.mean() <= 0.10
    for road in in_gk(planned(county, PlannedAreaKind.PLANNED_ROAD).geometry.values):
        width = road.area / (road.length / 2)  # a long thin band: perimeter ≈ 2 × its length
        assert 28 < width < 42  # a 30–40 m red line


# -- complaints ----------------------------------------------------------------------------


def test_complaints(county):
    complaints = county.complaints
    assert len(complaints) == 25 and complaints["code"].str.match(r"^TS-202[56]-\d{4}$").all()
    assert set(complaints["source"]) <= {"12345热线", "信访", "网络留言"}
    assert all(date(2025, 6, 1) <= d <= demo.AS_OF for d in complaints["received_on"])
    on_ledger = county.compounds["code"].isin(county.ledger["compound_code"])
    ledger_land = shapely.union_all(county.compounds.geometry.values[on_ledger])
    outside = ~shapely.within(complaints.geometry.values, ledger_land)
    assert 3 <= outside.sum() <= 5
    names = county.compounds.set_index("code")["name"]
    for point, text in zip(complaints.geometry, complaints["text"], strict=True):
        hit = county.compounds.geometry.contains(point)
        if hit.any():
            assert names.iloc[int(np.flatnonzero(hit)[0])] in text


# -- the ledger ----------------------------------------------------------------------------


def test_ledger_rows(county):
    ledger = county.ledger
    assert 0.8 <= len(ledger) / N <= 0.9
    assert ledger["ledger_no"].iloc[0] == "TZ-0001"
    assert (ledger["units_transferred"] >= 0).all()
    assert (ledger["units_transferred"] <= ledger["units_first_registered"]).all()
    assert (ledger["units_first_registered"] <= ledger["units_task"]).all()
    sold = county.compounds.set_index("code")["units_sold"]
    assert (ledger["units_task"] <= sold[ledger["compound_code"]].to_numpy()).all()
    shares = ledger["status"].value_counts(normalize=True)
    expected = {"closed": 0.35, "first_registered": 0.20, "in_progress": 0.25,
                "not_started": 0.08, "stalled": 0.12}  # fmt: skip
    for status, share in expected.items():
        assert abs(shares[status] - share) < 0.02, status
    closed = ledger[ledger["status"] == "closed"]
    assert (closed["units_transferred"] == closed["units_task"]).all()
    assert closed["closed_on"].map(lambda d: isinstance(d, date)).all()
    assert ledger.loc[ledger["status"] != "closed", "closed_on"].isna().all()
    first = ledger[ledger["status"] == "first_registered"]
    assert (first["units_first_registered"] == first["units_task"]).all()
    assert all(date(2025, 6, 1) <= d <= date(2025, 8, 31) for d in ledger["opened_on"])
    still_open = ledger[ledger["status"] != "closed"]
    assert (still_open["deadline"] < demo.AS_OF).sum() >= 5  # some are overdue


def test_ledger_blockers_and_departments(county):
    ledger = county.ledger
    for row in ledger.itertuples():
        blockers = [Blocker(b) for b in row.blockers.split(",") if b]
        if blockers:
            assert row.lead_department == BLOCKER_LEAD[blockers[0]]
        assert row.lead_department not in row.cooperating_departments.split(",")
        assert row.plan and row.supervising_leader and row.task_force_lead
    bad = county.developers.loc[county.developers["credit_status"] != "normal", "credit_code"]
    theirs = county.compounds.loc[county.compounds["developer_credit_code"].isin(bad), "code"]
    rows = ledger[ledger["compound_code"].isin(theirs)]
    assert len(rows) > 0 and rows["blockers"].str.split(",").map(lambda b: "developer" in b).all()
    east = planned(county, PlannedAreaKind.DISTRICT).geometry.iloc[0]
    in_east = county.compounds.loc[shapely.within(county.compounds.geometry.values, east), "code"]
    east_rows = ledger[ledger["compound_code"].isin(in_east)]
    stuck = east_rows["status"].isin(["stalled", "not_started"]).mean()
    assert stuck > 0.6


def test_history_ends_in_the_ledger(county):
    events, ledger = county.ledger_events, county.ledger
    assert events.equals(events.sort_values(["compound_code", "at"], kind="stable"))
    assert set(events["action"]) <= {"open", "update", "close", "reopen"}
    first = events.groupby("compound_code").head(1).set_index("compound_code")
    last = events.groupby("compound_code").tail(1).set_index("compound_code")
    assert len(first) == len(ledger) and (first["action"] == "open").all()
    assert first["at"].min() >= pd.Timestamp("2025-06-01", tz="Asia/Shanghai")
    assert first["at"].max() < pd.Timestamp("2025-09-01", tz="Asia/Shanghai")
    assert events["at"].max() < pd.Timestamp("2026-11-29", tz="Asia/Shanghai")
    for row in ledger.itertuples():
        state = json.loads(last.at[row.compound_code, "state"])
        assert state == {
            "status": row.status,
            "units_task": row.units_task,
            "units_first_registered": row.units_first_registered,
            "units_transferred": row.units_transferred,
            "blockers": [b for b in row.blockers.split(",") if b],
            "lead_department": row.lead_department,
            "deadline": row.deadline.isoformat(),
            "closed_on": row.closed_on.isoformat() if row.closed_on else None,
        }
        assert first.at[row.compound_code, "at"].date() == row.opened_on
        if row.status == LedgerStatus.CLOSED:
            assert last.at[row.compound_code, "action"] == "close"
    for changes in events["changes"]:
        assert all(len(pair) == 2 for pair in json.loads(changes).values())


def test_open_units_fall_week_by_week(county):
    events = county.ledger_events
    task = county.ledger.set_index("compound_code")["units_task"]
    moved = events["state"].map(lambda s: json.loads(s)["units_transferred"])
    weeks = pd.date_range("2025-09-01", "2026-11-30", freq="W-MON", tz="Asia/Shanghai")
    open_units = []
    for week in weeks:
        seen = events["at"] < week
        latest = moved[seen].groupby(events.loc[seen, "compound_code"]).last()
        open_units.append(int((task[latest.index] - latest).sum()))
    steps = np.diff(open_units)
    assert (steps <= 0).all() and (steps < 0).mean() > 0.8


# -- large n -------------------------------------------------------------------------------


def test_large_county_fits(big):
    shapes = in_gk(big.compounds.geometry.values)
    left, right = shapely.STRtree(shapes).query(shapes, predicate="intersects")
    assert (left == right).all()
    plan_area = planned(big, PlannedAreaKind.PLANNING_AREA).geometry.iloc[0]
    assert shapely.within(big.compounds.geometry.values, plan_area).all()
    assert big.compounds["name"].is_unique and big.parcels["code"].is_unique
    assert len(big.developers) == 750 and len(big.complaints) == 500
    assert abs(len(big.ledger) / 3000 - 0.85) < 0.01
    assert big.compounds["code"].iloc[-1] == "XQ629901-3000"


# -- files ---------------------------------------------------------------------------------


def test_write_read_round_trip(county, tmp_path):
    gpkg, xlsx = demo.write(county, tmp_path)
    assert gpkg.name == "示例县.gpkg" and xlsx.name == "示例县化解台账.xlsx"
    assert_same(county, demo.read(tmp_path))


def test_xlsx_layout(county, tmp_path):
    path = demo.write_ledger_xlsx(county, tmp_path / "ledger.xlsx")
    sheet = load_workbook(path)["化解台账"]
    assert sheet["A1"].value == "示例县国有土地上已售城镇住宅“登记难”问题化解台账"
    assert "截至日期：2026年11月28日" in sheet["A2"].value
    first_headers = ["序号", "项目编号", "项目名称", "所在乡镇", "开发企业", "问题房屋套数"]
    assert [sheet.cell(3, k).value for k in range(1, 7)] == first_headers
    assert sheet["G3"].value == "登记进展" and sheet["G4"].value == "首次登记套数"
    assert sheet["H4"].value == "转移登记套数" and sheet["A3"].font.b
    merged = {str(r) for r in sheet.merged_cells.ranges}
    assert {"A1:R1", "G3:H3", "A3:A4", "R3:R4"} <= merged
    ledger = county.ledger
    total_row = 5 + len(ledger)
    assert sheet.cell(5, 2).value == ledger["compound_code"].iloc[0]
    assert sheet.cell(total_row, 1).value == "合计"
    sums = [sheet.cell(total_row, k).value for k in (6, 7, 8)]
    units = ("units_task", "units_first_registered", "units_transferred")
    assert sums == [int(ledger[column].sum()) for column in units]
    assert sheet.cell(total_row + 2, 1).value.startswith("填表人：")
    deadline = sheet.cell(5, 16).value
    assert deadline.endswith("日") and "年" in deadline


def test_shipped_demo_files_are_what_the_generator_makes(county):
    """data/demo/ holds write(generate(150, 1)); regenerate it when the generator changes."""
    assert_same(county, demo.read(Path(__file__).resolve().parent.parent / "data" / "demo"))


def test_many_developers_keep_distinct_credit_codes():
    # 2 500 developers (10 000 compounds, seed 1) once gave two "MA" codes the same six digits.
    devs = demo.generate(10_000, seed=1).developers
    assert len(devs) == 2500
    assert devs["credit_code"].is_unique
    assert all(is_valid_credit_code(c) for c in devs["credit_code"])


# -- more parcels a compound (issue 17's province: 10 a compound) ----------------------------


@pytest.fixture(scope="module")
def dense() -> demo.DemoCounty:
    return demo.generate(N, seed=1, parcels_per_compound=10)


def test_default_parcels_unchanged(county):
    assert_same(county, demo.generate(N, seed=1, parcels_per_compound=None))
    assert len(county.parcels) == 286  # the demo's 1–3 a compound, as data/demo/ ships


def test_ten_parcels_a_compound(county, dense):
    assert abs(len(dense.parcels) / (10 * N) - 1) < 0.15
    assert dense.parcels["code"].is_unique
    assert all(PARCEL_CODE_RE.match(code) for code in dense.parcels["code"])
    per_compound = dense.compound_parcels.groupby("compound_code").size()
    assert per_compound.min() >= 1 and per_compound.max() - per_compound.min() >= 5  # varied
    same_land = shapely.equals(dense.compounds.geometry.values, county.compounds.geometry.values)
    assert same_land.all()  # the compounds stand where they did: only the parcels change
    with pytest.raises(ValueError, match="at least 1"):
        demo.generate(10, seed=1, parcels_per_compound=0.5)


def test_ten_parcels_tile_their_compound_with_the_planted_problems(dense):
    """Each linked compound's strips tile it, but for the planted problems, at their shares."""
    compounds = in_gk(dense.compounds.geometry.values)
    parcels = in_gk(dense.parcels.geometry.values)
    owned = parcels_of(dense)
    beyond, overlapping = 0, 0
    for i, code in enumerate(dense.compounds["code"]):
        mine = owned.get(code, [])
        if not mine:
            continue
        covered = shapely.union_all(parcels[mine])
        beyond += shapely.difference(compounds[i], covered).area > 1.0
        assert shapely.difference(covered, compounds[i]).area < 1.0
        left, right = shapely.STRtree(parcels[mine]).query(parcels[mine], predicate="overlaps")
        pairs = {(a, b) for a, b in zip(left, right, strict=True) if a < b}
        overlapping += any(
            shapely.intersection(parcels[mine[a]], parcels[mine[b]]).area > 1 for a, b in pairs
        )
    no_parcel = len(set(dense.compounds["code"]) - set(owned))
    orphans = set(dense.parcels["code"]) - set(dense.compound_parcels["parcel_code"])
    assert (no_parcel, beyond, overlapping, len(orphans)) == (4, 4, 3, 2)
    error = (dense.parcels["recorded_area_m2"] / shapely.area(parcels) - 1).abs()
    assert (error > 0.03).sum() == round(0.03 * (len(dense.parcels) - len(orphans)))
    narrowest = shapely.minimum_bounding_radius(parcels)  # a strip is not a sliver
    assert narrowest.min() > 10
