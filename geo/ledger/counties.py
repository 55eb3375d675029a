"""Counties (县): add one, change its settings, list them with what they hold.

A county starts from its 6-digit GB/T 2260 code and its name; everything else has a default
(target 90 %, closing rule "every unit transferred", overall rate over the sold units) and can
be changed later. It may start with no boundary: importing its boundary layer fills it, and
until then its Gauss-Krüger zone comes from `gk_epsg` or from the files themselves.

Values come as a clerk types them (from the command line) or as JSON (from the API): "0.9" or
"90%", "2026-12-31" or "2026年12月31日", "4544" or "EPSG:4544"; a wrong one is refused with one
line saying what to write instead. "" or None clears a setting that may be empty (province,
deadline, cut-off, zone).
"""

from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Connection, insert, text, update
from sqlalchemy.exc import IntegrityError

from geo import TitlemapError
from geo.core.codes import check_county_code, province_of
from geo.core.crs import measuring_epsg, zone_of_epsg
from geo.core.dates import DateError, parse_date
from geo.core.model import CLOSING_RULE_LABELS, ClosingRule, County

BASIS_LABELS = {"sold": "全部已售套数", "task": "台账任务套数"}  # 总体登记率's denominator


class NoSuchCounty(TitlemapError):
    """No county has this code."""


class CountyExists(TitlemapError):
    """A county with this code is already there."""


# -- values as they come ---------------------------------------------------------------------


def county_code(value: Any) -> str:
    """A county code checked for its GB/T 2260 shape; TitlemapError naming the broken rule."""
    code = "" if value is None else str(value).strip()
    failures = check_county_code(code)
    if failures:
        reasons = "；".join(failure.describe() for failure in failures)
        raise TitlemapError(f"县代码 {code or '（空）'} 不对 / bad county code: {reasons}")
    return code


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _name(value: Any) -> str:
    return str(value).strip()


def _province(value: Any) -> str | None:
    return None if _blank(value) else str(value).strip()


def _rate(value: Any) -> Decimal:
    """A share 0–1: 0.9, "0.9" or "90%"."""
    words = str(value).strip().replace("％", "%")
    try:
        rate = Decimal(words[:-1]) / 100 if words.endswith("%") else Decimal(words)
    except InvalidOperation:
        rate = None
    if isinstance(value, bool) or rate is None or not rate.is_finite() or not 0 <= rate <= 1:
        raise TitlemapError(
            f"目标登记率应为 0 到 1 之间的比例，如 0.9 或 90%：收到 {value!r} / the target rate "
            "must be a share between 0 and 1, e.g. 0.9 or 90%"
        )
    return rate.quantize(Decimal("0.0001"))


def _day(value: Any, words: str) -> date | None:
    try:
        return parse_date(value)
    except DateError as exc:
        raise TitlemapError(f"{words}：{exc}") from None


def _deadline(value: Any) -> date | None:
    return _day(value, "目标期限 / target deadline")


def _cutoff(value: Any) -> date | None:
    return _day(value, "台账截止日期 / ledger cut-off")


def _epsg(value: Any) -> int | None:
    """A CGCS2000 3-degree Gauss-Krüger zone: 4544 or "EPSG:4544"; blank = from the longitude."""
    if _blank(value) or str(value).strip().lower() in ("auto", "none", "自动"):
        return None
    words = str(value).strip().upper().removeprefix("EPSG:")
    if isinstance(value, bool) or not words.isdigit():
        raise TitlemapError(
            f"投影带应为 EPSG 编号，如 4544（35 带）：收到 {value!r} / the zone must be an EPSG "
            "code such as 4544"
        )
    epsg = int(words)
    zone_of_epsg(epsg)  # a CGCS2000 3-degree GK zone, or one line saying it is not
    return epsg


def _closing_rule(value: Any) -> str:
    try:
        return ClosingRule(str(value).strip()).value
    except ValueError:
        rules = CLOSING_RULE_LABELS.items()
        allowed = "、".join(f"{rule.value}（{label}）" for rule, label in rules)
        raise TitlemapError(
            f"未知销号口径 / unknown closing rule {value!r}：可选 / one of {allowed}"
        ) from None


def _basis(value: Any) -> str:
    words = str(value).strip()
    if words not in BASIS_LABELS:
        allowed = "、".join(f"{key}（{label}）" for key, label in BASIS_LABELS.items())
        raise TitlemapError(
            f"未知总体登记率口径 / unknown overall-rate basis {value!r}：可选 / one of {allowed}"
        )
    return words


YES = {"true", "yes", "1", "on", "是", "公开"}
NO = {"false", "no", "0", "off", "否", "不公开", "内部"}


def _flag(value: Any) -> bool:
    """Yes or no: a boolean, or true/false, yes/no, 1/0, 是/否."""
    if isinstance(value, bool):
        return value
    words = str(value).strip().lower()
    if words in YES | NO:
        return words in YES
    raise TitlemapError(
        f"应为 是/否（true/false）：收到 {value!r} / must be yes or no (true/false)"
    )


