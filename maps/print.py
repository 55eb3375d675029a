"""Printed maps for on-site offices (现场办公): an area page and a visit pack, as PDF.

- `area_pdf`: one landscape page (A4 or A3) — title (county, area, date), the compounds in the
  status colours with numbered labels, planned-area outlines, rivers and roads, legend, scale
  bar, north arrow, CGCS2000 graticule, an overview inset placing the area in the county, and
  the table of the compounds shown (continued on further pages when it does not fit).
- `visit_pdf`: a cover map with the visit order, then one A4 page per compound: a large map of
  it with its parcels and planned-area overlaps, its ledger card, blockers with the
  departments responsible, the plan and next steps, its status history and room for notes.

Maps are drawn in the county's Gauss-Krüger zone at a round scale (1:5 000, …), so the scale
bar is true on paper. Status is carried by colour (maps.styles, the web map's palette), by a
hatch pattern and by the words in the tables, so a black-and-white printer loses nothing. Text
is embedded as TrueType (maps.fonts) and stays searchable; no tiles, no network.
"""

import itertools
import math
import multiprocessing
import os
import re
import shutil
import subprocess
import tempfile
import threading
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from io import BytesIO
from queue import Empty

import matplotlib
import numpy as np
import shapely
from matplotlib.axes import Axes
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrow, Polygon, Rectangle
from matplotlib.path import Path
from matplotlib.patheffects import Stroke
from pyproj import Transformer
from shapely import Geometry

from geo import TitlemapError
from geo.query.selection import (
    BLOCKER_DEPARTMENT,
    BLOCKER_TEXT,
    STATUS_TEXT,
    TZ,
    CompoundFacts,
    Layers,
    Overview,
    Selection,
    layers_in,
    overview,
    route_length,
    visit_order,
)
from maps.fonts import print_font, text_width_mm
from maps.styles import STATUS_COLOURS, legend

MM = 1 / 25.4  # inches
PAPERS = {"A4": (297.0, 210.0), "A3": (420.0, 297.0)}  # landscape width, height in mm
# Hatches carry the status where colour cannot (grayscale printers, colour-blind readers).
# They sit beside the palette; maps.styles is the better home once the web map wants them.
STATUS_HATCHES = {
    "not_started": "---",
    "stalled": "xxx",
    "in_progress": "///",
    "first_registered": "...",
    "closed": "",
    "not_on_ledger": "",
}
BLOCKER_SHORT = {
    "approvals": "手续缺失",
    "land_premium": "欠出让金",
    "taxes": "欠税费",
    "developer": "企业违规失联",
    "mortgage": "抵押查封",
    "construction_debt": "欠工程款",
    "planning_conflict": "规划冲突",
    "area_discrepancy": "面积权属不符",
}
ACTION_TEXT = {"open": "挂账", "update": "更新", "close": "销号", "reopen": "重新挂账"}
FIELD_TEXT = {
    "status": "状态",
    "units_task": "任务套数",
    "units_first_registered": "首次登记",
    "units_transferred": "转移登记",
    "blockers": "卡点",
    "blocker_note": "卡点说明",
    "lead_department": "牵头单位",
    "cooperating_departments": "配合单位",
    "supervising_leader": "包抓领导",
    "plan": "方案",
    "task_force_lead": "专班负责人",
    "deadline": "限时",
    "opened_on": "挂账日期",
    "closed_on": "销号日期",
    "close_reason": "销号理由",
    "ledger_no": "台账编号",
}
DEVELOPER_STATUS = {"blacklisted": "已列入失信名单", "unreachable": "失联"}
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
INK = "#1a1a1a"
GRID = "#7a7a7a"
OUTLINE = "#2f3b52"  # planned areas: dark slate, apart from every status colour
RIVER = "#3d85c6"
OTHER_FILL, OTHER_EDGE = "#efefef", "#a0a0a0"
PLANNED_STYLE = {  # kind: (dash pattern in points, line width, fill, hatch)
    "east_district": ((7, 2.5), 1.4, None, None),
    "urban_renewal": ((5, 2, 1.2, 2), 1.1, None, None),
    "civilised_city": ((1.2, 1.8), 1.1, None, None),
    "planning_area": ((12, 3), 0.8, None, None),
    "planned_road": ((3, 1.5), 0.8, "#d9d9d9", "||||"),
    "green_space": ((3, 1.5), 0.8, "#d4ead4", "oo"),
}
NO_LINE_START = set("，。、；：？！）》」』”’…%％·,.;:?!)]}")
TABLE_WIDTH = 136.0  # mm on A4: the area page's table column
VISIT_LIMIT = 200  # compounds in one visit pack: a day's work is far fewer
PROCESS_MIN_PAGES = 24  # below this a second process costs more than it saves


# rcParams are process-wide: one drawing at a time per process (the API serves from threads)
_RENDERING = threading.Lock()


def _rc() -> dict:
    font = print_font()
    return {
        "pdf.fonttype": 42,
        "pdf.compression": 6,
        "font.family": [font.family, "DejaVu Sans"],  # DejaVu: symbols the CJK face lacks
        "text.hinting": "no_hinting",  # vector output: hinting only costs time
        "text.parse_math": False,  # a "$" in a compound's name is only a dollar sign
        "axes.unicode_minus": False,
        "hatch.linewidth": 0.35,
        "hatch.color": INK,
        "path.simplify": True,
    }


# -- text ----------------------------------------------------------------------------------------


def clean(value, empty: str = "—") -> str:
    """A user string made printable: control characters and line breaks become spaces."""
    if value is None:
        return empty
    if isinstance(value, date) and not isinstance(value, datetime):
        return cn_date(value)
    text_ = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in str(value))
    text_ = re.sub(r"\s+", " ", text_).strip()
    return text_ or empty


def cn_date(day: date | None) -> str:
    return "—" if day is None else f"{day.year}年{day.month}月{day.day}日"


