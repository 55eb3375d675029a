"""Two reports of one county side by side: what differs, within GEOS's last digits.

The SQL path (PostGIS, GEOS 3.11) and the kernel (shapely 2, GEOS 3.14) cut and measure the same
shapes with different GEOS versions, so a figure may differ in its last digits. Everything else
must be equal: counts, slivers counted, each problem's check, parcel, compound, related, unit,
pieces and the words of its reasons; figures agree within `AREA_M2` for areas (reasons
included: a number may differ by one in its last printed digit), `POINT_DEG` for points and
for the outlines of pieces (Hausdorff distance)."""

import re

import shapely
from shapely.geometry import shape

from geo.checks.report import CheckReport

AREA_M2 = 0.01  # areas (and the area of two pieces' symmetric difference) agree within this
POINT_DEG = 1e-6  # problem points agree within this
NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
EXACT = ("check", "parcel", "compound", "compound_name", "related", "unit", "pieces")


def same_reports(sql: CheckReport, kernel: CheckReport) -> list[str]:
    """What differs between two reports of one county (empty: the same answers)."""
    out = []
    if sql.counts != kernel.counts:
        out.append(f"counts {sql.counts} ≠ {kernel.counts}")
    if sql.slivers["count"] != kernel.slivers["count"] or not _near(
        sql.slivers["area_m2"], kernel.slivers["area_m2"], AREA_M2
    ):
        out.append(f"slivers {sql.slivers} ≠ {kernel.slivers}")
    a, b = problem_keys(sql), problem_keys(kernel)
    if a != b:
        out += [f"only in SQL: {key}" for key in sorted(a - b, key=str)]
        out += [f"only in kernel: {key}" for key in sorted(b - a, key=str)]
        return out
    for one, two in zip(sql.problems, kernel.problems, strict=True):
        out += [f"{one.id} {d}" for d in _problem_differences(one, two)]
    pieces = {f["id"]: f for f in kernel.pieces}
    if [f["id"] for f in sql.pieces] != [f["id"] for f in kernel.pieces]:
        out.append(f"pieces {[f['id'] for f in sql.pieces]} ≠ {list(pieces)}")
        return out
    for piece in sql.pieces:
        out += [f"{piece['id']} {d}" for d in _piece_differences(piece, pieces[piece["id"]])]
    return out


def problem_keys(report: CheckReport) -> set[tuple]:
    """Each problem as the tuple both paths must give exactly."""
    return {(p.id, *(_frozen(getattr(p, name)) for name in EXACT)) for p in report.problems}


def _frozen(value):
    return tuple(value) if isinstance(value, list) else value


def _problem_differences(one, two) -> list[str]:
    out = []
    tolerance = AREA_M2 + 0.005 if one.unit == "m²" else 0.002 if one.unit == "%" else 0.0
    if (one.value is None) != (two.value is None) or (
        one.value is not None and not _near(one.value, two.value, tolerance)
    ):
        out.append(f"value {one.value} ≠ {two.value}")
    for name in ("lon", "lat"):
        x, y = getattr(one, name), getattr(two, name)
        if (x is None) != (y is None) or (x is not None and not _near(x, y, POINT_DEG)):
            out.append(f"{name} {x} ≠ {y}")
    for name in ("reason", "reason_en"):
        if not same_words(getattr(one, name), getattr(two, name)):
            out.append(f"{name} {getattr(one, name)!r} ≠ {getattr(two, name)!r}")
    return out


def _piece_differences(one: dict, two: dict) -> list[str]:
    out = []
    p, q = one["properties"], two["properties"]
    if p.keys() != q.keys():
        return [f"properties {sorted(p)} ≠ {sorted(q)}"]
    for key, value in p.items():
        if isinstance(value, float):
            if not _near(value, q[key], AREA_M2 + 0.005):
                out.append(f"{key} {value} ≠ {q[key]}")
        elif value != q[key]:
            out.append(f"{key} {value!r} ≠ {q[key]!r}")
    # Outlines within POINT_DEG of each other: coordinates are written to 7 decimals (≈ 1 cm),
    # and a cut point of ST_Subdivide kept on an edge moves the rounding by as much.
    apart = shapely.hausdorff_distance(shape(one["geometry"]), shape(two["geometry"]))
    if apart > POINT_DEG:
        out.append(f"outlines {apart:.2e}° apart")
    return out


def same_words(one: str, two: str) -> bool:
    """The same text, numbers allowed to differ by one in their last printed digit."""
    if NUMBER.sub("#", one) != NUMBER.sub("#", two):
        return False
    for x, y in zip(NUMBER.findall(one), NUMBER.findall(two), strict=True):
        decimals = max(len(s.partition(".")[2]) for s in (x, y))
        if not _near(float(x.replace(",", "")), float(y.replace(",", "")),
                     1.01 * 10**-decimals):  # fmt: skip
            return False
    return True


def _near(a: float, b: float, tolerance: float) -> bool:
    return abs(a - b) <= tolerance + 1e-12
