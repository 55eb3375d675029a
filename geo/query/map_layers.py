"""Map layers by name → SQL: what the vector tiles (geo.query.tiles), the web map's GeoJSON
and the OGC collections draw from.

Each `MapLayer` names its property columns and a source query giving `geom` (EPSG:4490) and
those columns for one county, optionally limited to a box. The compound layer takes the
`CompoundFilter` (status, blocker, department, township, planned area, overdue, search,
as-of date) of geo.query.compounds. `layer_geojson` gives a FeatureCollection of a layer
limited to a box and a number of features, simplified to half a pixel at `zoom` if given.
"""

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, text

from geo import TitlemapError
from geo.core.model import PLANNED_AREA_LABELS, LedgerStatus
from geo.core.rates import rate_sql
from geo.db.memo import memo_of
from geo.query.compounds import (
    NOT_ON_LEDGER,
    OVERDUE_SQL,
    STATUS_SQL,
    BBox,
    CompoundFilter,
    data_version,
    extent,
    filter_sql,
    get_county,
    status_labels_sql,
)

MAX_ZOOM = 22
GEOJSON_LIMIT = 5000
# Most urgent first: a tie in a cell shows the more urgent status.
URGENCY = (
    LedgerStatus.STALLED.value,
    LedgerStatus.NOT_STARTED.value,
    LedgerStatus.IN_PROGRESS.value,
    LedgerStatus.FIRST_REGISTERED.value,
    LedgerStatus.CLOSED.value,
    NOT_ON_LEDGER,
)

Source = Callable[[str, CompoundFilter, str | None], tuple[str, dict]]


@dataclass(frozen=True)
class MapLayer:
    name: str
    title: str
    geometry: str  # polygon / line / point / mixed
    columns: tuple[str, ...]
    source: Source  # (county, filter, box SQL or None) → (SQL with geom + columns, params)
    order: str  # columns that order GeoJSON pages
    filterable: bool = False  # takes the compound filter
    small_as_points: bool = False
    aggregate: bool = False


def _box(column: str, box: str | None) -> str:
    return f"{column} && {box}" if box else "true"


# The current ledger row `x` of each compound `c` — the columns of geo.query.compounds.ledger_join —
# looked up per compound through the unique index on compound_id. For the few thousand
# compounds of a tile that beats hashing the county's whole ledger (z14: 15 ms instead of 22).
# LIMIT 1 keeps PostgreSQL from turning it back into a plain join.
CURRENT_LEDGER_PER_COMPOUND = """
    LEFT JOIN LATERAL (
        SELECT e.id AS entry_id, e.compound_id, e.status, e.units_task,
               e.units_first_registered AS first, e.units_transferred AS transferred,
               e.blockers, e.lead_department, e.deadline
        FROM ledger_entry e WHERE e.county_code = c.county_code AND e.compound_id = c.id LIMIT 1
    ) x ON true
"""

# On Citus the lateral lookup (its LIMIT) cannot be pushed to one shard: a tile went to every
# shard and was drawn on the coordinator (EXPLAIN: Task Count 8; docs/scale.md). The same rows
# as a plain join on the unique (county_code, compound_id) route to the county's shard.
CURRENT_LEDGER_JOINED = """
    LEFT JOIN (
        SELECT e.county_code, e.id AS entry_id, e.compound_id, e.status, e.units_task,
               e.units_first_registered AS first, e.units_transferred AS transferred,
               e.blockers, e.lead_department, e.deadline
        FROM ledger_entry e
    ) x ON x.county_code = c.county_code AND x.compound_id = c.id
"""


def routed_on_shards(sql: str) -> str:
    """A layer's query as Citus routes it to one shard (the ledger lookup as a plain join)."""
    return sql.replace(CURRENT_LEDGER_PER_COMPOUND, CURRENT_LEDGER_JOINED)


