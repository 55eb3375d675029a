"""The parcel-check report as an xlsx problem list with Chinese headers."""

from pathlib import Path
from typing import IO

from geo.checks.report import CHECK_METHODS, CHECKS, NOISE_M2, CheckReport, crs_words
from geo.core.sheets import cell, end_list, list_sheet

# -- xlsx ----------------------------------------------------------------------------------------

XLSX_COLUMNS = (
    ("序号", 6), ("问题编号", 14), ("核查项", 16), ("宗地代码", 22), ("小区编号", 16),
    ("小区名称", 16), ("相关宗地、规划或企业", 30), ("数值", 12), ("单位", 6),
    ("问题说明", 80), ("经度", 12), ("纬度", 12), ("图斑编号", 30),
)  # fmt: skip


def write_xlsx(report: CheckReport, target: str | Path | IO[bytes]) -> None:
    """The problem list (问题清单) with Chinese headers, a summary (汇总) with the tolerances
    and the GK zone, and how each check is computed (核查方法)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill

    book = Workbook(write_only=True)
    summary = report.summary()
    sheet = list_sheet(
        book, "问题清单", XLSX_COLUMNS, f"{report.county_name}（{report.county}）宗地核查问题清单",
        f"核查时间：{summary['generated_at']}；面积计算：{crs_words(report.epsg)}；"
        f"容差：{report.settings.line()}；共 {len(report.problems)} 个问题",
    )  # fmt: skip
    for k, p in enumerate(report.problems, start=1):
        values = (
            k, p.id, p.label, p.parcel or "", p.compound or "", p.compound_name or "",
            "、".join(p.related), p.value, p.unit or "", p.reason,
            None if p.lon is None else round(p.lon, 7), None if p.lat is None else round(p.lat, 7),
            "、".join(p.pieces),
        )  # fmt: skip
        sheet.append([cell(sheet, v) for v in values])
    end_list(sheet, len(XLSX_COLUMNS), len(report.problems))
    bold, head_fill = Font(bold=True), PatternFill("solid", fgColor="DDDDDD")

    totals = book.create_sheet("汇总")
    totals.column_dimensions["A"].width = 40
    totals.column_dimensions["B"].width = 60
    totals.append([cell(totals, name, bold, head_fill) for name in ("项目", "内容")])
    rows = [
        ("县（区）", f"{report.county_name}（{report.county}）"),
        ("核查范围", "全县" if report.scope == "county" else f"宗地 {report.scope}"),
        ("核查时间", summary["generated_at"]),
        ("面积计算投影", crs_words(report.epsg)),
        ("投影 EPSG", report.epsg),
        ("存储坐标系", "CGCS2000 地理坐标，EPSG:4490"),
        *[(t["zh"], t["text"]) for t in report.settings.describe()],
        ("浮点噪声下限（更小的重叠不计）", f"{NOISE_M2:g} m²"),
        ("核查宗地数", report.counts.get("parcels", 0)),
        ("核查小区数", report.counts.get("compounds", 0)),
        ("核查开发企业数", report.counts.get("developers", 0)),
        ("忽略的重叠碎片（处）", report.slivers["count"]),
        ("忽略的重叠碎片总面积（m²）", report.slivers["area_m2"]),
        ("有问题的宗地数", summary["parcels_with_problems"]),
        ("问题总数", len(report.problems)),
        *[(f"问题数：{item['label']}", item["count"])
          for item in summary["problems_by_check"].values()],
        ("用时（秒）", summary["seconds"]),
    ]  # fmt: skip
    for name, value in rows:
        totals.append([name, cell(totals, value)])

    methods = book.create_sheet("核查方法")
    methods.column_dimensions["A"].width = 22
    methods.column_dimensions["B"].width = 100
    methods.append(
        [cell(methods, "核查项", bold, head_fill), cell(methods, "计算方法", bold, head_fill)]
    )
    for check, (label, _) in CHECKS.items():
        methods.append([label, CHECK_METHODS[check]])
    book.save(target)
