"""The city / province overview on one A3 landscape page (issue 17), for a provincial meeting:
title and dates, the counties on a map coloured by overall rate against target (named, with
their rates), legend, scale bar and north arrow, and beside it the ranking table with its
totals row — split into side-by-side blocks and set smaller as the counties grow, so that
100 counties still fit the one page.

Draws from the figures geo.ledger.regions gives (`overview`, `county_outlines`); reads
nothing itself.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import shapely
from matplotlib.patheffects import Stroke
from shapely.geometry import shape

from geo import TitlemapError
from geo.core.crs import STORAGE_EPSG, gk_epsg, reproject, zone_of_epsg
from maps.fonts import text_width_mm
from maps.print.furniture import map_frame, north_arrow, scale_bar
from maps.print.geometry import draw_polygons
from maps.print.sheet import INK, PAPERS, Sheet, align_x, line_height, put_text, write_pdf
from maps.print.text import clean, cn_date, fit, percent, short_date, units
from maps.styles import TARGET_CLASSES, county_class

MARGIN = 10.0  # mm
GAP = 5.0  # between the map and the table, and between table blocks
PAD = 0.6  # inside a table cell
SIZES = (8.0, 7.5, 7.0, 6.5, 6.0, 5.5, 5.0, 4.5, 4.0)  # table type, largest that fits
TABLE_SHARE = 0.66  # the table may take this much of the page's width
NAME_CHARS = 8  # a county's name cell holds this many characters before it is cut


@dataclass
class RegionColumn:
    title: str
    get: Callable[[dict], str]
    align: str = "right"


def _day(value) -> date | None:
    """A date as overview() gives it, or as JSON carries it (ISO text)."""
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _float(value) -> float | None:
    return None if value is None else float(value)


def gap_points(rate, target) -> float | None:
    """The overall rate minus the target, in percentage points."""
    if rate is None or target is None:
        return None
    return (float(rate) - float(target)) * 100


def _gap(row: dict) -> str:
    gap = gap_points(row.get("overall_rate"), row.get("target_rate"))
    return "—" if gap is None else f"{gap:+.1f}".replace("-", "−")


def _rate(value) -> str:
    return percent(_float(value))


def _deadline(value) -> str:
    return short_date(_day(value))


COLUMNS = [
    RegionColumn("排名", lambda r: "" if r.get("rank") is None else str(r["rank"]), "center"),
    RegionColumn("县区", lambda r: clean(r.get("name")), "left"),
    RegionColumn("总体登记率", lambda r: _rate(r.get("overall_rate"))),
    RegionColumn("目标", lambda r: _rate(r.get("target_rate"))),
    RegionColumn("差距", _gap),
    RegionColumn("任务套数", lambda r: units(r.get("units_task"))),
    RegionColumn("已转移", lambda r: units(r.get("units_transferred"))),
    RegionColumn("本月化解套数", lambda r: units(r.get("resolved_this_month"))),
    RegionColumn("逾期任务", lambda r: units(r.get("overdue_tasks"))),
    RegionColumn("停滞小区", lambda r: units(r.get("stalled"))),
    RegionColumn("完成时限", lambda r: _deadline(r.get("target_deadline")), "center"),
]


def region_title(overview: dict) -> str:
    return f"{clean(overview['region'].get('name'))}不动产登记化解进度总览"


def totals_row(overview: dict) -> dict:
    """The 合计 row: the overview's totals against the region's own target and deadline."""
    region, totals = overview["region"], overview.get("totals") or {}
    target = totals.get("target_rate", region.get("target_rate"))
    deadline = totals.get("target_deadline", region.get("target_deadline"))
    return totals | {"rank": None, "name": "合计", "target_rate": target,
                     "target_deadline": deadline}  # fmt: skip


def region_pdf(overview: dict, outlines: dict, printed_on: date) -> bytes:
    """The overview as a one-page A3 landscape PDF: the counties' map and the ranking table."""
    title = region_title(overview)
    # a generator: the page is drawn under the print settings write_pdf sets (the CJK font)
    return write_pdf((_page(overview, outlines, printed_on, title) for _ in (1,)), title)


# -- the page ------------------------------------------------------------------------------------


def _page(overview: dict, outlines: dict, printed_on: date, title: str):
    W, H = PAPERS["A3"]
    sheet = Sheet(W, H)
    top = _heading(sheet, overview, printed_on, title, W)
    footer_h = 12.0
    bottom = H - MARGIN - footer_h
    rows = sorted(overview.get("counties") or [], key=_rank_key)
    layout = _table_layout(rows, bottom - top, W * TABLE_SHARE)
    table_x = W - MARGIN - layout.width
    map_w = table_x - GAP - MARGIN
    _draw_map(sheet, overview, outlines, MARGIN, top, map_w, bottom - top)
    _draw_table(sheet, table_x, top, rows, totals_row(overview), layout)
    _footer(sheet, overview, MARGIN, bottom + 3.5, W - 2 * MARGIN)
    return sheet.fig


def _rank_key(row: dict):
    rank = row.get("rank")
    return (rank is None, rank if rank is not None else 0, str(row.get("code")))


