"""generate(n, seed): the whole demo county, deterministic for a seed."""

import math
import random
from datetime import date, timedelta

import numpy as np
import pandas as pd
import shapely
from shapely.geometry import Point

from geo.core.codes import parcel_code
from geo.core.model import (
    BLOCKER_LEAD,
    Blocker,
    LedgerStatus,
    PlannedAreaKind,
)
from geo.demo.facts import (
    ADDRESS_ROADS,
    AS_OF,
    COMPLAINT_SOURCES,
    COUNTY_NAME,
    DEMO_COUNTY,
    HARD_BLOCKERS,
    HISTORY_START,
    LAYERS,
    LEADER_OF_LEAD,
    LEADERS,
    LEDGER_CUTOFF,
    NAME_HEADS,
    NAME_TAILS,
    PROVINCE,
    TARGET_DEADLINE,
    TARGET_RATE,
    TOWNSHIPS,
    _day,
    _person,
    _phase_suffix,
    _share,
)
from geo.demo.frames import SCHEMA, DemoCounty, _conform
from geo.demo.land import (
    _county_outline,
    _draw_lots,
    _empty_block_parcels,
    _gk_origin,
    _lay_out_town,
    _Lots,
    _multi,
    _parcel_shapes,
    _plan_parcels,
    _planned_areas,
    _to_storage,
    _Town,
    _township_shapes,
)
from geo.demo.records import (
    _assign_developers,
    _blockers,
    _complaint_text,
    _deadline,
    _departments,
    _developers,
    _history,
    _mark_bad_developers,
    _missed_text,
    _note,
    _open_ground_text,
    _plan_text,
    _points_in,
    _statuses,
    _units,
)

# -- generate --------------------------------------------------------------------------------


