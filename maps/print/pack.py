"""A visit pack planned: the stops in visit order with everything their pages draw, fetched once
so that drawing (perhaps in other processes) needs no database."""

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from geo.io.uploads import PRINT_PX, thumbnail
from geo.ledger.files import latest_photos
from geo.query.selection import (
    CompoundFacts,
    Layers,
    Overview,
    Selection,
    layers_in,
    overview,
    route_length,
    visit_order,
)

VISIT_LIMIT = 200  # compounds in one visit pack: a day's work is far fewer


@dataclass
class StopPhoto:
    """The compound's latest site photo (一小区一档), small and upright, as JPEG bytes."""

    jpeg: bytes
    at: datetime
    title: str | None = None


@dataclass
class VisitStop:
    number: int
    facts: CompoundFacts
    layers: Layers
    photo: StopPhoto | None = None


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


def _photos(conn, ids: list[int], data_dir: Path | None) -> dict[int, StopPhoto]:
    """Each compound's latest photo; one whose bytes are gone or unreadable is left out."""
    if data_dir is None:  # a pack for someone the county's papers are not shown to
        return {}
    latest, photos = latest_photos(conn, ids), {}
    folder = Path(data_dir)
    for compound_id, found in latest.items():
        try:
            jpeg = thumbnail(folder, found["sha256"], PRINT_PX)
        except (OSError, ValueError):  # gone from the store, or no image after all
            continue
        photos[compound_id] = StopPhoto(jpeg, found["at"], found["title"])
    return photos


def plan_visit(
    conn, selection: Selection, keep_order: bool | None = None, data_dir: Path | None = None
) -> VisitPack:
    """Everything the visit pack draws, fetched once (workers then only draw); the photos'
    bytes from `data_dir` (None: no photos)."""
    facts = selection.compounds
    if keep_order is None:
        keep_order = selection.area.kind == "compounds"
    points = [(p.x, p.y) for p in (c.geom.representative_point() for c in facts)]
    order = list(range(len(facts))) if keep_order else visit_order(points)
    photos = _photos(conn, [c.id for c in facts], data_dir)
    stops = []
    for number, index in enumerate(order, start=1):
        c = facts[index]
        x0, y0, x1, y1 = c.geom.bounds
        span = max(x1 - x0, y1 - y0, 120.0)
        pad = span * 0.9
        layers = layers_in(
            conn, selection.county, (x0 - pad, y0 - pad, x1 + pad, y1 + pad), with_parcels=True
        )
        stops.append(VisitStop(number, c, layers, photos.get(c.id)))
    minx, miny, maxx, maxy = selection.bounds
    pad = max(maxx - minx, maxy - miny) * 0.5 + 300
    cover_layers = layers_in(
        conn, selection.county, (minx - pad, miny - pad, maxx + pad, maxy + pad), simplify=0.5
    )
    length = route_length(points, order)
    return VisitPack(selection, stops, overview(conn, selection.county), cover_layers, length)