# What a county may set: field (the column) → how a value is read. Name, target, rule and basis
# may not be cleared; the others may be ("" or None).
SETTINGS = {
    "name": _name,
    "province": _province,
    "target_rate": _rate,
    "target_deadline": _deadline,
    "ledger_cutoff": _cutoff,
    "gk_epsg": _epsg,
    "closing_rule": _closing_rule,
    "overall_rate_basis": _basis,
    "map_public": _flag,  # false: the map and its API answer the county's own people only
}
NOT_NULL = {"name": "县名", "target_rate": "目标登记率", "closing_rule": "销号口径",
            "overall_rate_basis": "总体登记率口径", "map_public": "地图公开"}  # fmt: skip


def county_settings(values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` read and checked, field by field; an unknown field or a bad value is refused."""
    unknown = sorted(set(values) - set(SETTINGS))
    if unknown:
        raise TitlemapError(
            f"未知的县设置 / unknown county settings {unknown}：可设 / settable {list(SETTINGS)}"
        )
    settings = {}
    for field, value in values.items():
        if field in NOT_NULL and _blank(value):
            raise TitlemapError(f"{NOT_NULL[field]}不能为空 / {field} cannot be empty")
        settings[field] = SETTINGS[field](value)
    return settings


# -- reading ---------------------------------------------------------------------------------

_LIST = """
    SELECT c.code, c.name, c.province, c.target_rate, c.target_deadline, c.ledger_cutoff,
           c.gk_epsg, c.closing_rule, c.overall_rate_basis, c.map_public,
           c.geom IS NOT NULL AS has_boundary,
           ST_X(ST_Centroid(c.geom)) AS lon,
           (SELECT count(*) FROM compound WHERE county_code = c.code) AS compounds,
           (SELECT count(*) FROM parcel WHERE county_code = c.code) AS parcels,
           (SELECT count(*) FROM ledger_entry WHERE county_code = c.code) AS ledger_entries
    FROM county c
"""


def _describe(row) -> dict:
    epsg = measuring_epsg(row.lon, row.gk_epsg) if row.lon is not None or row.gk_epsg else None
    return {
        "code": row.code,
        "name": row.name,
        "province": row.province,
        "target_rate": float(row.target_rate),
        "target_deadline": row.target_deadline.isoformat() if row.target_deadline else None,
        "ledger_cutoff": row.ledger_cutoff.isoformat() if row.ledger_cutoff else None,
        "gk_epsg": row.gk_epsg,
        "measuring_epsg": epsg,  # the zone areas are measured in: gk_epsg, else the longitude's
        "closing_rule": row.closing_rule,
        "closing_rule_label": CLOSING_RULE_LABELS[ClosingRule(row.closing_rule)],
        "overall_rate_basis": row.overall_rate_basis,
        "map_public": row.map_public,
        "has_boundary": row.has_boundary,
        "counts": {
            "compounds": row.compounds,
            "parcels": row.parcels,
            "ledger_entries": row.ledger_entries,
        },
    }


def list_counties(conn: Connection) -> list[dict]:
    """Every county with its settings and what it holds (compounds, parcels, ledger entries)."""
    return [_describe(row) for row in conn.execute(text(_LIST + " ORDER BY c.code"))]


def describe_county(conn: Connection, code: str) -> dict:
    """One county as `list_counties` shows it; NoSuchCounty when there is none."""
    row = conn.execute(text(_LIST + " WHERE c.code = :code"), {"code": code}).first()
    if row is None:
        raise NoSuchCounty(
            f"没有这个县 / no such county: {code}（先添加：titlemap county add {code} --name 县名 "
            "/ add it first）"
        )
    return _describe(row)


def county_choices(conn: Connection) -> list[dict]:
    """Code and name of every county, for a chooser: cheap (no counts)."""
    rows = conn.execute(text("SELECT code, name FROM county ORDER BY code"))
    return [{"code": row.code, "name": row.name} for row in rows]


# -- writing ---------------------------------------------------------------------------------


def add_county(conn: Connection, code: str, name: str, **settings: Any) -> dict:
    """Add a county (committed); the province defaults to the one its code names.

    Refused with one line: a code of the wrong shape, one already taken, a bad setting."""
    code = county_code(code)
    values = county_settings({"name": name, **settings})
    values.setdefault("province", province_of(code))
    if conn.execute(text("SELECT 1 FROM county WHERE code = :c"), {"c": code}).first():
        conn.rollback()
        raise _exists(code)
    try:
        conn.execute(insert(County).values(code=code, **values))
        conn.commit()
    except IntegrityError:  # added by someone else in the meantime
        conn.rollback()
        raise _exists(code) from None
    return describe_county(conn, code)


def _exists(code: str) -> CountyExists:
    return CountyExists(
        f"县 {code} 已存在 / county {code} exists already（修改用 titlemap county set {code} "
        "/ change it with county set）"
    )


def set_county(conn: Connection, code: str, changes: Mapping[str, Any]) -> dict:
    """Change some of a county's settings (committed); `changes` maps fields to new values."""
    if not changes:
        raise TitlemapError(
            f"没有要修改的设置 / nothing to change：可设 / settable {list(SETTINGS)}"
        )
    values = county_settings(changes)
    describe_county(conn, code)  # NoSuchCounty, in a clerk's words
    conn.execute(update(County).where(County.code == code).values(**values))
    conn.commit()
    return describe_county(conn, code)
