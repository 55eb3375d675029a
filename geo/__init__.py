"""titlemap.geo — the domain: model, database, CRS, demo county. Knows nothing of web or drawing."""


class TitlemapError(Exception):
    """An error a user can act on: its message is one line saying what to do."""
