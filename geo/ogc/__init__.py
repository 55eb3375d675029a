"""OGC API – Features: collections, crs, params (bbox, datetime, property values), cql2, items."""