def short_date(day: date | None) -> str:
    return "—" if day is None else f"{day.year}.{day.month}.{day.day}"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def units(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def wrap(text_: str, width_mm: float, size: float) -> list[str]:
    """Lines of `text_` no wider than `width_mm` at `size` pt; Latin words kept whole.

    A closing mark (，。）…) never starts a line: it hangs at the end of the one before.
    """
    tokens = re.findall(r"[A-Za-z0-9_.\-/:%+#@&]+|\s+|.", text_)
    lines, line, used = [], "", 0.0
    for token in tokens:
        w = text_width_mm(token, size)
        if token.isspace():
            if line:
                line, used = line + " ", used + w
            continue
        if w > width_mm:  # a run longer than the line: cut it by characters
            for ch in token:
                cw = text_width_mm(ch, size)
                if used + cw > width_mm and line.strip():
                    lines.append(line.rstrip())
                    line, used = "", 0.0
                line, used = line + ch, used + cw
            continue
        hangs = len(token) == 1 and token in NO_LINE_START
        if used + w <= width_mm or not line.strip() or hangs:
            line, used = line + token, used + w
        else:
            lines.append(line.rstrip())
            line, used = token, w
    if line.strip():
        lines.append(line.rstrip())
    return lines or [""]


def fit(
    text_: str, width_mm: float, size: float, max_lines: int = 1, min_size: float | None = None
) -> tuple[list[str], float]:
    """Wrap, shrinking down to `min_size`, then cut the last line with an ellipsis."""
    min_size = min_size or size
    current = size
    while True:
        lines = wrap(text_, width_mm, current)
        if len(lines) <= max_lines or current - 0.5 < min_size - 1e-9:
            break
        current -= 0.5
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        last = lines[-1]
        while last and text_width_mm(last + "…", current) > width_mm:
            last = last[:-1]
        lines[-1] = last + "…"
    return lines, current


# -- a page in millimetres -----------------------------------------------------------------------


class Sheet:
    """A figure with one full-page axes in millimetres, y downwards, for text and boxes."""

    def __init__(self, width: float, height: float):
        self.width, self.height = width, height
        self.fig = Figure(figsize=(width * MM, height * MM))
        self.ax = self.fig.add_axes((0, 0, 1, 1))
        self.ax.set_xlim(0, width)
        self.ax.set_ylim(height, 0)
        self.ax.set_axis_off()
        self.ax.set_zorder(5)  # over the maps: scale bars, north arrows, inset frames

    def text(self, x, y, s, size=8.0, weight="normal", ha="left", va="top", color=INK, **kw):
        return put_text(self.ax, x, y, s, size, weight == "bold", color, ha=ha, va=va, **kw)

    def lines(self, x, y, lines: Sequence[str], size: float, leading: float = 1.3, **kw) -> float:
        """Draw `lines` from (x, y) down; returns the y below them."""
        step = size * leading / 72 * 25.4
        for i, line in enumerate(lines):
            self.text(x, y + i * step, line, size=size, **kw)
        return y + len(lines) * step

    def para(self, x, y, text_, width, size=8.0, max_lines=99, min_size=None, **kw) -> float:
        lines, used = fit(clean(text_), width, size, max_lines, min_size)
        return self.lines(x, y, lines, used, **kw)

    def rect(self, x, y, w, h, fc="none", ec=INK, lw=0.5, hatch=None, zorder=1, **kw):
        patch = Rectangle(
            (x, y),
            w,
            h,
            facecolor=fc,
            edgecolor=ec,
            linewidth=lw,
            hatch=hatch,
            zorder=zorder,
            **kw,
        )
        self.ax.add_artist(patch)  # no autoscaling: the page is fixed
        return patch

    def hline(self, x0, x1, y, lw=0.4, color=INK, **kw):
        self.ax.plot([x0, x1], [y, y], color=color, linewidth=lw, solid_capstyle="butt", **kw)

    def axes(self, x, y, w, h, zorder: float = 1) -> Axes:
        """An axes placed in mm: maps sit under the page (zorder 1), insets over it (6)."""
        ax = self.fig.add_axes(
            (x / self.width, 1 - (y + h) / self.height, w / self.width, h / self.height),
            zorder=zorder,
        )
        ax.set_xticks([])
        ax.set_yticks([])
        return ax


def put_text(ax: Axes, x, y, s: str, size: float, bold: bool = False, color=INK, **kw):
    """Text that stays text (searchable); bold is faked, as the CJK face has none.

    Bold draws the glyphs' outline thickened in a first, path-only copy (which carries the
    background box) and the ordinary text over it, so a PDF reader finds the words once.
    """
    kw.setdefault("parse_math", False)
    if bold:
        stroke = Stroke(linewidth=max(0.2, size * 0.05), foreground=color)
        ax.text(x, y, s, fontsize=size, color=color, path_effects=[stroke], **kw)
        kw.pop("bbox", None)
        kw["zorder"] = kw.get("zorder", 3) + 0.01
    return ax.text(x, y, s, fontsize=size, color=color, **kw)


def line_height(size: float, leading: float = 1.3) -> float:
    return size * leading / 72 * 25.4


def status_swatch(sheet: Sheet, x, y, w, h, status: str, lw=0.4):
    sheet.rect(
        x,
        y,
        w,
        h,
        fc=STATUS_COLOURS[status],
        ec=INK,
        lw=lw,
        hatch=STATUS_HATCHES.get(status) or None,
    )


# -- geometry to matplotlib ----------------------------------------------------------------------


def _polygons(geom: Geometry) -> list:
    if geom is None or geom.is_empty:
        return []
    parts = shapely.get_parts(geom)
    out = []
    for part in parts:
        if part.geom_type == "Polygon":
            out.append(part)
        elif part.geom_type in ("MultiPolygon", "GeometryCollection"):
            out.extend(_polygons(part))
    return out


def _lines(geom: Geometry) -> list[np.ndarray]:
    if geom is None or geom.is_empty:
        return []
    out = []
    for part in shapely.get_parts(geom):
        kind = part.geom_type
        if kind == "LineString":
            out.append(np.asarray(part.coords)[:, :2])
        elif kind == "Polygon":
            out.extend(np.asarray(r.coords)[:, :2] for r in (part.exterior, *part.interiors))
        elif kind.startswith("Multi") or kind == "GeometryCollection":
            out.extend(_lines(part))
    return out


def geom_path(geom: Geometry) -> Path | None:
    verts, codes = [], []
    for poly in _polygons(geom):
        for ring in (poly.exterior, *poly.interiors):
            xy = np.asarray(ring.coords)[:, :2]
            if len(xy) < 4:
                continue
            c = np.full(len(xy), Path.LINETO, dtype=Path.code_type)
            c[0], c[-1] = Path.MOVETO, Path.CLOSEPOLY
            verts.append(xy)
            codes.append(c)
    if not verts:
        return None
    return Path(np.concatenate(verts), np.concatenate(codes))


def draw_polygons(ax: Axes, geoms: Iterable[Geometry], zorder=2, **style) -> None:
    paths = [p for p in (geom_path(g) for g in geoms) if p is not None]
    if paths:
        ax.add_collection(PathCollection(paths, zorder=zorder, **style), autolim=False)


def draw_lines(ax: Axes, geoms: Iterable[Geometry], zorder=2, **style) -> None:
    segments = [seg for g in geoms for seg in _lines(g)]
    if segments:
        ax.add_collection(LineCollection(segments, zorder=zorder, **style), autolim=False)


# -- map furniture -------------------------------------------------------------------------------


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
    to_geo = Transformer.from_crs(frame.epsg, 4490, always_xy=True)
    to_gk = Transformer.from_crs(4490, frame.epsg, always_xy=True)
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
    to_geo = Transformer.from_crs(frame.epsg, 4490, always_xy=True)
    to_gk = Transformer.from_crs(4490, frame.epsg, always_xy=True)
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


def _planned_linestyle(kind: str):
    dash, lw, _fill, _hatch = PLANNED_STYLE.get(kind, ((4, 2), 0.8, None, None))
    return (0, dash), lw


def draw_context(ax: Axes, layers: Layers, label_size: float = 5.5, frame: MapFrame | None = None):
    """Townships, rivers, roads and planned areas: everything under the compounds."""
    draw_lines(
        ax,
        [g for _, _, g in layers.townships],
        colors="#8c8c8c",
        linewidths=0.6,
        linestyles=[(0, (6, 2, 1.5, 2))],
        zorder=1.6,
    )
    rivers = [g for k, _, g in layers.context if k == "river"]
    roads = [g for k, _, g in layers.context if k != "river"]
    draw_lines(ax, rivers, colors=RIVER, linewidths=2.4, zorder=1.7, capstyle="round")
    draw_lines(ax, roads, colors="#6f6f6f", linewidths=3.0, zorder=1.8, capstyle="butt")
    draw_lines(ax, roads, colors="white", linewidths=1.9, zorder=1.81, capstyle="butt")
    for kind in PLANNED_STYLE:
        geoms = [g for _, k, _, g in layers.planned_areas if k == kind]
        if not geoms:
            continue
        ls, lw = _planned_linestyle(kind)
        fill, hatch = PLANNED_STYLE[kind][2], PLANNED_STYLE[kind][3]
        if fill:
            draw_polygons(ax, geoms, facecolors=fill, edgecolors="none", zorder=1.9, alpha=0.9)
            draw_polygons(
                ax,
                geoms,
                facecolors="none",
                edgecolors="#7d7d7d",
                linewidths=0,
                hatch=hatch,
                zorder=1.91,
            )
        draw_lines(ax, geoms, colors=OUTLINE, linewidths=lw, linestyles=[ls], zorder=3.5)
    if frame is None:
        return
    x0, y0, x1, y1 = frame.window
    inner = shapely.box(x0, y0, x1, y1).buffer(-frame.metres(6))
    for kind, name, geom in layers.context:
        line = shapely.intersection(geom, inner)
        if line.is_empty or line.length < frame.metres(25):
            continue
        p = line.interpolate(0.5, normalized=True)
        ax.text(
            p.x,
            p.y,
            clean(name),
            fontsize=label_size,
            ha="center",
            va="center",
            color=RIVER if kind == "river" else "#444444",
            style="italic",
            zorder=6,
            parse_math=False,
            clip_on=True,
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.7},
        )


