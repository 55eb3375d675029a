"""Compounds with their ledger status, as GeoJSON built by PostGIS (no Python round trip)."""

from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, text

from geo import TitlemapError
from geo.crs import measuring_epsg, sql_area
from geo.model import STATUS_LABELS, LedgerStatus

NOT_ON_LEDGER = "not_on_ledger"
STATUS_FILTER_VALUES = (*(s.value for s in LedgerStatus), NOT_ON_LEDGER)
MAX_LIMIT = 10_000


@dataclass(frozen=True)
class BBox:
    """A lon/lat box in EPSG:4490."""

    minx: float
    miny: float
    maxx: float
    maxy: float

    @classmethod
    def parse(cls, value: str) -> "BBox":
        parts = value.split(",")
        try:
            minx, miny, maxx, maxy = (float(p) for p in parts)
        except ValueError:
            raise TitlemapError(
                f"bbox 应为 minx,miny,maxx,maxy 四个数 / bbox needs four numbers: {value!r}"
            ) from None
        if not (-180 <= minx < maxx <= 180 and -90 <= miny < maxy <= 90):
            raise TitlemapError(
                f"bbox 范围无效（经度在前、小值在前）/ invalid bbox (lon, min first): {value!r}"
            )
        return cls(minx, miny, maxx, maxy)


@dataclass(frozen=True)
class County:
    code: str
    name: str
    epsg: int


def get_county(conn: Connection, code: str) -> County:
    row = conn.execute(
        text(
            "SELECT code, name, gk_epsg, ST_X(ST_Centroid(geom)) AS lon FROM county "
            "WHERE code = :code"
        ),
        {"code": code},
    ).first()
    if row is None:
        raise TitlemapError(f"没有这个县 / no such county: {code}")
    if row.lon is None and row.gk_epsg is None:
        raise TitlemapError(f"{row.name} 没有边界也没有设定投影带 / county has no boundary or zone")
    return County(row.code, row.name, measuring_epsg(row.lon, row.gk_epsg))


def status_labels_sql() -> str:
    """A CASE mapping status codes to their Chinese labels, from the one table in geo.model."""
    whens = " ".join(f"WHEN '{s.value}' THEN '{label}'" for s, label in STATUS_LABELS.items())
    return f"CASE coalesce(e.status, '{NOT_ON_LEDGER}') {whens} ELSE '不在台账' END"


def compounds_geojson(
    conn: Connection,
    county: str,
    bbox: BBox | None = None,
    statuses: list[str] | None = None,
    limit: int = 1000,
    offset: int = 0,
) -> str:
    """A GeoJSON FeatureCollection of compounds with ledger fields, ordered by code."""
    unknown = sorted(set(statuses or []) - set(STATUS_FILTER_VALUES))
    if unknown:
        raise TitlemapError(
            f"未知状态 / unknown status {unknown}; 可选 / allowed: {list(STATUS_FILTER_VALUES)}"
        )
    if not 1 <= limit <= MAX_LIMIT:
        raise TitlemapError(f"limit 应在 1 到 {MAX_LIMIT} 之间 / limit must be 1..{MAX_LIMIT}")
    info = get_county(conn, county)
    where = ["c.county_code = :county"]
    params: dict = {"county": county, "limit": limit, "offset": offset}
    if bbox:
        where.append("c.geom && ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4490)")
        params |= {"minx": bbox.minx, "miny": bbox.miny, "maxx": bbox.maxx, "maxy": bbox.maxy}
    if statuses:
        where.append(f"coalesce(e.status, '{NOT_ON_LEDGER}') IN :statuses")
        params["statuses"] = list(statuses)
    sql = f"""
        WITH matched AS (
            SELECT c.*, e.id AS entry_id FROM compound c
            LEFT JOIN ledger_entry e ON e.compound_id = c.id
            WHERE {" AND ".join(where)}
        ), page AS (
            SELECT c.* FROM matched c ORDER BY c.code LIMIT :limit OFFSET :offset
        )
        SELECT json_build_object(
            'type', 'FeatureCollection',
            'numberMatched', (SELECT count(*) FROM matched),
            'numberReturned', (SELECT count(*) FROM page),
            'features', coalesce(json_agg(f.feature ORDER BY f.code), '[]'::json)
        )::text
        FROM (
            SELECT c.code, json_build_object(
                'type', 'Feature',
                'id', c.code,
                'geometry', ST_AsGeoJSON(c.geom, 7)::json,
                'properties', json_build_object(
                    'code', c.code,
                    'name', c.name,
                    'address', c.address,
                    'township', t.name,
                    'developer', d.name,
                    'developer_credit_status', d.credit_status,
                    'units_sold', c.units_sold,
                    'area_m2', round({sql_area("c.geom", info.epsg)}::numeric, 1),
                    'on_ledger', e.id IS NOT NULL,
                    'status', coalesce(e.status, '{NOT_ON_LEDGER}'),
                    'status_label', {status_labels_sql()},
                    'units_task', e.units_task,
                    'units_first_registered', e.units_first_registered,
                    'units_transferred', e.units_transferred,
                    'first_rate', round(e.units_first_registered::numeric
                                        / nullif(e.units_task, 0), 4),
                    'transfer_rate', round(e.units_transferred::numeric
                                           / nullif(e.units_task, 0), 4),
                    'blockers', e.blockers,
                    'lead_department', e.lead_department,
                    'deadline', e.deadline,
                    'overdue', e.deadline < current_date AND e.status <> 'closed',
                    'version', e.version
                )
            ) AS feature
            FROM page c
            LEFT JOIN ledger_entry e ON e.id = c.entry_id
            LEFT JOIN township t ON t.id = c.township_id
            LEFT JOIN developer d ON d.id = c.developer_id
        ) f
    """
    query = text(sql)
    if statuses:
        query = query.bindparams(bindparam("statuses", expanding=True))
    return conn.execute(query, params).scalar_one()
