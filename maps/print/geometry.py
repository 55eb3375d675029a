"""Shapely geometries as matplotlib paths and collections, in GK metres (no autoscaling)."""

from collections.abc import Iterable

import numpy as np
import shapely
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.path import Path
from shapely import Geometry


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
