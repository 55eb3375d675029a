"""The demo county's records: developers, the ledger and its history, complaints."""

import json
import random
from datetime import date, datetime, time, timedelta

import numpy as np
import pandas as pd
import shapely

from geo.core.codes import make_credit_code
from geo.core.dates import BEIJING
from geo.core.model import (
    BLOCKER_LABELS,
    BLOCKER_LEAD,
    Blocker,
    LedgerStatus,
)
from geo.demo.facts import (
    ADDRESS_ROADS,
    AS_OF,
    BANKS,
    BLOCKER_WEIGHTS,
    DEV_BRAND_1,
    DEV_BRAND_2,
    DEV_FORMS,
    DEV_PLACES,
    HARD_BLOCKERS,
    MEASURES,
    PARTNERS,
    STATUS_SHARES,
    SURNAMES,
    TARGET_DEADLINE,
    _day,
    _quota,
    _share,
)
from geo.demo.land import _Lots, _place

# -- developers ----------------------------------------------------------------------------


def _developers(count: int, rng: np.random.Generator, r: random.Random) -> pd.DataFrame:
    brands = [a + b for a in DEV_BRAND_1 for b in DEV_BRAND_2]
    combos = len(DEV_PLACES) * len(brands) * len(DEV_FORMS)
    picks = rng.choice(combos, size=count, replace=False)
    org_numbers = rng.choice(90_000_000, size=count, replace=False) + 10_000_000
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    rows, used = [], set()
    for pick, number in zip(picks.tolist(), org_numbers.tolist(), strict=True):
        place, rest = divmod(pick, len(brands) * len(DEV_FORMS))
        brand, form = divmod(rest, len(DEV_FORMS))
        name_place, admin = DEV_PLACES[place]
        # Newer registrations carry "MA" organisation codes; older ones eight digits. An MA
        # code keeps only six digits, so where two would meet the digits are kept instead.
        org8 = (
            f"{number:08d}"
            if r.random() < 0.5
            else "MA" + "".join(alphabet[int(d) * 3 % 31] for d in f"{number:08d}"[2:])
        )
        if (admin, org8) in used:
            org8 = f"{number:08d}"
        used.add((admin, org8))
        phone = f"1{r.choice('35789')}{r.randint(0, 999_999_999):09d}"
        rows.append({
            "credit_code": make_credit_code(admin, org8),
            "name": name_place + brands[brand] + DEV_FORMS[form],
            "contact": f"{r.choice(SURNAMES)}{r.choice(('经理', '总', '主任'))} {phone}",
            "credit_status": "normal", "blacklist_reason": None, "blacklisted_on": None,
        })  # fmt: skip
    frame = pd.DataFrame(rows)
    if frame["credit_code"].duplicated().any():  # numbers are distinct: never
        raise ValueError("duplicate developer credit code")
    return frame


def _mark_bad_developers(devs: pd.DataFrame, r: random.Random) -> tuple[list[int], list[int]]:
    count = len(devs)
    chosen = r.sample(range(count), _share(count, 0.1) + _share(count, 0.05))
    blacklisted, unreachable = chosen[: _share(count, 0.1)], chosen[_share(count, 0.1) :]
    reasons = ("拒不配合办理不动产首次登记，在建工程抵押未解除",
               "欠缴土地出让金，经多次催缴拒不补缴",
               "拖欠工程款和农民工工资，被人民法院列为失信被执行人",
               "承诺“交房即交证”后拒不履行办证义务")  # fmt: skip
    for i in blacklisted:
        devs.at[i, "credit_status"] = "blacklisted"
        devs.at[i, "blacklist_reason"] = r.choice(reasons)
        devs.at[i, "blacklisted_on"] = _day(date(2023, 3, 1), date(2026, 10, 31), r)
    for i in unreachable:
        devs.at[i, "credit_status"] = "unreachable"
    return sorted(blacklisted), sorted(unreachable)


# -- the ledger ------------------------------------------------------------------------------