def _compounds(county: str, f: CompoundFilter, box: str | None) -> tuple[str, dict]:
    source, where, params = filter_sql(county, f.without_bbox(), local=box is not None)
    if box is not None and f.as_of is None:
        source = f"FROM compound c {CURRENT_LEDGER_PER_COMPOUND}"
    # What a GIS user styling or labelling by status needs; blockers as one comma-joined text
    # (MVT has no arrays).
    sql = f"""
        SELECT c.geom, c.code, c.name, {STATUS_SQL} AS status,
               {status_labels_sql("x.status")} AS status_label,
               coalesce({OVERDUE_SQL}, false) AS overdue,
               x.units_task, x.first AS units_first_registered,
               x.transferred AS units_transferred,
               {rate_sql("x.transferred", "x.units_task")} AS transfer_rate,
               nullif(array_to_string(x.blockers, ','), '') AS blockers,
               x.lead_department
        {source} WHERE {where} AND {_box("c.geom", box)}
    """
    return sql, params


def _parcels(county: str, f: CompoundFilter, box: str | None) -> tuple[str, dict]:
    sql = f"""
        SELECT p.geom, p.code, p.land_use, p.right_type,
               p.recorded_area_m2::float8 AS recorded_area_m2,
               greatest(coalesce(p.premium_due, 0) - coalesce(p.premium_paid, 0), 0)::float8
                   AS premium_owed,
               (SELECT string_agg(c.code, ',' ORDER BY c.code) FROM compound_parcel cp
                JOIN compound c ON c.county_code = cp.county_code AND c.id = cp.compound_id
                WHERE cp.county_code = p.county_code AND cp.parcel_id = p.id)
                   AS compound_codes
        FROM parcel p WHERE p.county_code = :county AND {_box("p.geom", box)}
    """
    return sql, {"county": county}


def kind_label_sql(column: str) -> str:
    whens = " ".join(f"WHEN '{k.value}' THEN '{v}'" for k, v in PLANNED_AREA_LABELS.items())
    return f"CASE {column} {whens} ELSE {column} END"


def _planned(county: str, f: CompoundFilter, box: str | None) -> tuple[str, dict]:
    sql = f"""
        SELECT p.geom, p.code, p.name, p.kind, {kind_label_sql("p.kind")} AS kind_label
        FROM planned_area p WHERE p.county_code = :county AND {_box("p.geom", box)}
    """
    return sql, {"county": county}


def _complaints(county: str, f: CompoundFilter, box: str | None) -> tuple[str, dict]:
    # outside_ledger: no compound on the ledger holds the point — the survey missed one.
    sql = f"""
        SELECT k.geom, k.code, k.received_on::text AS received_on, k.source, k.text,
               inside.code AS compound_code, inside.name AS compound_name,
               inside.on_ledger IS NOT TRUE AS outside_ledger
        FROM complaint k
        LEFT JOIN LATERAL (
            SELECT c.code, c.name, e.id IS NOT NULL AS on_ledger
            FROM compound c
            LEFT JOIN ledger_entry e ON e.county_code = c.county_code AND e.compound_id = c.id
            WHERE c.county_code = k.county_code AND ST_Intersects(c.geom, k.geom)
            ORDER BY (e.id IS NOT NULL) DESC, c.code LIMIT 1
        ) inside ON true
        WHERE k.county_code = :county AND {_box("k.geom", box)}
    """
    return sql, {"county": county}


def _townships(county: str, f: CompoundFilter, box: str | None) -> tuple[str, dict]:
    sql = f"""
        SELECT t.geom, t.code, t.name, t.kind FROM township t
        WHERE t.county_code = :county AND {_box("t.geom", box)}
    """
    return sql, {"county": county}


def _context(county: str, f: CompoundFilter, box: str | None) -> tuple[str, dict]:
    sql = f"""
        SELECT x.geom, x.id, x.kind, x.name FROM context_feature x
        WHERE x.county_code = :county AND {_box("x.geom", box)}
    """
    return sql, {"county": county}


