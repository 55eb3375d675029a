"""Map layers (geo.query.map_layers) served as Mapbox vector tiles (ST_AsMVT).

`tile(conn, layer, county, z, x, y)`: a vector tile (EPSG:3857 grid, extent 4096, 64 px
buffer) — what the web map draws and what GIS software (QGIS) reads. Lon/lat in EPSG:4490 is
taken as WGS84 for the Web Mercator grid, as web maps do (the datums agree within
centimetres; a datum shift would only add noise).

Compounds are the one layer that grows to 100 000 rows. Their tiles keep each compound's
outline while it is at least `POINT_BELOW_PX` pixels across and draw a point below that;
at zoom levels where a tile would hold more than `AGGREGATE_ABOVE` compounds
(`crowded_zoom`) they are counted per `CELL_PX` square instead (`agg` = 1, `n` = how many,
`n_<status>` per status, `status` = the most common, ties going to the most urgent), so a
county-wide view of 100 000 compounds is a few hundred kilobytes and drawn at once. Those
counts are made for a whole zoom level in one query and kept for the other tiles of the view.

Caching: `tile_key` says what a tile depends on — layer, county, z/x/y, filter, the county's
data revision (`geo.query.compounds.data_version`: triggers bump it on every statement changing a
drawn table, migration 0003) or, for an unfiltered compound tile drawn one by one, the revision
its ≈ 2 km cells last changed at (`CompoundChanges`, migration 0006), today's date, aggregated
or not — without building it; `known_tile_key` works it out with no query from what is held in
memory (the engine's memo, geo.db.memo). Its hash is the HTTP ETag (api.routers.tiles) and the
key of a `TileCache`, a bounded LRU of built tiles owned by the app (api.app) and passed in:
an edit makes new keys for the tiles it touches, so it shows at once and stale tiles age out.
"""

import hashlib
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, replace
from datetime import date, datetime
from functools import cached_property

from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Connection, Dialect, Engine, text

from geo import TitlemapError
from geo.core.dates import today
from geo.db.distribute import is_distributed
from geo.db.memo import memo_of
from geo.db.revisions import known_version, watcher_of
from geo.query.compounds import CompoundFilter, data_version, extent, get_county
from geo.query.map_layers import (
    MAP_LAYERS,
    MAX_ZOOM,
    URGENCY,
    MapLayer,
    get_layer,
    routed_on_shards,
)

EXTENT = 4096
BUFFER = 64
POINT_BELOW_PX = 4
AGGREGATE_ABOVE = 4000
CELL_PX = 4
SIMPLIFY_BELOW_ZOOM = 14  # simplify outlines in tiles below this zoom…
SIMPLIFY_PX = 0.25  # …by this share of a screen pixel (256-px tiles)
ASYNC_WAIT = 2.0  # seconds a tile waits for an asyncio pool connection (build_tile_async)
WEB_MERCATOR_HALF = 20037508.342789244


