"""Map furniture: a map frame at a round scale, scale bar, north arrow, graticule, the overview
inset and the legends.

Maps are drawn in the county's Gauss-Krüger zone at a round scale (1:5 000, …), so the scale
bar is true on paper.
"""

import math
from dataclasses import dataclass

import numpy as np
import shapely
from matplotlib.axes import Axes
from matplotlib.patches import Polygon, Rectangle
from shapely import Geometry

from geo.core.crs import STORAGE_EPSG, transformer
from geo.query.selection import Overview
from maps.print.geometry import draw_lines, draw_polygons
from maps.print.sheet import INK, RIVER, Sheet, line_height, status_swatch
from maps.print.text import clean
from maps.styles import legend

NICE_SCALES = (
    500,
    1000,
    1500,
    2000,
    2500,
    3000,
    4000,
    5000,
    6000,
    7500,
    10_000,
    12_500,
    15_000,
    20_000,
    25_000,
    30_000,
    40_000,
    50_000,
    75_000,
    100_000,
    150_000,
    200_000,
    250_000,
    500_000,
    1_000_000,
    2_000_000,
)
GRID_STEPS_SECONDS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)
GRID = "#7a7a7a"


@dataclass
class MapFrame:
    """A map axes on a sheet at a round scale: GK window and paper size agree exactly."""

    ax: Axes
    x: float  # on the sheet, mm
    y: float
    w: float
    h: float
    scale: int
    window: tuple[float, float, float, float]  # GK metres
    epsg: int

    def mm(self, metres: float) -> float:
        return metres / self.scale * 1000

    def metres(self, mm: float) -> float:
        return mm * self.scale / 1000

    def reserve(self, x, y, w, h) -> tuple:
        """A sheet rectangle (mm) as a GK box labels keep out of."""
        x0, _, _, y1 = self.window
        left = x0 + self.metres(x - self.x)
        top = y1 - self.metres(y - self.y)
        return (left, top - self.metres(h), left + self.metres(w), top, "r")


def quiet_corner(frame: MapFrame, geoms: list[Geometry], w: float, h: float) -> tuple:
    """The top corner (sheet mm) of the map where a w×h inset hides the least of `geoms`."""
    tree = shapely.STRtree(geoms)
    best, best_cost = None, None
    # top left or bottom right: the north arrow and the scale bar hold the other two
    options = ((frame.x + 1, frame.y + 1), (frame.x + frame.w - w - 1, frame.y + frame.h - h - 1))
    for x, y in options:
        box = shapely.box(*frame.reserve(x, y, w, h)[:4])
        hits = tree.query(box, predicate="intersects")
        cost = (
            sum(shapely.area(shapely.intersection(np.array(geoms)[hits], box)))
            if len(hits)
            else 0.0
        )
        if best_cost is None or cost < best_cost - 1e-6:
            best, best_cost = (x, y), cost
    return best


def nice_scale(needed: float) -> int:
    for scale in NICE_SCALES:
        if scale >= needed:
            return scale
    return int(math.ceil(needed / 1_000_000) * 1_000_000)


def map_frame(
    sheet: Sheet, x, y, w, h, bounds, epsg: int, margin: float = 0.08, min_scale: int = 500
) -> MapFrame:
    minx, miny, maxx, maxy = bounds
    span_x = max(maxx - minx, 1.0) * (1 + 2 * margin)
    span_y = max(maxy - miny, 1.0) * (1 + 2 * margin)
    scale = max(nice_scale(max(span_x / (w / 1000), span_y / (h / 1000))), min_scale)
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    half_w, half_h = w / 1000 * scale / 2, h / 1000 * scale / 2
    window = (cx - half_w, cy - half_h, cx + half_w, cy + half_h)
    ax = sheet.axes(x, y, w, h)
    ax.set_xlim(window[0], window[2])
    ax.set_ylim(window[1], window[3])
    ax.set_aspect("auto")
    ax.set_facecolor("white")
    for spine in ax.spines.values():
        spine.set_linewidth(0.8)
        spine.set_color(INK)
        spine.set_zorder(20)
    return MapFrame(ax, x, y, w, h, scale, window, epsg)


