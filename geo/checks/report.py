"""What a parcel-check run reports: the checks, their tolerances, problems and the report."""

import math
from collections import Counter
from dataclasses import dataclass, field, fields
from datetime import datetime

from geo import TitlemapError
from geo.core.crs import zone_of_epsg

NOISE_M2 = 1e-4  # overlaps smaller than 1 cm² are float noise along shared edges
# Below this a tolerance is no tolerance (nothing is measured that finely), and PostgreSQL's
# float arithmetic on it underflows: a tolerance is 0 or at least this.
LEAST_TOLERANCE = 1e-6

# check id → (Chinese, English), in report order.
CHECKS: dict[str, tuple[str, str]] = {
    "parcel_code": ("宗地代码", "parcel code"),
    "no_parcel_code": ("尚无宗地代码", "no parcel code yet"),
    "geometry": ("图形有效性", "valid geometry"),
    "area": ("面积核对", "drawn vs recorded area"),
    "overlap": ("宗地重叠", "overlap with other parcels"),
    "gap": ("宗地间缝隙", "gap between parcels of a compound"),
    "beyond": ("小区超出宗地", "compound beyond its parcels"),
    "planned": ("压占规划道路或绿地", "planned road or green space"),
    "arrears": ("欠缴土地出让金", "land premium arrears"),
    "orphan_parcel": ("宗地未关联小区", "parcel with no compound"),
    "compound_no_parcel": ("小区无宗地", "compound with no parcel"),
    "credit_code": ("开发企业信用代码", "developer credit code"),
    "closing_rule": ("销号不符合本县规则", "closed against the county's rule"),
}
# How each check is computed, for the report's 核查方法 sheet and the parcel page.
CHECK_METHODS = {
    "parcel_code": "按 GB/T 37346 逐位核对：本县行政区划代码、地籍区、地籍子区、宗地特征码、顺序号",
    "no_parcel_code": "勘测定界按地块本地编号（项目-地块编号）导入、尚未赋宗地代码的地块",
    "geometry": "PostGIS ST_IsValid；无效图形按 ST_MakeValid 修复后参与其余核查",
    "area": "图形在本县高斯-克吕格投影下的平面面积与登记面积之差，超过面积容差即不通过",
    "overlap": "与其他宗地的交集面积（ST_Intersection）；不超过重叠容差的碎片忽略并计数",
    "gap": "同一小区各宗地之间不属于任何宗地的土地：被其宗地围住的，或在小区范围内、"
    "窄于缝隙搜索宽度（各宗地合并后先外扩再内缩该宽度的一半可填满）且夹在两宗及以上宗地之间的",
    "beyond": "小区范围减去其宗地（及已报缝隙）后剩余的部分，给出面积、方位和最远超出距离"
    "（该部分中离宗地最远的点到宗地的距离，在高斯-克吕格投影下量算）",
    "planned": "宗地与规划道路、规划绿地的交集面积",
    "arrears": "应缴土地出让金减已缴金额",
    "orphan_parcel": "宗地未与任何小区建立关联",
    "compound_no_parcel": "小区未与任何宗地建立关联",
    "credit_code": "按 GB 32100 核对开发企业统一社会信用代码（含组织机构代码校验码和末位校验码）",
    "closing_rule": "已销号的台账条目按本县销号规则（county.closing_rule）核对："
    "全部转移登记或写明理由、全部完成首次登记，或以县台账记录为准",
}
SIDES = ("北", "东北", "东", "东南", "南", "西南", "西", "西北")
SIDES_EN = ("north", "north-east", "east", "south-east", "south", "south-west", "west",
            "north-west")  # fmt: skip


# -- settings ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckSettings:
    """Tolerances of the parcel checks; every report repeats them."""

    area_tolerance: float = 0.01  # |drawn − recorded| / recorded
    overlap_tolerance_m2: float = 1.0  # overlaps up to this are slivers: ignored and counted
    gap_tolerance_m2: float = 1.0
    gap_width_m: float = 10.0  # gaps narrower than this are searched; wider land is "beyond"
    beyond_tolerance_m2: float = 1.0
    planned_tolerance_m2: float = 1.0
    arrears_tolerance_yuan: float = 0.0

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TitlemapError(f"容差 {item.name} 应为数 / tolerance must be a number")
            if not math.isfinite(value) or value < 0:
                raise TitlemapError(
                    f"容差 {item.name} 应为非负数 / tolerance {item.name} must be ≥ 0: {value!r}"
                )
            if 0 < value < LEAST_TOLERANCE:
                raise TitlemapError(
                    f"容差 {item.name} 应为 0 或不小于 {LEAST_TOLERANCE:g} / tolerance "
                    f"{item.name} must be 0 or at least {LEAST_TOLERANCE:g}: {value!r}"
                )
        if self.area_tolerance >= 1:
            raise TitlemapError(
                f"面积容差是比例，如 0.01 表示 1 % / area_tolerance is a fraction (0.01 = 1 %): "
                f"{self.area_tolerance}"
            )
        if not 0 < self.gap_width_m <= 100:
            raise TitlemapError(
                f"缝隙搜索宽度应在 0–100 m 之间 / gap_width_m must be in (0, 100]: "
                f"{self.gap_width_m}"
            )

    def describe(self) -> list[dict]:
        """Each tolerance with its Chinese and English label, value, unit and words."""
        words = {
            "area_tolerance": ("面积容差（相对登记面积）", "area tolerance, of the recorded area"),
            "overlap_tolerance_m2": ("重叠容差（不超过此面积的碎片忽略并计数）",
                                     "overlap tolerance (slivers up to it ignored, counted)"),
            "gap_tolerance_m2": ("缝隙容差", "gap tolerance"),
            "gap_width_m": ("缝隙搜索宽度（更宽的空地计入超出宗地）",
                            "widest gap searched (wider land counts as beyond)"),
            "beyond_tolerance_m2": ("超出宗地容差", "beyond-parcel tolerance"),
            "planned_tolerance_m2": ("规划冲突容差", "planned-area conflict tolerance"),
            "arrears_tolerance_yuan": ("欠缴容差", "arrears tolerance"),
        }  # fmt: skip
        units = {"area_tolerance": "%", "gap_width_m": "m", "arrears_tolerance_yuan": "元"}
        out = []
        for name, (zh, en) in words.items():
            value = getattr(self, name)
            unit = units.get(name, "m²")
            shown = percent(value, signed=False) if unit == "%" else f"{value:g} {unit}"
            out.append({"name": name, "zh": zh, "en": en, "value": value, "unit": unit,
                        "text": shown})  # fmt: skip
        return out

    def line(self) -> str:
        """The tolerances in one Chinese line, for report headers."""
        return "；".join(f"{t['zh'].split('（')[0]} {t['text']}" for t in self.describe())


