"""Map layers by name → SQL, served as Mapbox vector tiles (ST_AsMVT) or bbox-limited GeoJSON.

Each `MapLayer` names its property columns and a source query giving `geom` (EPSG:4490) and
those columns for one county, optionally limited to a box. Two outputs share it:

- `tile(conn, layer, county, z, x, y)`: a vector tile (EPSG:3857 grid, extent 4096, 64 px
  buffer) — what the web map draws and what GIS software (QGIS) reads. Lon/lat in EPSG:4490 is
  taken as WGS84 for the Web Mercator grid, as web maps do (the datums agree within
  centimetres; a datum shift would only add noise).
- `layer_geojson(conn, layer, county, bbox)`: a FeatureCollection limited to a box and a
  number of features, simplified to half a pixel at `zoom` if given.

Compounds are the one layer that grows to 100 000 rows. Their tiles keep each compound's
outline while it is at least `POINT_BELOW_PX` pixels across and draw a point below that;
at zoom levels where a tile would hold more than `AGGREGATE_ABOVE` compounds
(`crowded_zoom`) they are counted per `CELL_PX` square instead (`agg` = 1, `n` = how many,
`n_<status>` per status, `status` = the most common, ties going to the most urgent), so a
county-wide view of 100 000 compounds is a few hundred kilobytes and drawn at once. Those
counts are made for a whole zoom level in one query and kept (`CACHE`, keyed by the data
version) for the other tiles of the view. The compound layer takes the `CompoundFilter`
(status, blocker, department, township, planned area, overdue, search, as-of date) of
geo.compounds.
"""

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, text

from geo import TitlemapError
from geo.compounds import (
    NOT_ON_LEDGER,
    OVERDUE_SQL,
    STATUS_SQL,
    BBox,
    CompoundFilter,
    data_version,
    extent,
    filter_sql,
    get_county,
)
from geo.model import PLANNED_AREA_LABELS, LedgerStatus

EXTENT = 4096
BUFFER = 64
POINT_BELOW_PX = 4
AGGREGATE_ABOVE = 4000
CELL_PX = 4
MAX_ZOOM = 22
GEOJSON_LIMIT = 5000
WEB_MERCATOR_HALF = 20037508.342789244
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


