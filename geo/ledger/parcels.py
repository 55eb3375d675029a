"""A survey's plot given its 宗地代码: the one way a parcel's code changes.

A 勘测定界 survey comes before registration, so its plots arrive under their local numbers
(geo.io: "<project>-<plot>", flagged "尚无宗地代码" by the checks). When the registry assigns
the 19-character 宗地代码, the plot takes it here: the same row, its links to compounds and its
outline kept, so nothing drawn or checked is lost.
"""

from sqlalchemy import Connection, text

from geo import TitlemapError
from geo.core.codes import check_parcel_code, is_parcel_code_attempt


def assign_parcel_code(conn: Connection, county: str, plot: str, code: str) -> dict:
    """Give the parcel `plot` of `county` the 宗地代码 `code`; returns {old, new}.

    Refused in one line: no such parcel, a code that breaks GB/T 37346 for this county, a code
    another parcel already holds, or a plot that has its 宗地代码 already."""
    code = code.strip().upper()
    failures = check_parcel_code(code, county)
    if failures:
        words = "；".join(f"第 {f.position} 位{f.zh}" for f in failures)
        raise TitlemapError(f"宗地代码 {code} 不对：{words} / not a valid parcel code")
    rows = conn.execute(
        text("SELECT id, code FROM parcel WHERE county_code = :c AND code IN (:plot, :code)"),
        {"c": county, "plot": plot, "code": code},
    ).all()
    by_code = {row.code: row.id for row in rows}
    if plot not in by_code:
        raise TitlemapError(f"本县没有宗地 {plot} / no parcel {plot} in county {county}")
    if is_parcel_code_attempt(plot):
        raise TitlemapError(f"{plot} 已有宗地代码 / already has a parcel code")
    if code in by_code:
        raise TitlemapError(f"宗地代码 {code} 已被另一宗地使用 / already used by another parcel")
    conn.execute(text("UPDATE parcel SET code = :code WHERE id = :id"),
                 {"code": code, "id": by_code[plot]})  # fmt: skip
    return {"old": plot, "new": code}
