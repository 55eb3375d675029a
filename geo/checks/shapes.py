"""The geometry kernels of `geo.checks.kernel.run_checks_many`, in shapely 2 (a newer GEOS than
PostGIS links): repairs, the Gauss-Krüger zones, overlapping pairs, each compound's union of
parcels, its gaps and land beyond, planned conflicts.

Every function takes the rows of all counties at once, as numpy arrays of geometries in EPSG:4490;
`zone` gives each row's Gauss-Krüger EPSG (its county's). Each kernel computes what the SQL of
geo/checks/stages.py computes, the same way round (4490 or GK as there), so that both paths
give the same figures to GEOS's last digits."""

import functools
import math
import threading

import numpy as np
import shapely
from shapely import Geometry

from geo.checks.stages import settle_depths
from geo.core.crs import STORAGE_EPSG, transformer

POLYGONAL = (3, 6)  # shapely type ids of Polygon, MultiPolygon
EMPTY = shapely.from_wkt("MULTIPOLYGON EMPTY")
ANY_AREA = "2********"  # DE-9IM: the interiors meet in an area


# -- repairs and polygons ------------------------------------------------------------------------


def polygons_of(geoms: np.ndarray) -> np.ndarray:
    """`ST_CollectionExtract(g, 3)` of each: polygons stay, collections keep their polygons,
    anything else becomes an empty multipolygon."""
    geoms = np.asarray(geoms, dtype=object)
    out = geoms.copy()
    kinds = shapely.get_type_id(geoms)
    out[np.isin(kinds, (0, 1, 2, 4, 5)) | (kinds < 0)] = EMPTY  # points, lines: no polygon
    for k in np.flatnonzero(kinds == 7):
        parts = shapely.get_parts(geoms[k])
        while (nested := shapely.get_type_id(parts) >= 4).any():  # collections in collections
            parts = np.concatenate([parts[~nested], shapely.get_parts(parts[nested])])
        parts = parts[np.isin(shapely.get_type_id(parts), POLYGONAL)]
        out[k] = shapely.multipolygons(shapely.get_parts(parts)) if len(parts) else EMPTY
    return out


