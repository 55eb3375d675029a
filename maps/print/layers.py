"""What lies on a map: townships, rivers, roads and planned areas, then the compounds."""

from collections.abc import Iterable

import shapely
from matplotlib.axes import Axes
from shapely import Geometry

from geo.query.selection import Layers
from maps.print.furniture import MapFrame
from maps.print.geometry import draw_lines, draw_polygons
from maps.print.sheet import INK, OTHER_EDGE, OTHER_FILL, OUTLINE, RIVER, STATUS_HATCHES
from maps.print.text import clean
from maps.styles import STATUS_COLOURS

TOWNSHIP_LINE = ("#8c8c8c", 0.6, (0, (6, 2, 1.5, 2)))  # colour, width, dashes
ROAD_CASING = "#6f6f6f"  # roads: white over this, wider
PLANNED_STYLE = {  # kind: (dash pattern in points, line width, fill, hatch)
    "district": ((7, 2.5), 1.4, None, None),
    "urban_renewal": ((5, 2, 1.2, 2), 1.1, None, None),
    "civilised_city": ((1.2, 1.8), 1.1, None, None),
    "planning_area": ((12, 3), 0.8, None, None),
    "planned_road": ((3, 1.5), 0.8, "#d9d9d9", "||||"),
    "green_space": ((3, 1.5), 0.8, "#d4ead4", "oo"),
    "other": ((4, 1.5, 1, 1.5), 1.0, None, None),
}


def _planned_linestyle(kind: str):
    dash, lw, _fill, _hatch = PLANNED_STYLE.get(kind, ((4, 2), 0.8, None, None))
    return (0, dash), lw


def draw_context(ax: Axes, layers: Layers, label_size: float = 5.5, frame: MapFrame | None = None):
    """Townships, rivers, roads and planned areas: everything under the compounds."""
    colour, width, dashes = TOWNSHIP_LINE
    draw_lines(
        ax,
        [g for _, _, g in layers.townships],
        colors=colour,
        linewidths=width,
        linestyles=[dashes],
        zorder=1.6,
    )
    rivers = [g for k, _, g in layers.context if k == "river"]
    roads = [g for k, _, g in layers.context if k != "river"]
    draw_lines(ax, rivers, colors=RIVER, linewidths=2.4, zorder=1.7, capstyle="round")
    draw_lines(ax, roads, colors=ROAD_CASING, linewidths=3.0, zorder=1.8, capstyle="butt")
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


def draw_others(ax: Axes, geoms: Iterable[Geometry], lw: float = 0.3) -> None:
    """Compounds not in the selection: grey, under the chosen ones."""
    draw_polygons(ax, geoms, facecolors=OTHER_FILL, edgecolors=OTHER_EDGE, linewidths=lw, zorder=3)
