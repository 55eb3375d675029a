"""The bulletin's small map: the compounds whose status changed in the period, in the status
colour (and hatch) they ended it in, numbered as in their table, over the townships, rivers,
roads and the other compounds in grey — drawn with the print module's layers and furniture."""

import shapely

from geo import TitlemapError
from geo.core.crs import STORAGE_EPSG, transformer
from geo.query.compounds import get_county
from geo.query.selection import layers_in
from maps.print.furniture import map_frame, north_arrow, scale_bar
from maps.print.labels import number_marker
from maps.print.layers import draw_compounds, draw_context, draw_others
from maps.print.sheet import Sheet

PAD_M = 150.0  # metres around the outermost changed compound
LEAST_SPAN_M = 800.0  # a single compound is shown with its neighbourhood


def draw_changes(sheet: Sheet, conn, figures: dict, x, y, w, h) -> str | None:
    """Draw the map in the box (mm); a one-line reason instead when it cannot be drawn."""
    numbered = [
        (number, c)
        for number, c in enumerate(figures["changed"], start=1)  # as the table numbers them
        if c.get("lon") is not None
    ]
    changed = [c for _, c in numbered]
    if not changed:
        return "本期化解状态变化的小区没有位置，无法绘图 / no locations to draw"
    try:
        county = get_county(conn, figures["county"])
    except TitlemapError as exc:
        return str(exc)
    to_gk = transformer(STORAGE_EPSG, county.epsg)
    points = [to_gk.transform(c["lon"], c["lat"]) for c in changed]
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    cx, cy = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
    half_w = max((max(xs) - min(xs)) / 2 + PAD_M, LEAST_SPAN_M / 2)
    half_h = max((max(ys) - min(ys)) / 2 + PAD_M, LEAST_SPAN_M / 2)
    bounds = (cx - half_w, cy - half_h, cx + half_w, cy + half_h)
    frame = map_frame(sheet, x, y, w, h, bounds, county.epsg, margin=0.05)
    layers = layers_in(conn, county, frame.window, simplify=0.5)
    status_of = {c["compound_code"]: c["status"] for c in changed}
    ax = frame.ax
    draw_context(ax, layers, 5.5, frame)
    draw_others(ax, [g for code, _, _, g in layers.compounds if code not in status_of])
    draw_compounds(
        ax,
        [(status_of[code], g) for code, _, _, g in layers.compounds if code in status_of],
        lw=0.6,
    )
    outlines = {code: g for code, _, _, g in layers.compounds if code in status_of}
    for (number, c), (px, py) in zip(numbered, points, strict=True):
        geom = outlines.get(c["compound_code"])
        if geom is not None and not geom.is_empty:
            spot = geom.representative_point()
            px, py = spot.x, spot.y
        if shapely.box(*frame.window).contains(shapely.Point(px, py)):
            number_marker(ax, px, py, number, frame, 6.0)
    scale_bar(sheet, frame, 6.0)
    north_arrow(sheet, frame, 7.0)
    return None