def label_planned(
    ax: Axes, frame: MapFrame, layers: Layers, size: float = 5.5, taken: list | None = None
) -> None:
    """Name each planned area once, inside the map, near its outline's top-left."""
    x0, y0, x1, y1 = frame.window
    inner = shapely.box(x0, y0, x1, y1).buffer(-frame.metres(5))
    for _code, kind, name, geom in layers.planned_areas:
        part = shapely.intersection(geom, inner)
        if part.is_empty or part.area < frame.metres(6) ** 2:
            continue
        p = part.representative_point()
        if kind in ("planning_area", "east_district", "urban_renewal", "civilised_city"):
            bx0, _, _, by1 = part.bounds
            p = shapely.Point(bx0 + frame.metres(2), by1 - frame.metres(2))
            if not part.buffer(frame.metres(1)).contains(p):
                p = part.representative_point()
        label = clean(name)
        box = _label_box(
            frame, p.x, p.y, label, size, ha="left" if kind != "planned_road" else "center"
        )
        if taken is not None and any(_overlaps(box, other) for other in taken):
            continue
        if taken is not None:
            taken.append(box)
        put_text(
            ax,
            p.x,
            p.y,
            label,
            size,
            True,
            OUTLINE,
            ha=box[4],
            va="top",
            zorder=7,
            clip_on=True,
            bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.6},
        )


def _label_box(frame: MapFrame, x, y, label, size, ha="center"):
    w = frame.metres(text_width_mm(label, size))
    h = frame.metres(size / 72 * 25.4 * 1.2)
    left = x - w / 2 if ha == "center" else x
    return (left, y - h, left + w, y, ha)


def place_label(
    ax: Axes,
    frame: MapFrame,
    taken: list,
    x: float,
    y: float,
    lines: list[str],
    size: float,
    offsets=((0, 0),),
    force: bool = False,
    color=INK,
    bold_text: bool = False,
    **style,
) -> bool:
    """Put `lines` centred at (x, y) moved by the first offset (mm) where nothing is yet."""
    w = frame.metres(max(text_width_mm(line, size) for line in lines) + 1.0)
    h = frame.metres(line_height(size, 1.1) * len(lines) + 0.6)
    x0, y0, x1, y1 = frame.window
    for dx, dy in offsets:
        cx, cy = x + frame.metres(dx), y + frame.metres(dy)
        box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, "l")
        inside = box[0] >= x0 and box[2] <= x1 and box[1] >= y0 and box[3] <= y1
        if not force and (not inside or any(_overlaps(box, other) for other in taken)):
            continue
        taken.append(box)
        put_text(
            ax,
            cx,
            cy,
            "\n".join(lines),
            size,
            bold_text,
            color,
            ha="center",
            va="center",
            linespacing=1.05,
            zorder=9,
            clip_on=True,
            **style,
        )
        return True
    return False


def _overlaps(a, b) -> bool:
    return not (a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1])


def _name_beside(ax, frame: MapFrame, p, gap: float, lines: list[str], used: float, taken: list):
    """The name right of, left of, below or above point `p` (`gap` metres away): the first
    place inside the map that meets no other label or marker in `taken`; none if none fits."""
    w = frame.metres(max(text_width_mm(line, used) for line in lines))
    h = frame.metres(line_height(used, 1.15) * len(lines))
    x0, y0, x1, y1 = frame.window
    for left, top_y in (
        (p.x + gap, p.y + h / 2),
        (p.x - gap - w, p.y + h / 2),
        (p.x - w / 2, p.y - gap),
        (p.x - w / 2, p.y + gap + h),
    ):
        box = (left, top_y - h, left + w, top_y, "n")
        if box[0] < x0 or box[2] > x1 or box[1] < y0 or box[3] > y1:
            continue
        if any(_overlaps(box, other) for other in taken):
            continue
        taken.append(box)
        ax.text(
            left,
            top_y,
            "\n".join(lines),
            fontsize=used,
            ha="left",
            va="top",
            linespacing=1.05,
            zorder=8,
            parse_math=False,
            clip_on=True,
            bbox={"boxstyle": "square,pad=0.05", "fc": "white", "ec": "none", "alpha": 0.72},
        )
        return


def draw_compounds(
    ax: Axes, compounds: Iterable[tuple[str, Geometry]], alpha=0.9, lw=0.5, zorder=4
) -> None:
    """Compounds in their status colour and hatch, one collection per status."""
    by_status: dict[str, list] = {}
    for status, geom in compounds:
        by_status.setdefault(status, []).append(geom)
    for status, geoms in by_status.items():
        draw_polygons(
            ax,
            geoms,
            facecolors=STATUS_COLOURS.get(status, "#999999"),
            edgecolors=INK,
            linewidths=lw,
            alpha=alpha,
            zorder=zorder,
        )
        hatch = STATUS_HATCHES.get(status)
        if hatch:
            draw_polygons(
                ax,
                geoms,
                facecolors="none",
                edgecolors=INK,
                linewidths=0,
                hatch=hatch,
                zorder=zorder + 0.01,
            )


def number_marker(ax: Axes, x, y, number: int, frame: MapFrame, size=6.0, fc="white"):
    radius = frame.metres(max(2.0, 0.9 * size / 72 * 25.4 * (0.6 + 0.3 * len(str(number)))))
    ax.add_artist(Circle((x, y), radius, facecolor=fc, edgecolor=INK, linewidth=0.6, zorder=8))
    put_text(ax, x, y, str(number), size, True, ha="center", va="center", zorder=9)
    return radius


# -- area page -----------------------------------------------------------------------------------


@dataclass
class Column:
    title: str
    width: float  # mm; 0 = share what is left
    get: Callable[[int, CompoundFacts], str]
    align: str = "left"
    lines: int = 1
    flex: float = 1.0  # share of the room left, for columns of width 0