def _statuses(ledger: np.ndarray, east: np.ndarray, r: random.Random) -> dict[int, LedgerStatus]:
    """Status per ledger compound: the county-wide mix, with 城东片区 mostly stuck."""
    counts = _quota(len(ledger), STATUS_SHARES)
    in_east = [int(i) for i in ledger if east[i]]
    r.shuffle(in_east)
    hard = counts[LedgerStatus.STALLED] + counts[LedgerStatus.NOT_STARTED]
    east_hard = min(round(0.75 * len(in_east)), hard)
    east_stalled = min(counts[LedgerStatus.STALLED], round(0.6 * east_hard))
    east_not_started = min(counts[LedgerStatus.NOT_STARTED], east_hard - east_stalled)
    east_stalled = east_hard - east_not_started
    status: dict[int, LedgerStatus] = {}
    for k, i in enumerate(in_east[:east_hard]):
        status[i] = LedgerStatus.STALLED if k < east_stalled else LedgerStatus.NOT_STARTED
    counts[LedgerStatus.STALLED] -= east_stalled
    counts[LedgerStatus.NOT_STARTED] -= east_not_started
    pool = [s for s in STATUS_SHARES for _ in range(counts[s])]
    r.shuffle(pool)
    rest = [int(i) for i in ledger if int(i) not in status]
    return status | dict(zip(rest, pool, strict=True))


def _assign_developers(n: int, status: dict[int, LedgerStatus], bad: list[int], normal: list[int],
                       r: random.Random) -> np.ndarray:  # fmt: skip
    """Blacklisted or unreachable developers own stuck compounds; the rest is shared out."""
    owner = np.full(n, -1)
    stuck = [i for i, s in status.items() if s in (LedgerStatus.STALLED, LedgerStatus.NOT_STARTED)]
    r.shuffle(stuck)
    budget = int(0.6 * len(stuck))
    taken = 0
    for dev in bad:
        take = min(r.randint(1, 4), budget - taken)
        if take <= 0:
            break
        owner[stuck[taken : taken + take]] = dev
        taken += take
    free = [i for i in range(n) if owner[i] < 0]
    r.shuffle(free)
    pool = normal or bad
    for k, i in enumerate(free):
        owner[i] = pool[k] if k < len(pool) else r.choice(pool)
    return owner


def _blockers(state: LedgerStatus, east: bool, bad_dev: bool, cut: bool, off: bool,
              r: random.Random) -> list[Blocker]:  # fmt: skip
    """Blocker codes, main first: hard ones in 城东片区, `developer` for bad developers."""
    if state == LedgerStatus.NOT_STARTED and not (east or bad_dev) and r.random() < 0.35:
        return []  # not yet analysed (未研判)
    if bad_dev:
        main = Blocker.DEVELOPER
    elif east and state in (LedgerStatus.STALLED, LedgerStatus.NOT_STARTED):
        main = r.choices(list(HARD_BLOCKERS), weights=list(HARD_BLOCKERS.values()))[0]
    else:
        main = r.choices(list(BLOCKER_WEIGHTS), weights=list(BLOCKER_WEIGHTS.values()))[0]
    found = {main}
    for _ in range(r.choices((0, 1, 2), weights=(0.4, 0.4, 0.2))[0]):
        found.add(r.choices(list(BLOCKER_WEIGHTS), weights=list(BLOCKER_WEIGHTS.values()))[0])
    if cut and r.random() < 0.65:
        found.add(Blocker.PLANNING_CONFLICT)
    if off and r.random() < 0.5:
        found.add(Blocker.AREA_DISCREPANCY)
    return [main] + [b for b in Blocker if b in found and b != main]


def _units(task: int, state: LedgerStatus, r: random.Random) -> tuple[int, int]:
    """(first registered, transferred): transferred ≤ first ≤ task, as the status implies."""
    if state == LedgerStatus.CLOSED:
        return task, task
    if state == LedgerStatus.FIRST_REGISTERED:
        return task, int(task * r.uniform(0.1, 0.85))
    if state == LedgerStatus.NOT_STARTED:
        return 0, 0
    share = r.uniform(0.1, 0.8) if state == LedgerStatus.IN_PROGRESS else r.uniform(0.05, 0.4)
    first = 0 if r.random() < 0.35 else min(task - 1, int(task * share))
    return first, int(first * r.uniform(0, 0.6))


