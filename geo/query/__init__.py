"""Queries for maps: compound filters and cards, map layers, tiles, overlaps, printed selections."""