class TileCache:
    """Recently built tiles, least recently used dropped first beyond `max_bytes`.

    Keys carry the county's data revision (`TileKey.version`), which every edit bumps, so an
    edit shows at once; a tile built anew for a place drops that place's older one, and the
    rest age out unused. `ttl` (seconds) is a backstop only.
    The newest key held for each tile's place is indexed (`last_known_tile`): while the
    database is out of reach, that tile is still served.
    """

    def __init__(self, max_bytes: int = 64 * 1024 * 1024, ttl: float | None = None):
        self.max_bytes = max_bytes
        self.ttl = ttl
        self.size = 0
        self.items: OrderedDict[Hashable, tuple[float, bytes]] = OrderedDict()
        self.lock = threading.Lock()
        self._flights: dict[Hashable, threading.Lock] = {}
        self._newest: dict[tuple, TileKey] = {}  # TileKey.place → the key last put there

    def get(self, key: Hashable) -> bytes | None:
        with self.lock:
            item = self.items.get(key)
            if item is None:
                return None
            if self.ttl is not None and time.monotonic() - item[0] > self.ttl:
                self._drop(key)
                return None
            self.items.move_to_end(key)
            return item[1]

    def put(self, key: Hashable, data: bytes) -> None:
        with self.lock:
            if key in self.items:
                self._drop(key)
            self.items[key] = (time.monotonic(), data)
            self.size += len(data) + 200  # the key and the entry cost something too
            if isinstance(key, TileKey):
                older = self._newest.get(key.place)
                if older is not None and older != key and older in self.items:
                    self._drop(older)  # superseded: never asked again, not even in an outage
                self._newest[key.place] = key
            while self.size > self.max_bytes and self.items:
                self._drop(next(iter(self.items)))

    def _drop(self, key: Hashable) -> None:
        self.size -= len(self.items.pop(key)[1]) + 200
        if isinstance(key, TileKey) and self._newest.get(key.place) == key:
            del self._newest[key.place]

    def clear(self) -> None:
        with self.lock:
            self.items.clear()
            self._newest.clear()
            self.size = 0

    def newest(self, place: tuple) -> "TileKey | None":
        """The key last put for a tile's place (`TileKey.place`), while its tile is held."""
        with self.lock:
            return self._newest.get(place)

    def __len__(self) -> int:
        return len(self.items)

    def flight(self, key: Hashable) -> threading.Lock:
        """A lock for filling the entries of `key`: requests asking at once wait for the first
        one's work (a counted zoom is one query for all its tiles)."""
        with self.lock:
            if len(self._flights) > 256:
                for old in [k for k, lock in self._flights.items() if not lock.locked()]:
                    del self._flights[old]
            return self._flights.setdefault(key, threading.Lock())


# Changes when what a tile holds changes (columns, grid, rules, rounding), so old ETags stop
# matching.
FORMAT = repr(
    (3, EXTENT, BUFFER, POINT_BELOW_PX, CELL_PX, SIMPLIFY_BELOW_ZOOM, SIMPLIFY_PX,
     [(k, v.columns) for k, v in MAP_LAYERS.items()])
)  # fmt: skip


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


@dataclass(frozen=True)
class TileKey:
    """Everything a tile depends on, known before it is built: what the tile cache and the
    HTTP ETag key on. `version` is the county's data revision (every edit bumps it), `today`
    the Beijing date (`overdue` turns at midnight), `crowded` whether it is an aggregated one."""

    layer: str
    county: str
    z: int
    x: int
    y: int
    filters: CompoundFilter
    version: tuple
    today: date
    crowded: bool

    @property
    def place(self) -> tuple:
        """The tile whatever the data's revision: layer, county, z/x/y and filter."""
        return (self.layer, self.county, self.z, self.x, self.y, self.filters)

    def etag(self) -> str:
        """A strong ETag (quoted) for this tile: a hash of the key and the tile format."""
        return self._etag

    @cached_property
    def _etag(self) -> str:  # worked out once per key: a request may ask twice
        digest = hashlib.sha256(repr((FORMAT, self)).encode()).hexdigest()[:32]
        return f'"{digest}"'


def tile_key(
    conn: Connection,
    layer: str,
    county: str,
    z: int,
    x: int,
    y: int,
    filters: CompoundFilter | None = None,
) -> TileKey:
    """The key of tile z/x/y, from small queries kept per revision: no tile is built.

    Raises TitlemapError for an unknown layer, tile or county."""
    spec = get_layer(layer)
    check_tile(z, x, y)
    version = data_version(conn, county)  # the one query when the figures below are known
    memo_of(conn.engine)(("county", county, version[0]), lambda: get_county(conn, county))
    crowded = spec.aggregate and crowded_zoom(conn, county, z, version)
    f = _tile_filter(spec, filters)
    changes = compound_changes(conn, county, version) if _by_cells(spec, f, crowded) else None
    return _key(spec, county, z, x, y, f, version, crowded, changes)