def _compounds(county: str, f: CompoundFilter, box: str | None) -> tuple[str, dict]:
    source, where, params = filter_sql(county, f.without_bbox(), local=box is not None)
    sql = f"""
        SELECT c.geom, c.code, c.name, {STATUS_SQL} AS status,
               coalesce({OVERDUE_SQL}, false) AS overdue
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
                JOIN compound c ON c.id = cp.compound_id WHERE cp.parcel_id = p.id)
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
            FROM compound c LEFT JOIN ledger_entry e ON e.compound_id = c.id
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


LAYERS: dict[str, MapLayer] = {
    layer.name: layer
    for layer in (
        MapLayer("compounds", "小区", "polygon", ("code", "name", "status", "overdue"),
                 _compounds, "code", filterable=True, small_as_points=True, aggregate=True),
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


def get_layer(name: str) -> MapLayer:
    if name not in LAYERS:
        raise TitlemapError(
            f"没有图层 {name!r} / no such layer; 可选 / one of: {', '.join(LAYERS)}"
        )
    return LAYERS[name]


def check_tile(z: int, x: int, y: int) -> None:
    if not (0 <= z <= MAX_ZOOM and 0 <= x < 2**z and 0 <= y < 2**z):
        raise TitlemapError(f"瓦片 {z}/{x}/{y} 不存在 / no such tile")


def _tile_box(margin: float = 0.0) -> str:
    """The tile (plus a margin, as a share of its width) as an EPSG:4490 box for the index."""
    return (
        "ST_SetSRID(ST_Transform(ST_TileEnvelope(:z, :x, :y, margin => "
        f"{float(margin)}), 4326), 4490)"
    )


def _merc(geom: str) -> str:
    return f"ST_Transform(ST_SetSRID({geom}, 4326), 3857)"


def tile(
    conn: Connection,
    layer: str,
    county: str,
    z: int,
    x: int,
    y: int,
    filters: CompoundFilter | None = None,
) -> bytes:
    """The vector tile z/x/y of `layer` (one MVT layer of that name); b'' when empty."""
    spec = get_layer(layer)
    check_tile(z, x, y)
    get_county(conn, county)
    f = filters if (filters and spec.filterable) else CompoundFilter()
    tile_params = {"z": z, "x": x, "y": y}
    if spec.aggregate and crowded_zoom(conn, county, z):
        return _crowded_tile(conn, spec, county, f, z, x, y)
    source, params = spec.source(county, f, _tile_box(BUFFER / EXTENT))
    geom = "p.g"
    if spec.small_as_points:
        pixel = 2 * WEB_MERCATOR_HALF / (256 * 2**z)
        geom = (
            "CASE WHEN greatest(ST_XMax(p.g) - ST_XMin(p.g), ST_YMax(p.g) - ST_YMin(p.g)) "
            f"< {POINT_BELOW_PX * pixel} THEN ST_Centroid(p.g) ELSE p.g END"
        )
    columns = ", ".join(f"p.{c}" for c in spec.columns)
    sql = f"""
        WITH s AS MATERIALIZED ({source}),
        p AS MATERIALIZED (SELECT s.*, {_merc("s.geom")} AS g FROM s)
        SELECT ST_AsMVT(t, CAST(:layer AS text), {EXTENT}, 'geom') FROM (
            SELECT {columns},
                   ST_AsMVTGeom({geom}, ST_TileEnvelope(:z, :x, :y), {EXTENT}, {BUFFER}, true)
                       AS geom
            FROM p
        ) t WHERE t.geom IS NOT NULL
    """
    data = conn.execute(text(sql), params | tile_params | {"layer": spec.name}).scalar_one()
    return bytes(data or b"")


class TileCache:
    """Recent crowded-tile answers, by layer, tile, filter and data version, for `ttl` seconds.

    Only the aggregated tiles of large counties are kept (they cost 0.1–0.3 s each; detail
    tiles cost milliseconds). The version (`geo.compounds.data_version`) changes with every
    ledger event and every compound added or removed, so an edit shows at once; other
    changes (a compound's outline redrawn in place) show within `ttl`.
    """

    def __init__(self, max_bytes: int = 64 * 1024 * 1024, ttl: float = 120.0):
        self.max_bytes = max_bytes
        self.ttl = ttl
        self.size = 0
        self.items: OrderedDict[tuple, tuple[float, bytes]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple) -> bytes | None:
        with self.lock:
            item = self.items.get(key)
            if item is None:
                return None
            if time.monotonic() - item[0] > self.ttl:
                self._drop(key)
                return None
            self.items.move_to_end(key)
            return item[1]

    def put(self, key: tuple, data: bytes) -> None:
        with self.lock:
            if key in self.items:
                self._drop(key)
            self.items[key] = (time.monotonic(), data)
            self.size += len(data)
            while self.size > self.max_bytes and self.items:
                self._drop(next(iter(self.items)))

    def _drop(self, key: tuple) -> None:
        self.size -= len(self.items.pop(key)[1])

    def clear(self) -> None:
        with self.lock:
            self.items.clear()
            self.size = 0


CACHE = TileCache()


def crowded_zoom(conn: Connection, county: str, z: int) -> bool:
    """Whether compounds are counted per cell at zoom `z`: a tile there would hold more than
    AGGREGATE_ABOVE of them on average over the compounds' extent. Decided per zoom, so a
    view is drawn one way throughout."""
    count = data_version(conn, county)[1]
    box = extent(conn, county)
    if not box or count <= AGGREGATE_ABOVE:
        return False
    minx, miny, maxx, maxy = box
    side = 360 / 2**z  # a tile's width in degrees of longitude
    lat = math.radians((miny + maxy) / 2)
    height = side * math.cos(lat)  # its height in degrees of latitude there
    share = min(1.0, side / max(maxx - minx, 1e-9)) * min(1.0, height / max(maxy - miny, 1e-9))
    return count * share > AGGREGATE_ABOVE


def _crowded_tile(
    conn: Connection, spec: MapLayer, county: str, f: CompoundFilter, z: int, x: int, y: int
) -> bytes:
    """The aggregated tile z/x/y: from the cache, else counted with every tile of its zoom.

    Counting the whole county in one query costs what one tile does when each reads the
    table and the ledger again, so the first crowded tile of a zoom computes them all (the
    others asking meanwhile wait for it) and the rest of the view comes from the cache.
    """
    version = data_version(conn, county)
    key = (spec.name, county, z, x, y, f, version)
    data = CACHE.get(key)
    if data is not None:
        return data
    zoom_key = (spec.name, county, z, f, version)
    with _zoom_lock(zoom_key):
        data = CACHE.get(key)
        if data is None and CACHE.get(zoom_key) is not None:
            data = b""  # the zoom was counted: no compound has its centre in this tile
        if data is None:
            tiles = _aggregated_zoom(conn, spec, county, f, z)
            for (tx, ty), mvt in tiles.items():
                CACHE.put((spec.name, county, z, tx, ty, f, version), mvt)
            CACHE.put(zoom_key, b"counted")
            data = tiles.get((x, y), b"")
    return data


def warm(engine: Engine, county: str, z: int, filters: CompoundFilter | None = None) -> bool:
    """Count the compounds of the crowded zoom `z` in the background (a page about to show it
    was just asked for), so its tiles come from the cache."""

    def work() -> None:
        try:
            with engine.connect() as conn:
                box = extent(conn, county)
                x, y = tile_of((box[0] + box[2]) / 2, (box[1] + box[3]) / 2, z)
                spec = LAYERS["compounds"]
                _crowded_tile(conn, spec, county, filters or CompoundFilter(), z, x, y)
        except Exception:  # a warm-up only: the tile request will report any real error
            pass

    threading.Thread(target=work, name=f"titlemap-warm-{county}-{z}", daemon=True).start()
    return True


_LOCKS: dict[tuple, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _zoom_lock(key: tuple) -> threading.Lock:
    with _LOCKS_GUARD:
        if len(_LOCKS) > 256:
            for old in [k for k, lock in _LOCKS.items() if not lock.locked()]:
                del _LOCKS[old]
        return _LOCKS.setdefault(key, threading.Lock())


def _aggregated_zoom(
    conn: Connection, spec: MapLayer, county: str, f: CompoundFilter, z: int
) -> dict[tuple[int, int], bytes]:
    """Every tile of zoom `z` holding compounds, as cells of CELL_PX: {(x, y): MVT}.

    Each compound is counted once, in the cell holding the centre of its box (the box stored
    with the geometry: no coordinate is read)."""
    source, params = spec.source(county, f, None)
    cells = 256 // CELL_PX
    step = EXTENT // cells
    counts = ", ".join(f"count(*) FILTER (WHERE status = '{s}') AS n_{s}" for s in URGENCY)
    pairs = ", ".join(f"('{s}', cells.n_{s}, {i})" for i, s in enumerate(URGENCY))
    columns = ", ".join(f"c.n_{s}" for s in URGENCY)
    # Web Mercator tile coordinates (x, y at zoom z, fractional) of each box's centre.
    lon = "(ST_XMin(b.box) + ST_XMax(b.box)) / 2"
    lat = "radians((ST_YMin(b.box) + ST_YMax(b.box)) / 2)"
    gx = f"(({lon} + 180) / 360 * 2 ^ :z)"
    gy = f"((1 - ln(tan({lat}) + 1 / cos({lat})) / pi()) / 2 * 2 ^ :z)"
    sql = f"""
        WITH b AS MATERIALIZED (SELECT s.status, box2d(s.geom) AS box FROM ({source}) s),
        g AS MATERIALIZED (SELECT b.status, {gx} AS gx, {gy} AS gy FROM b),
        cells AS (
            SELECT floor(gx)::int AS tx, floor(gy)::int AS ty,
                   floor((gx - floor(gx)) * {cells})::int AS cx,
                   floor((gy - floor(gy)) * {cells})::int AS cy,
                   count(*) AS n, {counts}
            FROM g GROUP BY 1, 2, 3, 4
        ), c AS MATERIALIZED (
            SELECT cells.*,
                   (SELECT u.s FROM (VALUES {pairs}) AS u(s, k, rank)
                    ORDER BY u.k DESC, u.rank LIMIT 1) AS status
            FROM cells
        )
        SELECT c.tx, c.ty, ST_AsMVT(r, CAST(:layer AS text), {EXTENT}, 'geom') AS mvt
        FROM c CROSS JOIN LATERAL (
            SELECT 1 AS agg, c.n, {columns}, c.status,
                   ST_MakePoint(c.cx * {step} + {step / 2}, c.cy * {step} + {step / 2}) AS geom
        ) r
        GROUP BY c.tx, c.ty
    """
    rows = conn.execute(text(sql), params | {"z": z, "layer": spec.name})
    return {(row.tx, row.ty): bytes(row.mvt) for row in rows}


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


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The z/x/y tile holding a lon/lat (Web Mercator, as web maps number them)."""
    n = 2**z
    x = int((lon + 180) / 360 * n)
    lat_r = math.radians(lat)
    y = int((1 - math.log(math.tan(lat_r) + 1 / math.cos(lat_r)) / math.pi) / 2 * n)
    return x, y
