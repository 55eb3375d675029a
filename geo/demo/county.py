"""示例县 (629901): a deterministic fictional county for demos, tests and benchmarks.

`generate(n, seed)` draws a county of `n` compounds (小区) with their parcels (宗地), developers,
planned areas, complaints and an 18-month resolution ledger (化解台账) with its history;
`write` saves it as a GeoPackage (every layer, the non-spatial ones as attribute tables) plus
the ledger in the county's own Excel layout; `read` gets the frames back exactly.

Everything is drawn in metres around the town centre in CGCS2000 Gauss-Krüger zone 35
(EPSG:4544) and transformed to EPSG:4490 at the end; the only randomness is
`numpy.random.default_rng` / `random.Random` seeded from `seed`, so one seed gives one county.

The town is a jittered grid of blocks (streets between them) whose cell shrinks as `n` grows,
so 100 000 compounds still fit inside the county and its planning area.

Planted problems, for the parcel, planning and ledger checks to find (counts at n=150, seed 1):
- compounds with no parcel at all: 3 % of compounds (4);
- compounds reaching 5–20 m beyond their parcels on one side (超出宗地红线): 3 % (4);
- two parcels of one compound overlapping by a 3–8 m strip: 2 % of compounds (3 pairs);
  otherwise a compound's parcels tile its land exactly, without overlap;
- parcels whose recorded area differs from the drawn GK area by 3.2–10 %: 3 % of parcels (9);
  every other parcel's recorded area is its GK area within 0.5 %;
- parcels belonging to no compound, in empty blocks next to the town: 2;
- compounds cut by a planned road or green space: ≈7 % (10); only about two thirds of those on
  the ledger (6 of 9) name `planning_conflict` among their blockers;
- complaints outside every ledger compound (the survey missed them): 4 of 25, three inside
  compounds that are not on the ledger, one in an empty block;
- open ledger entries past their deadline on 2026-11-28 (overdue): about a quarter (16 of 83).
All compounds are occupied by 2024, before the ledger cut-off (2025-06-30), so the
≈15 % of compounds off the ledger are the newer ones (registered normally, 交房即交证) and
those the survey missed; none lies in 城东片区.
"""

import json
import math
import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box

from geo.core.codes import make_credit_code, parcel_code
from geo.core.crs import STORAGE_EPSG, gk_epsg, transformer
from geo.core.model import (
    BLOCKER_LABELS,
    BLOCKER_LEAD,
    Blocker,
    LedgerStatus,
    PlannedAreaKind,
)

DEMO_COUNTY = "629901"
COUNTY_NAME = "示例县"
PROVINCE = "甘肃省"
CENTRE_LON, CENTRE_LAT = 104.1, 35.85
GK_EPSG = gk_epsg(CENTRE_LON)  # 4544: zone 35, no prefix
TARGET_RATE = 0.9
TARGET_DEADLINE = date(2026, 12, 31)
LEDGER_CUTOFF = date(2025, 6, 30)
HISTORY_START = date(2025, 6, 1)
AS_OF = date(2026, 11, 28)  # the ledger's 截至日期: its history ends here
TZ = ZoneInfo("Asia/Shanghai")
GPKG_NAME = "示例县.gpkg"
XLSX_NAME = "示例县化解台账.xlsx"

LAYERS = ("county", "townships", "context", "developers", "compounds", "parcels",
          "compound_parcels", "planned_areas", "complaints", "ledger", "ledger_events")  # fmt: skip


@dataclass
class DemoCounty:
    """The layers of a county, named as in LAYERS; spatial ones in EPSG:4490.

    Types (see SCHEMA): dates are `datetime.date` (None where missing), `ledger_events.at` is
    datetime64[us, Asia/Shanghai], text is pandas `str` except the nullable columns (object,
    None), lists (ledger blockers, cooperating departments) are comma-joined text, and
    `changes` / `state` are JSON text.
    """

    county: gpd.GeoDataFrame
    townships: gpd.GeoDataFrame
    context: gpd.GeoDataFrame
    developers: pd.DataFrame
    compounds: gpd.GeoDataFrame
    parcels: gpd.GeoDataFrame
    compound_parcels: pd.DataFrame
    planned_areas: gpd.GeoDataFrame
    complaints: gpd.GeoDataFrame
    ledger: pd.DataFrame
    ledger_events: pd.DataFrame


# -- column types: generate() and read() both pass every frame through `_conform` -------------

TEXT, TEXT_OR_NONE, INT, FLOAT, DATE, DATE_OR_NONE, MOMENT = (
    "text", "text?", "int", "float", "date", "date?", "moment")  # fmt: skip