def _nice_length(metres: float) -> float:
    exp = 10 ** math.floor(math.log10(metres))
    for step in (1, 2, 2.5, 5, 10):
        if step * exp >= metres:
            return step * exp
    return 10 * exp


def scale_bar(sheet: Sheet, frame: MapFrame, size: float = 6.0) -> None:
    """Alternating bar of ≈ 30 mm at the bottom left, with the ratio under it."""
    length = _nice_length(frame.metres(28))
    bar = frame.mm(length)
    x0, y0 = frame.x + 4, frame.y + frame.h - 9
    sheet.rect(x0 - 2, y0 - 4.2, bar + 13, 11.6, fc="white", ec="none", zorder=30, alpha=0.85)
    for i in range(4):
        sheet.rect(
            x0 + bar * i / 4,
            y0,
            bar / 4,
            1.4,
            fc=INK if i % 2 == 0 else "white",
            ec=INK,
            lw=0.4,
            zorder=31,
        )
    unit, div = ("km", 1000) if length >= 1000 else ("m", 1)
    for i, at in ((0, 0), (2, length / 2), (4, length)):
        label = f"{at / div:g}" + (f" {unit}" if i == 4 else "")
        sheet.text(
            x0 + bar * i / 4, y0 - 0.6, label, size=size - 0.5, ha="center", va="bottom", zorder=32
        )
    sheet.text(x0, y0 + 2.4, f"比例尺 1:{frame.scale:,}".replace(",", " "), size=size, zorder=32)


def north_arrow(sheet: Sheet, frame: MapFrame, size: float = 7.0) -> None:
    """True north, turned by the meridian convergence at the map centre."""
    to_geo = transformer(frame.epsg, STORAGE_EPSG)
    to_gk = transformer(STORAGE_EPSG, frame.epsg)
    cx, cy = (frame.window[0] + frame.window[2]) / 2, (frame.window[1] + frame.window[3]) / 2
    lon, lat = to_geo.transform(cx, cy)
    nx, ny = to_gk.transform(lon, lat + 0.01)
    angle = math.atan2(nx - cx, ny - cy)  # clockwise from grid north
    x, y = frame.x + frame.w - 9, frame.y + 12
    sheet.rect(x - 5, y - 9, 10, 15, fc="white", ec="none", alpha=0.85, zorder=30)
    length = 9.0
    dx, dy = math.sin(angle) * length, -math.cos(angle) * length
    tip = (x + dx / 2, y + dy / 2)
    tail = (x - dx / 2, y - dy / 2)
    side = (math.cos(angle) * 2.2, math.sin(angle) * 2.2)
    left = (tail[0] - side[0], tail[1] - side[1])
    right = (tail[0] + side[0], tail[1] + side[1])
    mid = (x - dx * 0.2, y - dy * 0.2)
    sheet.ax.add_artist(Polygon([tip, left, mid], closed=True, fc=INK, ec=INK, lw=0.4, zorder=31))
    sheet.ax.add_artist(
        Polygon([tip, right, mid], closed=True, fc="white", ec=INK, lw=0.4, zorder=31)
    )
    sheet.text(
        tip[0], tip[1] - 0.6, "N", size=size, weight="bold", ha="center", va="bottom", zorder=32
    )


def _dms(value: float, positive: str, negative: str, step: int) -> str:
    hemisphere = positive if value >= 0 else negative
    total = round(abs(value) * 3600)
    deg, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    if step % 3600 == 0:
        return f"{deg}°{hemisphere}"
    if step % 60 == 0:
        return f"{deg}°{minutes:02d}′{hemisphere}"
    return f"{deg}°{minutes:02d}′{seconds:02d}″{hemisphere}"