def _heading(sheet: Sheet, overview: dict, printed_on: date, title: str, W: float) -> float:
    region = overview["region"]
    size = 18.0
    sheet.text(MARGIN, MARGIN, title, size=size, weight="bold")
    as_of = _day(overview.get("as_of"))
    right = [f"打印日期 {cn_date(printed_on)}", f"数据截至 {cn_date(as_of) if as_of else '今日'}"]
    sheet.lines(W - MARGIN, MARGIN, right, 8.0, ha="right")
    y = MARGIN + line_height(size, 1.2) + 1.0
    sheet.text(MARGIN, y, _summary(overview, region), size=8.5)
    return y + line_height(8.5) + 3.0


def _summary(overview: dict, region: dict) -> str:
    counties = overview.get("counties") or []
    totals = overview.get("totals") or {}
    met = sum(county_class(r) == "met" for r in counties)
    target, deadline = _float(region.get("target_rate")), _day(region.get("target_deadline"))
    goal = f"目标：总体登记率 ≥ {percent(target)}" if target is not None else "目标：各县区自定"
    if deadline:
        goal += f"，完成时限 {cn_date(deadline)}"
    parts = [
        goal,
        f"{len(counties)} 个县区，已达目标 {met} 个",
        f"任务 {units(totals.get('units_task'))} 套",
        f"已转移 {units(totals.get('units_transferred'))} 套",
        f"总体登记率 {_rate(totals.get('overall_rate'))}",
    ]
    if overview.get("withheld"):
        parts.append(f"另有 {overview['withheld']} 个县区未公开，未列入")
    return " · ".join(parts)


def _footer(sheet: Sheet, overview: dict, x: float, y: float, width: float) -> None:
    size, cx = 7.0, x
    for style in TARGET_CLASSES.values():
        sheet.rect(cx, y, 6, 3, fc=style["colour"], ec=INK, lw=0.4)
        label = style["label"]
        sheet.text(cx + 7.5, y + 1.5, label, size=size, va="center")
        cx += 7.5 + text_width_mm(label, size) + 6
    note = ("差距 = 总体登记率 − 目标（百分点）；总体登记率 = 登记到户套数 ÷ 纳入范围的已售套数；"
            "本月化解套数 = 本月 1 日（北京时间）以来转移登记的套数。")  # fmt: skip
    sheet.para(x, y + 4.5, note, width, size=6.0, max_lines=1, min_size=5.0, color="#333333")


# -- the map -------------------------------------------------------------------------------------


def _outline_shapes(outlines: dict) -> dict[str, object]:
    """County code → its outline (lon/lat), from a GeoJSON FeatureCollection."""
    shapes = {}
    for feature in (outlines or {}).get("features") or []:
        props = feature.get("properties") or {}
        code = props.get("code") or props.get("county_code") or feature.get("id")
        if code and feature.get("geometry"):
            shapes[str(code)] = shape(feature["geometry"])
    return shapes


def _draw_map(sheet, overview, outlines, x, y, w, h) -> None:
    rows = {str(r["code"]): r for r in overview.get("counties") or []}
    shapes = {code: g for code, g in _outline_shapes(outlines).items() if code in rows}
    if not shapes:
        sheet.rect(x, y, w, h, ec=INK, lw=0.8)
        sheet.text(x + w / 2, y + h / 2, "无县区界线数据 / no county outlines", size=10,
                   ha="center", va="center")  # fmt: skip
        return
    lon = shapely.union_all(list(shapes.values())).centroid.x
    try:
        epsg = gk_epsg(lon)
    except TitlemapError:  # outside China's zones (made-up data): the nearest one
        epsg = gk_epsg(min(max(lon, 75.0), 135.0))
    projected = {code: reproject(g, STORAGE_EPSG, epsg) for code, g in shapes.items()}
    bounds = shapely.GeometryCollection(list(projected.values())).bounds
    frame = map_frame(sheet, x, y, w, h, bounds, epsg, margin=0.04)
    by_class: dict[str, list] = {}
    for code, geom in projected.items():
        by_class.setdefault(county_class(rows[code]), []).append(geom)
    for key, geoms in by_class.items():
        draw_polygons(frame.ax, geoms, zorder=2, facecolor=TARGET_CLASSES[key]["colour"],
                      edgecolor="white", linewidth=0.8, alpha=0.85)  # fmt: skip
    size = float(min(8.0, max(4.5, 9.0 - len(projected) / 20)))
    # a white halo drawn as a path-only copy under the text, so the words stay searchable
    halo = [Stroke(linewidth=max(1.0, size * 0.3), foreground="white")]
    for code, geom in projected.items():
        p, row = geom.representative_point(), rows[code]
        label = f"{clean(row.get('name'))}\n{_rate(row.get('overall_rate'))}"
        style = {"ha": "center", "va": "center", "linespacing": 1.1, "clip_on": True}
        frame.ax.text(p.x, p.y, label, fontsize=size, color="white", path_effects=halo,
                      zorder=4, parse_math=False, **style)  # fmt: skip
        put_text(frame.ax, p.x, p.y, label, size, color=INK, zorder=4.1, **style)
    scale_bar(sheet, frame, 6.5)
    north_arrow(sheet, frame, 7.5)
    zone, _ = zone_of_epsg(epsg)
    note = f"CGCS2000 高斯-克吕格 3 度带第 {zone} 带（EPSG:{epsg}）"
    sheet.text(x + w, y + h + 0.8, note, size=5.5, ha="right", color="#333333")