def generate(
    n_compounds: int = 150, seed: int = 1, parcels_per_compound: float | None = None
) -> DemoCounty:
    """The demo county with `n_compounds` compounds; the same seed gives the same county.

    `parcels_per_compound`: about that many parcels (strips of its land) a compound; None
    keeps the demo's 1–3 (≈1.9), the county the tests and data/demo/ are pinned to."""
    if n_compounds < 1:
        raise ValueError("n_compounds must be at least 1")
    n = n_compounds
    streams = np.random.SeedSequence(seed).spawn(8)
    rng = [np.random.default_rng(s) for s in streams]
    rand = [random.Random(int(g.integers(2**62))) for g in rng]
    origin = _gk_origin()

    county = _county_outline(rng[0])
    township_shapes = _township_shapes(county, rng[0])
    n_orphans = _share(n, 1 / 75, 2)
    n_complaints = max(5, round(n / 6))
    n_missed = max(3, round(0.16 * n_complaints))
    n_open_ground = max(1, round(n_missed / 3))
    town = _lay_out_town(n, n_orphans + n_missed, county, rng[1])
    lots = _draw_lots(town, rng[1])
    areas, east_x = _planned_areas(town, lots, county, rng[2])

    # Where each compound stands, what it is, when it was sold and occupied.
    centroids = shapely.centroid(lots.world)
    cx, cy = shapely.get_x(centroids), shapely.get_y(centroids)
    township_of = np.full(n, -1)
    for k, shape in enumerate(township_shapes):
        township_of[shapely.contains_xy(shape, cx, cy) & (township_of < 0)] = k
    east = cx > east_x
    cut_by = _cut_by(areas, lots)
    r = rand[3]
    width = max(4, len(str(n)))
    codes = [f"XQ{DEMO_COUNTY}-{i + 1:0{width}d}" for i in range(n)]
    names = _compound_names(n, r)
    land_area = shapely.area(lots.local)
    units_sold, buildings, sold_on, occupied_on = _sales(land_area, rng[3])

    # Who is on the ledger: all but ≈15 %, the newest outside 城东片区 (registered normally).
    newness = np.array([d.toordinal() for d in sold_on]) + rng[4].normal(0, 900, n)
    newness[east] = -np.inf
    off_ledger = np.sort(np.argsort(-newness, kind="stable")[: _share(n, 0.15)])
    on_ledger = np.setdiff1d(np.arange(n), off_ledger)
    status = _statuses(on_ledger, east, rand[4])

    devs = _developers(max(1, min(5000, max(40, round(n / 4)), n)), rng[5], rand[5])
    blacklisted, unreachable = _mark_bad_developers(devs, rand[5])
    bad = blacklisted + unreachable
    normal = sorted(set(range(len(devs))) - set(bad))
    dev_of = _assign_developers(n, status, bad, normal, rand[5])

    plan = _plan_parcels(lots, rng[6], parcels_per_compound)
    off_land = set(plan.beyond.tolist()) | set(plan.area_off.tolist())
    bad_set = set(bad)
    blockers = {
        i: _blockers(s, bool(east[i]), int(dev_of[i]) in bad_set, i in cut_by, i in off_land, r)
        for i, s in status.items()
    }
    # Parcels: strips of each compound's land, plus a couple in empty blocks.
    owner, rank, parcel_world = _parcel_shapes(plan, lots, rng[6])
    orphans = _empty_block_parcels(town, n_orphans, rng[6])
    parcels = _parcel_table(plan, lots, owner, rank, parcel_world, orphans, township_shapes,
                            township_of, sold_on, blockers, rng[6])  # fmt: skip
    owed = np.zeros(n)
    np.add.at(
        owed, owner, (parcels["premium_due"] - parcels["premium_paid"]).to_numpy()[: len(owner)]
    )

    township_names = [name for name, _, _ in TOWNSHIPS]
    township_codes = [f"{DEMO_COUNTY}{k + 1:03d}" for k in range(len(TOWNSHIPS))]
    compounds = pd.DataFrame({
        "code": codes, "name": names,
        "address": [f"{township_names[t]}{r.choice(ADDRESS_ROADS)}{r.randint(1, 300)}号"
                    for t in township_of],
        "township_code": [township_codes[t] for t in township_of],
        "developer_credit_code": devs["credit_code"].to_numpy()[dev_of],
        "buildings": buildings, "units_sold": units_sold,
        "sold_on": sold_on, "occupied_on": occupied_on,
        "geometry": _to_storage(_multi(lots.world), origin),
    })  # fmt: skip

    ledger, events = _ledger(on_ledger, status, blockers, compounds, devs, dev_of, township_of,
                             cut_by, owed, land_area, rand[7])  # fmt: skip
    complaints = _complaints(lots, town, compounds, ledger, blockers, township_of,
                             township_shapes, n_complaints, n_missed, n_open_ground,
                             n_orphans, off_ledger, rng[7], rand[7])  # fmt: skip

    parcels["geometry"] = _to_storage(parcels["geometry"].to_numpy(), origin)
    links = pd.DataFrame({
        "compound_code": [codes[i] for i in owner],
        "parcel_code": parcels["code"].to_numpy()[: len(owner)],
    }).sort_values(["compound_code", "parcel_code"], kind="stable")  # fmt: skip
    complaints["geometry"] = _to_storage(complaints["geometry"].to_numpy(), origin)
    frames = _land_frames(county, township_shapes, town, areas, origin) | {
        "developers": devs, "compounds": compounds,
        "parcels": parcels.sort_values("code", kind="stable"), "compound_parcels": links,
        "complaints": complaints, "ledger": ledger, "ledger_events": events,
    }  # fmt: skip
    return DemoCounty(**{layer: _conform(frames[layer], layer) for layer in LAYERS})


def _cut_by(areas: list, lots: _Lots) -> dict[int, str]:
    """Compounds cut by a planned road or green space, with the feature's short name."""
    cut: dict[int, str] = {}
    for kind, name, shape in areas:
        if kind in (PlannedAreaKind.PLANNED_ROAD, PlannedAreaKind.GREEN_SPACE):
            for i in np.flatnonzero(shapely.intersects(shape, lots.world)):
                cut.setdefault(int(i), name.split("：")[-1])
    return cut


def _sales(land_area: np.ndarray, rng: np.random.Generator):
    """Units sold (by land area), buildings, sale and occupation dates (older near the centre)."""
    n = len(land_area)
    density = rng.uniform(0.009, 0.016, n)  # homes per m² of land
    units_sold = np.clip(np.round(land_area * density), 40, 1200).astype(int)
    buildings = np.clip(np.round(units_sold / rng.uniform(36, 90, n)), 1, 30).astype(int)
    age = np.clip(21.5 * (np.arange(n) / n) ** 0.85 + rng.normal(0, 2.0, n), 0, 22.95)
    sold_on = [date(2000, 1, 1) + timedelta(days=int(a * 365.25)) for a in age]
    occupied_on = [
        min(day + timedelta(days=int(k)), date(2024, 12, 31))
        for day, k in zip(sold_on, rng.integers(300, 1100, n), strict=True)
    ]
    return units_sold, buildings, sold_on, occupied_on