def known_tile_key(
    engine: Engine,
    layer: str,
    county: str,
    z: int,
    x: int,
    y: int,
    filters: CompoundFilter | None = None,
) -> TileKey | None:
    """tile_key without the database: None unless all it needs is in memory (the revision
    held by geo.db.revisions, the county and its figures known at that revision)."""
    spec = MAP_LAYERS.get(layer)
    version = known_version(engine, county)
    if spec is None or version is None:
        return None
    memo = memo_of(engine)
    if memo.get(("county", county, version[0])) is None:
        return None
    if not (0 <= z <= MAX_ZOOM and 0 <= x < 2**z and 0 <= y < 2**z):
        return None
    changes = memo.get(("tile changes", county, version[0]))
    crowded = False
    if spec.aggregate:
        figures = changes and memo.get(_figures_key(county, changes))
        if figures is None:
            return None
        crowded = _crowded(*figures, z)
    f = _tile_filter(spec, filters)
    if not _by_cells(spec, f, crowded):
        changes = None
    elif changes is None:
        return None
    return _key(spec, county, z, x, y, f, version, crowded, changes)


NO_FILTER = CompoundFilter()  # one instance: a frozen dataclass of 11 fields is slow to make


def _tile_filter(spec: MapLayer, filters: CompoundFilter | None) -> CompoundFilter:
    """The filter a tile of `spec` is drawn with: none for layers that take none, no bbox."""
    if filters is None or not spec.filterable:
        return NO_FILTER
    return filters if filters.bbox is None else filters.without_bbox()


def _by_cells(spec: MapLayer, f: CompoundFilter, crowded: bool) -> bool:
    """Whether the tile's revision is that of its cells (migration 0006): compound tiles
    drawn one by one and unfiltered — a filter may reach beyond the tile (a township, a
    planned area), a counted zoom is made for the whole county at once."""
    return spec.name == "compounds" and not crowded and f == NO_FILTER


def _key(
    spec: MapLayer,
    county: str,
    z: int,
    x: int,
    y: int,
    f: CompoundFilter,
    version: tuple,
    crowded: bool,
    changes: "CompoundChanges | None",
) -> TileKey:
    if changes is not None:
        version = changes.version_of(z, x, y)
    day = today() if spec.filterable else date.min
    return TileKey(spec.name, county, z, x, y, f, version, day, crowded)


CELL_ZOOM = 14  # migration 0006


@dataclass(frozen=True)
class CompoundChanges:
    """What migration 0006 records of the county's compound changes, read once per revision:
    every compound tile changed at `floor` (the last large change, at `floor_at`), the z14
    cells of `cells` since, each at its revision; `compounds` is the revision of the last
    change to the compound table itself (not its ledger): the count and extent follow it."""

    floor: int
    floor_at: datetime | None
    compounds: int
    cells: dict[tuple[int, int], int]

    def version_of(self, z: int, x: int, y: int) -> tuple:
        """The revision compound tile z/x/y (with its buffer) last changed at, as a key."""
        scale, margin = 2.0 ** (CELL_ZOOM - z), BUFFER / EXTENT
        x0, x1 = math.floor((x - margin) * scale), math.floor((x + 1 + margin) * scale)
        y0, y1 = math.floor((y - margin) * scale), math.floor((y + 1 + margin) * scale)
        found = self.floor
        if (x1 - x0 + 1) * (y1 - y0 + 1) <= 4 * len(self.cells):
            for cx in range(x0, x1 + 1):
                for cy in range(y0, y1 + 1):
                    found = max(found, self.cells.get((cx, cy), 0))
        else:  # a low zoom: fewer changed cells than cells under the tile
            for (cx, cy), revision in self.cells.items():
                if x0 <= cx <= x1 and y0 <= cy <= y1:
                    found = max(found, revision)
        return ("cells", found, self.floor_at)


