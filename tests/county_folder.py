"""The folder a land office hands over for 柳川县 (629915), a county the demo generator never made.

Each office wrote its own files its own way, as they come in practice:

- 县界/柳川县行政区界线.geojson — the boundary, lon/lat, 名称 and 行政区划代码;
- 住建局/小区.zip — a GBK Shapefile with its .cpg and .prj, in a sub-folder, in the
  Gauss-Krüger zone without prefix: 项目编号, 项目名称, 开发企业 (one company written twice,
  once with full-width brackets and 有限公司), 统一社会信用代码 (cut by the .dbf), 所属乡镇 by
  name, 已售套数, 交房日期 as 2016年5月20日;
- 自然资源局/宗地.gpkg — parcels in the zone with the zone number in front (EPSG:4523):
  宗地代码, 宗地面积（公顷）, 地类, 出让金 in 万元, 所属小区; and a second layer, 乡镇街道
  (乡镇代码, 乡镇名称);
- 自然资源局/勘测定界/滨河安置小区界址点.txt — a GBK boundary TXT numbering its plots 1 and 2;
- 规划局/城区规划片区.geojson — a planner's file: 名称 and 类型 in the county's words, no codes;
- 信访局/投诉工单.csv — GBK, a title line, 工单编号 … 经度/纬度, a 制表人 line under it;
- 住建局/柳川县登记难问题化解台账（11月）.xlsx — a title row, a date row, a two-row merged header
  (登记进展 over 已办首次登记套数 / 已办转移登记套数), the county's own status and blocker words,
  a 开发企业 column, a 合计 row and a signature line;
- 住建局/房地产开发企业失信名单.xlsx — a title row, 企业名称, 统一社会信用代码, 失信原因,
  列入日期 (a date cell, 2025年3月15日 typed as text, 2023/6/30), 联系人, 联系电话, a 制表 line;
- and what else lies in such a folder: README.txt, an Excel lock file ~$…, .DS_Store, Thumbs.db.

`build(folder)` writes it and returns the facts the tests check against (`Facts`).
"""

import json
import zipfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import geopandas as gpd
import openpyxl
import pyogrio
import shapely
from pyproj import Transformer
from shapely.geometry import Polygon, box, mapping

from geo.core.codes import make_credit_code

CODE, NAME = "629915", "柳川县"
GK, GK_PREFIXED = 4544, 4523  # zone 35, central meridian 105°E: without and with the prefix
TO_GK = Transformer.from_crs(4490, GK, always_xy=True)
TO_LONLAT = Transformer.from_crs(GK, 4490, always_xy=True)
X0, Y0 = (round(v) for v in TO_GK.transform(104.4, 36.0))  # 柳川县城, in GK metres

JINCHENG_CODE = make_credit_code(CODE, "J1234567")  # 金城房地产开发有限公司
NANSHAN_CODE = make_credit_code("620102", "N7654321")  # 南山建设集团, registered in 兰州
HONGYUN_CODE = make_credit_code(CODE, "H2468024")  # 鸿运置业, on the blacklist only

# (code, name, developer as written, credit code, township, sold, 交房日期, dx, dy) in GK metres
COMPOUNDS = [
    ("LC-001", "柳川花园", "柳川置业（兰州）有限公司", "", "城关镇", 120, "2016年5月20日", 0, 0),
    ("LC-002", "河东家园", "柳川置业(兰州)", "", "河东街道", 86, "2017年9月1日", 300, 0),
    ("LC-003", "金城雅苑", "金城房地产开发有限公司", JINCHENG_CODE, "城关镇", 240,
     "2015年12月30日", 600, 0),
    ("LC-004", "南山小区", "南山建设集团有限公司", "", "柳林乡", 64, "2018年6月18日", 900, 0),
    ("LC-005", "滨河安置小区", "柳川县城市建设投资有限公司", "", "河东街道", 150, "2014年3月1日",
     0, 400),
    ("LC-006", "幸福里", "", "", "城关镇", 40, "2013年10月1日", 300, 400),
]  # fmt: skip
TOWNSHIPS = [("629915100", "城关镇", -9000), ("629915001", "河东街道", -3000),
             ("629915200", "柳林乡", 3000)]  # fmt: skip
