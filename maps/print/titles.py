"""What a page says about its selection: title block, summary line, coordinate note."""

from geo.core.crs import zone_of_epsg
from geo.core.dates import beijing_day
from geo.query.selection import Selection
from maps.fonts import text_width_mm
from maps.print.sheet import Sheet, line_height
from maps.print.text import cn_date, fit, percent, units


def title_block(sheet: Sheet, selection: Selection, title: str, x, y, width, size) -> float:
    printed = f"打印日期 {cn_date(selection.printed_on)}"
    as_of = selection.ledger_as_of
    fresh = f"台账更新至 {cn_date(beijing_day(as_of))}" if as_of else "台账无更新记录"
    right_w = max(text_width_mm(printed, size * 0.55), text_width_mm(fresh, size * 0.55)) + 2
    lines, used = fit(title, width - right_w - 4, size, 2, size * 0.6)
    y_end = sheet.lines(x, y, lines, used, 1.15, weight="bold")
    sheet.text(x + width, y, printed, size=size * 0.55, ha="right")
    sheet.text(x + width, y + line_height(size * 0.55), fresh, size=size * 0.55, ha="right")
    return y_end


def summary(selection: Selection) -> str:
    t = selection.totals()
    parts = [
        f"小区 {t['compounds']} 个（台账 {t['on_ledger']} 个，已销号 {t['closed']} 个"
        + (f"，逾期 {t['overdue']} 个" if t["overdue"] else "")
        + "）",
        f"任务 {units(t['units_task'])} 套",
        f"首次登记 {units(t['units_first_registered'])} 套（{percent(t['first_rate'])}）",
        f"转移登记 {units(t['units_transferred'])} 套（{percent(t['transfer_rate'])}）",
    ]
    return " · ".join(parts)


def crs_note(selection: Selection, step: int | None) -> str:
    epsg = selection.county.epsg
    zone, _prefixed = zone_of_epsg(epsg)
    grid = ""
    if step:
        grid = f"经纬网间隔 {step // 60}′" if step % 60 == 0 else f"经纬网间隔 {step}″"
        if step % 3600 == 0:
            grid = f"经纬网间隔 {step // 3600}°"
        grid += "；"
    return (
        f"坐标系 CGCS2000（EPSG:4490），高斯-克吕格 3 度带第 {zone} 带（EPSG:{epsg}）投影绘制；"
        f"{grid}化解率 = 已转移登记套数 ÷ 任务套数（转移登记化解率）。"
    )