def _land_frames(county, township_shapes, town: _Town, areas, origin) -> dict[str, pd.DataFrame]:
    """The county, its townships, rivers and roads, and planned areas, in EPSG:4490."""
    county_frame = pd.DataFrame({
        "code": [DEMO_COUNTY], "name": [COUNTY_NAME], "province": [PROVINCE],
        "target_rate": [TARGET_RATE], "target_deadline": [TARGET_DEADLINE],
        "ledger_cutoff": [LEDGER_CUTOFF],
        "geometry": _to_storage(_multi(np.array([county], dtype=object)), origin),
    })  # fmt: skip
    townships = pd.DataFrame({
        "code": [f"{DEMO_COUNTY}{k + 1:03d}" for k in range(len(TOWNSHIPS))],
        "name": [name for name, _, _ in TOWNSHIPS], "kind": [kind for _, kind, _ in TOWNSHIPS],
        "geometry": _to_storage(township_shapes, origin),
    })  # fmt: skip
    lines = [("river", "清水河", town.river)] + [("road", name, line) for name, line in town.roads]
    context = pd.DataFrame({
        "kind": [k for k, _, _ in lines], "name": [name for _, name, _ in lines],
        "geometry": _to_storage([line for _, _, line in lines], origin),
    })  # fmt: skip
    planned = pd.DataFrame({
        "code": [f"GH-{k + 1:03d}" for k in range(len(areas))],
        "kind": [kind.value for kind, _, _ in areas], "name": [name for _, name, _ in areas],
        "geometry": _to_storage(_multi(np.array([s for _, _, s in areas], dtype=object)), origin),
    })  # fmt: skip
    return {"county": county_frame, "townships": townships, "context": context,
            "planned_areas": planned}  # fmt: skip


def _compound_names(n: int, r: random.Random) -> list[str]:
    """Unique names; about one in ten is a later phase (二期…) of an earlier compound."""
    bases = [head + tail for head in NAME_HEADS for tail in NAME_TAILS]
    r.shuffle(bases)
    phase: dict[int, int] = {}
    names, fresh = [], 0
    for i in range(n):
        if fresh >= len(bases):
            base = i % len(bases)
        elif i > 0 and r.random() < 0.1:
            base = r.randrange(fresh)
        else:
            base, fresh = fresh, fresh + 1
        phase[base] = phase.get(base, 0) + 1
        names.append(bases[base] + _phase_suffix(phase[base]))
    return names