def graticule(sheet: Sheet, frame: MapFrame, size: float = 5.5, lines: int = 4) -> int:
    """CGCS2000 lon/lat lines across the map, labelled on the bottom and left edges.

    Returns the step in arc seconds.
    """
    x0, y0, x1, y1 = frame.window
    to_geo = transformer(frame.epsg, STORAGE_EPSG)
    to_gk = transformer(STORAGE_EPSG, frame.epsg)
    ex = np.concatenate(
        [np.linspace(x0, x1, 20), np.full(20, x1), np.linspace(x1, x0, 20), np.full(20, x0)]
    )
    ey = np.concatenate(
        [np.full(20, y0), np.linspace(y0, y1, 20), np.full(20, y1), np.linspace(y1, y0, 20)]
    )
    lon, lat = to_geo.transform(ex, ey)
    span = max(lon.max() - lon.min(), lat.max() - lat.min()) * 3600
    step = next((s for s in GRID_STEPS_SECONDS if span / s <= lines + 1), 7200)
    ax = frame.ax
    dense = 60
    for which in ("lon", "lat"):
        lo, hi = (lon.min(), lon.max()) if which == "lon" else (lat.min(), lat.max())
        first = math.ceil(lo * 3600 / step) * step
        for sec in range(int(first), int(hi * 3600) + 1, step):
            value = sec / 3600
            if which == "lon":
                gx, gy = to_gk.transform(
                    np.full(dense, value), np.linspace(lat.min(), lat.max(), dense)
                )
            else:
                gx, gy = to_gk.transform(
                    np.linspace(lon.min(), lon.max(), dense), np.full(dense, value)
                )
            ax.plot(gx, gy, color=GRID, linewidth=0.3, zorder=1.5, alpha=0.8)
            if which == "lon":
                at = np.interp(y0, gy, gx) if gy[0] < gy[-1] else np.interp(y0, gy[::-1], gx[::-1])
                if x0 < at < x1:
                    px = frame.x + (at - x0) / (x1 - x0) * frame.w
                    sheet.text(
                        px,
                        frame.y + frame.h + 0.8,
                        _dms(value, "E", "W", step),
                        size=size,
                        ha="center",
                        color="#333333",
                    )
            else:
                at = np.interp(x0, gx, gy) if gx[0] < gx[-1] else np.interp(x0, gx[::-1], gy[::-1])
                if y0 < at < y1:
                    py = frame.y + (y1 - at) / (y1 - y0) * frame.h
                    sheet.text(
                        frame.x - 0.8,
                        py,
                        _dms(value, "N", "S", step),
                        size=size,
                        ha="right",
                        va="center",
                        rotation=90,
                        color="#333333",
                    )
    return step


def overview_inset(
    sheet: Sheet,
    x,
    y,
    w,
    h,
    view: Overview,
    window,
    highlight: Geometry | None = None,
    county_name: str = "",
) -> None:
    """The county, its townships, rivers and roads, and where the map lies in it."""
    minx, miny, maxx, maxy = view.outline.bounds
    pad = 0.04 * max(maxx - minx, maxy - miny)
    minx, miny, maxx, maxy = minx - pad, miny - pad, maxx + pad, maxy + pad
    ratio = (maxx - minx) / (maxy - miny)
    if w / h > ratio:
        w_used, h_used = h * ratio, h
    else:
        w_used, h_used = w, w / ratio
    ax = sheet.axes(x + (w - w_used) / 2, y + (h - h_used) / 2, w_used, h_used, zorder=6)
    ax.set_xlim(minx, maxx)
    ax.set_ylim(miny, maxy)
    for spine in ax.spines.values():
        spine.set_linewidth(0.5)
    draw_polygons(ax, [view.outline], facecolors="#f4f4f4", edgecolors=INK, linewidths=0.6)
    draw_lines(
        ax,
        [g for _, g in view.townships],
        colors="#888888",
        linewidths=0.35,
        linestyles=[(0, (3, 1, 1, 1))],
    )
    draw_lines(ax, [g for k, _, g in view.context if k == "river"], colors=RIVER, linewidths=0.8)
    draw_lines(
        ax, [g for k, _, g in view.context if k != "river"], colors="#777777", linewidths=0.5
    )
    if view.town is not None:
        draw_polygons(ax, [view.town], facecolors="#c8c8c8", edgecolors="none")
    if highlight is not None:
        draw_polygons(
            ax, [highlight], facecolors="#555555", edgecolors=INK, linewidths=0.3, alpha=0.6
        )
    wx0, wy0, wx1, wy1 = window
    # never smaller than 1.5 mm so the box stays visible at county scale
    least = 1.5 / w_used * (maxx - minx)
    cx, cy = (wx0 + wx1) / 2, (wy0 + wy1) / 2
    half_w, half_h = max((wx1 - wx0) / 2, least), max((wy1 - wy0) / 2, least)
    ax.add_patch(
        Rectangle(
            (cx - half_w, cy - half_h),
            2 * half_w,
            2 * half_h,
            fill=False,
            edgecolor=INK,
            linewidth=1.2,
            zorder=5,
        )
    )
    for name, geom in view.townships:
        if geom is None or geom.is_empty:
            continue
        p = geom.representative_point()
        ax.text(
            p.x,
            p.y,
            clean(name),
            fontsize=4.5,
            ha="center",
            va="center",
            color="#555555",
            parse_math=False,
            clip_on=True,
        )
    if county_name:
        sheet.text(x + 1, y + 0.8, f"{clean(county_name)}位置示意", size=5.5, color="#333333")


