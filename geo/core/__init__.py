"""The floor: model, CRS, codes, settings, Beijing dates and rates. Imports nothing else of geo."""