def _parcel_table(plan, lots, owner, rank, world, orphans, township_shapes, township_of,
                  sold_on, blockers, rng) -> pd.DataFrame:  # fmt: skip
    """Codes, recorded areas, land use, rights and land premium of every parcel."""
    shapes = np.concatenate([world, orphans])
    area = shapely.area(shapes)
    count = len(shapes)
    recorded = area * (1 + rng.uniform(-0.004, 0.004, count))
    wrong = np.flatnonzero(np.isin(owner, plan.area_off) & (rank == 0))
    recorded[wrong] = area[wrong] * (
        1 + rng.choice([-1, 1], wrong.size) * rng.uniform(0.032, 0.10, wrong.size)
    )
    # 商服 land on the street front of a few compounds; 划拨 land under a few old ones.
    n = len(lots.at)
    shops = rng.random(n) < 0.12
    land_use = np.where((rank == 0) & shops[owner] & (plan.strips[owner] >= 2), "05", "0701")
    land_use = np.concatenate([land_use, np.full(len(orphans), "0701")])
    premium = {i for i, found in blockers.items() if Blocker.LAND_PREMIUM in found}
    old = np.array([d.year < 2008 for d in sold_on]) & ~np.isin(np.arange(n), list(premium))
    allocated = old & (rng.random(n) < 0.15)
    right = np.where(allocated[owner], "划拨", "出让")
    right = np.concatenate([right, np.full(len(orphans), "出让")])
    year = np.array([sold_on[i].year for i in owner] + [2021] * len(orphans))
    price = (
        (200 + 30 * (year - 2000))
        * rng.uniform(0.8, 1.2, count)
        * np.where(land_use == "05", 1.8, 1)
    )
    due = np.where(right == "出让", area * price, 0.0).round(2)
    unpaid = np.isin(np.concatenate([owner, np.full(len(orphans), -1)]), list(premium))
    paid = np.where(unpaid, due * rng.uniform(0.3, 0.85, count), due).round(2)
    # 宗地代码: district = township, sub-districts are west-to-east bands, numbered from the NW.
    centre = shapely.centroid(shapes)
    x, y = shapely.get_x(centre), shapely.get_y(centre)
    district = np.concatenate([township_of[owner], np.full(len(orphans), -1)])
    for k in np.flatnonzero(district < 0):
        district[k] = next(t for t, s in enumerate(township_shapes) if s.contains(centre[k]))
    sub = np.zeros(count, dtype=int)
    seq = np.zeros(count, dtype=int)
    for t in np.unique(district):
        mine = np.flatnonzero(district == t)
        bands = max(min(9, math.ceil(len(mine) / 60)), math.ceil(len(mine) / 90000))
        by_x = mine[np.argsort(x[mine], kind="stable")]
        sub[by_x] = np.arange(len(mine)) * bands // len(mine) + 1
        for s in range(1, bands + 1):
            band = mine[sub[mine] == s]
            band = band[np.lexsort((x[band], -y[band]))]
            seq[band] = np.arange(1, len(band) + 1)
    codes = [parcel_code(DEMO_COUNTY, int(d) + 1, int(s), "GB", int(q))
             for d, s, q in zip(district, sub, seq, strict=True)]  # fmt: skip
    return pd.DataFrame({
        "code": codes, "recorded_area_m2": recorded.round(2), "land_use": land_use,
        "right_type": right, "premium_due": due, "premium_paid": paid,
        "geometry": _multi(shapes),
    })  # fmt: skip


CLOSE_REASON = "经县化解办验收，按程序销号"


def _leader(lead: str, hard: bool, r: random.Random) -> str:
    """包抓领导: the county head takes half the hardest cases, else the lead's usual leader."""
    if hard and r.random() < 0.5:
        return LEADERS[0]
    return LEADERS[LEADER_OF_LEAD.get(lead, 3)] if r.random() < 0.7 else r.choice(LEADERS[1:])


def _staff(r: random.Random) -> dict[str, list[str]]:
    depts = ("化解办", "住建局", "自然资源局", "税务局", "不动产登记中心")
    return {dept: [_person(r) for _ in range(3)] for dept in depts}


def _ledger(on_ledger, status, blockers, compounds, devs, dev_of, township_of, cut_by, owed,
            land_area, r: random.Random) -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """Ledger rows (one per compound on it) and the events that led to them."""
    staff = _staff(r)
    township_names = [name for name, _, _ in TOWNSHIPS]
    # Plain lists: pandas' .at per row would dominate the run time at 100 000 compounds.
    codes, units_sold, buildings = (
        compounds[c].tolist() for c in ("code", "units_sold", "buildings")
    )
    sold_year = [day.year for day in compounds["sold_on"]]
    dev_status, dev_name = devs["credit_status"].tolist(), devs["name"].tolist()
    width = max(4, len(str(len(on_ledger))))
    rows, events = [], []
    for k, i in enumerate(on_ledger.tolist()):
        state = status[i]
        found = blockers[i]
        main = found[0] if found else None
        lead = BLOCKER_LEAD[main] if main else "住建局"
        units = units_sold[i]
        task = max(1, round(units * r.uniform(0.55, 1.0)))
        first, moved = _units(task, state, r)
        dev = int(dev_of[i])
        price = 200 + 30 * (sold_year[i] - 2000)
        ctx = {
            "units": task, "buildings": buildings[i],
            "premium_owed": owed[i] or land_area[i] * price * r.uniform(0.15, 0.7),
            "dev_status": dev_status[dev], "dev_name": dev_name[dev],
            "cut_by": cut_by.get(i),
        }  # fmt: skip
        opened = _day(HISTORY_START, date(2025, 8, 31), r)
        closed_on = None
        if state == LedgerStatus.CLOSED:
            earliest = opened + timedelta(days=75)
            closed_on = earliest + timedelta(days=int((AS_OF - earliest).days * r.random() ** 0.7))
        hard = main in HARD_BLOCKERS and state in (LedgerStatus.STALLED, LedgerStatus.NOT_STARTED)
        leader = _leader(lead, hard, r)
        row = {
            "compound_code": codes[i], "ledger_no": f"TZ-{k + 1:0{width}d}",
            "units_task": task, "units_first_registered": first, "units_transferred": moved,
            "status": state.value, "blockers": ",".join(b.value for b in found),
            "blocker_note": "；".join(_note(b, ctx, r) for b in found) or "尚未研判",
            "lead_department": lead,
            "cooperating_departments": _departments(found, lead, township_names[township_of[i]]),
            "supervising_leader": leader, "plan": _plan_text(found),
            "task_force_lead": f"{lead} {_person(r)}",
            "deadline": _deadline(state, main, r), "opened_on": opened, "closed_on": closed_on,
            "close_reason": CLOSE_REASON if closed_on and r.random() < 0.1 else None,
        }  # fmt: skip
        rows.append(row)
        history = _history({**row, "status": state, "blocker_list": found}, staff, r)
        events.extend((row["compound_code"], *event) for event in history)
    ledger = pd.DataFrame(rows, columns=list(SCHEMA["ledger"]))
    columns = ["compound_code", "at", "user_name", "action", "changes", "state", "note"]
    return ledger, pd.DataFrame(events, columns=columns)