SCHEMA: dict[str, dict[str, str]] = {
    "county": {"code": TEXT, "name": TEXT, "province": TEXT, "target_rate": FLOAT,
               "target_deadline": DATE, "ledger_cutoff": DATE},
    "townships": {"code": TEXT, "name": TEXT, "kind": TEXT},
    "context": {"kind": TEXT, "name": TEXT},
    "developers": {"credit_code": TEXT, "name": TEXT, "contact": TEXT, "credit_status": TEXT,
                   "blacklist_reason": TEXT_OR_NONE, "blacklisted_on": DATE_OR_NONE},
    "compounds": {"code": TEXT, "name": TEXT, "address": TEXT, "township_code": TEXT,
                  "developer_credit_code": TEXT, "buildings": INT, "units_sold": INT,
                  "sold_on": DATE, "occupied_on": DATE},
    "parcels": {"code": TEXT, "recorded_area_m2": FLOAT, "land_use": TEXT, "right_type": TEXT,
                "premium_due": FLOAT, "premium_paid": FLOAT},
    "compound_parcels": {"compound_code": TEXT, "parcel_code": TEXT},
    "planned_areas": {"code": TEXT, "kind": TEXT, "name": TEXT},
    "complaints": {"code": TEXT, "received_on": DATE, "source": TEXT, "text": TEXT},
    "ledger": {"compound_code": TEXT, "ledger_no": TEXT, "units_task": INT,
               "units_first_registered": INT, "units_transferred": INT, "status": TEXT,
               "blockers": TEXT, "blocker_note": TEXT, "lead_department": TEXT,
               "cooperating_departments": TEXT, "supervising_leader": TEXT, "plan": TEXT,
               "task_force_lead": TEXT, "deadline": DATE, "opened_on": DATE,
               "closed_on": DATE_OR_NONE, "close_reason": TEXT_OR_NONE},
    "ledger_events": {"compound_code": TEXT, "at": MOMENT, "user_name": TEXT, "action": TEXT,
                      "changes": TEXT, "state": TEXT, "note": TEXT},
}  # fmt: skip
SPATIAL = ("county", "townships", "context", "compounds", "parcels", "planned_areas",
           "complaints")  # fmt: skip
MOMENT_DTYPE = "datetime64[us, Asia/Shanghai]"

# -- words -----------------------------------------------------------------------------------

# (name, kind, seed point in local metres): the two 街道 hold the town, the rest the country.
TOWNSHIPS = (
    ("城关街道", "街道", (-1200.0, 200.0)),
    ("城东街道", "街道", (1800.0, -150.0)),
    ("西川镇", "镇", (-12500.0, -1500.0)),
    ("南山镇", "镇", (3000.0, -10500.0)),
    ("北塬乡", "乡", (4000.0, 10000.0)),
)
NAME_HEADS = ("金色阳光", "锦绣", "滨河", "东方", "盛世", "幸福", "阳光", "康桥", "翠湖", "紫金",
              "御景", "华府", "凤凰", "怡景", "书香", "泰和", "南山", "西川", "清水", "龙城",
              "丝路", "陇上", "金城", "世纪", "水岸", "春天", "香榭", "学府", "枫林", "丽都",
              "嘉禾", "绿洲", "桃李", "锦华", "兴隆", "瑞祥", "祥和", "名仕", "碧水", "翡翠",
              "玉泉", "天河", "银河", "金河", "东湖", "西苑", "北辰", "南湖", "国际", "新世纪",
              "馨悦", "温馨", "和谐", "富康")  # fmt: skip
NAME_TAILS = ("花园", "家园", "名邸", "佳苑", "小区", "华庭", "新城", "公馆", "丽景", "嘉园",
              "雅苑", "府邸", "花城", "美地", "豪庭", "雅居", "苑", "城", "湾", "庭院")  # fmt: skip
ADDRESS_ROADS = ("滨河路", "兴隆大道", "人民路", "解放路", "建设路", "新华街", "文化路",
                 "府前街", "团结路", "长安路", "南关街", "北关街", "西大街", "东大街", "育才路",
                 "和平路")  # fmt: skip
# Developer names: place (with its admin code, which the credit code carries) + brand + form.
DEV_PLACES = (("甘肃", "620000"), ("示例县", DEMO_COUNTY), ("兰州", "620100"),
              ("定西", "621100"), ("天水", "620500"), ("白银", "620400"), ("陕西", "610000"),
              ("陇西", "621122"))  # fmt: skip
DEV_BRAND_1 = "金恒华鑫宏天瑞嘉盛安永兴泰荣鸿德祥福润汇"
DEV_BRAND_2 = "城达府源远成祥禾世居信业辉晟丰和邦悦泽景"
DEV_FORMS = ("房地产开发有限公司", "置业有限公司", "房地产开发有限责任公司", "实业有限公司",
             "建设开发有限公司", "地产有限公司")  # fmt: skip
SURNAMES = "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗郑梁谢宋唐韩冯邓曹彭"
GIVEN_NAMES = ("建国", "娜", "伟", "芳", "志强", "晓燕", "永军", "文斌", "海燕", "国庆", "丽",
               "军", "静", "磊", "秀英", "玉兰", "红梅", "建平", "学军", "爱华", "鹏", "婷",
               "俊杰", "春生", "小红", "明", "霞", "建军", "立新", "文静")  # fmt: skip
LEADERS = ("县委副书记、县长 杨明", "县委常委、常务副县长 刘志强", "副县长 王建国",
           "副县长 陈晓燕", "县委常委、副县长 马海军", "县人大常委会副主任 赵永军")  # fmt: skip