def _note(blocker: Blocker, ctx: dict, r: random.Random) -> str:
    if blocker == Blocker.LAND_PREMIUM:
        return f"欠缴土地出让金约 {max(1, round(ctx['premium_owed'] / 1e4))} 万元"
    if blocker == Blocker.TAXES:
        return f"开发企业欠缴土地增值税、契税等约 {round(ctx['units'] * r.uniform(0.8, 3))} 万元"
    if blocker == Blocker.APPROVALS:
        missing = r.sample(("未办理竣工验收备案", "消防验收未通过", "人防工程未验收",
                            "规划核实未办理", "施工许可手续缺失"), r.randint(1, 2))  # fmt: skip
        return "，".join(missing)
    if blocker == Blocker.DEVELOPER:
        if ctx["dev_status"] == "unreachable":
            return f"{ctx['dev_name']}已失联，法定代表人无法联系"
        if ctx["dev_status"] == "blacklisted":
            return f"{ctx['dev_name']}已列入失信名单，拒不配合办理首次登记"
        return "开发企业擅自变更规划、违规预售"
    if blocker == Blocker.MORTGAGE:
        if r.random() < 0.3:
            return "土地使用权被人民法院查封"
        return f"在建工程抵押给{r.choice(BANKS)}未解除，涉及 {max(1, ctx['units'] // 3)} 套"
    if blocker == Blocker.CONSTRUCTION_DEBT:
        return f"拖欠工程款约 {round(ctx['units'] * r.uniform(1, 4))} 万元，施工单位留置部分房屋"
    if blocker == Blocker.PLANNING_CONFLICT:
        if ctx["cut_by"]:
            return f"{r.randint(1, max(1, ctx['buildings']))}号楼部分压占{ctx['cut_by']}"
        return "现状容积率超出规划指标"
    return "宗地实测面积与登记面积不符" if r.random() < 0.5 else "部分楼栋超出宗地红线"


def _departments(blockers: list[Blocker], lead: str, township: str) -> str:
    named: list[str] = []
    for blocker in blockers:
        for dept in (BLOCKER_LEAD[blocker], *PARTNERS[blocker]):
            if dept != lead and dept not in named:
                named.append(dept)
    return ",".join([*named, township])


def _plan_text(blockers: list[Blocker]) -> str:
    if not blockers:
        return "待研判分析后制定“一小区、一方案、一专班”化解方案"
    steps = "；".join(MEASURES[b] for b in blockers)
    fees = {Blocker.LAND_PREMIUM, Blocker.TAXES, Blocker.PLANNING_CONFLICT} & set(blockers)
    tail = "；办证后对开发企业后追、后缴、后罚" if fees else ""
    return f"一小区、一方案、一专班：{steps}{tail}。"


def _deadline(state: LedgerStatus, main: Blocker | None, r: random.Random) -> date:
    if state == LedgerStatus.CLOSED:
        return r.choice((date(2025, 12, 31), date(2026, 6, 30), date(2026, 12, 31)))
    if r.random() < 0.25:
        return r.choice((date(2026, 6, 30), date(2026, 9, 30)))  # overdue on AS_OF
    if state == LedgerStatus.STALLED and main in HARD_BLOCKERS and r.random() < 0.5:
        return date(2027, 6, 30)
    return TARGET_DEADLINE


# -- the ledger's history --------------------------------------------------------------------


def _steps(total: int, most: int, r: random.Random) -> list[int]:
    """Running totals rising to `total` in up to `most` steps."""
    if total <= 0:
        return []
    k = min(total, r.randint(1, most))
    return [*sorted(r.sample(range(1, total), k - 1)), total]


def _state_json(state: dict) -> str:
    return json.dumps(state, ensure_ascii=False)