# (name, kind as the planner wrote it, dx, dy, width, height)
PLANNED = [
    ("老城更新片区", "城市更新", -200, -200, 800, 400),
    ("滨河路", "规划道路", -200, 300, 1400, 40),
    ("东湖片区", "片区", 800, -600, 600, 500),
    ("火车站周边", "综合整治", 1500, 800, 400, 400),  # a kind no vocabulary knows
]
# (工单编号, 受理日期, 来源, 投诉内容, the compound it is about)
COMPLAINTS = [
    ("GD20261101001", "2026/11/1", "12345热线", "柳川花园交房多年未办证", "LC-001"),
    ("GD20261103017", "2026年11月3日", "信访", "南山小区开发商失联，无法办理首次登记", "LC-004"),
    ("GD20261110052", "2026-11-10", "网络留言", "滨河安置小区何时能拿到不动产权证", "LC-005"),
]
# 失信名单: (企业名称, 统一社会信用代码, 失信原因, 列入日期, 联系人, 联系电话)
BLACKLIST = [
    ("南山建设集团有限公司", NANSHAN_CODE, "拒不配合办理首次登记", "2025年3月15日", "张伟",
     "13909310001"),
    ("金城房地产开发有限公司", JINCHENG_CODE, "拖欠工程款，在建工程抵押未解除",
     date(2024, 11, 2), "李强", "0931-8123456"),
    ("鸿运置业有限公司", HONGYUN_CODE, "一房多卖", "2023/6/30", None, "13893100002"),
]  # fmt: skip

# The ledger as the county keeps it: (name, code, 开发企业, task, first, transferred, 化解进度,
# 主要卡点) — statuses and blockers in its own words.
LEDGER = [
    ("柳川花园", "LC-001", "柳川置业（兰州）有限公司", 100, 60, 20, "正在办理", "未竣工验收"),
    ("河东家园", "LC-002", "柳川置业(兰州)", 80, 80, 30, "正在办理",
     "消防验收未通过、规划手续不全"),
    ("金城雅苑", "LC-003", "金城房地产开发有限公司", 200, 200, 200, "已化解", "无"),
    ("南山小区", None, "南山建设集团有限公司", 60, 0, 0, "未启动", "开发商跑路"),
    ("幸福里", "LC-006", "幸福房地产开发有限公司", 40, 40, 10, "基本完成", "历史遗留问题"),
]  # fmt: skip
TOTALS = {"units_task": 480, "units_first_registered": 380, "units_transferred": 260}
LEDGER_FILE = "住建局/柳川县登记难问题化解台账（11月）.xlsx"
TOP = ["序号", "项目名称", "项目编号", "所在乡镇", "开发企业", "问题房屋套数", "登记进展", None,
       "化解进度", "主要卡点", "牵头单位", "备注"]  # fmt: skip
SUB = {7: "已办首次登记套数", 8: "已办转移登记套数"}  # 1-based columns under 登记进展
SIGNATURE = "填表人：王芳　　审核人：赵强　　填表日期：2026年11月30日"

# Where each file goes (onboarding's order is by layer, then by name).
EXPECTED = {
    "县界/柳川县行政区界线.geojson": "boundary",
    "自然资源局/宗地.gpkg:乡镇街道": "townships",
    "住建局/房地产开发企业失信名单.xlsx": "developers",
    "住建局/小区.zip/小区/柳川县小区.shp": "compounds",
    "自然资源局/勘测定界/滨河安置小区界址点.txt": "parcels",
    "自然资源局/宗地.gpkg:宗地": "parcels",
    "规划局/城区规划片区.geojson": "planned",
    "信访局/投诉工单.csv": "complaints",
    LEDGER_FILE: "ledger",
}
UNPLACED = ("README.txt",)
IGNORED = ("住建局/~$柳川县登记难问题化解台账（11月）.xlsx", ".DS_Store", "住建局/Thumbs.db")


@dataclass
class Facts:
    """What the folder holds, for the tests to check against."""

    folder: Path
    ledger_rows: dict[str, int] = field(default_factory=dict)  # compound name → Excel row
    total_row: int = 0


def gk_box(dx: float, dy: float, width: float = 80, height: float = 60) -> Polygon:
    return box(X0 + dx, Y0 + dy, X0 + dx + width, Y0 + dy + height)


def lonlat(shape):
    return shapely.transform(shape, lambda xy: list(zip(*TO_LONLAT.transform(*xy.T), strict=True)))