def compound_changes(conn: Connection, county: str, version: tuple) -> CompoundChanges:
    """The county's CompoundChanges at data revision `version`, read once per revision."""

    def read() -> CompoundChanges:
        row = conn.execute(
            text(
                "SELECT tiles_floor, tiles_floor_at, compounds_revision FROM data_revision "
                "WHERE county_code = :c"
            ),
            {"c": county},
        ).first()
        floor, floor_at, compounds = row or (0, None, 0)
        cells = conn.execute(
            text(
                "SELECT x, y, revision FROM tile_cell_revision "
                "WHERE county_code = :c AND revision > :floor"
            ),
            {"c": county, "floor": floor},
        )
        return CompoundChanges(floor, floor_at, compounds, {(r.x, r.y): r.revision for r in cells})

    return memo_of(conn.engine)(("tile changes", county, version[0]), read)


def tile(
    conn: Connection,
    layer: str,
    county: str,
    z: int,
    x: int,
    y: int,
    filters: CompoundFilter | None = None,
    cache: TileCache | None = None,
) -> bytes:
    """The vector tile z/x/y of `layer` (one MVT layer of that name); b'' when empty. Kept in
    `cache` if given."""
    key = tile_key(conn, layer, county, z, x, y, filters)
    return build_tile(conn, TileCache(0) if cache is None else cache, key)


def build_tile(conn: Connection, cache: TileCache, key: TileKey) -> bytes:
    """The tile for `key`: from `cache`, else built (and kept there)."""
    if key.crowded:
        return _crowded_tile(conn, cache, MAP_LAYERS[key.layer], key)
    data = cache.get(key)
    if data is None:
        data = _detail_tile(conn, MAP_LAYERS[key.layer], key)
        cache.put(key, data)
    return data


def last_known_tile(
    cache: TileCache, layer: str, county: str, z: int, x: int, y: int, filters: CompoundFilter
) -> tuple[TileKey, bytes] | None:
    """The newest tile `cache` holds for this place, whatever its revision, with its key: for
    when the database cannot say which revision is current (it is out of reach, so nothing
    can change it meanwhile). None when none is held."""
    spec = MAP_LAYERS.get(layer)
    key = spec and cache.newest((layer, county, z, x, y, _tile_filter(spec, filters)))
    data = cache.get(key) if key else None
    return (key, data) if key and data is not None else None


def cached_tile(cache: TileCache, key: TileKey) -> bytes | None:
    """The tile for `key` if `cache` holds it, else None (nothing is built)."""
    data = cache.get(key)
    if data is None and key.crowded:
        counted = cache.get(_zoom_key(key))  # the tiles of the zoom that hold compounds
        if counted is not None and _tile_name(key.x, key.y) not in counted.split(b","):
            data = b""  # the zoom was counted: no compound has its centre in this tile
    return data


def _tile_name(x: int, y: int) -> bytes:
    return f"{x}:{y}".encode()


def _zoom_key(key: TileKey) -> tuple:
    return ("zoom", replace(key, x=-1, y=-1))


def _detail_tile(conn: Connection, spec: MapLayer, key: TileKey) -> bytes:
    """One feature per row in the tile (compounds below POINT_BELOW_PX as points).

    The query is made and compiled once per layer, filter and zoom and run on the driver's
    connection: SQLAlchemy parsing and compiling a text query on every tile cost twice what
    psycopg does to send it (0.5 ms of a z16 tile's 1 ms of Python)."""
    sql, params = _detail_query(conn.engine, spec, key, conn)
    cursor = conn.connection.driver_connection.execute(sql, params)
    return bytes(cursor.fetchone()[0] or b"")


async def build_tile_async(
    pool: AsyncConnectionPool, engine: Engine, cache: TileCache, key: TileKey
) -> bytes:
    """build_tile on an asyncio connection (geo.db.engine.open_async_pool) to `engine`'s
    database — for a server's event loop, no thread. Not for aggregated zooms (`key.crowded`),
    counted by build_tile."""
    data = cache.get(key)
    if data is None:
        sql, params = _detail_query(engine, MAP_LAYERS[key.layer], key)
        # not the pool's 30 s: a tile that waits 2 s for a connection goes the thread's way
        async with pool.connection(timeout=ASYNC_WAIT) as conn:
            cursor = await conn.execute(sql, params)
            row = await cursor.fetchone()
        data = bytes(row[0] or b"")
        cache.put(key, data)
    return data