# Which county leader usually takes a lead department's problems (包抓).
LEADER_OF_LEAD = {"自然资源局": 2, "税务局": 1, "住建局": 3}
PARTNERS = {
    Blocker.APPROVALS: ("消防救援大队", "人防办"),
    Blocker.LAND_PREMIUM: ("财政局",),
    Blocker.TAXES: ("财政局",),
    Blocker.DEVELOPER: ("公安局", "司法局"),
    Blocker.MORTGAGE: ("人民法院", "相关银行"),
    Blocker.CONSTRUCTION_DEBT: ("人社局",),
    Blocker.PLANNING_CONFLICT: ("住建局",),
    Blocker.AREA_DISCREPANCY: ("不动产登记中心",),
}
MEASURES = {
    Blocker.APPROVALS: "采取“先办后补”，住建局牵头组织规划、消防、人防联合验收并出具意见，"
    "补办竣工验收备案",
    Blocker.LAND_PREMIUM: "实行“证缴分离”，先行办理不动产登记，自然资源局依法向开发企业追缴"
    "土地出让金及滞纳金",
    Blocker.TAXES: "实行“证缴分离”，税务局对开发企业欠缴税费依法追缴，不影响购房人办证",
    Blocker.DEVELOPER: "开发企业不配合或失联的，由属地政府指定主体代为申请首次登记，"
    "公安、司法部门依法追责",
    Blocker.MORTGAGE: "协调抵押权人分户解押或“带押过户”，法院依法协调解除查封",
    Blocker.CONSTRUCTION_DEBT: "设立工程款共管账户，人社局保障农民工工资，先行办证、后追偿",
    Blocker.PLANNING_CONFLICT: "按现状出具规划核实意见，与规划冲突部分“证罚分离”，其余先行办理",
    Blocker.AREA_DISCREPANCY: "组织补充测绘，核实宗地界址和面积，按实测结果办理变更登记",
}  # fmt: skip
BLOCKER_WEIGHTS = {
    Blocker.APPROVALS: 0.30, Blocker.TAXES: 0.15, Blocker.LAND_PREMIUM: 0.14,
    Blocker.CONSTRUCTION_DEBT: 0.10, Blocker.MORTGAGE: 0.10, Blocker.DEVELOPER: 0.05,
    Blocker.PLANNING_CONFLICT: 0.08, Blocker.AREA_DISCREPANCY: 0.08,
}  # fmt: skip
HARD_BLOCKERS = {Blocker.DEVELOPER: 0.35, Blocker.LAND_PREMIUM: 0.40, Blocker.MORTGAGE: 0.25}
STATUS_SHARES = {
    LedgerStatus.CLOSED: 0.35, LedgerStatus.FIRST_REGISTERED: 0.20,
    LedgerStatus.IN_PROGRESS: 0.25, LedgerStatus.NOT_STARTED: 0.08, LedgerStatus.STALLED: 0.12,
}  # fmt: skip
BANKS = ("农业银行", "建设银行", "工商银行", "甘肃银行", "农村商业银行")
COMPLAINT_SOURCES = (("12345热线", 0.55), ("网络留言", 0.30), ("信访", 0.15))
CN_DIGITS = "零一二三四五六七八九"


def _cn_number(value: int) -> str:
    """Chinese numerals for 1..99, as phase names are written (二期, 十二期)."""
    tens, ones = divmod(value, 10)
    head = "" if tens == 0 else ("十" if tens == 1 else CN_DIGITS[tens] + "十")
    return head + (CN_DIGITS[ones] if ones else "")


def _phase_suffix(phase: int) -> str:
    if phase == 1:
        return ""
    return f"{_cn_number(phase)}期" if phase < 100 else f"第{phase}区"


def _share(count: int, fraction: float, least: int = 0) -> int:
    """round(count × fraction), at least `least` but never more than `count`."""
    return min(count, max(least, round(count * fraction)))


def _quota(total: int, shares: dict) -> dict:
    """Split `total` by `shares` with largest remainders, so the parts add up exactly."""
    raw = {key: total * share for key, share in shares.items()}
    counts = {key: math.floor(value) for key, value in raw.items()}
    left = total - sum(counts.values())
    for key in sorted(raw, key=lambda k: counts[k] - raw[k])[:left]:
        counts[key] += 1
    return counts


def _person(r: random.Random) -> str:
    return r.choice(SURNAMES) + r.choice(GIVEN_NAMES)


def _day(start: date, end: date, r: random.Random) -> date:
    return start + timedelta(days=r.randint(0, (end - start).days))


# -- geometry helpers ------------------------------------------------------------------------


def _multi(geoms: np.ndarray) -> np.ndarray:
    """Each geometry as a MultiPolygon of its polygon parts (slivers of other types dropped)."""
    parts, index = shapely.get_parts(geoms, return_index=True)
    keep = shapely.get_type_id(parts) == 3
    out = shapely.multipolygons(parts[keep], indices=index[keep])
    if len(out) != len(geoms):
        raise ValueError("a geometry lost all its polygon parts")
    return out


