"""titlemap.geo — the domain, its database, files and queries. Knows nothing of web or drawing."""


class TitlemapError(Exception):
    """An error a user can act on: its message is one line saying what to do."""