def _complaints(lots, town, compounds, ledger, blockers, township_of, township_shapes, total,
                missed, open_ground, n_orphans, off_ledger, rng, r) -> pd.DataFrame:  # fmt: skip
    """Complaints: most from ledger compounds still open; `missed` outside every ledger one."""
    township_names = [name for name, _, _ in TOWNSHIPS]
    position = {code: i for i, code in enumerate(compounds["code"])}
    on = [position[c] for c in ledger["compound_code"]]
    weight = np.where(ledger["status"].to_numpy() == "closed", 1.0, 3.0)
    in_ledger = total - missed
    picked = rng.choice(on, size=in_ledger, p=weight / weight.sum()) if on else np.array([], int)
    in_off = min(missed - open_ground, len(off_ledger))
    unseen = rng.choice(off_ledger, size=in_off, replace=False) if in_off else np.array([], int)
    inside = np.concatenate([picked, unseen]).astype(int)
    points = list(_points_in(lots, inside, rng))
    closed_on = dict(zip(ledger["compound_code"], ledger["closed_on"], strict=True))
    codes, names, occupied, buildings = (
        compounds[c].tolist() for c in ("code", "name", "occupied_on", "buildings"))  # fmt: skip
    rows = []
    for k, i in enumerate(inside.tolist()):
        township = township_names[township_of[i]]
        if k < in_ledger:
            day = _day(HISTORY_START, closed_on[codes[i]] or AS_OF, r)
            text = _complaint_text(names[i], township, occupied[i], blockers[i], buildings[i], r)
        else:  # a compound the survey missed: its residents ask why they are left out
            day = _day(date(2025, 9, 1), AS_OF, r)
            text = _missed_text(names[i], township, occupied[i], r)
        rows.append((day, text))
    spare = town.spare[n_orphans : n_orphans + (missed - in_off)]
    for x, y in spare:
        point = Point(x + r.uniform(-0.2, 0.2) * town.cell, y + r.uniform(-0.2, 0.2) * town.cell)
        township = next(t for t, s in enumerate(township_shapes) if s.contains(point))
        points.append(point)
        rows.append(
            (_day(date(2025, 9, 1), AS_OF, r), _open_ground_text(township_names[township], r))
        )
    sources, weights = zip(*COMPLAINT_SOURCES, strict=True)
    frame = pd.DataFrame({
        "received_on": [day for day, _ in rows],
        "source": [r.choices(sources, weights=weights)[0] for _ in rows],
        "text": [text for _, text in rows], "geometry": points,
    })  # fmt: skip
    frame = frame.sort_values("received_on", kind="stable").reset_index(drop=True)
    width = max(4, len(str(len(frame))))
    counters: dict[int, int] = {}
    codes = []
    for day in frame["received_on"]:
        counters[day.year] = counters.get(day.year, 0) + 1
        codes.append(f"TS-{day.year}-{counters[day.year]:0{width}d}")
    frame.insert(0, "code", codes)
    return frame