def _geojson(path: Path, features: list[tuple[dict, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": props, "geometry": mapping(lonlat(shape))}
        for props, shape in features]}  # fmt: skip
    path.write_text(json.dumps(body, ensure_ascii=False, indent=1), "utf-8")


def boundary(folder: Path) -> None:
    outline = gk_box(-12000, -10000, 24000, 20000)
    _geojson(folder / "县界/柳川县行政区界线.geojson",
             [({"名称": NAME, "行政区划代码": CODE}, outline)])  # fmt: skip


def compounds_zip(folder: Path, rows=COMPOUNDS) -> None:
    """A GIS office's zip: 小区/柳川县小区.shp with .shx, .dbf (GBK), .cpg and .prj."""
    work = folder / "_shp"
    work.mkdir(parents=True, exist_ok=True)
    frame = gpd.GeoDataFrame(
        {"项目编号": [r[0] for r in rows], "项目名称": [r[1] for r in rows],
         "开发企业": [r[2] for r in rows], "统一社会信用代码": [r[3] for r in rows],
         "所属乡镇": [r[4] for r in rows], "已售套数": [r[5] for r in rows],
         "交房日期": [r[6] for r in rows]},
        geometry=[gk_box(r[7], r[8]) for r in rows], crs=GK,
    )  # fmt: skip
    pyogrio.write_dataframe(frame, work / "柳川县小区.shp", driver="ESRI Shapefile", encoding="GBK")
    target = folder / "住建局/小区.zip"
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w") as archive:
        for part in sorted(work.iterdir()):
            archive.write(part, f"小区/{part.name}")
    for part in work.iterdir():
        part.unlink()
    work.rmdir()


def parcels_gpkg(folder: Path) -> None:
    """The land office's GeoPackage: 宗地 in the prefixed zone, and the 乡镇街道 layer."""
    path = folder / "自然资源局/宗地.gpkg"
    path.parent.mkdir(parents=True, exist_ok=True)
    shift = lambda shape: shapely.affinity.translate(shape, 35_000_000)  # noqa: E731
    owned = [r for r in COMPOUNDS if r[0] != "LC-005"]  # LC-005's plots come by TXT
    outlines = [gk_box(r[7] - 10, r[8] - 10, 100, 80) for r in owned]
    parcels = gpd.GeoDataFrame(
        {"宗地代码": [f"{CODE}001001GB{k:05d}" for k in range(1, len(owned) + 1)],
         "宗地面积（公顷）": [round(s.area / 10_000, 4) for s in outlines],
         "地类": ["城镇住宅用地"] * len(owned),
         "应缴出让金（万元）": [120.5, 80, 300, 60, 20],
         "已缴出让金（万元）": [120.5, 40, 300, 0, 20],
         "所属小区": [r[0] for r in owned]},
        geometry=[shift(s) for s in outlines], crs=GK_PREFIXED,
    )  # fmt: skip
    pyogrio.write_dataframe(parcels, path, layer="宗地", driver="GPKG")
    townships = gpd.GeoDataFrame(
        {"乡镇代码": [t[0] for t in TOWNSHIPS], "乡镇名称": [t[1] for t in TOWNSHIPS]},
        geometry=[shift(gk_box(dx, -9000, 6000, 18000)) for _, _, dx in TOWNSHIPS],
        crs=GK_PREFIXED,
    )
    pyogrio.write_dataframe(townships, path, layer="乡镇街道", driver="GPKG", append=True)


def survey_txt(folder: Path) -> None:
    """A 勘测定界 TXT: two plots numbered 1 and 2 by the survey, GBK, CRLF, X the northing."""
    lines = ["[属性描述]", "格式版本号=1.01", "数据产生单位=柳川县自然资源局",
             "坐标系=2000国家大地坐标系", "几度分带=3", "投影类型=高斯克吕格", "计量单位=米",
             "带号=35", "精度=0.01", "项目名称=滨河安置小区", "[地块坐标]"]  # fmt: skip
    for number, dx in ((1, -10), (2, 50)):
        x0, y0 = X0 + dx, Y0 + 390
        corners = [(y0, x0), (y0 + 80, x0), (y0 + 80, x0 + 60), (y0, x0 + 60), (y0, x0)]
        lines.append(f"5,{60 * 80 / 10_000:.4f},{number},滨河安置小区,面,,城镇住宅用地,0701,@")
        lines += [f"J{k if k < 5 else 1},1,{n:.3f},{e:.3f}"
                  for k, (n, e) in enumerate(corners, start=1)]  # fmt: skip
    path = folder / "自然资源局/勘测定界/滨河安置小区界址点.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("gbk"))


def planned_geojson(folder: Path) -> None:
    areas = [({"名称": n, "类型": k}, gk_box(dx, dy, w, h)) for n, k, dx, dy, w, h in PLANNED]
    _geojson(folder / "规划局/城区规划片区.geojson", areas)


def complaints_csv(folder: Path) -> None:
    where = {r[0]: TO_LONLAT.transform(X0 + r[7] + 40, Y0 + r[8] + 30) for r in COMPOUNDS}
    lines = ["柳川县12345热线不动产登记类工单（2026年11月）,,,,,,",
             "工单编号,受理日期,来源,投诉内容,所在小区,经度,纬度"]  # fmt: skip
    for number, day, source, words, compound in COMPLAINTS:
        lon, lat = where[compound]
        lines.append(f"{number},{day},{source},{words},{compound},{lon:.7f},{lat:.7f}")
    lines.append("制表人：李娜,,,,,,")
    path = folder / "信访局/投诉工单.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("gbk"))


def ledger_xlsx(path: Path, rows=LEDGER, totals=TOTALS) -> dict:
    """The county's workbook; the Excel row of each data row and of the 合计 row."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "台账"
    width = len(TOP)
    dated = "填报单位：柳川县不动产登记化解工作专班办公室　　截至：2026年11月30日"
    for words in (f"{NAME}“登记难”问题化解工作台账", dated):
        sheet.append([words])  # the title and the line under it, merged across the table
        sheet.merge_cells(start_row=sheet.max_row, start_column=1, end_row=sheet.max_row,
                          end_column=width)  # fmt: skip
    sheet.append(TOP)
    sheet.append([SUB.get(k) for k in range(1, width + 1)])
    for k in (k for k in range(1, width + 1) if k not in SUB):  # one header over two rows
        sheet.merge_cells(start_row=3, start_column=k, end_row=4, end_column=k)
    sheet.merge_cells("G3:H3")
    placed: dict = {}
    for serial, (name, code, developer, task, first, done, status, blockers) in enumerate(
        rows, start=1
    ):
        sheet.append([serial, name, code, None, developer, task, first, done, status, blockers,
                      "住建局", "群众反映强烈" if serial == 2 else None])  # fmt: skip
        placed[name] = sheet.max_row
    sheet.append(["合计", None, None, None, None, totals["units_task"],
                  totals["units_first_registered"], totals["units_transferred"]])  # fmt: skip
    sheet.merge_cells(f"A{sheet.max_row}:E{sheet.max_row}")
    placed["合计"] = sheet.max_row
    sheet.append([])
    sheet.append([SIGNATURE])
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)
    return placed


def blacklist_xlsx(folder: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["柳川县房地产开发企业失信名单（2026年第二批）"])
    sheet.merge_cells("A1:G1")
    sheet.append(["序号", "企业名称", "统一社会信用代码", "失信原因", "列入日期", "联系人",
                  "联系电话"])  # fmt: skip
    for serial, row in enumerate(BLACKLIST, start=1):
        sheet.append([serial, *row])
    sheet.append([])
    sheet.append(["制表单位：柳川县住房和城乡建设局　　制表日期：2026年11月30日"])
    path = folder / "住建局/房地产开发企业失信名单.xlsx"
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)


def junk(folder: Path) -> None:
    """What else lies in a folder from an office: a note, Excel's lock file, system files."""
    note = "本文件夹为柳川县登记难化解工作资料，请勿外传。\r\n"
    (folder / "README.txt").write_bytes(note.encode("gbk"))
    lock = folder / "住建局/~$柳川县登记难问题化解台账（11月）.xlsx"
    lock.write_bytes(b"\x05WANGFANG" + b"\0" * 150)
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1" + b"\0" * 64)
    (folder / "住建局/Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0" + b"\0" * 60)


def build(folder: Path, ledger_rows=LEDGER) -> Facts:
    """Write 柳川县's folder into `folder` (created); `ledger_rows` replaces the ledger's rows."""
    folder.mkdir(parents=True, exist_ok=True)
    boundary(folder)
    compounds_zip(folder)
    parcels_gpkg(folder)
    survey_txt(folder)
    planned_geojson(folder)
    complaints_csv(folder)
    placed = ledger_xlsx(folder / LEDGER_FILE, ledger_rows)
    blacklist_xlsx(folder)
    junk(folder)
    total = placed.pop("合计")
    return Facts(folder, placed, total)