def _boundary(county: str, f: CompoundFilter, box: str | None) -> tuple[str, dict]:
    sql = f"""
        SELECT k.geom, k.code, k.name FROM county k
        WHERE k.code = :county AND k.geom IS NOT NULL AND {_box("k.geom", box)}
    """
    return sql, {"county": county}


COMPOUND_COLUMNS = (
    "code", "name", "status", "status_label", "overdue", "units_task", "units_first_registered",
    "units_transferred", "transfer_rate", "blockers", "lead_department",
)  # fmt: skip

MAP_LAYERS: dict[str, MapLayer] = {
    layer.name: layer
    for layer in (
        MapLayer("compounds", "小区", "polygon", COMPOUND_COLUMNS, _compounds, "code",
                 filterable=True, small_as_points=True, aggregate=True),
        MapLayer("parcels", "宗地", "polygon", ("code", "land_use", "right_type",
                 "recorded_area_m2", "premium_owed", "compound_codes"), _parcels, "code"),
        MapLayer("planned", "规划片区", "polygon", ("code", "name", "kind", "kind_label"),
                 _planned, "code"),
        MapLayer("complaints", "留言投诉", "point", ("code", "received_on", "source", "text",
                 "compound_code", "compound_name", "outside_ledger"), _complaints, "code"),
        MapLayer("townships", "乡镇（街道）", "polygon", ("code", "name", "kind"), _townships,
                 "code"),
        MapLayer("context", "河流道路", "line", ("id", "kind", "name"), _context, "id"),
        MapLayer("boundary", "县界", "polygon", ("code", "name"), _boundary, "code"),
    )
}  # fmt: skip


# The table each layer reads: its extent is the layer's bounds.
TABLES = {
    "compounds": "compound", "parcels": "parcel", "planned": "planned_area",
    "complaints": "complaint", "townships": "township", "context": "context_feature",
    "boundary": "county",
}  # fmt: skip

# Each column's type and meaning, for TileJSON's vector_layers and QGIS users.
FIELDS: dict[str, dict[str, str]] = {
    "compounds": {
        "code": "String 小区编号 / compound code",
        "name": "String 小区名称 / compound name",
        "status": "String 化解状态代码 / ledger status: not_started, in_progress, stalled, "
        "first_registered, closed, not_on_ledger",
        "status_label": "String 化解状态 / status in Chinese (未启动、推进中、停滞、已首次登记、"
        "已销号、不在台账)",
        "overdue": "Boolean 逾期未办结 / past the deadline and not closed",
        "units_task": "Number 任务套数 / task units on the ledger",
        "units_first_registered": "Number 已首次登记套数 / units with first registration",
        "units_transferred": "Number 已转移登记套数 / units transferred to buyers",
        "transfer_rate": "Number 转移登记化解率 (0–1) / transfer-registration rate",
        "blockers": "String 卡点类别，逗号分隔 / blocker categories, comma-separated",
        "lead_department": "String 牵头单位 / lead department",
        "agg": "Number 过密缩放级别的汇总格（=1）/ 1 on aggregated cells (crowded zooms)",
        "n": "Number 格内小区数 / compounds in the cell (aggregated cells)",
        **{f"n_{s}": f"Number 格内 {s} 小区数 / compounds {s} in the cell" for s in URGENCY},
    },
    "parcels": {
        "code": "String 宗地代码 / parcel code (19 characters)",
        "land_use": "String 土地用途 / land use",
        "right_type": "String 权利类型 / right type",
        "recorded_area_m2": "Number 登记面积（平方米）/ recorded area m²",
        "premium_owed": "Number 欠缴出让金（元）/ land premium owed",
        "compound_codes": "String 所属小区编号，逗号分隔 / compounds on it, comma-separated",
    },
    "planned": {
        "code": "String 片区编号 / planned-area code",
        "name": "String 片区名称 / name",
        "kind": "String 类型代码 / kind code",
        "kind_label": "String 类型 / kind in Chinese",
    },
    "complaints": {
        "code": "String 投诉编号 / complaint code",
        "received_on": "String 收到日期 / date received (YYYY-MM-DD)",
        "source": "String 来源 / source",
        "text": "String 内容 / text",
        "compound_code": "String 所在小区编号 / compound holding the point",
        "compound_name": "String 所在小区 / its name",
        "outside_ledger": "Boolean 不在任何台账小区内（漏排）/ outside every ledger compound",
    },
    "townships": {
        "code": "String 乡镇代码 / township code",
        "name": "String 名称 / name",
        "kind": "String 乡/镇/街道 / kind",
    },
    "context": {
        "id": "Number 编号 / id",
        "kind": "String 类型（河流、道路…）/ kind",
        "name": "String 名称 / name",
    },
    "boundary": {"code": "String 县代码 / county code", "name": "String 县名 / county name"},
}