def _blockers_short(c: CompoundFacts) -> str:
    return "、".join(BLOCKER_SHORT.get(b, BLOCKER_TEXT.get(b, b)) for b in c.blockers) or (
        "—" if c.on_ledger else ""
    )


def _deadline_cell(c: CompoundFacts, on: date) -> str:
    if not c.deadline:
        return "—"
    return short_date(c.deadline) + (" 逾期" if c.overdue(on) else "")


def area_columns(on: date, k: float = 1.0) -> list[Column]:
    """The area table's columns; widths in mm on A4, times `k` on larger paper."""
    return [
        Column("序号", 6.5 * k, lambda i, c: str(i), "center"),
        Column("小区名称", 0, lambda i, c: clean(c.name), lines=4, flex=0.8),
        Column("状态", 15 * k, lambda i, c: c.status_label),
        Column("任务套数", 10 * k, lambda i, c: units(c.units_task), "right"),
        Column("已登记", 10 * k, lambda i, c: units(c.units_transferred), "right"),
        Column("化解率", 10 * k, lambda i, c: percent(c.transfer_rate), "right"),
        Column("卡点", 0, lambda i, c: _blockers_short(c), lines=3, flex=1.2),
        Column("牵头单位", 15 * k, lambda i, c: clean(c.lead_department), lines=2),
        Column("限时办结", 17.5 * k, lambda i, c: _deadline_cell(c, on), lines=2),
    ]


@dataclass
class TableStyle:
    size: float = 6.5
    min_size: float = 5.5
    pad: float = 0.75


def _widths(columns: list[Column], total: float) -> list[float]:
    fixed = sum(c.width for c in columns)
    weights = sum(c.flex for c in columns if not c.width) or 1.0
    room = max(total - fixed, 12.0 * weights)
    return [c.width or room * c.flex / weights for c in columns]


def _row_cells(columns, widths, index, c, style) -> tuple[list, float]:
    cells, tallest = [], 1
    for col, w in zip(columns, widths, strict=True):
        lines, size = fit(
            col.get(index, c), w - 2 * style.pad, style.size, col.lines, style.min_size
        )
        cells.append((lines, size))
        tallest = max(tallest, len(lines))
    height = line_height(style.size, 1.25) * tallest + 2 * style.pad
    return cells, height


def draw_table(
    sheet: Sheet,
    x,
    y,
    width,
    bottom,
    columns: list[Column],
    rows: list[tuple[int, CompoundFacts]],
    style: TableStyle,
    on: date,
    total_row: list[str] | None = None,
) -> int:
    """Draw as many rows as fit above `bottom`; returns how many were drawn."""
    widths = _widths(columns, width)
    head_h = line_height(style.size, 1.25) + 2 * style.pad + 0.6
    sheet.rect(x, y, sum(widths), head_h, fc="#e6e6e6", ec="none")
    cx = x
    for col, w in zip(columns, widths, strict=True):
        lines, size = fit(col.title, w - 2 * style.pad, style.size, 1, style.min_size - 1)
        anchor = {"left": cx + style.pad, "center": cx + w / 2, "right": cx + w - style.pad}
        sheet.text(
            anchor[col.align],
            y + head_h / 2,
            lines[0],
            size=size,
            weight="bold",
            ha=col.align,
            va="center",
        )
        cx += w
    sheet.hline(x, x + sum(widths), y, lw=0.8)
    sheet.hline(x, x + sum(widths), y + head_h, lw=0.5)
    cy = y + head_h
    total_h = line_height(style.size, 1.25) + 2 * style.pad if total_row else 0
    drawn = 0
    for n, (index, c) in enumerate(rows):
        cells, h = _row_cells(columns, widths, index, c, style)
        room = bottom - (total_h if n == len(rows) - 1 else 0)
        if cy + h > room:
            break
        if c.overdue(on):
            sheet.rect(x, cy, sum(widths), h, fc="#f2f2f2", ec="none", zorder=0.5)
        cx = x
        for col, w, (lines, size) in zip(columns, widths, cells, strict=True):
            if col.title == "状态":
                status_swatch(sheet, cx + style.pad, cy + style.pad + 0.2, 3.2, 2.4, c.status)
                sheet.lines(cx + style.pad + 4.2, cy + style.pad, lines, size, 1.25)
            else:
                anchor = {
                    "left": cx + style.pad,
                    "center": cx + w / 2,
                    "right": cx + w - style.pad,
                }[col.align]
                weight = "bold" if col.title == "限时办结" and c.overdue(on) else "normal"
                sheet.lines(anchor, cy + style.pad, lines, size, 1.25, ha=col.align, weight=weight)
            cx += w
        cy += h
        sheet.hline(x, x + sum(widths), cy, lw=0.25, color="#9a9a9a")
        drawn += 1
    if total_row and drawn == len(rows):
        cx = x
        for col, w, value in zip(columns, widths, total_row, strict=True):
            anchor = {"left": cx + style.pad, "center": cx + w / 2, "right": cx + w - style.pad}
            sheet.text(
                anchor[col.align],
                cy + style.pad,
                value,
                size=style.size,
                weight="bold",
                ha=col.align,
            )
            cx += w
        cy += total_h
    sheet.hline(x, x + sum(widths), cy, lw=0.8)
    return drawn


def _title_block(sheet: Sheet, selection: Selection, title: str, x, y, width, size) -> float:
    printed = f"打印日期 {cn_date(selection.printed_on)}"
    as_of = selection.ledger_as_of
    fresh = f"台账更新至 {cn_date(as_of.astimezone(TZ).date())}" if as_of else "台账无更新记录"
    right_w = max(text_width_mm(printed, size * 0.55), text_width_mm(fresh, size * 0.55)) + 2
    lines, used = fit(title, width - right_w - 4, size, 2, size * 0.6)
    y_end = sheet.lines(x, y, lines, used, 1.15, weight="bold")
    sheet.text(x + width, y, printed, size=size * 0.55, ha="right")
    sheet.text(x + width, y + line_height(size * 0.55), fresh, size=size * 0.55, ha="right")
    return y_end


def _summary(selection: Selection) -> str:
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


def _crs_note(selection: Selection, step: int | None) -> str:
    epsg = selection.county.epsg
    zone = (epsg - 4534 + 25) if 4534 <= epsg <= 4554 else (epsg - 4513 + 25)
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


