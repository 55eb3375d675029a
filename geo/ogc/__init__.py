"""OGC API – Features: collections, CRS, CQL2, items."""
