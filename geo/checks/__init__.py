"""Parcel checks (宗地核查): codes, validity, areas, overlaps, gaps, land beyond parcels, planned
conflicts, arrears, links, credit codes — in PostGIS.

report (checks, tolerances, problems; the floor) ← stages (each check's SQL) ← run (a county's
run over shared-snapshot workers) ← parcel (one parcel, for its page); xlsx writes a report;
kernel (every county's checks at once, the geometry in shapely 2: shapes) gives the same
reports as run county by county, compare checks that they do.
How each check works: geo/checks/run.py's docstring.
"""
