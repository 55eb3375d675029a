"""Queries for maps: compound filters and cards, tiles, overlaps, printed selections."""
