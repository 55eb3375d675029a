"""Rate arithmetic: one rounding for every rate titlemap shows, serves or exports.

The definitions (which units over which) are in geo.ledger.stats and docs/rates.md; this is
only how a share is computed and rounded, in Python and in SQL, so a tile, a card, an export
and /api/stats never disagree in the fourth place.
"""

RATE_DIGITS = 4  # 0.8765 = 87.65 %


def rate(part: float | None, whole: float | None) -> float | None:
    """part ÷ whole rounded to RATE_DIGITS; None where there is nothing to divide by."""
    if part is None or not whole:
        return None
    return round(part / whole, RATE_DIGITS)


def rate_sql(part: str, whole: str) -> str:
    """The same in SQL: NULL where `whole` is 0 or NULL."""
    return f"round(({part})::numeric / nullif({whole}, 0), {RATE_DIGITS})::float8"
