"""The demo county's fixed facts and the words its names, notes and people are drawn from."""

import math
import random
from datetime import date, timedelta

from geo.core.crs import gk_epsg
from geo.core.model import (
    Blocker,
    LedgerStatus,
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
GPKG_NAME = "示例县.gpkg"
XLSX_NAME = "示例县化解台账.xlsx"

LAYERS = ("county", "townships", "context", "developers", "compounds", "parcels",
          "compound_parcels", "planned_areas", "complaints", "ledger", "ledger_events")  # fmt: skip


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