def place_inset(
    sheet: Sheet,
    frame: MapFrame,
    geoms: list[Geometry],
    view: Overview,
    w: float,
    h: float,
    highlight: Geometry | None = None,
    title: str | None = None,
    size: float = 6.0,
) -> tuple:
    """An overview inset in the map's quieter corner; returns the GK box labels avoid."""
    x, y = quiet_corner(frame, geoms, w, h) if geoms else (frame.x + 1, frame.y + 1)
    sheet.rect(x, y, w, h, fc="white", ec=INK, lw=0.5, zorder=25)
    head = line_height(size, 1.2) + 0.6 if title else 0.0
    overview_inset(sheet, x + 1, y + 1 + head, w - 2, h - 2 - head, view, frame.window, highlight)
    if title:
        sheet.text(x + 1.2, y + 0.8, title, size=size, weight="bold", zorder=26)
    return frame.reserve(x, y, w, h)


def status_legend(sheet: Sheet, x, y, size=6.5, columns: int = 1, col_w: float = 30) -> float:
    """The palette with hatches and labels, plus the line styles; returns the y below it."""
    rows = legend()
    step = line_height(size, 1.55)
    for i, (status, label, _colour) in enumerate(rows):
        cx = x + (i % columns) * col_w
        cy = y + (i // columns) * step
        status_swatch(sheet, cx, cy + 0.3, 6, step - 1.2, status)
        sheet.text(cx + 7.5, cy + step / 2 - 0.3, label, size=size, va="center")
    return y + math.ceil(len(rows) / columns) * step


def line_legend(
    sheet: Sheet, x, y, entries: list[tuple[str, dict]], size=6.0, col_w=30, columns=1
) -> float:
    step = line_height(size, 1.55)
    for i, (label, style) in enumerate(entries):
        cx = x + (i % columns) * col_w
        cy = y + (i // columns) * step + step / 2
        if style.get("fill"):
            sheet.rect(
                cx,
                cy - 1.3,
                6,
                2.6,
                fc=style["fill"],
                ec=style.get("color", INK),
                lw=0.5,
                hatch=style.get("hatch"),
                linestyle=style.get("ls", "-"),
            )
        else:
            if style.get("under"):
                sheet.ax.plot(
                    [cx, cx + 6],
                    [cy, cy],
                    color=style["under"],
                    linewidth=style["lw"] + 1,
                    solid_capstyle="butt",
                )
            sheet.ax.plot(
                [cx, cx + 6],
                [cy, cy],
                color=style.get("color", INK),
                linewidth=style["lw"],
                linestyle=style.get("ls", "-"),
                solid_capstyle="butt",
            )
        sheet.text(cx + 7.5, cy - 0.3, label, size=size, va="center")
    return y + math.ceil(len(entries) / columns) * step