def layer_bounds(conn: Connection, layer: str, county: str) -> list[float] | None:
    """[minx, miny, maxx, maxy] of `layer` in the county (EPSG:4490), kept per revision."""
    table = TABLES[get_layer(layer).name]
    if table == "compound":
        return extent(conn, county)
    column = "code" if table == "county" else "county_code"

    def compute() -> list[float] | None:
        row = conn.execute(
            text(
                "SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM "
                f"(SELECT ST_Extent(geom) AS b FROM {table} WHERE {column} = :c) s"
            ),
            {"c": county},
        ).one()
        return list(row) if row[0] is not None else None

    key = ("layer bounds", county, data_version(conn, county)[0], table)
    return memo_of(conn.engine)(key, compute)


def get_layer(name: str) -> MapLayer:
    if name not in MAP_LAYERS:
        raise TitlemapError(
            f"没有图层 {name!r} / no such layer; 可选 / one of: {', '.join(MAP_LAYERS)}"
        )
    return MAP_LAYERS[name]


def simplify_tolerance(zoom: float) -> float:
    """Half a screen pixel at `zoom`, in degrees of longitude."""
    return 360 / (256 * 2**zoom) / 2


def layer_geojson(
    conn: Connection,
    layer: str,
    county: str,
    bbox: BBox | None = None,
    zoom: float | None = None,
    limit: int = GEOJSON_LIMIT,
    filters: CompoundFilter | None = None,
) -> str:
    """A FeatureCollection of `layer` in the box; `numberMatched` tells what `limit` left out."""
    spec = get_layer(layer)
    if not 1 <= limit <= GEOJSON_LIMIT * 2:
        raise TitlemapError(f"limit 应在 1 到 {GEOJSON_LIMIT * 2} 之间 / limit out of range")
    if zoom is not None and not 0 <= zoom <= MAX_ZOOM:
        raise TitlemapError(f"zoom 应在 0 到 {MAX_ZOOM} 之间 / zoom out of range")
    get_county(conn, county)
    f = filters if (filters and spec.filterable) else CompoundFilter()
    box = "ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4490)" if bbox else None
    source, params = spec.source(county, f, box)
    if bbox:
        params |= bbox.params()
    geom = "s.geom"
    if zoom is not None and spec.geometry != "point":
        geom = f"ST_SimplifyPreserveTopology(s.geom, {simplify_tolerance(zoom)})"
    props = ", ".join(f"'{c}', s.{c}" for c in spec.columns)
    sql = f"""
        WITH src AS ({source}), page AS (
            SELECT * FROM src ORDER BY {spec.order} LIMIT :limit
        )
        SELECT json_build_object(
            'type', 'FeatureCollection',
            'layer', CAST(:layer AS text),
            'numberMatched', (SELECT count(*) FROM src),
            'numberReturned', (SELECT count(*) FROM page),
            'features', coalesce(json_agg(json_build_object(
                'type', 'Feature',
                'geometry', ST_AsGeoJSON({geom}, 7, 0)::json,
                'properties', json_build_object({props})
            )), '[]'::json)
        )::text
        FROM page s
    """
    return conn.execute(text(sql), params | {"limit": limit, "layer": spec.name}).scalar_one()
