"""示例县 (629901): a deterministic fictional county for demos, tests and benchmarks.

`generate(n, seed)` draws a county of `n` compounds (小区) with their parcels (宗地), developers,
planned areas, complaints and an 18-month resolution ledger (化解台账) with its history;
`write` saves it as a GeoPackage (every layer, the non-spatial ones as attribute tables) plus
the ledger in the county's own Excel layout; `read` gets the frames back exactly.

Everything is drawn in metres around the town centre in CGCS2000 Gauss-Krüger zone 35
(EPSG:4544) and transformed to EPSG:4490 at the end; the only randomness is
`numpy.random.default_rng` / `random.Random` seeded from `seed`, so one seed gives one county.

The town is a jittered grid of blocks (streets between them) whose cell shrinks as `n` grows,
so 100 000 compounds still fit inside the county and its planning area.

Planted problems, for the parcel, planning and ledger checks to find (counts at n=150, seed 1):
- compounds with no parcel at all: 3 % of compounds (4);
- compounds reaching 5–20 m beyond their parcels on one side (超出宗地红线): 3 % (4);
- two parcels of one compound overlapping by a 3–8 m strip: 2 % of compounds (3 pairs);
  otherwise a compound's parcels tile its land exactly, without overlap;
- parcels whose recorded area differs from the drawn GK area by 3.2–10 %: 3 % of parcels (9);
  every other parcel's recorded area is its GK area within 0.5 %;
- parcels belonging to no compound, in empty blocks next to the town: 2;
- compounds cut by a planned road or green space: ≈7 % (10); only about two thirds of those on
  the ledger (6 of 9) name `planning_conflict` among their blockers;
- complaints outside every ledger compound (the survey missed them): 4 of 25, three inside
  compounds that are not on the ledger, one in an empty block;
- open ledger entries past their deadline on 2026-11-28 (overdue): about a quarter (16 of 83).
All compounds are occupied by 2024, before the ledger cut-off (2025-06-30), so the
≈15 % of compounds off the ledger are the newer ones (registered normally, 交房即交证) and
those the survey missed; none lies in 城东片区.
"""

from geo.demo.facts import AS_OF, DEMO_COUNTY, GK_EPSG, LAYERS
from geo.demo.files import read, write, write_ledger_xlsx
from geo.demo.frames import SCHEMA, SPATIAL, DemoCounty
from geo.demo.generate import generate

__all__ = [
    "AS_OF",
    "DEMO_COUNTY",
    "GK_EPSG",
    "LAYERS",
    "SCHEMA",
    "SPATIAL",
    "DemoCounty",
    "generate",
    "read",
    "write",
    "write_ledger_xlsx",
]