CONTEXT_LEGEND = [
    ("河流", {"color": RIVER, "lw": 2.0}),
    ("道路", {"color": "white", "under": "#6f6f6f", "lw": 1.6}),
    ("规划片区界线", {"color": OUTLINE, "lw": 1.2, "ls": (0, (4, 1.5))}),
    ("规划道路", {"fill": "#d9d9d9", "hatch": "||||", "color": OUTLINE, "ls": "--"}),
    ("规划绿地", {"fill": "#d4ead4", "hatch": "oo", "color": OUTLINE, "ls": "--"}),
    ("乡镇界", {"color": "#8c8c8c", "lw": 0.6, "ls": (0, (6, 2, 1.5, 2))}),
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
    with _RENDERING, matplotlib.rc_context(_rc()):
        buffer = BytesIO()
        selection = job.selection
        title = f"{clean(selection.county.name)} {clean(selection.area.label)} 登记难化解现场办公图"
        with PdfPages(buffer, metadata=_metadata(title)) as pdf:
            for fig in _area_figures(job, title):
                pdf.savefig(fig)
        return buffer.getvalue()


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
    y = _title_block(sheet, selection, title, margin, margin, W - 2 * margin, 15 * k)
    sheet.text(margin, y + 0.6, _summary(selection), size=7.5 * k)
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
        _crs_note(selection, step),
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
    others = [g for code, _, _, g in layers.compounds if code not in chosen]
    draw_polygons(
        ax, others, facecolors=OTHER_FILL, edgecolors=OTHER_EDGE, linewidths=0.3, zorder=3
    )
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
        _name_beside(ax, frame, p, r * 1.2, lines, used, taken)


def _metadata(title: str) -> dict:
    return {
        "Title": title,
        "Author": "titlemap",
        "Creator": "titlemap 登记难化解一张图",
        "Subject": "现场办公 / on-site office",
    }


# -- visit pack ----------------------------------------------------------------------------------


@dataclass
class VisitStop:
    number: int
    facts: CompoundFacts
    layers: Layers


@dataclass
class VisitPack:
    selection: Selection
    stops: list[VisitStop]
    view: Overview
    cover_layers: Layers
    route_m: float = 0.0
    paper: str = "A4"
    total_pages: int = field(init=False)

    def __post_init__(self):
        self.total_pages = len(self.stops) + 1


def plan_visit(conn, selection: Selection, keep_order: bool | None = None) -> VisitPack:
    """Everything the visit pack draws, fetched once (workers then only draw)."""
    facts = selection.compounds
    if keep_order is None:
        keep_order = selection.area.kind == "compounds"
    points = [(p.x, p.y) for p in (c.geom.representative_point() for c in facts)]
    order = list(range(len(facts))) if keep_order else visit_order(points)
    stops = []
    for number, index in enumerate(order, start=1):
        c = facts[index]
        x0, y0, x1, y1 = c.geom.bounds
        span = max(x1 - x0, y1 - y0, 120.0)
        pad = span * 0.9
        layers = layers_in(
            conn, selection.county, (x0 - pad, y0 - pad, x1 + pad, y1 + pad), with_parcels=True
        )
        stops.append(VisitStop(number, c, layers))
    minx, miny, maxx, maxy = selection.bounds
    pad = max(maxx - minx, maxy - miny) * 0.5 + 300
    cover_layers = layers_in(
        conn, selection.county, (minx - pad, miny - pad, maxx + pad, maxy + pad), simplify=0.5
    )
    length = route_length(points, order)
    return VisitPack(selection, stops, overview(conn, selection.county), cover_layers, length)


def visit_pdf(
    conn,
    selection: Selection,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    keep_order: bool | None = None,
) -> bytes:
    """The visit pack as PDF bytes: cover plus one page per compound."""
    return render_visit(plan_visit(conn, selection, keep_order), workers, progress)


def default_workers(pages: int) -> int:
    """Two processes for a long pack when the pages can be merged afterwards, else one."""
    if pages < PROCESS_MIN_PAGES or _merger() is None:
        return 1
    return max(1, min(2, len(os.sched_getaffinity(0))))


def render_visit(
    pack: VisitPack,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> bytes:
    """Draw the pack; with `workers` > 1 the pages are split between processes and merged."""
    total = pack.total_pages
    workers = default_workers(total) if workers is None else max(1, min(workers, total))
    if workers > 1 and _merger() is None:
        workers = 1
    title = f"{clean(pack.selection.county.name)} {clean(pack.selection.area.label)} 现场办公资料"
    if workers == 1:
        return _render_pages(pack, list(range(total)), title, progress)
    size = math.ceil(total / workers)
    chunks = [list(range(i, min(i + size, total))) for i in range(0, total, size)]
    context = _mp_context()
    queue = context.Queue()
    with ProcessPoolExecutor(
        len(chunks), mp_context=context, initializer=_worker_init, initargs=(queue,)
    ) as pool:
        futures = [pool.submit(_render_chunk, pack, chunk, title) for chunk in chunks]
        done = 0
        while done < total and not all(f.done() for f in futures):
            try:
                done += queue.get(timeout=0.2)
            except Empty:
                continue
            if progress:
                progress(done, total)
        parts = [f.result() for f in futures]  # re-raises a worker's error here
    if progress:
        progress(total, total)
    return _merger()(parts, title)


def _mp_context():
    methods = multiprocessing.get_all_start_methods()
    # never fork: the server has threads and database connections open
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if context.get_start_method() == "forkserver":
        context.set_forkserver_preload(["maps.print"])
    return context


_progress_queue = None


def _worker_init(queue) -> None:
    global _progress_queue
    _progress_queue = queue


def _render_chunk(pack: VisitPack, pages: list[int], title: str) -> bytes:
    def tick(_done: int, _total: int) -> None:
        if _progress_queue is not None:
            _progress_queue.put(1)

    return _render_pages(pack, pages, title, tick)


def _render_pages(pack: VisitPack, pages: list[int], title: str, progress) -> bytes:
    with _RENDERING, matplotlib.rc_context(_rc()):
        buffer = BytesIO()
        with PdfPages(buffer, metadata=_metadata(title)) as pdf:
            for n, page in enumerate(pages, start=1):
                fig = _cover(pack, title) if page == 0 else _stop_page(pack, pack.stops[page - 1])
                pdf.savefig(fig)
                if progress:
                    progress(n, len(pages))
        return buffer.getvalue()


def _merge_pypdf(parts: list[bytes], title: str) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for part in parts:
        writer.append(PdfReader(BytesIO(part)))
    writer.add_metadata({"/" + k: v for k, v in _metadata(title).items()})
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def _merge_pdfunite(parts: list[bytes], title: str) -> bytes:
    with tempfile.TemporaryDirectory(prefix="titlemap-print-") as folder:
        names = []
        for n, part in enumerate(parts):
            name = os.path.join(folder, f"part{n:03d}.pdf")
            with open(name, "wb") as handle:
                handle.write(part)
            names.append(name)
        target = os.path.join(folder, "pack.pdf")
        subprocess.run(["pdfunite", *names, target], check=True, capture_output=True)
        with open(target, "rb") as handle:
            return handle.read()


@cache
def _merger() -> Callable[[list[bytes], str], bytes] | None:
    """pypdf when installed, else poppler's pdfunite, else None (then one process draws all)."""
    try:
        import pypdf  # noqa: F401

        return _merge_pypdf
    except ImportError:
        pass
    return _merge_pdfunite if shutil.which("pdfunite") else None


# -- cover ---------------------------------------------------------------------------------------


def _cover(pack: VisitPack, title: str) -> Figure:
    selection = pack.selection
    W, H = PAPERS["A4"][1], PAPERS["A4"][0]  # portrait
    margin = 10.0
    sheet = Sheet(W, H)
    y = _title_block(sheet, selection, title, margin, margin, W - 2 * margin, 15)
    summary = _summary(selection)
    route = f"路线 {len(pack.stops)} 站，约 {pack.route_m / 1000:.1f} km（直线距离）"
    y = sheet.para(margin, y + 0.8, f"{summary} · {route}", W - 2 * margin, 7.5, 2, 6.5)
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
    draw_polygons(
        ax,
        [g for code, _, _, g in layers.compounds if code not in chosen],
        facecolors=OTHER_FILL,
        edgecolors=OTHER_EDGE,
        linewidths=0.3,
        zorder=3,
    )
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
    sheet.text(margin, H - margin - 3, _crs_note(selection, step), size=5.5, color="#333333")
    sheet.text(
        W - margin, H - margin - 3, f"第 1 页 / 共 {pack.total_pages} 页", size=6, ha="right"
    )
    return sheet.fig


def _names_only(ax, frame, numbered, size, taken) -> None:
    for _number, c in numbered:
        p = c.geom.representative_point()
        label = clean(c.name)
        lines, used = fit(label, 22, size, 2, size - 1)
        _name_beside(ax, frame, p, frame.metres(2.6), lines, used, taken)


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
            "卡点": _blockers_short(c),
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
            anchor = {"left": cx + 0.8, "center": cx + w / 2, "right": cx + w - 0.8}[align]
            sheet.text(
                anchor, cy + row_h / 2, name, size=size, weight="bold", ha=align, va="center"
            )
            cx += w
        cy += row_h
        for stop in pack.stops[col * per_col : (col + 1) * per_col]:
            cx = cx0
            for (name, _, align), w, value in zip(fields, widths, cell_values(stop), strict=True):
                anchor = {"left": cx + 0.8, "center": cx + w / 2, "right": cx + w - 0.8}[align]
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


# -- one page per compound -----------------------------------------------------------------------


def _change_text(field_: str, change) -> str:
    name = FIELD_TEXT.get(field_, field_)
    try:
        before, after = change
    except (TypeError, ValueError):
        return f"{name}更新"

    def show(value) -> str:
        if value is None or value == [] or value == "":
            return "无"
        if field_ == "status":
            return STATUS_TEXT.get(value, str(value))
        if field_ in ("deadline", "opened_on", "closed_on") and isinstance(value, str):
            try:
                return short_date(date.fromisoformat(value[:10]))
            except ValueError:
                return clean(value)
        if field_ == "blockers" and isinstance(value, list):
            return "、".join(BLOCKER_SHORT.get(b, b) for b in value)
        if isinstance(value, list):
            return "、".join(map(str, value))
        return clean(value)

    if field_ in ("plan", "blocker_note", "close_reason"):
        return f"{name}已修改"
    if before is None:
        return f"{name} {show(after)}"
    return f"{name} {show(before)}→{show(after)}"


def _event_text(event) -> str:
    if event.action == "open":
        return "挂账" + (f"（{STATUS_TEXT.get(event.status, '')}）" if event.status else "")
    changes = [
        _change_text(k, v) for k, v in event.changes.items() if k not in ("closed_on", "updated_by")
    ]
    head = ACTION_TEXT.get(event.action, event.action)
    body = "；".join(changes)
    return body if event.action == "update" and body else f"{head}{'：' + body if body else ''}"


def next_steps(c: CompoundFacts, on: date) -> list[str]:
    """What remains, by whom and by when, from the ledger entry and its latest note."""
    if not c.on_ledger:
        return ["不在化解台账：核实是否漏报；属于化解范围的，按程序纳入台账（挂账）。"]
    steps = []
    task = c.units_task or 0
    first, done = c.units_first_registered or 0, c.units_transferred or 0
    if c.status == "closed":
        reason = f"（{clean(c.close_reason)}）" if c.close_reason else ""
        steps.append(f"已于 {cn_date(c.closed_on)} 销号{reason}；回访业主，巩固成果。")
        if done < task:
            steps.append(f"尚有 {task - done:,} 套未转移登记，跟踪办结。")
    else:
        if first < task:
            steps.append(f"首次登记：尚余 {task - first:,} 套（已完成 {first:,} / {task:,}）。")
        if done < task:
            steps.append(f"转移登记：尚余 {task - done:,} 套（已完成 {done:,} / {task:,}）。")
        if c.blockers:
            leads = list(dict.fromkeys(BLOCKER_DEPARTMENT.get(b, "—") for b in c.blockers))
            steps.append(f"破解卡点 {len(c.blockers)} 项：{'、'.join(leads)}分别牵头（见上表）。")
        if c.deadline:
            days = (c.deadline - on).days
            when = f"已逾期 {-days} 天，说明原因并重定时限" if days < 0 else f"剩 {days} 天"
            steps.append(f"限 {cn_date(c.deadline)} 前办结（{when}）。")
        if c.supervising_leader or c.task_force_lead:
            steps.append(
                f"包抓领导 {clean(c.supervising_leader)} 督办，专班负责人 "
                f"{clean(c.task_force_lead)} 推进并报告进展。"
            )
    if c.developer_status in DEVELOPER_STATUS:
        reason = f"（{clean(c.blacklist_reason)}）" if c.blacklist_reason else ""
        steps.append(
            f"开发企业{DEVELOPER_STATUS[c.developer_status]}{reason}：依法追责，不影响群众办证。"
        )
    latest = next((e for e in reversed(c.history) if e.note), None)
    if latest is not None:
        when = short_date(latest.at.astimezone(TZ).date())
        steps.append(f"最近进展（{when}）：{clean(latest.note)}")
    return steps


def _stop_page(pack: VisitPack, stop: VisitStop) -> Figure:
    c, selection = stop.facts, pack.selection
    on = selection.printed_on
    W, H = PAPERS["A4"][1], PAPERS["A4"][0]
    margin = 10.0
    inner = W - 2 * margin
    sheet = Sheet(W, H)

    # header: stop badge, name (wrapped or shrunk), status
    badge = 11.0
    sheet.rect(margin, margin, badge, badge, fc=INK, ec=INK)
    sheet.text(
        margin + badge / 2,
        margin + badge / 2,
        str(stop.number),
        size=13 if stop.number < 100 else 10,
        weight="bold",
        ha="center",
        va="center",
        color="white",
    )
    status_w = 34.0
    name_x = margin + badge + 3
    name_w = inner - badge - 3 - status_w - 3
    lines, size = fit(clean(c.name), name_w, 16, 3, 9)
    y = sheet.lines(name_x, margin - 0.6, lines, size, 1.12, weight="bold")
    sub = " · ".join(
        part
        for part in (
            clean(c.code),
            f"台账 {clean(c.ledger_no)}" if c.on_ledger else "不在台账",
            clean(c.township, ""),
            clean(c.address, ""),
        )
        if part
    )
    y = sheet.para(name_x, max(y, margin + 6) + 0.5, sub, name_w, 7.5, 2, 6.5, color="#333333")
    sx = W - margin - status_w
    status_swatch(sheet, sx, margin, status_w, 8.5, c.status, lw=0.6)
    sheet.rect(sx + 3, margin + 1.6, status_w - 6, 5.3, fc="white", ec="none", zorder=2)
    sheet.text(
        sx + status_w / 2,
        margin + 4.25,
        c.status_label,
        size=10,
        weight="bold",
        ha="center",
        va="center",
        zorder=3,
    )
    sheet.text(
        sx + status_w / 2,
        margin + 10.2,
        f"走访第 {stop.number} / {len(pack.stops)} 站",
        size=6.5,
        ha="center",
    )
    top = max(y, margin + badge + 3.5) + 2.5

    # map
    map_h = 104.0
    frame = map_frame(
        sheet, margin + 4, top, inner - 4, map_h, c.geom.bounds, selection.county.epsg, margin=0.22
    )
    step = _draw_stop_map(sheet, frame, pack, stop)
    y = top + map_h + 6.5

    # two columns: ledger card | blockers, parcels, overlaps
    gap = 5.0
    col_w = (inner - gap) / 2
    left_end = _ledger_card(sheet, margin, y, col_w, c, on)
    right_end = _blockers_block(sheet, margin + col_w + gap, y, col_w, c)
    y = max(left_end, right_end) + 3

    # plan and next steps
    y = _heading(sheet, margin, y, inner, "化解方案（一小区、一方案、一专班）")
    y = (
        sheet.para(
            margin,
            y,
            c.plan or ("尚未制定化解方案。" if c.on_ledger else "不在化解台账，无化解方案。"),
            inner,
            7.5,
            4,
            6.5,
        )
        + 1.2
    )
    y = _heading(sheet, margin, y, inner, "下一步")
    for i, step_text in enumerate(next_steps(c, on)[:8], start=1):
        lines, used = fit(clean(step_text), inner - 5, 7.2, 2, 6.5)
        sheet.text(margin, y, f"{i}.", size=used)
        y = sheet.lines(margin + 4.5, y, lines, used)
    y += 1.5

    # history: as many of the latest events as fit, oldest first
    footer = H - margin - 4
    notes_h = 16.0
    y = _heading(sheet, margin, y, inner, f"化解历程（共 {len(c.history)} 条）")
    _history(sheet, margin, y, inner, footer - notes_h - 2, c)
    ny = footer - notes_h
    sheet.text(margin, ny, "现场办公记录：", size=7, weight="bold")
    for i in range(3):
        sheet.hline(
            margin + 20 if i == 0 else margin, W - margin, ny + 4.2 + i * 5, lw=0.3, color="#8a8a8a"
        )
    sheet.text(
        margin, H - margin - 1, _crs_note(selection, step), size=5.2, color="#444444", va="bottom"
    )
    sheet.text(
        W - margin,
        H - margin - 1,
        f"{clean(selection.county.name)} · 打印 {cn_date(on)} · 第 {stop.number + 1} 页 / "
        f"共 {pack.total_pages} 页",
        size=6,
        ha="right",
        va="bottom",
    )
    return sheet.fig


def _heading(sheet: Sheet, x, y, width, title: str, size: float = 8.0) -> float:
    sheet.text(x, y, title, size=size, weight="bold")
    y += line_height(size, 1.2)
    sheet.hline(x, x + width, y, lw=0.6)
    return y + 1.0


def _ledger_card(sheet: Sheet, x, y, width, c: CompoundFacts, on: date) -> float:
    y = _heading(sheet, x, y, width, "台账卡片")
    size = 7.2
    key_w = 17.0
    task = c.units_task
    developer = clean(c.developer)
    if c.developer_status in DEVELOPER_STATUS:
        developer += f"（{DEVELOPER_STATUS[c.developer_status]}）"
    deadline = cn_date(c.deadline)
    if c.deadline and c.status != "closed":
        days = (c.deadline - on).days
        deadline += f"（逾期 {-days} 天）" if days < 0 else f"（剩 {days} 天）"
    rows = [
        ("化解状态", c.status_label),
        ("任务套数", f"{units(task)} 套" if task is not None else "—"),
        (
            "首次登记",
            f"{units(c.units_first_registered)} 套（{percent(c.first_rate)}）"
            if c.on_ledger
            else "—",
        ),
        (
            "转移登记",
            f"{units(c.units_transferred)} 套（{percent(c.transfer_rate)}）"
            if c.on_ledger
            else "—",
        ),
        (
            "已售套数",
            f"{units(c.units_sold)} 套 · {units(c.buildings)} 栋 · 占地 "
            f"{c.area_m2 / 10_000:.2f} 公顷",
        ),
        ("入住时间", cn_date(c.occupied_on)),
        ("开发企业", developer),
        ("包抓领导", clean(c.supervising_leader)),
        ("专班负责人", clean(c.task_force_lead)),
        ("牵头单位", clean(c.lead_department)),
        ("配合单位", "、".join(clean(d) for d in c.cooperating_departments) or "—"),
        ("挂账日期", cn_date(c.opened_on)),
        ("限时办结", deadline),
    ]
    if c.closed_on:
        rows.append(("销号日期", cn_date(c.closed_on)))
    for key, value in rows:
        lines, used = fit(value, width - key_w, size, 2, 6.2)
        sheet.text(x, y, key, size=6.6, color="#444444")
        weight = "bold" if key in ("化解状态", "限时办结") and "逾期" in value else "normal"
        if key == "化解状态":
            status_swatch(sheet, x + key_w, y + 0.2, 4, 2.6, c.status, lw=0.3)
            sheet.lines(x + key_w + 5.2, y, lines, used, weight="bold")
        else:
            sheet.lines(x + key_w, y, lines, used, weight=weight)
        y += line_height(size, 1.22) * len(lines) + 0.35
    return y


def _blockers_block(sheet: Sheet, x, y, width, c: CompoundFacts) -> float:
    y = _heading(sheet, x, y, width, "卡点与责任单位")
    size = 7.0
    if not c.blockers:
        y = sheet.para(x, y, "无卡点" if c.on_ledger else "不在台账", width, size)
    for b in c.blockers:
        dept = BLOCKER_DEPARTMENT.get(b, "—")
        label = BLOCKER_TEXT.get(b, b)
        dept_w = text_width_mm(dept, size) + 2
        lines, used = fit(label, width - dept_w - 3, size, 2, 6.2)
        sheet.text(x, y, "■", size=5.5, color="#555555")
        sheet.lines(x + 3, y, lines, used)
        sheet.text(x + width, y, dept, size=size, ha="right", weight="bold")
        y += line_height(size, 1.22) * len(lines) + 0.3
    if c.blocker_note:
        y = sheet.para(
            x, y + 0.4, f"说明：{clean(c.blocker_note)}", width, 6.6, 3, 6.0, color="#333333"
        )
    coop = "、".join(clean(d) for d in c.cooperating_departments)
    if coop:
        y = sheet.para(x, y + 0.3, f"配合：{coop}", width, 6.6, 2, 6.0, color="#333333")
    y += 1.5
    y = _heading(sheet, x, y, width, f"宗地（{len(c.parcels)} 宗）", 7.5)
    size = 6.4
    if not c.parcels:
        y = sheet.para(x, y, "无宗地记录（需核实用地手续）", width, size)
    for p in c.parcels[:5]:
        parts = [clean(p.code), f"{p.area_m2:,.0f} m²"]
        if p.recorded_area_m2:
            diff = (p.area_m2 - p.recorded_area_m2) / p.recorded_area_m2
            parts.append(f"登记 {p.recorded_area_m2:,.0f}（{diff:+.1%}）")
        if p.premium_owed > 0.5:
            parts.append(f"欠缴出让金 {p.premium_owed / 10_000:,.0f} 万元")
        y = sheet.para(x, y, " · ".join(parts), width, size, 2, 5.8)
    if len(c.parcels) > 5:
        y = sheet.para(x, y, f"另有 {len(c.parcels) - 5} 宗", width, size)
    y += 1.2
    shown = [o for o in c.overlaps if o.kind != "planning_area"]
    y = _heading(sheet, x, y, width, "规划叠加", 7.5)
    if not shown:
        y = sheet.para(x, y, "与规划道路、绿地无重叠", width, size)
    for o in shown[:4]:
        text_ = f"{clean(o.name)}：{o.area_m2:,.0f} m²（占小区 {o.share:.0%}）"
        y = sheet.para(x, y, text_, width, size, 2, 5.8)
    return y


def _history(sheet: Sheet, x, y, width, bottom, c: CompoundFacts) -> float:
    size = 6.4
    widths = (17.0, 0.0, 30.0)
    body_w = width - widths[0] - widths[2]
    rows = []
    for event in c.history:
        when = event.at.astimezone(TZ).date()
        what = _event_text(event)
        note = clean(event.note, "")
        text_ = f"{what}。{note}" if note and note not in what else what
        lines, used = fit(text_, body_w - 2, size, 2, 5.8)
        who, _ = fit(clean(event.user), widths[2] - 1, size, 1, 5.5)
        rows.append((short_date(when), lines, used, who[0]))
    if not rows:
        return sheet.para(x, y, "无记录", width, size)
    step = line_height(size, 1.2)
    heights = [len(r[1]) * step + 0.5 for r in rows]
    room = bottom - y
    keep = len(rows)
    while keep and sum(heights[-keep:]) > room:
        keep -= 1
    if keep < len(rows):
        room -= step
        while keep and sum(heights[-keep:]) > room:
            keep -= 1
        sheet.text(x, y, f"…… 较早的 {len(rows) - keep} 条从略", size=size - 0.4, color="#555555")
        y += step
    for (when, lines, used, who), h in zip(
        rows[-keep:] if keep else [], heights[-keep:], strict=False
    ):
        sheet.text(x, y, when, size=size)
        sheet.lines(x + widths[0], y, lines, used, 1.2)
        sheet.text(x + width, y, who, size=size, ha="right", color="#444444")
        y += h
    return y


def _draw_stop_map(sheet: Sheet, frame: MapFrame, pack: VisitPack, stop: VisitStop) -> int:
    ax, c, layers = frame.ax, stop.facts, stop.layers
    draw_context(ax, layers, 6.0, frame)
    others = [(code, name, g) for code, name, _s, g in layers.compounds if code != c.code]
    draw_polygons(
        ax,
        [g for _, _, g in others],
        facecolors=OTHER_FILL,
        edgecolors=OTHER_EDGE,
        linewidths=0.4,
        zorder=3,
    )
    neighbour_parcels = [g for code, g in layers.parcels if code not in {p.code for p in c.parcels}]
    draw_lines(
        ax,
        neighbour_parcels,
        colors="#b5b5b5",
        linewidths=0.3,
        zorder=3.1,
        linestyles=[(0, (2, 1))],
    )
    draw_compounds(ax, [(c.status, c.geom)], alpha=0.55, lw=1.6)
    # planned roads and green space cutting through: drawn over the compound
    cuts = [o for o in c.overlaps if o.kind in ("planned_road", "green_space") and o.share < 0.999]
    for o in cuts:
        draw_polygons(
            ax,
            [o.geom],
            facecolors="white",
            edgecolors=OUTLINE,
            linewidths=0.9,
            hatch="\\\\\\\\",
            alpha=0.85,
            zorder=5,
        )
    draw_lines(
        ax,
        [p.geom for p in c.parcels],
        colors=INK,
        linewidths=0.9,
        zorder=5.5,
        linestyles=[(0, (5, 1.2))],
    )
    taken: list = [
        place_inset(
            sheet, frame, [c.geom, *(g for _, _, g in others)], pack.view, 30.0, 24.0, c.geom
        )
    ]
    # the compound's name at its centre
    centre = c.geom.representative_point()
    name_lines, used = fit(
        clean(c.name), max(min(frame.mm(math.sqrt(c.area_m2)), 60), 30), 9, 3, 6.5
    )
    place_label(
        ax,
        frame,
        taken,
        centre.x,
        centre.y,
        name_lines,
        used,
        offsets=((0, 0),),
        force=True,
        bold_text=True,
        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": INK, "lw": 0.5, "alpha": 0.9},
    )
    for o in cuts:
        p = o.geom.representative_point()
        label = [f"{clean(o.name)}", f"重叠 {o.area_m2:,.0f} m²（{o.share:.0%}）"]
        place_label(
            ax,
            frame,
            taken,
            p.x,
            p.y,
            label,
            6.0,
            color=OUTLINE,
            bold_text=True,
            offsets=((0, 0), (0, 6), (0, -6), (14, 0), (-14, 0), (0, 12), (0, -12)),
            bbox={"boxstyle": "square,pad=0.15", "fc": "white", "ec": OUTLINE, "lw": 0.4},
        )
    for p in c.parcels:
        point = p.geom.representative_point()
        code = clean(p.code)
        label = f"宗地 {code[-7:]}" if len(code) == 19 else code
        place_label(
            ax,
            frame,
            taken,
            point.x,
            point.y,
            [label],
            5.8,
            offsets=((0, -4), (0, 4), (0, -8), (0, 8)),
            bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8},
        )
    x0, y0, x1, y1 = frame.window
    for _code, name, g in others:
        p = g.representative_point()
        if not (x0 < p.x < x1 and y0 < p.y < y1):
            continue
        lines, used = fit(clean(name), 24, 6.0, 2, 5.5)
        place_label(
            ax,
            frame,
            taken,
            p.x,
            p.y,
            lines,
            used,
            color="#555555",
            offsets=((0, 0), (0, 5), (0, -5)),
        )
    cut_codes = {o.code for o in cuts}
    layers = Layers(
        layers.compounds,
        [a for a in layers.planned_areas if a[0] not in cut_codes],
        layers.context,
        layers.townships,
    )
    label_planned(ax, frame, layers, 6.0, taken)
    scale_bar(sheet, frame)
    north_arrow(sheet, frame)
    step = graticule(sheet, frame, lines=3)
    # a compact legend under the map
    ly = frame.y + frame.h + 3.6
    items = [
        ("本小区（按化解状态着色）", None),
        ("宗地界线", "parcel"),
        ("规划道路/绿地重叠", "cut"),
        ("规划片区界线", "planned"),
        ("其他小区", "other"),
    ]
    lx = frame.x + 12
    for label, kind in items:
        if kind is None:
            status_swatch(sheet, lx, ly - 1.2, 5, 2.4, c.status, lw=0.3)
        elif kind == "parcel":
            sheet.ax.plot([lx, lx + 5], [ly, ly], color=INK, linewidth=0.9, linestyle=(0, (5, 1.2)))
        elif kind == "cut":
            sheet.rect(lx, ly - 1.2, 5, 2.4, fc="white", ec=OUTLINE, lw=0.5, hatch="\\\\\\\\")
        elif kind == "planned":
            sheet.ax.plot(
                [lx, lx + 5], [ly, ly], color=OUTLINE, linewidth=1.1, linestyle=(0, (4, 1.5))
            )
        else:
            sheet.rect(lx, ly - 1.2, 5, 2.4, fc=OTHER_FILL, ec=OTHER_EDGE, lw=0.4)
        sheet.text(lx + 6, ly, label, size=6, va="center")
        lx += 9 + text_width_mm(label, 6) + 2
    return step
