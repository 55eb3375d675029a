"""The area page: title, the compounds in their status colours with numbered labels, planned
areas, rivers and roads, legend, scale bar, north arrow, graticule, an overview inset, and the
table of the compounds shown (continued on further pages when it does not fit)."""

import math
from dataclasses import dataclass

import numpy as np

from geo import TitlemapError
from geo.query.selection import Layers, Overview, Selection, layers_in, overview
from maps.print.furniture import (
    MapFrame,
    graticule,
    line_legend,
    map_frame,
    north_arrow,
    place_inset,
    scale_bar,
    status_legend,
)
from maps.print.geometry import draw_lines
from maps.print.labels import label_planned, name_beside, number_marker
from maps.print.layers import (
    PLANNED_STYLE,
    ROAD_CASING,
    TOWNSHIP_LINE,
    draw_compounds,
    draw_context,
    draw_others,
)
from maps.print.sheet import (
    INK,
    OTHER_EDGE,
    OTHER_FILL,
    OUTLINE,
    PAPERS,
    RIVER,
    Sheet,
    line_height,
    write_pdf,
)
from maps.print.table import TableStyle, area_columns, draw_table
from maps.print.text import clean, fit, percent, units
from maps.print.titles import crs_note, summary, title_block

TABLE_WIDTH = 136.0  # mm on A4: the area page's table column


def _planned_fill(kind: str) -> dict:
    _dash, _lw, fill, hatch = PLANNED_STYLE[kind]
    return {"fill": fill, "hatch": hatch}


CONTEXT_LEGEND = [
    ("河流", {"color": RIVER, "lw": 2.0}),
    ("道路", {"color": "white", "under": ROAD_CASING, "lw": 1.6}),
    ("规划片区界线", {"color": OUTLINE, "lw": 1.2, "ls": (0, (4, 1.5))}),
    ("规划道路", {**_planned_fill("planned_road"), "color": OUTLINE, "ls": "--"}),
    ("规划绿地", {**_planned_fill("green_space"), "color": OUTLINE, "ls": "--"}),
    ("乡镇界", {"color": TOWNSHIP_LINE[0], "lw": TOWNSHIP_LINE[1], "ls": TOWNSHIP_LINE[2]}),
    ("其他小区", {"fill": OTHER_FILL, "color": OTHER_EDGE}),
]


@dataclass
class AreaJob:
    selection: Selection
    layers: Layers
    view: Overview
    paper: str = "A4"


def area_pdf(conn, selection: Selection, paper: str = "A4") -> bytes:
    """The area page (and table continuation pages) as PDF bytes."""
    paper = paper.upper()
    if paper not in PAPERS:
        raise TitlemapError(f"纸张应为 A4 或 A3 / paper must be A4 or A3: {paper!r}")
    minx, miny, maxx, maxy = selection.bounds
    pad = max(maxx - minx, maxy - miny) + 500  # the frame's aspect and round scale add room
    layers = layers_in(
        conn, selection.county, (minx - pad, miny - pad, maxx + pad, maxy + pad), simplify=0.5
    )
    view = overview(conn, selection.county)
    return render_area(AreaJob(selection, layers, view, paper))


def render_area(job: AreaJob) -> bytes:
    selection = job.selection
    title = f"{clean(selection.county.name)} {clean(selection.area.label)} 登记难化解现场办公图"
    return write_pdf(_area_figures(job, title), title)