def repaired(geoms: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """`ST_Multi(ST_CollectionExtract(ST_MakeValid(g), 3))` where a shape is invalid."""
    out = np.asarray(geoms, dtype=object).copy()
    bad = np.flatnonzero(~valid)
    if len(bad):
        fixed = polygons_of(shapely.make_valid(out[bad]))
        multi = shapely.get_type_id(fixed) == 3
        fixed[multi] = [shapely.multipolygons([g]) for g in fixed[multi]]
        out[bad] = fixed
    return out


# -- zones ---------------------------------------------------------------------------------------


@functools.cache
def _mover(source: int, target: int, thread: int):
    return transformer(source, target)  # one a thread: a Transformer is not thread-safe


def _moved(geoms: np.ndarray, source: int, target: int) -> np.ndarray:
    move = _mover(source, target, threading.get_ident())
    return shapely.transform(geoms, lambda xy: np.column_stack(move.transform(xy[:, 0], xy[:, 1])))


def to_zone(geoms: np.ndarray, zone: np.ndarray) -> np.ndarray:
    """Each geometry in its own row's Gauss-Krüger EPSG (`ST_Transform(g, :epsg)`)."""
    return _by_zone(geoms, zone, forward=True)


def from_zone(geoms: np.ndarray, zone: np.ndarray) -> np.ndarray:
    """Back from each row's zone to EPSG:4490."""
    return _by_zone(geoms, zone, forward=False)


def _by_zone(geoms: np.ndarray, zone: np.ndarray, forward: bool) -> np.ndarray:
    geoms = np.asarray(geoms, dtype=object)
    out = np.empty(len(geoms), dtype=object)
    for epsg in np.unique(zone):
        rows = np.flatnonzero(zone == epsg)
        ends = (STORAGE_EPSG, int(epsg)) if forward else (int(epsg), STORAGE_EPSG)
        out[rows] = _moved(geoms[rows], *ends)
    return out


def points_back(geoms: np.ndarray, zone: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """lon, lat of `ST_Transform(ST_PointOnSurface(g), 4490)` for GK geometries."""
    return xy(from_zone(shapely.point_on_surface(geoms), zone))


def xy(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x, y of each point; NaN for an empty one (`ST_X(POINT EMPTY)` is NULL)."""
    points = np.asarray(points, dtype=object)
    x, y = np.full(len(points), np.nan), np.full(len(points), np.nan)
    there = ~shapely.is_empty(points)
    x[there], y[there] = shapely.get_x(points[there]), shapely.get_y(points[there])
    return x, y


def geojson(geoms: np.ndarray) -> list[str]:
    """`ST_AsGeoJSON(g, 7)`: coordinates to 7 decimals."""
    rounded = shapely.transform(np.asarray(geoms, dtype=object), lambda xy: np.round(xy, 7))
    return list(shapely.to_geojson(rounded))


def azimuth(origin: np.ndarray, target: np.ndarray) -> list[float | None]:
    """`ST_Azimuth(ST_Centroid(a), ST_Centroid(b))`: radians clockwise from north (None when
    the centroids coincide)."""
    a, b = shapely.centroid(origin), shapely.centroid(target)
    dx, dy = shapely.get_x(b) - shapely.get_x(a), shapely.get_y(b) - shapely.get_y(a)
    angle = np.arctan2(dx, dy) % (2 * math.pi)
    return [None if (x == 0 and y == 0) or math.isnan(t) else float(t)
            for x, y, t in zip(dx, dy, angle, strict=True)]  # fmt: skip


# -- overlaps ------------------------------------------------------------------------------------


def coverage_flags(geoms: np.ndarray) -> np.ndarray:
    """Polygons whose edges do not all match their neighbours' exactly, or lie inside another
    (`coverage_invalid_edges`, GEOS ≥ 3.12): only these can overlap anything."""
    flagged = np.zeros(len(geoms), dtype=bool)
    rows = np.flatnonzero(~shapely.is_empty(geoms))
    if len(rows) > 1:
        flagged[rows] = ~shapely.is_empty(shapely.coverage_invalid_edges(geoms[rows]))
    return flagged


def overlapping_pairs(
    geoms: np.ndarray, group: np.ndarray, flagged: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i < j) of the same `group` whose interiors meet in an area.

    Only the `coverage_flags` polygons and what their boxes meet are tested with
    `relate_pattern`. (The outer of two nested parcels may pass the coverage check; the inner
    one is flagged, and the pair found from it.)"""
    none = np.empty(0, int), np.empty(0, int)
    flagged = coverage_flags(geoms) if flagged is None else flagged
    if not flagged.any():
        return none
    rows = np.flatnonzero(~shapely.is_empty(geoms))
    tree = shapely.STRtree(geoms[rows])
    mine, theirs = tree.query(geoms[flagged], predicate="intersects")
    a, b = np.flatnonzero(flagged)[mine], rows[theirs]
    a, b = np.minimum(a, b), np.maximum(a, b)
    keep = (a != b) & (group[a] == group[b])
    pairs = np.unique(np.column_stack([a[keep], b[keep]]), axis=0)
    if not len(pairs):
        return none
    a, b = pairs[:, 0], pairs[:, 1]
    meet = shapely.relate_pattern(geoms[a], geoms[b], ANY_AREA)
    return a[meet], b[meet]


def intersections(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`ST_CollectionExtract(ST_Intersection(a, b), 3)` pairwise."""
    return polygons_of(shapely.intersection(a, b))


# -- compounds on their parcels ------------------------------------------------------------------


def unions(geoms: np.ndarray, owner: np.ndarray, owners: int, exact: np.ndarray) -> np.ndarray:
    """The union of each owner's geometries (`owner[k]` in 0 … owners − 1); a lone geometry
    stays as it is, as `ST_Union` is skipped for it in SQL. Where every geometry of an owner
    is `exact` (a polygon of a valid coverage: edges matching its neighbours' exactly), the
    coverage union does it, many times faster than an overlay."""
    out = np.full(owners, None, dtype=object)
    counts = np.bincount(owner, minlength=owners)
    order = np.argsort(owner, kind="stable")
    single = counts[owner[order]] == 1
    out[owner[order][single]] = geoms[order][single]
    several = counts > 1
    if several.any():
        table = np.full((owners, int(counts.max())), None, dtype=object)
        rank = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
        table[owner[order], rank] = geoms[order]
        clean = np.bincount(owner, weights=~exact, minlength=owners) == 0
        fast, slow = np.flatnonzero(several & clean), np.flatnonzero(several & ~clean)
        if len(fast):
            out[fast] = shapely.coverage_union_all(table[fast], axis=1)
        if len(slow):
            out[slow] = shapely.union_all(table[slow], axis=1)
    return out


def identical(outline: np.ndarray, union: np.ndarray) -> np.ndarray:
    """Where a compound's outline is exactly its parcels' union, vertex for vertex: once
    normalized, the same parts and the same coordinates (a polygon and a multipolygon of that
    one polygon alike)."""
    a, b = shapely.normalize(outline), shapely.normalize(union)
    count = shapely.get_num_coordinates(a)
    same = (count == shapely.get_num_coordinates(b)) & (
        shapely.get_num_geometries(a) == shapely.get_num_geometries(b)
    )
    rows = np.flatnonzero(same & (count > 0))
    if len(rows):
        xa, xb = shapely.get_coordinates(a[rows]), shapely.get_coordinates(b[rows])
        equal = (xa == xb).all(axis=1)
        starts = np.cumsum(count[rows]) - count[rows]
        same[rows] = np.logical_and.reduceat(equal, starts)
    return same & (count > 0)


def _multi(geoms: np.ndarray) -> np.ndarray:
    """`ST_Multi`: polygons as multipolygons of one."""
    out = np.asarray(geoms, dtype=object).copy()
    single = np.flatnonzero(shapely.get_type_id(out) == 3)
    if len(single):
        out[single] = shapely.multipolygons(out[single], indices=np.arange(len(single)))
    return out


def has_holes(geoms: np.ndarray) -> np.ndarray:
    """`ST_NRings(g) > ST_NumGeometries(g)`: a polygon with an interior ring."""
    out = np.zeros(len(geoms), dtype=bool)
    kind = shapely.get_type_id(geoms)
    one = kind == 3
    out[one] = shapely.get_num_interior_rings(geoms[one]) > 0
    many = np.flatnonzero(kind == 6)
    if len(many):
        parts, at = shapely.get_parts(geoms[many], return_index=True)
        rings = np.bincount(at, weights=shapely.get_num_interior_rings(parts),
                            minlength=len(many))  # fmt: skip
        out[many] = rings > 0
    return out


def holes_of(geom: Geometry) -> list[Geometry]:
    """Each interior ring of `geom` as a polygon (`ST_MakePolygon(ST_InteriorRingN(…))`)."""
    return [shapely.Polygon(ring) for part in shapely.get_parts(geom)
            for ring in part.interiors]  # fmt: skip


def closing(geom: Geometry, r: float) -> Geometry:
    """`ST_Buffer(ST_Buffer(g, r, 'join=mitre'), -r, 'join=mitre')`: fills what is narrower
    than 2r."""
    grown = shapely.buffer(geom, r, join_style="mitre")
    return shapely.buffer(grown, -r, join_style="mitre")


def pieces_of(geom: Geometry) -> np.ndarray:
    """`ST_Dump`: the single parts, of every dimension."""
    parts = shapely.get_parts(geom)
    while (nested := shapely.get_type_id(parts) >= 4).any():
        parts = np.concatenate([parts[~nested], shapely.get_parts(parts[nested])])
    return parts[~shapely.is_empty(parts)]


# -- how deep land beyond its parcels reaches ----------------------------------------------------


def depths(pieces: np.ndarray, parcels: np.ndarray) -> np.ndarray:
    """How deep each piece reaches from its parcels (GK, metres), for every piece at once, by
    `farthest_m`'s rule (the least r, to within `DEPTH_STEP_M`, whose buffer of the parcels
    covers the piece; the same buffers, `settle_depths`) — started from the farthest corner
    rather than from the densified outline: densifying every piece costs more than the
    buffers it saves. Where the farthest point is no corner the buffers find it, and the two
    figures agree to within `DEPTH_STEP_M`."""
    out = np.zeros(len(pieces))
    rows = np.flatnonzero(~shapely.is_empty(pieces) & ~shapely.is_empty(parcels))
    if not len(rows):
        return out
    pieces, parcels = pieces[rows], parcels[rows]
    xy, at = shapely.get_coordinates(pieces, return_index=True)
    corner = shapely.distance(shapely.points(xy), parcels[at])
    low = np.zeros(len(rows))
    np.maximum.at(low, at, corner)
    out[rows] = settle_depths(pieces, parcels, low)
    return out
