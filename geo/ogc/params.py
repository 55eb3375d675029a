"""The /items query parameters as SQL: bbox (in `bbox-crs`), datetime on the temporal
property, property values (`name=value`). Every user value is a bound parameter (`Params`)."""

import re
from datetime import date, datetime
from typing import Any

import shapely

from geo import TitlemapError
from geo.core.crs import STORAGE_EPSG
from geo.core.dates import BEIJING
from geo.ogc.collections import Collection, Prop
from geo.ogc.crs import OutputCrs


class Params:
    """Bound parameters named p0, p1, …: every user value goes through here."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def add(self, value: Any) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f":{name}"


def _numbers(value: str, what: str) -> list[float]:
    try:
        numbers = [float(v) for v in value.split(",")]
    except ValueError:
        raise TitlemapError(f"{what} 应为逗号分隔的数 / {what} needs numbers: {value!r}") from None
    if any(n != n or n in (float("inf"), float("-inf")) for n in numbers):
        raise TitlemapError(f"{what} 含无效数值 / {what} has an invalid number: {value!r}")
    return numbers


def envelope_sql(
    minx: float, miny: float, maxx: float, maxy: float, crs: OutputCrs, params: Params
) -> str:
    """SQL for a box given in `crs` and its axis order, as an EPSG:4490 geometry."""
    if crs.north_first:
        minx, miny, maxx, maxy = miny, minx, maxy, maxx
    if minx > maxx or miny > maxy:
        raise TitlemapError("bbox 的最小值应在前 / bbox: lower corner first")
    crs.check_within((minx, miny, maxx, maxy), "bbox ", "bbox")
    if crs.srid != STORAGE_EPSG:
        return projected_sql(shapely.box(minx, miny, maxx, maxy), crs, params)
    corners = ", ".join(params.add(v) for v in (minx, miny, maxx, maxy))
    return f"ST_MakeEnvelope({corners}, 4490)"


SEGMENT_M = 10.0  # a projected edge is cut into pieces this long …
MAX_SEGMENTS = 2_000  # … or, where that makes more per geometry, into this many longer ones


def projected_sql(geom: shapely.Geometry, crs: OutputCrs, params: Params) -> str:
    """SQL for a geometry in a projected `crs` (x first, inside its area) as EPSG:4490.

    Its edges are straight in metres, so they are cut into pieces before turning to 4490 —
    never more than MAX_SEGMENTS per geometry: a filter of a few characters spanning a whole
    zone, cut every 10 m, once grew a PostgreSQL process to 6 GB."""
    step = params.add(max(SEGMENT_M, shapely.length(geom) / MAX_SEGMENTS))
    wkt = params.add(shapely.to_wkt(geom, rounding_precision=-1))
    return f"ST_Transform(ST_Segmentize(ST_GeomFromText({wkt}, {crs.srid}), {step}), 4490)"


def bbox_sql(value: str, crs: OutputCrs, params: Params) -> str:
    """`bbox` (4 or 6 numbers, in `bbox-crs` axis order) as a WHERE clause on `s.geom`."""
    numbers = _numbers(value, "bbox")
    if len(numbers) == 6:
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]  # heights play no part
    if len(numbers) != 4:
        raise TitlemapError(f"bbox 应为 4 或 6 个数 / bbox needs 4 or 6 numbers: {value!r}")
    return f"ST_Intersects(s.geom, {envelope_sql(*numbers, crs, params)})"


def instant(value: str) -> date | None:
    """A date, or the Beijing date of a timestamp; None for an open end ('..' or '')."""
    value = value.strip()
    if value in ("", ".."):
        return None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}T", value):
        # GDAL 3.6 turns a -where on ANY date field into datetime=…T: refuse it loudly
        # rather than filter the wrong field.
        raise TitlemapError(
            f"datetime {value!r} 不是 RFC 3339；datetime 只筛选本集合的时间属性。GDAL 3.6 会把"
            "任何日期字段的 -where 变成 datetime：请先导出再筛选 / not RFC 3339; datetime "
            "filters the collection's temporal property only — with GDAL 3.6, copy then filter"
        )
    try:
        if "T" in value or " " in value:
            moment = datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
            if moment.tzinfo is None:  # a local time: Beijing's
                moment = moment.replace(tzinfo=BEIJING)
            return moment.astimezone(BEIJING).date()
        return date.fromisoformat(value)
    except ValueError:
        raise TitlemapError(
            f"datetime 应为 RFC 3339 日期或区间 / datetime needs a date or an interval: {value!r}"
        ) from None


def datetime_sql(value: str, coll: Collection, params: Params) -> str:
    """`datetime` (an instant, or start/end with '..' for open) on the temporal property.

    The temporal properties are dates: an instant matches its (Beijing) day, an interval
    every day from its start's to its end's, both included."""
    if coll.temporal is None:
        raise TitlemapError(
            f"集合 {coll.id} 没有时间属性，不能用 datetime / collection has no temporal property"
        )
    column = coll.props[coll.temporal].column()
    parts = value.split("/")
    if len(parts) == 1:
        day = instant(parts[0])
        if day is None:
            raise TitlemapError("datetime 不能为空 / datetime is empty")
        return f"{column} = {params.add(day)}"
    if len(parts) != 2:
        raise TitlemapError(f"datetime 区间应为 起/止 / datetime interval is start/end: {value!r}")
    start, end = instant(parts[0]), instant(parts[1])
    if start and end and start > end:
        raise TitlemapError(f"datetime 起点晚于终点 / datetime starts after it ends: {value!r}")
    clauses = [f"{column} IS NOT NULL"]
    if start:
        clauses.append(f"{column} >= {params.add(start)}")
    if end:
        clauses.append(f"{column} <= {params.add(end)}")
    return " AND ".join(clauses)


def typed_value(prop: Prop, value: str) -> Any:
    """A query-string value as the property's type (what a property filter compares with)."""
    try:
        if prop.type == "integer":
            return int(value)
        if prop.type == "number":
            return float(value)
        if prop.type == "date":
            return date.fromisoformat(value)
    except ValueError:
        raise TitlemapError(
            f"{prop.name} 应为 {prop.type} / {prop.name} needs a {prop.type}: {value!r}"
        ) from None
    if prop.type == "boolean":
        if value.lower() not in ("true", "false"):
            raise TitlemapError(f"{prop.name} 应为 true 或 false / needs true or false: {value!r}")
        return value.lower() == "true"
    if prop.enum and value not in prop.enum:
        raise TitlemapError(
            f"{prop.name} 的值 {value!r} 未知 / unknown value; 可选 / allowed: {list(prop.enum)}"
        )
    return value


def property_sql(prop: Prop, values: list[str], params: Params) -> str:
    """`name=value` (repeat for any of several) as a WHERE clause."""
    bound = ", ".join(params.add(typed_value(prop, v)) for v in values)
    return f"{prop.column()} IN ({bound})"