def _history(entry: dict, staff: dict[str, list[str]], r: random.Random) -> list[tuple]:
    """Events (at, user, action, changes, state, note) that lead from nothing to `entry`."""
    final = entry["status"]
    blockers = entry["blocker_list"]
    lead = entry["lead_department"]
    late_blocker = len(blockers) >= 2 and r.random() < 0.12
    deadline = entry["deadline"]
    first_deadline = deadline
    if deadline > date(2025, 12, 31) and r.random() < 0.15:
        first_deadline = date(2025, 12, 31)  # extended later (申请延期)
    state = {
        "status": LedgerStatus.NOT_STARTED.value, "units_task": entry["units_task"],
        "units_first_registered": 0, "units_transferred": 0,
        "blockers": [b.value for b in blockers[: -1 if late_blocker else None]],
        "lead_department": lead, "deadline": first_deadline.isoformat(), "closed_on": None,
    }  # fmt: skip
    who = {dept: f"{dept} {r.choice(names)}" for dept, names in staff.items()}
    office, registry = who["化解办"], who["不动产登记中心"]
    patches: list[tuple[str, dict, str, str]] = []
    if final != LedgerStatus.NOT_STARTED:
        patches.append(
            ("update", {"status": "in_progress"}, "召开专班推进会，制定化解方案", who[lead])
        )
    done = 0
    for value in _steps(entry["units_first_registered"], 3, r):
        change: dict = {"units_first_registered": value}
        if value == entry["units_task"] and final in (
            LedgerStatus.FIRST_REGISTERED,
            LedgerStatus.CLOSED,
        ):
            change["status"] = "first_registered"
        patches.append(
            ("update", change, f"完成 {value - done} 套首次登记，累计 {value} 套", registry)
        )
        done = value
    done = 0
    most = 6 if entry["units_transferred"] >= 30 else 2
    for value in _steps(entry["units_transferred"], most, r):
        note = f"新增转移登记 {value - done} 套，累计 {value} 套"
        patches.append(("update", {"units_transferred": value}, note, registry))
        done = value
    if final == LedgerStatus.STALLED:
        reason = {Blocker.DEVELOPER: "开发企业失联，首次登记申请主体无法落实，工作停滞",
                  Blocker.LAND_PREMIUM: "开发企业无力补缴土地出让金，证缴分离方案待县政府研究",
                  Blocker.MORTGAGE: "抵押权人不同意解押，协调未果"}  # fmt: skip
        note = reason.get(blockers[0] if blockers else None, "问题复杂，暂无实质进展")
        patches.append(("update", {"status": "stalled"}, note, who[lead]))
    if late_blocker:
        note = f"研判发现新问题：{BLOCKER_LABELS[blockers[-1]]}"
        extra = ("update", {"blockers": [b.value for b in blockers]}, note, who[lead])
        patches.insert(r.randint(0, len(patches)), extra)
    if first_deadline != deadline:
        note = f"申请延期，完成时限调整为{_cn_date(deadline)}"
        extra = ("update", {"deadline": deadline.isoformat()}, note, office)
        patches.insert(r.randint(0, len(patches)), extra)
    opened = entry["opened_on"]
    closes: list[tuple[date, tuple]] = []
    last_day = AS_OF
    if final == LedgerStatus.CLOSED:
        closed_on = entry["closed_on"]
        close = ("close", {"status": "closed", "closed_on": closed_on.isoformat()},
                 f"经验收，{entry['units_task']} 套全部办理转移登记，予以销号", office)  # fmt: skip
        if (closed_on - opened).days >= 150 and r.random() < 0.08:
            early = opened + timedelta(days=r.randint(60, (closed_on - opened).days - 60))
            reopen = ("reopen", {"status": "first_registered", "closed_on": None},
                      "群众反映部分房屋登记信息有误，重新挂账核查", office)  # fmt: skip
            first_close = (close[0], {**close[1], "closed_on": early.isoformat()}, close[2], office)
            back = early + timedelta(days=r.randint(5, 30))
            closes = [(early, first_close), (back, reopen)]
            last_day = early - timedelta(days=1)
        else:
            last_day = closed_on - timedelta(days=1)
        closes.append((closed_on, close))
    moments = _moments(opened + timedelta(days=2), last_day, len(patches), r)
    timeline = list(zip(moments, patches, strict=True))
    timeline += [
        (datetime.combine(day, time(16, r.randint(0, 59)), BEIJING), patch) for day, patch in closes
    ]
    events = []
    at = datetime.combine(opened, time(r.randint(9, 11), r.randint(0, 59)), BEIJING)
    changes = {key: [None, value] for key, value in state.items() if value is not None}
    events.append((at, office, "open", json.dumps(changes, ensure_ascii=False),
                   _state_json(state), "摸排纳入化解台账"))  # fmt: skip
    for moment, (action, change, note, user) in timeline:
        at = max(moment, at + timedelta(minutes=1))
        diff = {key: [state[key], value] for key, value in change.items() if state[key] != value}
        state = {**state, **change}
        events.append(
            (at, user, action, json.dumps(diff, ensure_ascii=False), _state_json(state), note)
        )
    return events


