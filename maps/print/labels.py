"""Labels and numbered markers on a map, each put where no other label or marker is yet.

Boxes are kept in GK metres as (minx, miny, maxx, maxy, tag) in a list `taken`.
"""

import shapely
from matplotlib.axes import Axes
from matplotlib.patches import Circle

from geo.query.selection import Layers
from maps.fonts import text_width_mm
from maps.print.furniture import MapFrame
from maps.print.sheet import INK, OUTLINE, line_height, put_text
from maps.print.text import clean


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
        if kind in ("planning_area", "district", "urban_renewal", "civilised_city", "other"):
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
    h = frame.metres(line_height(size, 1.2))
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


def name_beside(ax, frame: MapFrame, p, gap: float, lines: list[str], used: float, taken: list):
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


def number_marker(ax: Axes, x, y, number: int, frame: MapFrame, size=6.0, fc="white"):
    radius = frame.metres(max(2.0, 0.9 * size / 72 * 25.4 * (0.6 + 0.3 * len(str(number)))))
    ax.add_artist(Circle((x, y), radius, facecolor=fc, edgecolor=INK, linewidth=0.6, zorder=8))
    put_text(ax, x, y, str(number), size, True, ha="center", va="center", zorder=9)
    return radius