# -- results -------------------------------------------------------------------------------------


@dataclass(slots=True)
class Problem:
    """One failed check: what, where, the figure and the reason in words."""

    check: str
    parcel: str | None = None  # 宗地代码
    compound: str | None = None  # 小区编号 (several joined by 、)
    compound_name: str | None = None
    related: list[str] = field(default_factory=list)  # other parcels, planned areas, developer
    value: float | None = None
    unit: str | None = None
    reason: str = ""
    reason_en: str = ""
    lon: float | None = None
    lat: float | None = None
    pieces: list[str] = field(default_factory=list)
    id: str = ""

    @property
    def label(self) -> str:
        return CHECKS[self.check][0]

    def as_dict(self) -> dict:
        return {
            "id": self.id, "check": self.check, "check_label": self.label,
            "parcel": self.parcel, "compound": self.compound,
            "compound_name": self.compound_name, "related": list(self.related),
            "value": self.value, "unit": self.unit, "reason": self.reason,
            "reason_en": self.reason_en, "lon": self.lon, "lat": self.lat,
            "pieces": list(self.pieces),
        }  # fmt: skip


@dataclass
class CheckReport:
    county: str
    county_name: str
    epsg: int
    settings: CheckSettings
    generated_at: datetime
    counts: dict[str, int]
    problems: list[Problem]
    pieces: list[dict]  # GeoJSON features in EPSG:4490
    slivers: dict[str, float]
    timings: dict[str, float] = field(default_factory=dict)
    scope: str = "county"  # or the parcel code, for check_parcel
    workers: int = 1

    def summary(self) -> dict:
        by_check = Counter(p.check for p in self.problems)
        return {
            "county": self.county,
            "county_name": self.county_name,
            "scope": self.scope,
            "gk_epsg": self.epsg,
            "crs": crs_words(self.epsg),
            "storage_epsg": 4490,
            "generated_at": self.generated_at.isoformat(timespec="seconds"),
            "tolerances": {t["name"]: t["value"] for t in self.settings.describe()},
            "tolerance_words": self.settings.describe(),
            "noise_floor_m2": NOISE_M2,
            "checked": self.counts,
            "problems": len(self.problems),
            "problems_by_check": {
                check: {"label": CHECKS[check][0], "count": by_check.get(check, 0)}
                for check in CHECKS
            },
            "parcels_with_problems": len({p.parcel for p in self.problems if p.parcel}),
            "slivers_ignored": self.slivers,
            "seconds": round(self.timings.get("total", 0.0), 3),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "workers": self.workers,
        }

    def to_dict(self) -> dict:
        return {"summary": self.summary(), "problems": [p.as_dict() for p in self.problems]}

    def pieces_geojson(self) -> dict:
        """The problem pieces (overlaps, gaps, land beyond parcels, planned conflicts) as a layer.

        The summary rides along as a foreign member, so the layer alone says how it was made."""
        return {
            "type": "FeatureCollection",
            "name": f"{self.county_name}宗地核查问题图斑",
            "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4490"}},
            "summary": self.summary(),
            "features": self.pieces,
        }


def crs_words(epsg: int) -> str:
    zone, _ = zone_of_epsg(epsg)
    return f"CGCS2000 3 度带高斯-克吕格投影 第 {zone} 带（中央经线 {3 * zone}°E），EPSG:{epsg}"


# -- words ---------------------------------------------------------------------------------------


def side_of(azimuth: float | None) -> tuple[str, str]:
    if azimuth is None:
        return "", ""
    k = int(((math.degrees(azimuth) + 22.5) % 360) // 45)
    return SIDES[k], SIDES_EN[k]


def sqm(value: float) -> str:
    return f"{value:,.1f} m²" if abs(value) >= 10 else f"{value:,.2f} m²"


def yuan(value: float) -> str:
    return f"{value:,.2f} 元"


def percent(value: float, signed: bool = True) -> str:
    return f"{value:+.2%}" if signed else f"{value:.2%}"
