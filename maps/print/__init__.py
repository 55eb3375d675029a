"""Printed maps for on-site offices (现场办公): an area page and a visit pack, as PDF.

- `area_pdf` (maps.print.area): one landscape page (A4 or A3) — the compounds of an area on a
  map with its furniture, and their table (continued on further pages when it does not fit).
- `visit_pdf` (maps.print.visit): a cover map with the visit order (cover), then one A4 page
  per compound (stop); `plan_visit` fetches what it draws, `render_visit` draws it, in two
  processes for a long pack.
- `region_pdf` (maps.print.region): a city's or the province's overview on one A3 landscape
  page — the counties coloured against target, and their ranking.

Status is carried by colour (maps.styles, the web map's palette), by a hatch pattern and by
the words in the tables, so a black-and-white printer loses nothing. Text is embedded as
TrueType (maps.fonts) and stays searchable; no tiles, no network.

Modules, floor first: text, sheet, geometry, furniture, layers, labels, table, titles, area;
pack, cover, stop, merge, visit; region.
"""

from maps.print.area import area_pdf
from maps.print.pack import VISIT_LIMIT, VisitPack, plan_visit
from maps.print.region import region_pdf
from maps.print.visit import render_visit, visit_pdf

__all__ = [
    "VISIT_LIMIT",
    "VisitPack",
    "area_pdf",
    "plan_visit",
    "region_pdf",
    "render_visit",
    "visit_pdf",
]