def _detail_query(
    engine: Engine, spec: MapLayer, key: TileKey, conn: Connection | None = None
) -> tuple[str, dict]:
    """The tile's query, compiled once per layer, filter and zoom. On Citus the query that
    routes to one shard: known from `conn` when one is at hand; the asyncio path (no
    connection to spare, and none to open on the event loop) takes what is known, else the
    plain PostGIS query, which Citus answers too, only slower."""
    memo = memo_of(engine)
    if conn is not None:
        on_shards = memo(("on shards",), lambda: is_distributed(conn))
    else:
        watcher = watcher_of(engine)  # a served engine's listener has looked already
        on_shards = memo.get(("on shards",), bool(watcher and watcher.on_shards))
    sql, params = memo(
        ("tile sql", key.county, spec.name, key.filters, key.z, key.today, on_shards),
        lambda: _detail_sql(engine.dialect, spec, key, on_shards),
    )
    return sql, params | {"x": key.x, "y": key.y}


def _detail_sql(
    dialect: Dialect, spec: MapLayer, key: TileKey, on_shards: bool = False
) -> tuple[str, dict]:
    """The tile query of `_detail_tile` compiled for the driver (%(name)s), and its values
    but x and y.

    One flat query, the shape of the plain ST_AsMVT(ST_AsMVTGeom(ST_Transform(…))) one, in
    which each geometry is transformed and clipped once: whether a compound is drawn as a
    point is decided on the box stored with its EPSG:4490 geometry."""
    z = key.z
    source, params = spec.source(key.county, key.filters, _tile_box(BUFFER / EXTENT))
    pixel = 2 * WEB_MERCATOR_HALF / (256 * 2**z)  # metres of Web Mercator per screen pixel
    geom = _merc("s.geom")
    if spec.small_as_points:
        # the box in Web Mercator units: degrees of longitude scale evenly, of latitude by
        # 1 / cos(latitude); measured here in degrees of longitude
        degree_px = 360 / (256 * 2**z)
        geom = _merc(
            "CASE WHEN greatest(ST_XMax(s.geom) - ST_XMin(s.geom), (ST_YMax(s.geom) - "
            "ST_YMin(s.geom)) / cos(radians(ST_YMin(s.geom)))) "
            f"< {POINT_BELOW_PX * degree_px} THEN ST_Centroid(s.geom) ELSE s.geom END"
        )
    elif spec.geometry != "point" and z < SIMPLIFY_BELOW_ZOOM:
        # Long outlines (townships, the county, rivers) at low zooms: drop vertices closer
        # than a quarter pixel before the snap to the tile grid (which alone keeps them all).
        # Compounds gain nothing from it (a few vertices each, and points when small).
        geom = f"ST_Simplify({geom}, {pixel * SIMPLIFY_PX}, true)"
    columns = ", ".join(f"s.{c}" for c in spec.columns)
    # OFFSET 0 keeps `t.geom IS NOT NULL` from being pushed into the scan, where PostgreSQL
    # would run ST_AsMVTGeom twice per row: half the time of a z13–z14 compound tile.
    sql = f"""
        SELECT ST_AsMVT(t, CAST(:layer AS text), {EXTENT}, 'geom') FROM (
            SELECT {columns},
                   ST_AsMVTGeom({geom}, ST_TileEnvelope(:z, :x, :y), {EXTENT}, {BUFFER}, true)
                       AS geom
            FROM ({source}) s
            OFFSET 0
        ) t WHERE t.geom IS NOT NULL
    """
    if on_shards:  # Citus: the query that routes to the county's shard
        sql = routed_on_shards(sql)
    compiled = text(sql).compile(dialect=dialect)
    return str(compiled), params | {"z": z, "layer": spec.name}


