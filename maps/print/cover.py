"""The visit pack's cover: the route over the area's map and the list of stops."""

import itertools
import math

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrow

from maps.fonts import text_width_mm
from maps.print.furniture import (
    graticule,
    map_frame,
    nice_scale,
    north_arrow,
    place_inset,
    scale_bar,
)
from maps.print.geometry import draw_lines
from maps.print.labels import label_planned, name_beside, number_marker
from maps.print.layers import draw_compounds, draw_context, draw_others
from maps.print.pack import VisitPack, VisitStop
from maps.print.sheet import A4_PORTRAIT, INK, Sheet, align_x, status_swatch
from maps.print.text import blockers_short, clean, fit, percent, units
from maps.print.titles import crs_note, summary, title_block
from maps.styles import STATUS_COLOURS, legend


def cover_page(pack: VisitPack, title: str) -> Figure:
    selection = pack.selection
    W, H = A4_PORTRAIT
    margin = 10.0
    sheet = Sheet(W, H)
    y = title_block(sheet, selection, title, margin, margin, W - 2 * margin, 15)
    head = summary(selection)
    route = f"路线 {len(pack.stops)} 站，约 {pack.route_m / 1000:.1f} km（直线距离）"
    y = sheet.para(margin, y + 0.8, f"{head} · {route}", W - 2 * margin, 7.5, 2, 6.5)
    n = len(pack.stops)
    top = y + 3
    legend_h = 7.0
    avail_h = H - margin - 8 - top - legend_h  # map and stop list share this
    full_w = W - 2 * margin - 4
    x0, y0, x1, y1 = selection.bounds

    def needed(w: float, h: float) -> int:
        return nice_scale(max((x1 - x0) * 1.16 / (w / 1000), (y1 - y0) * 1.16 / (h / 1000)))

    # the list under the map (all columns), or beside it when that draws the map larger
    def list_height(option) -> float:
        return (math.ceil(n / option[0]) + 1) * option[1] + 2

    under = ((1, 4.1, "full"), (2, 3.6, "compact"), (3, 3.5, "compact"), (4, 3.4, "compact"))
    cols, row_h, style = next((o for o in under if avail_h - list_height(o) >= 95), under[-1])
    below = (max(avail_h - list_height((cols, row_h)) - 3, 80.0), cols, row_h, style)
    side = ((1, "medium", 78.0), (2, "compact", 56.0), (3, "compact", 50.0))
    side_cols, side_style, col_w = next(
        (o for o in side if (avail_h - 2) / (math.ceil(n / o[0]) + 1) >= 3.3), side[-1]
    )
    side_row = min(4.1, (avail_h - 2) / (math.ceil(n / side_cols) + 1))
    side_w = side_cols * col_w + (side_cols - 1) * 3
    beside = needed(full_w - side_w - 5, avail_h) < needed(full_w, below[0])
    if beside:
        map_w, map_h = full_w - side_w - 5, avail_h
    else:
        map_w, map_h = full_w, below[0]
    frame = map_frame(sheet, margin + 4, top, map_w, map_h, selection.bounds, selection.county.epsg)
    ax = frame.ax
    layers = pack.cover_layers
    chosen = {s.facts.code for s in pack.stops}
    draw_context(ax, layers, 5.5, frame)
    draw_others(ax, [g for code, _, _, g in layers.compounds if code not in chosen])
    draw_compounds(ax, [(s.facts.status, s.facts.geom) for s in pack.stops], lw=0.4, alpha=0.8)
    if selection.area.outline is not None:
        draw_lines(ax, [selection.area.outline], colors=INK, linewidths=1.6, zorder=3.6)
    pts = [s.facts.geom.representative_point() for s in pack.stops]
    xy = np.array([(p.x, p.y) for p in pts])
    if len(xy) > 1:
        ax.plot(
            xy[:, 0],
            xy[:, 1],
            color=INK,
            linewidth=1.1,
            zorder=7,
            alpha=0.85,
            linestyle=(0, (4, 1.5)),
        )
        for (ax0, ay0), (ax1, ay1) in itertools.pairwise(xy):
            mx, my = (ax0 + ax1) / 2, (ay0 + ay1) / 2
            d = math.hypot(ax1 - ax0, ay1 - ay0)
            if frame.mm(d) < 9:
                continue
            ux, uy = (ax1 - ax0) / d, (ay1 - ay0) / d
            head = frame.metres(2.2)
            ax.add_patch(
                FancyArrow(
                    mx - ux * head / 2,
                    my - uy * head / 2,
                    ux * 1e-6,
                    uy * 1e-6,
                    width=0,
                    head_width=head,
                    head_length=head,
                    length_includes_head=False,
                    color=INK,
                    zorder=7.5,
                )
            )
    taken: list = [
        place_inset(
            sheet,
            frame,
            [s.facts.geom for s in pack.stops],
            pack.view,
            38.0,
            31.0,
            selection.area.outline,
            f"{clean(selection.county.name)}位置示意",
        )
    ]
    size = 6.0 if n <= 40 else 5.0
    for stop, p in zip(pack.stops, pts, strict=True):
        r = number_marker(
            ax,
            p.x,
            p.y,
            stop.number,
            frame,
            size,
            fc=STATUS_COLOURS.get(stop.facts.status, "white"),
        )
        taken.append((p.x - r, p.y - r, p.x + r, p.y + r, "c"))
    if n <= 40:
        _names_only(ax, frame, [(s.number, s.facts) for s in pack.stops], 5.5, taken)
    label_planned(ax, frame, layers, 5.5, taken)
    scale_bar(sheet, frame)
    north_arrow(sheet, frame)
    step = graticule(sheet, frame)
    # legend under the map
    ly = top + map_h + 5
    sheet.text(margin, ly, "化解状态", size=6.5, weight="bold")
    legend_rows = legend()
    lx = margin + 13
    for status, label, _ in legend_rows:
        status_swatch(sheet, lx, ly + 0.2, 5, 2.6, status)
        sheet.text(lx + 6, ly + 1.5, label, size=6.2, va="center")
        lx += 8 + text_width_mm(label, 6.2) + 3
    sheet.text(
        W - margin,
        ly + 1.5,
        "圆圈数字 = 走访顺序（页码 = 序号 + 1）",
        size=6,
        ha="right",
        va="center",
    )
    if beside:
        _stop_list(sheet, W - margin - side_w, top, side_w, pack, side_cols, side_row, side_style)
    else:
        _, cols, row_h, style = below
        _stop_list(sheet, margin, ly + 5.5, W - 2 * margin, pack, cols, row_h, style)
    sheet.text(margin, H - margin - 3, crs_note(selection, step), size=5.5, color="#333333")
    sheet.text(
        W - margin, H - margin - 3, f"第 1 页 / 共 {pack.total_pages} 页", size=6, ha="right"
    )
    return sheet.fig