def _longest(geom) -> LineString:
    parts = shapely.get_parts(shapely.line_merge(geom) if geom.geom_type != "LineString" else geom)
    return max(parts, key=lambda part: part.length)


def _place(local: np.ndarray, at: np.ndarray, theta: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Move shapes drawn in their own frame ((0,0)–size) to centre `at`, turned by `theta`."""
    coords, index = shapely.get_coordinates(local, return_index=True)
    lx = coords[:, 0] - size[index, 0] / 2
    ly = coords[:, 1] - size[index, 1] / 2
    cos, sin = np.cos(theta[index]), np.sin(theta[index])
    world = np.column_stack(
        [at[index, 0] + cos * lx - sin * ly, at[index, 1] + sin * lx + cos * ly]
    )
    return shapely.set_coordinates(np.array(local, dtype=object, copy=True), world)


def _gk_origin() -> tuple[float, float]:
    # Whole metres, so local coordinates stay readable in a GIS.
    x, y = transformer(STORAGE_EPSG, GK_EPSG).transform(CENTRE_LON, CENTRE_LAT)
    return round(x), round(y)


def _to_storage(geoms, origin: tuple[float, float]) -> np.ndarray:
    """Local metres → GK zone 35 → EPSG:4490 lon/lat, all coordinates in one pyproj call."""
    to_4490 = transformer(GK_EPSG, STORAGE_EPSG)

    def move(xy: np.ndarray) -> np.ndarray:
        lon, lat = to_4490.transform(xy[:, 0] + origin[0], xy[:, 1] + origin[1])
        return np.column_stack([lon, lat])

    return shapely.transform(np.asarray(geoms, dtype=object), move)


# -- the land: county, townships, river, roads, blocks ------------------------------------------


def _county_outline(rng: np.random.Generator) -> Polygon:
    # A wobbly ellipse 40 × 30 km: star-shaped around the centre, so always a valid polygon.
    theta = np.linspace(0, 2 * np.pi, 240, endpoint=False)
    radius = 1 / np.sqrt((np.cos(theta) / 20000) ** 2 + (np.sin(theta) / 15000) ** 2)
    phase = rng.uniform(0, 2 * np.pi, 4)
    wobble = (
        1
        + 0.07 * np.sin(2 * theta + phase[0])
        + 0.05 * np.sin(3 * theta + phase[1])
        + 0.03 * np.sin(7 * theta + phase[2])
        + 0.015 * np.sin(13 * theta + phase[3])
        + rng.normal(0, 0.004, theta.size)
    )
    r = radius * wobble
    return Polygon(np.column_stack([r * np.cos(theta), r * np.sin(theta)]).round(2))


def _township_shapes(county: Polygon, rng: np.random.Generator) -> list[MultiPolygon]:
    """Voronoi cells of the township seats, clipped to the county: an exact partition."""
    seats = np.array([seat for _, _, seat in TOWNSHIPS]) + rng.uniform(-300, 300, (5, 2))
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(seats), extend_to=county.buffer(5000))
    )
    shapes = []
    for x, y in seats:
        cell = next(c for c in cells if c.contains(Point(x, y)))
        shapes.append(_multi(np.array([cell.intersection(county)], dtype=object))[0])
    return shapes


@dataclass
class _Town:
    """The town laid out in local metres: blocks of `cell` metres with streets between them."""

    cell: float
    street: float
    river: LineString
    river_half_width: float
    roads: list[tuple[str, LineString]]
    cells: np.ndarray  # (n, 2) centres of the blocks that hold compounds, nearest first
    spare: np.ndarray  # (k, 2) centres of empty blocks next to the town


def _river(cell: float, county: Polygon, rng: np.random.Generator) -> LineString:
    # 清水河 meanders west to east, a block and a half south of the centre.
    x = np.arange(-26000.0, 26001.0, 50.0)
    phase = rng.uniform(0, 2 * np.pi, 3)
    wave = (
        900 * np.sin(2 * np.pi * x / 21000 + phase[0])
        + 140 * np.sin(2 * np.pi * x / 3700 + phase[1])
        + 40 * np.sin(2 * np.pi * x / 900 + phase[2])
    )
    at_centre = 900 * np.sin(phase[0]) + 140 * np.sin(phase[1]) + 40 * np.sin(phase[2])
    y = -1.5 * cell + wave - at_centre
    return _longest(LineString(np.column_stack([x, y]).round(2)).intersection(county))


def _bent(straight: list[tuple[float, float]], ends: list[tuple[float, float]], rng) -> list:
    """A road straight through the town, wandering between the town and the county's edge."""
    (x0, y0), (x1, y1) = straight
    (ex0, ey0), (ex1, ey1) = ends
    t = np.linspace(0, 1, 7)[1:-1]
    wander = rng.normal(0, 180, (2, t.size))
    before = [(ex0 + (x0 - ex0) * s + wander[0, k], ey0 + (y0 - ey0) * s + wander[1, k])
              for k, s in enumerate(t)]  # fmt: skip
    after = [(x1 + (ex1 - x1) * s + wander[1, k], y1 + (ey1 - y1) * s + wander[0, k])
             for k, s in enumerate(t)]  # fmt: skip
    return [(ex0, ey0), *before, (x0, y0), (x1, y1), *after, (ex1, ey1)]


def _roads(cell: float, reach: float, river: LineString, half_width: float, county: Polygon,
           rng: np.random.Generator) -> list[tuple[str, LineString]]:  # fmt: skip
    """Roads along street lines inside the town (so they run between blocks), bent outside."""
    east = 1.25 * reach + 600
    north = reach + 600
    g309 = _bent([(-east, 2 * cell), (east, 2 * cell)],
                 [(-26000, 2 * cell + 1800), (26000, 2 * cell - 2200)], rng)  # fmt: skip
    s101 = _bent([(-3 * cell, north), (-3 * cell, -north)],
                 [(-3 * cell + 2500, 19000), (-3 * cell - 1800, -19000)], rng)  # fmt: skip
    avenue = [(0.0, -0.9 * reach), (0.0, 0.9 * reach)]
    in_town = _longest(river.intersection(box(-east, -40000, east, 40000)))
    riverside = _longest(in_town.offset_curve(0.55 * half_width))
    lines = [("G309国道", LineString(g309)), ("S101省道", LineString(s101)),
             ("兴隆大道", LineString(avenue)), ("滨河路", riverside)]  # fmt: skip
    return [(name, _longest(line.intersection(county))) for name, line in lines]


def _lay_out_town(n: int, spare: int, county: Polygon, rng: np.random.Generator) -> _Town:
    """Blocks nearest the centre (a noisy ellipse) that keep clear of the river and roads.

    The cell starts at 320 m and shrinks until the county holds n + spare blocks.
    """
    inner = county.buffer(-150)  # room for the planning area's edge outside every compound
    cell = min(320.0, math.sqrt(0.5 * inner.area / (n + spare)))
    phase = rng.uniform(0, 2 * np.pi, 2)
    while True:
        town = _try_town(n, spare, cell, county, inner, phase, rng)
        if town is not None:
            return town
        cell *= 0.92


def _try_town(n, spare, cell, county, inner, phase, rng) -> _Town | None:
    street = max(12.0, 0.08 * cell)
    half = (cell - street) / 2  # a compound stays this close to its block's centre
    river_half = max(35.0, 0.22 * cell)
    reach = 0.6 * cell * math.sqrt(n + spare)
    river = _river(cell, county, rng)
    roads = _roads(cell, reach, river, river_half, county, rng)
    keep_clear = shapely.union_all(
        [river.buffer(river_half)] + [line.buffer(4.0) for _, line in roads]
    )
    minx, miny, maxx, maxy = inner.bounds
    cols = np.arange(math.floor(minx / cell), math.ceil(maxx / cell))
    rows = np.arange(math.floor(miny / cell), math.ceil(maxy / cell))
    col, row = np.meshgrid(cols, rows)
    cx, cy = ((col.ravel() + 0.5) * cell), ((row.ravel() + 0.5) * cell)
    blocks = shapely.box(cx - half, cy - half, cx + half, cy + half)
    shapely.prepare(inner)
    shapely.prepare(keep_clear)
    usable = shapely.contains(inner, blocks) & ~shapely.intersects(keep_clear, blocks)
    if usable.sum() < n + spare:
        return None
    angle = np.arctan2(cy, cx)
    distance = np.hypot(cx / 1.25, cy) * (
        1 + 0.12 * np.sin(3 * angle + phase[0]) + 0.08 * np.sin(5 * angle + phase[1])
    ) + rng.uniform(0, 0.6 * cell, cx.size)
    candidates = np.flatnonzero(usable)
    order = candidates[np.argsort(distance[candidates], kind="stable")]
    centres = np.column_stack([cx, cy])
    return _Town(cell, street, river, river_half, roads, centres[order[:n]],
                 centres[order[n:n + spare]])  # fmt: skip


# -- compounds and parcels: drawn in their own frame, then placed ------------------------------


@dataclass
class _Lots:
    """Each compound's shape in its own frame (origin at a corner) and where it stands."""

    size: np.ndarray  # (n, 2) width, height
    notch: np.ndarray  # (n, 2) fractions cut off the top-right corner (0 for a rectangle)
    at: np.ndarray  # (n, 2) centre
    theta: np.ndarray  # rotation, radians
    local: np.ndarray  # Polygons in the own frame
    world: np.ndarray  # Polygons in local metres


def _outline(size: np.ndarray, notch: np.ndarray) -> np.ndarray:
    """Rectangles, or L-shapes where `notch` cuts off the top-right corner."""
    w, h = size[:, 0], size[:, 1]
    out = np.empty(len(size), dtype=object)
    is_l = notch[:, 0] > 0
    zero = np.zeros(len(size))
    rect = np.stack([np.column_stack(p) for p in ((zero, zero), (w, zero), (w, h), (zero, h))], 1)
    out[~is_l] = shapely.polygons(rect[~is_l])
    if is_l.any():
        nx, ny = w * (1 - notch[:, 0]), h * (1 - notch[:, 1])
        corners = ((zero, zero), (w, zero), (w, ny), (nx, ny), (nx, h), (zero, h))
        ell = np.stack([np.column_stack(p) for p in corners], 1)
        out[is_l] = shapely.polygons(ell[is_l])
    return out


def _draw_lots(town: _Town, rng: np.random.Generator) -> _Lots:
    n = len(town.cells)
    room = town.cell - town.street
    low = min(0.6, max(0.2, 60 / room))  # 60 m sides at the default cell of 320 m
    size = room * rng.uniform(low, 0.95, (n, 2))
    theta = np.where(rng.random(n) < 0.5, 0.0, np.radians(rng.uniform(-12, 12, n)))
    cos, sin = np.abs(np.cos(theta)), np.abs(np.sin(theta))
    span = np.column_stack(
        [size[:, 0] * cos + size[:, 1] * sin, size[:, 0] * sin + size[:, 1] * cos]
    )
    shrink = np.minimum(1.0, room / span.max(axis=1))  # a turned lot must still fit its block
    size = (size * shrink[:, None]).round(2)
    span = span * shrink[:, None]
    at = town.cells + rng.uniform(-1, 1, (n, 2)) * (room - span) / 2
    notch = np.where(rng.random(n)[:, None] < 0.3, rng.uniform(0.3, 0.5, (n, 2)), 0.0)
    local = _outline(size, notch)
    return _Lots(size, notch, at, theta, local, _place(local, at, theta, size))


@dataclass
class _ParcelPlan:
    """Which compounds get how many parcels, and where the planted parcel problems go."""

    strips: np.ndarray  # parcels per compound (0 = none)
    no_parcel: np.ndarray
    beyond: np.ndarray  # compound reaches past its parcels
    overlap: np.ndarray  # two of its parcels overlap
    area_off: np.ndarray  # one of its parcels has a wrong recorded area


def _plan_parcels(lots: _Lots, rng: np.random.Generator) -> _ParcelPlan:
    n = len(lots.size)
    width = lots.size[:, 0]
    strips = np.minimum(rng.integers(1, 4, n), np.clip(width // 25, 1, 3)).astype(int)
    order = rng.permutation(n)
    a, b, c = _share(n, 0.03), _share(n, 0.03), _share(n, 0.02)
    no_parcel, beyond, overlap = order[:a], order[a : a + b], order[a + b : a + b + c]
    strips[no_parcel] = 0
    strips[overlap] = np.maximum(strips[overlap], 2)
    rest = order[a + b + c :]
    area_off = rest[: _share(int(strips.sum()), 0.03)] if len(rest) else rest
    return _ParcelPlan(strips, np.sort(no_parcel), np.sort(beyond), np.sort(overlap),
                       np.sort(area_off))  # fmt: skip


def _strip_edges(plan: _ParcelPlan, lots: _Lots, rng: np.random.Generator):
    """Per parcel: its compound and the x-range of its strip in the compound's own frame."""
    owner = np.repeat(np.arange(len(plan.strips)), plan.strips)
    rank = np.concatenate([np.arange(k) for k in plan.strips]) if len(owner) else owner
    width = lots.size[:, 0].copy()
    cover = width.copy()
    gap = np.minimum(rng.uniform(5, 20, len(plan.beyond)), 0.3 * width[plan.beyond])
    cover[plan.beyond] -= gap  # the compound reaches past its last parcel
    weights = rng.uniform(0.6, 1.4, len(owner))
    start = np.zeros(len(owner))
    stop = np.zeros(len(owner))
    first = np.concatenate([[0], np.cumsum(plan.strips)[:-1]])
    for compound in np.flatnonzero(plan.strips):
        k, i = plan.strips[compound], first[compound]
        edges = np.concatenate([[0], np.cumsum(weights[i : i + k])]) / weights[i : i + k].sum()
        edges = (edges * cover[compound]).round(2)
        start[i : i + k], stop[i : i + k] = edges[:-1], edges[1:]
    stretch = np.zeros(len(owner))
    for compound in plan.overlap:
        i = first[compound]  # the first strip pushes 3–8 m into its neighbour
        next_width = stop[i + 1] - start[i + 1]
        stretch[i] = min(rng.uniform(3, 8), 0.4 * next_width)
    stop = stop + stretch
    # Open ends go 1 m past the outline, so the intersection leaves no sliver there.
    start = np.where(rank == 0, -1.0, start)
    last = rank == plan.strips[owner] - 1
    is_beyond = np.isin(owner, plan.beyond)
    stop = np.where(last & ~is_beyond, width[owner] + 1, stop)
    return owner, rank, start, stop


def _parcel_shapes(plan: _ParcelPlan, lots: _Lots, rng: np.random.Generator):
    owner, rank, start, stop = _strip_edges(plan, lots, rng)
    height = lots.size[owner, 1]
    strips = shapely.box(start, -1.0, stop, height + 1)
    local = shapely.intersection(lots.local[owner], strips)
    local = np.array([shapely.get_parts(g)[0] for g in local], dtype=object)  # one piece each
    world = _place(local, lots.at[owner], lots.theta[owner], lots.size[owner])
    return owner, rank, world


def _empty_block_parcels(town: _Town, count: int, rng: np.random.Generator) -> np.ndarray:
    """Parcels with no compound on them, in the first empty blocks next to the town."""
    room = town.cell - town.street
    size = room * rng.uniform(0.4, 0.9, (count, 2))
    local = _outline(size, np.zeros((count, 2)))
    return _place(local, town.spare[:count], np.zeros(count), size)


# -- planned areas ---------------------------------------------------------------------------


def _tuned(shapes, target: int, lots: _Lots):
    """The first of `shapes` (ordered by preference) whose compound hits are nearest `target`."""
    best, best_miss = None, None
    for shape in shapes:
        shapely.prepare(shape)
        miss = abs(int(shapely.intersects(shape, lots.world).sum()) - target)
        if best_miss is None or miss < best_miss:
            best, best_miss = shape, miss
    return best


def _planned_areas(town: _Town, lots: _Lots, county: Polygon, rng: np.random.Generator):
    """(kind, name, shape) in local metres, plus the x of the 城东片区's western edge."""
    n, cell = len(lots.at), town.cell
    centroids = shapely.centroid(lots.world)
    cx, cy = shapely.get_x(centroids), shapely.get_y(centroids)
    hull = shapely.convex_hull(shapely.multipoints(shapely.get_coordinates(lots.world)))
    planning = hull.buffer(max(2 * cell, 500)).intersection(county.buffer(-20))
    # 城东片区 starts on a street line, so no compound is split by its edge; ≈20 % lie east.
    lines = np.arange(math.floor(cx.min() / cell), math.ceil(cx.max() / cell) + 1)
    east_share = np.array([(cx > k * cell).mean() for k in lines])
    east_x = float(lines[np.argmin(np.abs(east_share - 0.2) - 1e-9 * lines)] * cell)
    minx, miny, maxx, maxy = planning.bounds
    east = box(east_x, miny - 1, maxx + 1, maxy + 1).intersection(planning)
    r = max(1, round(math.sqrt(n / math.pi)))  # the town's radius in blocks
    a, b = max(1, round(0.55 * r)), max(1, round(0.35 * r))
    old_town = shapely.union_all([
        box(-a * cell, -b * cell, max(1, round(0.15 * r)) * cell, b * cell),
        box(-max(1, round(0.3 * r)) * cell, b * cell, 0, (b + max(1, round(0.2 * r))) * cell),
    ]).intersection(planning)  # fmt: skip
    civilised = shapely.union_all([
        box(-cell, -round(0.7 * r) * cell - cell, cell, round(0.7 * r) * cell + cell),
        box(-2 * cell, -2 * cell, 2 * cell, 2 * cell),
    ]).intersection(planning)  # fmt: skip
    areas = [
        (PlannedAreaKind.PLANNING_AREA, "示例县城市规划区", planning),
        (PlannedAreaKind.EAST_DISTRICT, "城东片区", east),
        (PlannedAreaKind.URBAN_RENEWAL, "老城区城市更新片区", old_town),
        (PlannedAreaKind.CIVILISED_CITY, "文明城市创建重点区域", civilised),
    ]
    # Planned roads follow a street but are wider (道路红线 30–40 m) and shifted a little off
    # it, so they clip the compounds beside them; the shift is tuned to cut ≈2.5 % and ≈1.5 %.
    road_x = east_x + (2 if (cx > east_x + 2 * cell).any() else 1) * cell
    road_y = math.floor(np.quantile(cy, 0.2) / cell) * cell
    shifts = [0.0] + [sign * k * 0.025 * cell for k in range(1, 13) for sign in (1, -1)]
    candidates = [
        ("规划道路：东环路", LineString([(road_x, miny), (road_x, maxy)]), 0.025),
        ("规划道路：南环路", LineString([(minx, road_y), (maxx, road_y)]), 0.015),
    ]
    for name, line, share in candidates:
        half_width = rng.uniform(15, 20)
        shapes = [line.offset_curve(s).buffer(half_width, cap_style="flat") for s in shifts]
        road = _tuned(shapes, _share(n, share, 1), lots).intersection(planning)
        areas.append((PlannedAreaKind.PLANNED_ROAD, name, road))
    # 滨河公园 widens the river corridor along the town; its width is tuned to cut ≈2 %.
    riverside = _longest(town.river.intersection(box(cx.min(), -1e6, cx.max(), 1e6)))
    widths = town.river_half_width + np.linspace(0, 0.5 * cell, 21)
    park = _tuned([riverside.buffer(w) for w in widths], _share(n, 0.02, 1), lots)
    areas.append((PlannedAreaKind.GREEN_SPACE, "规划绿地：滨河公园", park.intersection(planning)))
    # 人民公园 sits on a crossing west of the centre and clips the corners of the blocks round it.
    park = Point(-2 * cell, 3 * cell).buffer(0.3 * cell, quad_segs=8).intersection(planning)
    if not park.is_empty:
        areas.append((PlannedAreaKind.GREEN_SPACE, "规划绿地：人民公园", park))
    return areas, east_x


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
        (datetime.combine(day, time(16, r.randint(0, 59)), TZ), patch) for day, patch in closes
    ]
    events = []
    at = datetime.combine(opened, time(r.randint(9, 11), r.randint(0, 59)), TZ)
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
        datetime.combine(first + timedelta(days=day), time(minute // 60, minute % 60), TZ)
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


# -- frames ----------------------------------------------------------------------------------


def _conform(frame: pd.DataFrame, layer: str) -> pd.DataFrame:
    """Column order and types of one layer, the same whether generated or read back."""
    out = pd.DataFrame(index=pd.RangeIndex(len(frame)))
    for column, kind in SCHEMA[layer].items():
        values = frame[column].tolist()
        if kind == TEXT:
            out[column] = pd.Series(values, dtype="str")
        elif kind == TEXT_OR_NONE:
            out[column] = pd.Series(
                [v if isinstance(v, str) else None for v in values], dtype=object
            )
        elif kind == INT:
            out[column] = pd.Series(values, dtype="int64")
        elif kind == FLOAT:
            out[column] = pd.Series(values, dtype="float64")
        elif kind in (DATE, DATE_OR_NONE):
            out[column] = pd.Series([_as_date(v) for v in values], dtype=object)
        else:
            moments = pd.to_datetime(pd.Series(values, dtype=object), format="ISO8601", utc=True)
            out[column] = moments.dt.tz_convert("Asia/Shanghai").astype(MOMENT_DTYPE)
    if layer in SPATIAL:
        geometry = (
            frame.geometry.values if isinstance(frame, gpd.GeoDataFrame) else frame["geometry"]
        )
        return gpd.GeoDataFrame(
            out, geometry=gpd.GeoSeries(list(geometry)).values, crs=STORAGE_EPSG
        )
    return out


def _as_date(value) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value:
        return date.fromisoformat(value[:10])
    return None


# -- generate --------------------------------------------------------------------------------


def generate(n_compounds: int = 150, seed: int = 1) -> DemoCounty:
    """The demo county with `n_compounds` compounds; the same seed gives the same county."""
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

    plan = _plan_parcels(lots, rng[6])
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


# -- files -----------------------------------------------------------------------------------


def write(demo: DemoCounty, folder: Path) -> tuple[Path, Path]:
    """Save every layer to 示例县.gpkg and the ledger to 示例县化解台账.xlsx in `folder`.

    Each file is written under a temporary name and renamed at the end, so a reader never sees
    half a file (the CLI takes an existing GeoPackage as a finished demo).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    gpkg, xlsx = folder / GPKG_NAME, folder / XLSX_NAME
    part = folder / f".{gpkg.stem}.part.gpkg"
    part.unlink(missing_ok=True)
    for layer in LAYERS:
        pyogrio.write_dataframe(_for_file(getattr(demo, layer), layer), part, layer=layer,
                                driver="GPKG")  # fmt: skip
    xlsx_part = folder / f".{xlsx.stem}.part.xlsx"
    write_ledger_xlsx(demo, xlsx_part)
    part.replace(gpkg)
    xlsx_part.replace(xlsx)
    return gpkg, xlsx


def _for_file(frame: pd.DataFrame, layer: str) -> pd.DataFrame:
    """Dates and moments as ISO text: a GeoPackage keeps them exactly, read() turns them back."""
    out = frame.copy()
    for column, kind in SCHEMA[layer].items():
        if kind in (DATE, DATE_OR_NONE):
            out[column] = pd.Series([d.isoformat() if d else None for d in frame[column]],
                                    dtype=object)  # fmt: skip
        elif kind == MOMENT:  # 2025-06-01T10:52:00+08:00, vectorised (isoformat per row is slow)
            text = frame[column].dt.strftime("%Y-%m-%dT%H:%M:%S%z")
            out[column] = (text.str[:-2] + ":" + text.str[-2:]).astype(object)
    return out


def read(folder: Path) -> DemoCounty:
    """The demo county saved by `write` in `folder`, with the frames and types generate() gives."""
    path = Path(folder) / GPKG_NAME
    if not path.exists():
        raise FileNotFoundError(f"没有示例县数据 / no demo county at {path}")
    frames = {
        layer: _conform(
            pyogrio.read_dataframe(path, layer=layer, read_geometry=layer in SPATIAL), layer
        )
        for layer in LAYERS
    }
    return DemoCounty(**frames)


def write_ledger_xlsx(demo: DemoCounty, path: Path) -> Path:
    """The demo ledger as a county keeps it, through the one layout writer (geo.io.ledger_sheet)."""
    from geo.io.ledger_sheet import write_ledger_xlsx as write_layout

    compounds = demo.compounds.set_index("code")
    township = dict(zip(demo.townships["code"], demo.townships["name"], strict=True))
    developer = dict(zip(demo.developers["credit_code"], demo.developers["name"], strict=True))
    frame = demo.ledger.drop(columns=["ledger_no", "blocker_note", "close_reason"]).assign(
        compound_name=lambda f: f.compound_code.map(compounds["name"]),
        township=lambda f: f.compound_code.map(compounds["township_code"]).map(township),
        developer=lambda f: f.compound_code.map(compounds["developer_credit_code"]).map(developer),
    )
    return write_layout(frame, path, COUNTY_NAME, AS_OF)