def crowded_zoom(conn: Connection, county: str, z: int, version: tuple | None = None) -> bool:
    """Whether compounds are counted per cell at zoom `z`: a tile there would hold more than
    AGGREGATE_ABOVE of them on average over the compounds' extent. Decided per zoom, so a
    view is drawn one way throughout. `version`: the data revision, if already read."""
    changes = compound_changes(conn, county, version or data_version(conn, county))
    figures = memo_of(conn.engine)(_figures_key(county, changes), lambda: _figures(conn, county))
    return _crowded(*figures, z)


def _figures_key(county: str, changes: CompoundChanges) -> tuple:
    # a ledger edit leaves them: reading 100 000 outlines again takes a quarter of a second
    return ("tile figures", county, changes.compounds)


def _figures(conn: Connection, county: str) -> tuple[int, list[float] | None]:
    """(how many compounds, [minx, miny, maxx, maxy] of them) in the county."""
    row = conn.execute(
        text(
            "SELECT n, ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM (SELECT count(*) AS n, "
            "ST_Extent(geom) AS b FROM compound WHERE county_code = :c) s"
        ),
        {"c": county},
    ).one()
    return row[0], (list(row[1:]) if row[1] is not None else None)


def _crowded(count: int, box: list[float] | None, z: int) -> bool:
    if not box or count <= AGGREGATE_ABOVE:
        return False
    minx, miny, maxx, maxy = box
    side = 360 / 2**z  # a tile's width in degrees of longitude
    lat = math.radians((miny + maxy) / 2)
    height = side * math.cos(lat)  # its height in degrees of latitude there
    share = min(1.0, side / max(maxx - minx, 1e-9)) * min(1.0, height / max(maxy - miny, 1e-9))
    return count * share > AGGREGATE_ABOVE


def _crowded_tile(conn: Connection, cache: TileCache, spec: MapLayer, key: TileKey) -> bytes:
    """The aggregated tile of `key`: from the cache, else counted with every tile of its zoom.

    Counting the whole county in one query costs what one tile does when each reads the
    table and the ledger again, so the first crowded tile of a zoom computes them all (the
    others asking meanwhile wait for it) and the rest of the view comes from the cache.
    """
    data = cached_tile(cache, key)
    if data is not None:
        return data
    zoom_key = _zoom_key(key)
    with cache.flight(zoom_key):
        data = cached_tile(cache, key)
        if data is None:
            tiles = _aggregated_zoom(conn, spec, key.county, key.filters, key.z)
            for (tx, ty), mvt in tiles.items():
                cache.put(replace(key, x=tx, y=ty), mvt)
            # Which tiles hold compounds, not just "counted": a full cache may drop a tile
            # while the marker, asked on every miss, stays; that tile is then counted again.
            cache.put(zoom_key, b",".join(_tile_name(tx, ty) for (tx, ty), mvt in tiles.items()
                                          if mvt))  # fmt: skip
            data = tiles.get((key.x, key.y), b"")
    return data


def warm(
    engine: Engine, cache: TileCache, county: str, z: int, filters: CompoundFilter | None = None
) -> bool:
    """Count the compounds of the crowded zoom `z` in the background (a page about to show it
    was just asked for), so its tiles come from `cache`."""

    def work() -> None:
        try:
            with engine.connect() as conn:
                box = extent(conn, county)
                x, y = tile_of((box[0] + box[2]) / 2, (box[1] + box[3]) / 2, z)
                build_tile(conn, cache, tile_key(conn, "compounds", county, z, x, y, filters))
        except Exception:  # a warm-up only: the tile request will report any real error
            pass

    threading.Thread(target=work, name=f"titlemap-warm-{county}-{z}", daemon=True).start()
    return True


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


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The z/x/y tile holding a lon/lat (Web Mercator, as web maps number them)."""
    n = 2**z
    x = int((lon + 180) / 360 * n)
    lat_r = math.radians(lat)
    y = int((1 - math.log(math.tan(lat_r) + 1 / math.cos(lat_r)) / math.pi) / 2 * n)
    return x, y