def _names_only(ax, frame, numbered, size, taken) -> None:
    for _number, c in numbered:
        p = c.geom.representative_point()
        label = clean(c.name)
        lines, used = fit(label, 22, size, 2, size - 1)
        name_beside(ax, frame, p, frame.metres(2.6), lines, used, taken)


def _stop_list(
    sheet: Sheet, x, y, width, pack: VisitPack, cols: int, row_h: float, style: str = "full"
):
    """The stops in visit order, in `cols` columns: full, medium or compact fields."""
    n = len(pack.stops)
    per_col = max(math.ceil(n / cols), 1)
    gap = 3.0
    col_w = (width - gap * (cols - 1)) / cols
    size = {"full": 6.3, "medium": 6.0}.get(style, 5.6)
    fields = {
        "full": [("序号", 8, "center"), ("小区名称", 0, "left"), ("状态", 16, "left"),
                 ("任务套数", 12, "right"), ("化解率", 12, "right"), ("卡点", 0, "left"),
                 ("牵头单位", 16, "left"), ("包抓领导", 28, "left"), ("页码", 9, "right")],
        "medium": [("序号", 6, "center"), ("小区名称", 0, "left"), ("状态", 16, "left"),
                   ("任务", 9, "right"), ("化解率", 11, "right"), ("页", 6, "right")],
        "compact": [("序号", 6, "center"), ("小区名称", 0, "left"), ("状态", 14, "left"),
                    ("页", 6, "right")],
    }[style]  # fmt: skip
    fixed = sum(w for _, w, _ in fields)
    flex = [f for f in fields if not f[1]]
    widths = [w or (col_w - fixed) / len(flex) for _, w, _ in fields]

    def cell_values(stop: VisitStop) -> list[str]:
        c = stop.facts
        values = {
            "序号": str(stop.number),
            "小区名称": clean(c.name),
            "状态": c.status_label,
            "任务套数": units(c.units_task),
            "任务": units(c.units_task),
            "化解率": percent(c.transfer_rate),
            "卡点": blockers_short(c),
            "牵头单位": clean(c.lead_department),
            "包抓领导": clean(c.supervising_leader),
            "页码": str(stop.number + 1),
            "页": str(stop.number + 1),
        }
        return [values[name] for name, _, _ in fields]

    for col in range(cols):
        cx0 = x + col * (col_w + gap)
        cy = y
        sheet.rect(cx0, cy, col_w, row_h, fc="#e6e6e6", ec="none")
        cx = cx0
        for (name, _, align), w in zip(fields, widths, strict=True):
            anchor = align_x(cx, w, align, 0.8)
            sheet.text(
                anchor, cy + row_h / 2, name, size=size, weight="bold", ha=align, va="center"
            )
            cx += w
        cy += row_h
        for stop in pack.stops[col * per_col : (col + 1) * per_col]:
            cx = cx0
            for (name, _, align), w, value in zip(fields, widths, cell_values(stop), strict=True):
                anchor = align_x(cx, w, align, 0.8)
                if name == "状态":
                    status_swatch(
                        sheet, cx + 0.6, cy + row_h / 2 - 1.0, 2.8, 2.0, stop.facts.status, lw=0.3
                    )
                    anchor += 3.2
                lines, used = fit(
                    value, w - 1.6 - (3.2 if name == "状态" else 0), size, 1, size - 1.2
                )
                sheet.text(anchor, cy + row_h / 2, lines[0], size=used, ha=align, va="center")
                cx += w
            cy += row_h
            sheet.hline(cx0, cx0 + col_w, cy, lw=0.2, color="#9a9a9a")
        sheet.hline(cx0, cx0 + col_w, y, lw=0.6)
        sheet.hline(cx0, cx0 + col_w, cy, lw=0.6)