def _moments(first: date, last: date, count: int, r: random.Random) -> list[datetime]:
    """`count` sorted office-hour moments between two days."""
    span = max(0, (last - first).days)
    picks = sorted((r.randint(0, span), r.randint(8 * 60 + 30, 17 * 60 + 45)) for _ in range(count))
    return [
        datetime.combine(first + timedelta(days=day), time(minute // 60, minute % 60), BEIJING)
        for day, minute in picks
    ]


def _cn_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


# -- complaints ------------------------------------------------------------------------------

REASON_WORDS = {
    Blocker.DEVELOPER: "开发商已经找不到人了",
    Blocker.LAND_PREMIUM: "开发商欠着土地出让金",
    Blocker.MORTGAGE: "开发商把土地抵押给银行一直没解押",
    Blocker.TAXES: "开发商欠税",
    Blocker.APPROVALS: "竣工验收手续没办完",
    Blocker.CONSTRUCTION_DEBT: "开发商欠施工队工程款",
}


def _complaint_text(name: str, township: str, occupied: date, blockers: list[Blocker],
                    buildings: int, r: random.Random) -> str:  # fmt: skip
    years = max(1, AS_OF.year - occupied.year)
    reason = next((REASON_WORDS[b] for b in blockers if b in REASON_WORDS), "手续不全")
    templates = (
        f"我是{name}业主，{occupied.year}年交房入住，至今{years}年一直办不下不动产权证书，"
        "孩子上学、落户都受影响，请求政府尽快解决。",
        f"{township}{name}{r.randint(1, max(1, buildings))}号楼多户居民反映：{reason}，"
        "导致房产证办不下来，要求有关部门协调。",
        f"反映{name}办证难问题：契税和维修基金早就交了，房本到现在还拿不到，多次找开发商无果。",
        f"{name}住户咨询：听说县上在集中化解办证难，我们小区什么时候能拿到证？",
    )
    return r.choice(templates)


def _missed_text(name: str, township: str, occupied: date, r: random.Random) -> str:
    templates = (
        f"{township}{name}业主反映：{occupied.year}年入住至今没有房产证，县上集中化解办证难，"
        "我们小区却没有纳入台账，也没人来摸排过，请求核查。",
        f"我是{name}的住户，买房{max(1, AS_OF.year - occupied.year)}年了房本一直办不下来，"
        "问了社区说不在化解名单上，请问该找哪个部门？",
    )
    return r.choice(templates)


def _open_ground_text(township: str, r: random.Random) -> str:
    years = r.randint(5, 15)
    return (
        f"{township}{r.choice(ADDRESS_ROADS)}附近一栋住宅楼的住户反映：买房{years}年了一直没有"
        "房产证，楼没有物业，也不知道开发商是谁，请求核查。"
    )


def _points_in(lots: _Lots, which: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A point in each compound's lower-left quarter, which no L-notch reaches."""
    u = rng.uniform(0.1, 0.5, (len(which), 2))
    local = shapely.points(u * lots.size[which])
    return _place(local, lots.at[which], lots.theta[which], lots.size[which])
