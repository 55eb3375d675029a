"""Every format's reader, registered in one place and in this order (`geo.io.registry`).

Order matters where suffixes overlap or a file is recognised by its content alone: the first
reader that accepts a file wins. A new format gets its module here and a line below.
"""

from geo.io import boundary_txt
from geo.io.readers import csv_table, dxf, ogr
from geo.io.registry import Reader, register

ALL: tuple[Reader, ...] = (
    ogr.GPKG,
    ogr.SHAPEFILE,
    ogr.GEOJSON,
    dxf.DXF,
    csv_table.CSV,
    boundary_txt.READER,
)
for _reader in ALL:
    register(_reader)