# -- the table -----------------------------------------------------------------------------------


@dataclass
class TableLayout:
    size: float
    per_block: int  # rows in each block
    blocks: int
    widths: list[float]  # mm, one block's columns

    @property
    def block_width(self) -> float:
        return sum(self.widths)

    @property
    def width(self) -> float:
        return self.blocks * self.block_width + (self.blocks - 1) * GAP

    @property
    def row_h(self) -> float:
        return line_height(self.size, 1.2) + 2 * PAD


def _cells(row: dict) -> list[str]:
    cells = [column.get(row) for column in COLUMNS]
    cells[1] = cells[1][:NAME_CHARS] + ("…" if len(cells[1]) > NAME_CHARS else "")
    return cells


def _widths(rows: list[dict], size: float) -> list[float]:
    """Each column as wide as its widest cell (the header set bold counts a little wider)."""
    widths = [text_width_mm(c.title, size) * 1.05 for c in COLUMNS]
    for row in rows:
        for i, cell in enumerate(_cells(row)):
            widths[i] = max(widths[i], text_width_mm(cell, size))
    widths[0] += 2.5  # room for the class swatch beside the rank
    return [w + 2 * PAD + 0.4 for w in widths]


def _table_layout(rows: list[dict], height: float, max_width: float) -> TableLayout:
    """The largest type at which the table fits `height` in as few blocks as fit `max_width`."""
    n = max(len(rows), 1)
    for size in SIZES:
        row_h = line_height(size, 1.2) + 2 * PAD
        per_block = int((height - 2 * row_h - 1.0) // row_h)  # a header and the totals
        if per_block < 1:
            continue
        blocks = math.ceil(n / per_block)
        layout = TableLayout(size, math.ceil(n / blocks), blocks, _widths(rows, size))
        if layout.width <= max_width:
            return layout
    raise TitlemapError(
        f"{len(rows)} 个县区的排名表放不进一页 A3 / the ranking of {len(rows)} counties does not "
        "fit one A3 page"
    )


def _draw_table(sheet, x, y, rows, totals, layout: TableLayout) -> None:
    blocks = [rows[i : i + layout.per_block] for i in range(0, len(rows), layout.per_block)]
    for b, block in enumerate(blocks or [[]]):
        bx = x + b * (layout.block_width + GAP)
        cy = _table_head(sheet, bx, y, layout)
        for i, row in enumerate(block):
            cy = _table_row(sheet, bx, cy, row, layout, shade=i % 2 == 1)
        if b == len(blocks or [[]]) - 1:
            sheet.hline(bx, bx + layout.block_width, cy, lw=0.5)
            cy = _table_row(sheet, bx, cy, totals, layout, bold=True)
        sheet.hline(bx, bx + layout.block_width, cy, lw=0.8)


def _table_head(sheet, x, y, layout: TableLayout) -> float:
    h = layout.row_h + 0.6
    sheet.rect(x, y, layout.block_width, h, fc="#e6e6e6", ec="none")
    cx = x
    for column, w in zip(COLUMNS, layout.widths, strict=True):
        lines, size = fit(column.title, w - 2 * PAD, layout.size, 1, layout.size - 1.5)
        anchor = align_x(cx, w, "center", PAD)
        sheet.text(anchor, y + h / 2, lines[0], size=size, weight="bold", ha="center",
                   va="center")  # fmt: skip
        cx += w
    sheet.hline(x, x + layout.block_width, y, lw=0.8)
    sheet.hline(x, x + layout.block_width, y + h, lw=0.5)
    return y + h


def _table_row(sheet, x, y, row, layout: TableLayout, shade=False, bold=False) -> float:
    h = layout.row_h
    if shade:
        sheet.rect(x, y, layout.block_width, h, fc="#f4f4f4", ec="none", zorder=0.5)
    cx = x
    weight = "bold" if bold else "normal"
    for i, (column, w, cell) in enumerate(zip(COLUMNS, layout.widths, _cells(row), strict=True)):
        if i == 0 and not bold:  # the county's class beside its rank: the map's colour
            colour = TARGET_CLASSES[county_class(row)]["colour"]
            sheet.rect(cx + PAD, y + PAD + 0.1, 2.0, h - 2 * PAD - 0.2, fc=colour, ec="none")
            anchor = cx + PAD + 2.5 + (w - 2 * PAD - 2.5) / 2
        else:
            anchor = align_x(cx, w, column.align, PAD)
        sheet.text(anchor, y + h / 2, cell, size=layout.size, weight=weight, ha=column.align,
                   va="center")  # fmt: skip
        cx += w
    return y + h
