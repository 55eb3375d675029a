"""The demo county's land: outline, townships, river, roads, blocks, lots, parcels, plans."""

import math
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box

from geo.core.crs import STORAGE_EPSG, transformer
from geo.core.model import (
    PlannedAreaKind,
)
from geo.demo.facts import CENTRE_LAT, CENTRE_LON, GK_EPSG, TOWNSHIPS, _share

# -- geometry helpers ------------------------------------------------------------------------


def _multi(geoms: np.ndarray) -> np.ndarray:
    """Each geometry as a MultiPolygon of its polygon parts (slivers of other types dropped)."""
    parts, index = shapely.get_parts(geoms, return_index=True)
    keep = shapely.get_type_id(parts) == 3
    out = shapely.multipolygons(parts[keep], indices=index[keep])
    if len(out) != len(geoms):
        raise ValueError("a geometry lost all its polygon parts")
    return out


def _longest(geom) -> LineString:
    parts = shapely.get_parts(shapely.line_merge(geom) if geom.geom_type != "LineString" else geom)
    return max(parts, key=lambda part: part.length)


def _place(local: np.ndarray, at: np.ndarray, theta: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Move shapes drawn in their own frame ((0,0)–size) to centre `at`, turned by `theta`."""
    coords, index = shapely.get_coordinates(local, return_index=True)
    lx = coords[:, 0] - size[index, 0] / 2
    ly = coords[:, 1] - size[index, 1] / 2
    cos, sin = np.cos(theta[index]), np.sin(theta[index])
    world = np.column_stack(
        [at[index, 0] + cos * lx - sin * ly, at[index, 1] + sin * lx + cos * ly]
    )
    return shapely.set_coordinates(np.array(local, dtype=object, copy=True), world)


def _gk_origin() -> tuple[float, float]:
    # Whole metres, so local coordinates stay readable in a GIS.
    x, y = transformer(STORAGE_EPSG, GK_EPSG).transform(CENTRE_LON, CENTRE_LAT)
    return round(x), round(y)


def _to_storage(geoms, origin: tuple[float, float]) -> np.ndarray:
    """Local metres → GK zone 35 → EPSG:4490 lon/lat, all coordinates in one pyproj call."""
    to_4490 = transformer(GK_EPSG, STORAGE_EPSG)

    def move(xy: np.ndarray) -> np.ndarray:
        lon, lat = to_4490.transform(xy[:, 0] + origin[0], xy[:, 1] + origin[1])
        return np.column_stack([lon, lat])

    return shapely.transform(np.asarray(geoms, dtype=object), move)


# -- the land: county, townships, river, roads, blocks ------------------------------------------


def _county_outline(rng: np.random.Generator) -> Polygon:
    # A wobbly ellipse 40 × 30 km: star-shaped around the centre, so always a valid polygon.
    theta = np.linspace(0, 2 * np.pi, 240, endpoint=False)
    radius = 1 / np.sqrt((np.cos(theta) / 20000) ** 2 + (np.sin(theta) / 15000) ** 2)
    phase = rng.uniform(0, 2 * np.pi, 4)
    wobble = (
        1
        + 0.07 * np.sin(2 * theta + phase[0])
        + 0.05 * np.sin(3 * theta + phase[1])
        + 0.03 * np.sin(7 * theta + phase[2])
        + 0.015 * np.sin(13 * theta + phase[3])
        + rng.normal(0, 0.004, theta.size)
    )
    r = radius * wobble
    return Polygon(np.column_stack([r * np.cos(theta), r * np.sin(theta)]).round(2))


def _township_shapes(county: Polygon, rng: np.random.Generator) -> list[MultiPolygon]:
    """Voronoi cells of the township seats, clipped to the county: an exact partition."""
    seats = np.array([seat for _, _, seat in TOWNSHIPS]) + rng.uniform(-300, 300, (5, 2))
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(seats), extend_to=county.buffer(5000))
    )
    shapes = []
    for x, y in seats:
        cell = next(c for c in cells if c.contains(Point(x, y)))
        shapes.append(_multi(np.array([cell.intersection(county)], dtype=object))[0])
    return shapes


@dataclass
class _Town:
    """The town laid out in local metres: blocks of `cell` metres with streets between them."""

    cell: float
    street: float
    river: LineString
    river_half_width: float
    roads: list[tuple[str, LineString]]
    cells: np.ndarray  # (n, 2) centres of the blocks that hold compounds, nearest first
    spare: np.ndarray  # (k, 2) centres of empty blocks next to the town


def _river(cell: float, county: Polygon, rng: np.random.Generator) -> LineString:
    # 清水河 meanders west to east, a block and a half south of the centre.
    x = np.arange(-26000.0, 26001.0, 50.0)
    phase = rng.uniform(0, 2 * np.pi, 3)
    wave = (
        900 * np.sin(2 * np.pi * x / 21000 + phase[0])
        + 140 * np.sin(2 * np.pi * x / 3700 + phase[1])
        + 40 * np.sin(2 * np.pi * x / 900 + phase[2])
    )
    at_centre = 900 * np.sin(phase[0]) + 140 * np.sin(phase[1]) + 40 * np.sin(phase[2])
    y = -1.5 * cell + wave - at_centre
    return _longest(LineString(np.column_stack([x, y]).round(2)).intersection(county))


def _bent(straight: list[tuple[float, float]], ends: list[tuple[float, float]], rng) -> list:
    """A road straight through the town, wandering between the town and the county's edge."""
    (x0, y0), (x1, y1) = straight
    (ex0, ey0), (ex1, ey1) = ends
    t = np.linspace(0, 1, 7)[1:-1]
    wander = rng.normal(0, 180, (2, t.size))
    before = [(ex0 + (x0 - ex0) * s + wander[0, k], ey0 + (y0 - ey0) * s + wander[1, k])
              for k, s in enumerate(t)]  # fmt: skip
    after = [(x1 + (ex1 - x1) * s + wander[1, k], y1 + (ey1 - y1) * s + wander[0, k])
             for k, s in enumerate(t)]  # fmt: skip
    return [(ex0, ey0), *before, (x0, y0), (x1, y1), *after, (ex1, ey1)]


def _roads(cell: float, reach: float, river: LineString, half_width: float, county: Polygon,
           rng: np.random.Generator) -> list[tuple[str, LineString]]:  # fmt: skip
    """Roads along street lines inside the town (so they run between blocks), bent outside."""
    east = 1.25 * reach + 600
    north = reach + 600
    g309 = _bent([(-east, 2 * cell), (east, 2 * cell)],
                 [(-26000, 2 * cell + 1800), (26000, 2 * cell - 2200)], rng)  # fmt: skip
    s101 = _bent([(-3 * cell, north), (-3 * cell, -north)],
                 [(-3 * cell + 2500, 19000), (-3 * cell - 1800, -19000)], rng)  # fmt: skip
    avenue = [(0.0, -0.9 * reach), (0.0, 0.9 * reach)]
    in_town = _longest(river.intersection(box(-east, -40000, east, 40000)))
    riverside = _longest(in_town.offset_curve(0.55 * half_width))
    lines = [("G309国道", LineString(g309)), ("S101省道", LineString(s101)),
             ("兴隆大道", LineString(avenue)), ("滨河路", riverside)]  # fmt: skip
    return [(name, _longest(line.intersection(county))) for name, line in lines]


def _lay_out_town(n: int, spare: int, county: Polygon, rng: np.random.Generator) -> _Town:
    """Blocks nearest the centre (a noisy ellipse) that keep clear of the river and roads.

    The cell starts at 320 m and shrinks until the county holds n + spare blocks.
    """
    inner = county.buffer(-150)  # room for the planning area's edge outside every compound
    cell = min(320.0, math.sqrt(0.5 * inner.area / (n + spare)))
    phase = rng.uniform(0, 2 * np.pi, 2)
    while True:
        town = _try_town(n, spare, cell, county, inner, phase, rng)
        if town is not None:
            return town
        cell *= 0.92


def _try_town(n, spare, cell, county, inner, phase, rng) -> _Town | None:
    street = max(12.0, 0.08 * cell)
    half = (cell - street) / 2  # a compound stays this close to its block's centre
    river_half = max(35.0, 0.22 * cell)
    reach = 0.6 * cell * math.sqrt(n + spare)
    river = _river(cell, county, rng)
    roads = _roads(cell, reach, river, river_half, county, rng)
    keep_clear = shapely.union_all(
        [river.buffer(river_half)] + [line.buffer(4.0) for _, line in roads]
    )
    minx, miny, maxx, maxy = inner.bounds
    cols = np.arange(math.floor(minx / cell), math.ceil(maxx / cell))
    rows = np.arange(math.floor(miny / cell), math.ceil(maxy / cell))
    col, row = np.meshgrid(cols, rows)
    cx, cy = ((col.ravel() + 0.5) * cell), ((row.ravel() + 0.5) * cell)
    blocks = shapely.box(cx - half, cy - half, cx + half, cy + half)
    shapely.prepare(inner)
    shapely.prepare(keep_clear)
    usable = shapely.contains(inner, blocks) & ~shapely.intersects(keep_clear, blocks)
    if usable.sum() < n + spare:
        return None
    angle = np.arctan2(cy, cx)
    distance = np.hypot(cx / 1.25, cy) * (
        1 + 0.12 * np.sin(3 * angle + phase[0]) + 0.08 * np.sin(5 * angle + phase[1])
    ) + rng.uniform(0, 0.6 * cell, cx.size)
    candidates = np.flatnonzero(usable)
    order = candidates[np.argsort(distance[candidates], kind="stable")]
    centres = np.column_stack([cx, cy])
    return _Town(cell, street, river, river_half, roads, centres[order[:n]],
                 centres[order[n:n + spare]])  # fmt: skip


# -- compounds and parcels: drawn in their own frame, then placed ------------------------------


@dataclass
class _Lots:
    """Each compound's shape in its own frame (origin at a corner) and where it stands."""

    size: np.ndarray  # (n, 2) width, height
    notch: np.ndarray  # (n, 2) fractions cut off the top-right corner (0 for a rectangle)
    at: np.ndarray  # (n, 2) centre
    theta: np.ndarray  # rotation, radians
    local: np.ndarray  # Polygons in the own frame
    world: np.ndarray  # Polygons in local metres


def _outline(size: np.ndarray, notch: np.ndarray) -> np.ndarray:
    """Rectangles, or L-shapes where `notch` cuts off the top-right corner."""
    w, h = size[:, 0], size[:, 1]
    out = np.empty(len(size), dtype=object)
    is_l = notch[:, 0] > 0
    zero = np.zeros(len(size))
    rect = np.stack([np.column_stack(p) for p in ((zero, zero), (w, zero), (w, h), (zero, h))], 1)
    out[~is_l] = shapely.polygons(rect[~is_l])
    if is_l.any():
        nx, ny = w * (1 - notch[:, 0]), h * (1 - notch[:, 1])
        corners = ((zero, zero), (w, zero), (w, ny), (nx, ny), (nx, h), (zero, h))
        ell = np.stack([np.column_stack(p) for p in corners], 1)
        out[is_l] = shapely.polygons(ell[is_l])
    return out


def _draw_lots(town: _Town, rng: np.random.Generator) -> _Lots:
    n = len(town.cells)
    room = town.cell - town.street
    low = min(0.6, max(0.2, 60 / room))  # 60 m sides at the default cell of 320 m
    size = room * rng.uniform(low, 0.95, (n, 2))
    theta = np.where(rng.random(n) < 0.5, 0.0, np.radians(rng.uniform(-12, 12, n)))
    cos, sin = np.abs(np.cos(theta)), np.abs(np.sin(theta))
    span = np.column_stack(
        [size[:, 0] * cos + size[:, 1] * sin, size[:, 0] * sin + size[:, 1] * cos]
    )
    shrink = np.minimum(1.0, room / span.max(axis=1))  # a turned lot must still fit its block
    size = (size * shrink[:, None]).round(2)
    span = span * shrink[:, None]
    at = town.cells + rng.uniform(-1, 1, (n, 2)) * (room - span) / 2
    notch = np.where(rng.random(n)[:, None] < 0.3, rng.uniform(0.3, 0.5, (n, 2)), 0.0)
    local = _outline(size, notch)
    return _Lots(size, notch, at, theta, local, _place(local, at, theta, size))


@dataclass
class _ParcelPlan:
    """Which compounds get how many parcels, and where the planted parcel problems go."""

    strips: np.ndarray  # parcels per compound (0 = none)
    no_parcel: np.ndarray
    beyond: np.ndarray  # compound reaches past its parcels
    overlap: np.ndarray  # two of its parcels overlap
    area_off: np.ndarray  # one of its parcels has a wrong recorded area


MIN_STRIP_M = 4.0  # a parcel strip no narrower than this, so narrow compounds get fewer
NO_PARCEL = 0.03  # share of compounds planted with no parcel at all


def _plan_parcels(
    lots: _Lots, rng: np.random.Generator, per_compound: float | None = None
) -> _ParcelPlan:
    """Strips per compound: 1–3 (the demo's ≈1.9), or about `per_compound` (±50 %, at least 1,
    no strip under MIN_STRIP_M wide); then the planted problems at their shares either way."""
    n = len(lots.size)
    width = lots.size[:, 0]
    if per_compound is not None and per_compound < 1:
        raise ValueError("parcels_per_compound must be at least 1")
    if per_compound is None:
        strips = np.minimum(rng.integers(1, 4, n), np.clip(width // 25, 1, 3)).astype(int)
    else:
        # The compounds left without a parcel make up for, so parcels ≈ per_compound × n.
        strips = _strip_counts(width, per_compound / (1 - NO_PARCEL), rng)
    order = rng.permutation(n)
    a, b, c = _share(n, NO_PARCEL), _share(n, 0.03), _share(n, 0.02)
    no_parcel, beyond, overlap = order[:a], order[a : a + b], order[a + b : a + b + c]
    strips[no_parcel] = 0
    strips[overlap] = np.maximum(strips[overlap], 2)
    rest = order[a + b + c :]
    area_off = rest[: _share(int(strips.sum()), 0.03)] if len(rest) else rest
    return _ParcelPlan(strips, np.sort(no_parcel), np.sort(beyond), np.sort(overlap),
                       np.sort(area_off))  # fmt: skip


def _strip_counts(width: np.ndarray, mean: float, rng: np.random.Generator) -> np.ndarray:
    # Uniform on [0.5, 1.5] × mean rounded: mean ≈ `mean`, the spread of a real 小区's 宗地.
    wanted = np.maximum(1, np.round(mean * rng.uniform(0.5, 1.5, len(width))))
    # Strips get 0.6–1.4 × an even share of the width (_strip_edges): 0.6 × keeps ≈ MIN_STRIP_M.
    return np.minimum(wanted, np.maximum(1, 0.6 * width // MIN_STRIP_M)).astype(int)


def _strip_edges(plan: _ParcelPlan, lots: _Lots, rng: np.random.Generator):
    """Per parcel: its compound and the x-range of its strip in the compound's own frame."""
    owner = np.repeat(np.arange(len(plan.strips)), plan.strips)
    rank = np.concatenate([np.arange(k) for k in plan.strips]) if len(owner) else owner
    width = lots.size[:, 0].copy()
    cover = width.copy()
    gap = np.minimum(rng.uniform(5, 20, len(plan.beyond)), 0.3 * width[plan.beyond])
    cover[plan.beyond] -= gap  # the compound reaches past its last parcel
    weights = rng.uniform(0.6, 1.4, len(owner))
    start = np.zeros(len(owner))
    stop = np.zeros(len(owner))
    first = np.concatenate([[0], np.cumsum(plan.strips)[:-1]])
    for compound in np.flatnonzero(plan.strips):
        k, i = plan.strips[compound], first[compound]
        edges = np.concatenate([[0], np.cumsum(weights[i : i + k])]) / weights[i : i + k].sum()
        edges = (edges * cover[compound]).round(2)
        start[i : i + k], stop[i : i + k] = edges[:-1], edges[1:]
    stretch = np.zeros(len(owner))
    for compound in plan.overlap:
        i = first[compound]  # the first strip pushes 3–8 m into its neighbour
        next_width = stop[i + 1] - start[i + 1]
        stretch[i] = min(rng.uniform(3, 8), 0.4 * next_width)
    stop = stop + stretch
    # Open ends go 1 m past the outline, so the intersection leaves no sliver there.
    start = np.where(rank == 0, -1.0, start)
    last = rank == plan.strips[owner] - 1
    is_beyond = np.isin(owner, plan.beyond)
    stop = np.where(last & ~is_beyond, width[owner] + 1, stop)
    return owner, rank, start, stop


def _parcel_shapes(plan: _ParcelPlan, lots: _Lots, rng: np.random.Generator):
    owner, rank, start, stop = _strip_edges(plan, lots, rng)
    height = lots.size[owner, 1]
    strips = shapely.box(start, -1.0, stop, height + 1)
    local = shapely.intersection(lots.local[owner], strips)
    local = np.array([shapely.get_parts(g)[0] for g in local], dtype=object)  # one piece each
    world = _place(local, lots.at[owner], lots.theta[owner], lots.size[owner])
    return owner, rank, world


def _empty_block_parcels(town: _Town, count: int, rng: np.random.Generator) -> np.ndarray:
    """Parcels with no compound on them, in the first empty blocks next to the town."""
    room = town.cell - town.street
    size = room * rng.uniform(0.4, 0.9, (count, 2))
    local = _outline(size, np.zeros((count, 2)))
    return _place(local, town.spare[:count], np.zeros(count), size)


# -- planned areas ---------------------------------------------------------------------------


def _tuned(shapes, target: int, lots: _Lots):
    """The first of `shapes` (ordered by preference) whose compound hits are nearest `target`."""
    best, best_miss = None, None
    for shape in shapes:
        shapely.prepare(shape)
        miss = abs(int(shapely.intersects(shape, lots.world).sum()) - target)
        if best_miss is None or miss < best_miss:
            best, best_miss = shape, miss
    return best


def _planned_areas(town: _Town, lots: _Lots, county: Polygon, rng: np.random.Generator):
    """(kind, name, shape) in local metres, plus the x of the 城东片区's western edge."""
    n, cell = len(lots.at), town.cell
    centroids = shapely.centroid(lots.world)
    cx, cy = shapely.get_x(centroids), shapely.get_y(centroids)
    hull = shapely.convex_hull(shapely.multipoints(shapely.get_coordinates(lots.world)))
    planning = hull.buffer(max(2 * cell, 500)).intersection(county.buffer(-20))
    # 城东片区 starts on a street line, so no compound is split by its edge; ≈20 % lie east.
    lines = np.arange(math.floor(cx.min() / cell), math.ceil(cx.max() / cell) + 1)
    east_share = np.array([(cx > k * cell).mean() for k in lines])
    east_x = float(lines[np.argmin(np.abs(east_share - 0.2) - 1e-9 * lines)] * cell)
    minx, miny, maxx, maxy = planning.bounds
    east = box(east_x, miny - 1, maxx + 1, maxy + 1).intersection(planning)
    r = max(1, round(math.sqrt(n / math.pi)))  # the town's radius in blocks
    a, b = max(1, round(0.55 * r)), max(1, round(0.35 * r))
    old_town = shapely.union_all([
        box(-a * cell, -b * cell, max(1, round(0.15 * r)) * cell, b * cell),
        box(-max(1, round(0.3 * r)) * cell, b * cell, 0, (b + max(1, round(0.2 * r))) * cell),
    ]).intersection(planning)  # fmt: skip
    civilised = shapely.union_all([
        box(-cell, -round(0.7 * r) * cell - cell, cell, round(0.7 * r) * cell + cell),
        box(-2 * cell, -2 * cell, 2 * cell, 2 * cell),
    ]).intersection(planning)  # fmt: skip
    areas = [
        (PlannedAreaKind.PLANNING_AREA, "示例县城市规划区", planning),
        (PlannedAreaKind.DISTRICT, "城东片区", east),
        (PlannedAreaKind.URBAN_RENEWAL, "老城区城市更新片区", old_town),
        (PlannedAreaKind.CIVILISED_CITY, "文明城市创建重点区域", civilised),
    ]
    # Planned roads follow a street but are wider (道路红线 30–40 m) and shifted a little off
    # it, so they clip the compounds beside them; the shift is tuned to cut ≈2.5 % and ≈1.5 %.
    road_x = east_x + (2 if (cx > east_x + 2 * cell).any() else 1) * cell
    road_y = math.floor(np.quantile(cy, 0.2) / cell) * cell
    shifts = [0.0] + [sign * k * 0.025 * cell for k in range(1, 13) for sign in (1, -1)]
    candidates = [
        ("规划道路：东环路", LineString([(road_x, miny), (road_x, maxy)]), 0.025),
        ("规划道路：南环路", LineString([(minx, road_y), (maxx, road_y)]), 0.015),
    ]
    for name, line, share in candidates:
        half_width = rng.uniform(15, 20)
        shapes = [line.offset_curve(s).buffer(half_width, cap_style="flat") for s in shifts]
        road = _tuned(shapes, _share(n, share, 1), lots).intersection(planning)
        areas.append((PlannedAreaKind.PLANNED_ROAD, name, road))
    # 滨河公园 widens the river corridor along the town; its width is tuned to cut ≈2 %.
    riverside = _longest(town.river.intersection(box(cx.min(), -1e6, cx.max(), 1e6)))
    widths = town.river_half_width + np.linspace(0, 0.5 * cell, 21)
    park = _tuned([riverside.buffer(w) for w in widths], _share(n, 0.02, 1), lots)
    areas.append((PlannedAreaKind.GREEN_SPACE, "规划绿地：滨河公园", park.intersection(planning)))
    # 人民公园 sits on a crossing west of the centre and clips the corners of the blocks round it.
    park = Point(-2 * cell, 3 * cell).buffer(0.3 * cell, quad_segs=8).intersection(planning)
    if not park.is_empty:
        areas.append((PlannedAreaKind.GREEN_SPACE, "规划绿地：人民公园", park))
    return areas, east_x