def _area_figures(job: AreaJob, title: str):
    selection, paper = job.selection, job.paper
    W, H = PAPERS[paper]
    k = 1.0 if paper == "A4" else 1.3  # type sizes grow with the sheet
    margin = 9.0
    rows = list(enumerate(selection.compounds, start=1))
    on = selection.printed_on
    columns = area_columns(on, k)
    table_style = TableStyle(size=6.5 * k, min_size=5.5 * k)
    t = selection.totals()
    total_row = [
        "",
        "合计",
        "",
        units(t["units_task"]),
        units(t["units_transferred"]),
        percent(t["transfer_rate"]),
        "",
        "",
        "",
    ]

    sheet = Sheet(W, H)
    y = title_block(sheet, selection, title, margin, margin, W - 2 * margin, 15 * k)
    sheet.text(margin, y + 0.6, summary(selection), size=7.5 * k)
    top = y + 0.6 + line_height(7.5 * k) + 2.5
    footer_h = 9.0 * k
    map_h = H - top - margin - footer_h
    bounds = selection.bounds
    aspect = (bounds[2] - bounds[0]) / max(bounds[3] - bounds[1], 1.0)
    table_w = TABLE_WIDTH * k
    map_x = margin + 4.0 * k
    # the table keeps its width; a wide area may take a little of it back
    room = W - margin - table_w - 6 - map_x
    map_w = float(np.clip(map_h * aspect * 1.1, room * 0.8, room))
    frame = map_frame(sheet, map_x, top, map_w, map_h, bounds, selection.county.epsg)
    reserved = place_inset(
        sheet,
        frame,
        [c.geom for c in selection.compounds],
        job.view,
        44.0 * k,
        34.0 * k,
        selection.area.outline,
        f"{clean(selection.county.name)}位置示意",
        6 * k,
    )
    step = _draw_area_map(sheet, frame, job, k, [reserved])
    sheet.text(
        margin,
        H - margin - footer_h + 4.5 * k,
        crs_note(selection, step),
        size=5.5 * k,
        color="#333333",
    )

    # right column: overview + legend, then the table
    col_x = map_x + map_w + 6
    col_w = W - margin - col_x
    sheet.text(col_x, top, "化解状态", size=6.5 * k, weight="bold")
    sheet.text(col_x + 50 * k, top, "图例", size=6.5 * k, weight="bold")
    below = top + line_height(6.5 * k)
    end = status_legend(sheet, col_x, below, size=6 * k, columns=2, col_w=24 * k)
    end = max(
        end,
        line_legend(
            sheet,
            col_x + 50 * k,
            below,
            CONTEXT_LEGEND,
            size=6 * k,
            col_w=(col_w - 50 * k) / 3,
            columns=3,
        ),
    )
    table_y = end + 2.5
    bottom = H - margin - footer_h
    drawn = draw_table(
        sheet, col_x, table_y, col_w, bottom, columns, rows, table_style, on, total_row
    )
    pages = [sheet]
    rest = rows[drawn:]
    while rest:  # the table goes on, full width, on further pages of the same size
        more = Sheet(W, H)
        more.text(margin, margin, f"{title}（续表）", size=11 * k, weight="bold")
        half = (W - 2 * margin - 8) / 2  # two tables side by side, each as wide as page 1's
        for x in (margin, margin + half + 8):
            if not rest:
                break
            n = draw_table(
                more,
                x,
                margin + 9 * k,
                half,
                H - margin - footer_h,
                columns,
                rest,
                table_style,
                on,
                total_row,
            )
            if n == 0:
                raise TitlemapError("表格一行也放不下 / a table row does not fit on the page")
            rest = rest[n:]
        pages.append(more)
    for i, page in enumerate(pages, start=1):
        page.text(
            W - margin,
            H - margin - footer_h + 4.5 * k,
            f"第 {i} 页 / 共 {len(pages)} 页",
            size=6 * k,
            ha="right",
        )
        yield page.fig


def _draw_area_map(sheet: Sheet, frame: MapFrame, job: AreaJob, k: float, reserved) -> int:
    ax, selection, layers = frame.ax, job.selection, job.layers
    chosen = {c.code for c in selection.compounds}
    draw_context(ax, layers, 5.5 * k, frame)
    draw_others(ax, [g for code, _, _, g in layers.compounds if code not in chosen])
    draw_compounds(ax, [(c.status, c.geom) for c in selection.compounds], lw=0.45)
    if selection.area.outline is not None:
        draw_lines(ax, [selection.area.outline], colors=INK, linewidths=1.8, zorder=3.6)
    taken: list = list(reserved)
    _number_and_name(ax, frame, list(enumerate(selection.compounds, start=1)), 5.5 * k, taken)
    label_planned(ax, frame, layers, 5.5 * k, taken)
    scale_bar(sheet, frame, 6.0 * k)
    north_arrow(sheet, frame, 7.0 * k)
    return graticule(sheet, frame, 5.5 * k)


def _number_and_name(ax, frame: MapFrame, numbered, size, taken: list) -> None:
    """A numbered circle on every compound; its name beside it where there is room."""
    points = []
    for number, c in numbered:
        p = c.geom.representative_point()
        r = number_marker(ax, p.x, p.y, number, frame, size)
        taken.append((p.x - r, p.y - r, p.x + r, p.y + r, "c"))
        points.append((number, c, p, r))
    for _number, c, p, r in sorted(points, key=lambda item: -item[1].area_m2):
        name = clean(c.name)
        lines, used = fit(
            name, max(frame.mm(math.sqrt(c.area_m2)) * 1.6, 14), size - 0.5, 2, size - 1
        )
        name_beside(ax, frame, p, r * 1.2, lines, used, taken)
