"""Where compounds meet planned areas: each compound × planned-area intersection, in PostGIS.

A compound overlaps a planned area when their interiors meet — the intersection has an area;
sharing an edge is not an overlap. The intersection is taken and measured in the county's
CGCS2000 Gauss-Krüger zone (geo.core.crs; EPSG:4544 for the demo county), the planned areas' long
edges densified first (DENSIFY_DEG): `overlap_m2` is its planar area, `compound_m2` the
compound's, `percent` = overlap ÷ compound × 100. The same rows come as a list
(`overlap_rows`), as GeoJSON pieces for the map (`overlaps_geojson`, the intersections back
in EPSG:4490) and as a spreadsheet with Chinese headers (`write_xlsx`).

The OGC `overlaps` collection pages through all of a county's pieces, which on 100 000
compounds take 10–25 s to compute: `refresh_pieces` keeps them in the UNLOGGED table
`overlap_piece` (migration 0005), rewritten only when the county's data revision moved on.

Compounds are chosen with geo.query.compounds' `CompoundFilter` (status, blocker, …, as-of date), so
"stalled compounds inside 城东片区" is one call.
"""

from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Connection, text

from geo import TitlemapError
from geo.core.dates import today
from geo.core.sheets import cell
from geo.query.compounds import (
    PLANNED_KIND_VALUES,
    STATUS_SQL,
    BBox,
    CompoundFilter,
    data_version,
    filter_sql,
    get_county,
    parse_words,
    status_labels_sql,
)
from geo.query.map_layers import kind_label_sql

MAX_PIECES = 20_000
# A planned area's edges are straight in lon/lat (EPSG:4490, as stored); a road 30 km long
# bends by metres in the Gauss-Krüger plane, so its edges are cut into ≤ 0.0005° (≈ 50 m)
# pieces before projecting. Compounds are small enough (≤ a few hundred metres) not to need it.
DENSIFY_DEG = 0.0005

# (key, Chinese header, column width) in sheet order.
COLUMNS = (
    ("compound_code", "小区编号", 16),
    ("compound_name", "小区名称", 22),
    ("township", "所在乡镇（街道）", 14),
    ("status_label", "化解状态", 11),
    ("planned_code", "规划片区编号", 13),
    ("planned_name", "规划片区名称", 26),
    ("kind_label", "规划类型", 18),
    ("overlap_m2", "重叠面积（平方米）", 16),
    ("compound_m2", "小区面积（平方米）", 16),
    ("percent", "占小区面积比例（%）", 18),
)


def _sql(
    county: str,
    epsg: int,
    kinds: tuple[str, ...],
    f: CompoundFilter,
    geometry: bool,
    stored: bool = False,
) -> tuple[str, dict]:
    """The overlaps query; `geometry` adds the piece as GeoJSON (`geometry`), `stored` the
    piece itself in EPSG:4490 (`geom`) and the feature id `<compound>~<planned>` (`id`)."""
    source, where, params = filter_sql(county, f, local=f.bbox is not None)
    kind_clause = "AND p.kind = ANY(CAST(:kinds AS text[]))" if kinds else ""
    if kinds:
        params["kinds"] = list(kinds)
    piece = ", ST_AsGeoJSON(ST_Transform(o.gk, 4490), 7, 0)::json AS geometry" if geometry else ""
    if stored:
        piece += ", o.code || '~' || o.planned_code AS id, ST_Transform(o.gk, 4490) AS geom"
    sql = f"""
        WITH pa AS MATERIALIZED (
            SELECT p.id, p.code, p.name, p.kind, p.geom,
                   ST_Transform(ST_Segmentize(p.geom, {DENSIFY_DEG}), {epsg}) AS gk
            FROM planned_area p WHERE p.county_code = :county {kind_clause}
        ), cs AS (
            SELECT c.id, c.code, c.name, c.township_id, c.geom, {STATUS_SQL} AS status,
                   {status_labels_sql("x.status")} AS status_label
            {source} WHERE {where}
        ), pairs AS (
            SELECT cs.*, pa.code AS planned_code, pa.name AS planned_name, pa.kind,
                   ST_Transform(cs.geom, {epsg}) AS cgk, pa.gk AS pgk,
                   ST_Covers(pa.geom, cs.geom) AS inside
            FROM cs JOIN pa ON pa.geom && cs.geom AND ST_Intersects(pa.geom, cs.geom)
        ), o AS (
            SELECT pairs.*, CASE WHEN inside THEN cgk
                                 ELSE ST_CollectionExtract(ST_Intersection(cgk, pgk), 3) END
                   AS gk
            FROM pairs
        )
        SELECT o.code AS compound_code, o.name AS compound_name, t.name AS township,
               o.status, o.status_label, o.planned_code, o.planned_name, o.kind,
               {kind_label_sql("o.kind")} AS kind_label,
               round(ST_Area(o.gk)::numeric, 2)::float8 AS overlap_m2,
               round(ST_Area(o.cgk)::numeric, 2)::float8 AS compound_m2,
               round((100 * ST_Area(o.gk) / nullif(ST_Area(o.cgk), 0))::numeric, 2)::float8
                   AS percent
               {piece}
        FROM o LEFT JOIN township t ON t.id = o.township_id
        WHERE ST_Area(o.gk) > 0
        ORDER BY o.code, o.planned_code
    """
    return sql, params


def overlap_rows(
    conn: Connection,
    county: str,
    kinds=None,
    filters: CompoundFilter | None = None,
    geometry: bool = False,
) -> list[dict[str, Any]]:
    """One row per compound × planned area whose interiors meet, by compound code."""
    info = get_county(conn, county)
    kinds = parse_words(kinds, PLANNED_KIND_VALUES, "规划类型", "planned kind")
    sql, params = _sql(county, info.epsg, kinds, filters or CompoundFilter(), geometry)
    return [dict(row) for row in conn.execute(text(sql), params).mappings()]


# The columns of overlap_piece (migration 0005) besides county_code: what _sql yields, stored.
PIECE_COLUMNS = ("id", "compound_code", "compound_name", "township", "status", "status_label",
                 "planned_code", "planned_name", "kind", "kind_label", "overlap_m2",
                 "compound_m2", "percent", "geom")  # fmt: skip


def pieces_revision(conn: Connection, county: str) -> tuple:
    """(revision, changed_at) the county's stored pieces were computed at; (None, None) when
    there are none (never computed, or emptied by a crash: the tables are UNLOGGED)."""
    row = conn.execute(
        text("SELECT revision, changed_at FROM overlap_piece_revision WHERE county_code = :c"),
        {"c": county},
    ).first()
    return (row.revision, row.changed_at) if row else (None, None)


def refresh_pieces(conn: Connection, county: str) -> bool:
    """Bring the county's rows of `overlap_piece` up to its data revision; True when it
    computed them. Reading the revisions is all it costs while they are current.

    The rewrite runs in its own transaction (its own connection from `conn`'s engine): the
    caller's may be autocommit, read-only, or rolled back at the end of a request. An
    advisory lock on the county makes a second worker wait for the first and then find the
    rows current. Uncommitted edits in the caller's transaction are not seen by it."""
    if pieces_revision(conn, county) == data_version(conn, county):
        return False
    with conn.engine.begin() as own:
        own.execute(
            text("SELECT pg_advisory_xact_lock(hashtext('overlap_piece'), hashtext(:c))"),
            {"c": county},
        )
        # Read under the lock and before computing: rows from newer data recorded at an
        # older revision are only computed again, never the reverse.
        version = data_version(own, county)
        if pieces_revision(own, county) == version:
            return False
        _write_pieces(own, county, version)
    return True


def _write_pieces(conn: Connection, county: str, version: tuple) -> None:
    sql, params = _sql(county, get_county(conn, county).epsg, (), CompoundFilter(), False, True)
    columns = ", ".join(PIECE_COLUMNS)
    conn.execute(text("DELETE FROM overlap_piece WHERE county_code = :county"), params)
    conn.execute(
        text(f"""INSERT INTO overlap_piece (county_code, {columns})
                 SELECT :county, {columns} FROM ({sql}) o"""),
        params,
    )
    conn.execute(
        text("""
            INSERT INTO overlap_piece_revision (county_code, revision, changed_at, computed_at)
            VALUES (:county, :revision, :changed_at, now())
            ON CONFLICT (county_code) DO UPDATE SET revision = excluded.revision,
                changed_at = excluded.changed_at, computed_at = excluded.computed_at
        """),
        {"county": county, "revision": version[0], "changed_at": version[1]},
    )


def pieces_source(county: str) -> tuple[str, dict]:
    """SQL reading the county's stored pieces (call `refresh_pieces` first)."""
    columns = ", ".join(PIECE_COLUMNS)
    return f"SELECT {columns} FROM overlap_piece WHERE county_code = :county", {"county": county}


def overlaps_geojson(
    conn: Connection,
    county: str,
    kinds=None,
    filters: CompoundFilter | None = None,
    bbox: BBox | None = None,
    limit: int = MAX_PIECES,
    geometry: bool = True,
) -> dict:
    """The intersections as a FeatureCollection (EPSG:4490), with the rows as properties."""
    if not 1 <= limit <= MAX_PIECES:
        raise TitlemapError(f"limit 应在 1 到 {MAX_PIECES} 之间 / limit must be 1..{MAX_PIECES}")
    f = filters or CompoundFilter()
    if bbox is not None:
        f = replace(f, bbox=bbox)
    info = get_county(conn, county)
    rows = overlap_rows(conn, county, kinds, f, geometry)
    features = [
        {
            "type": "Feature",
            "geometry": row.pop("geometry", None),
            "properties": row,
        }
        for row in rows[:limit]
    ]
    return {
        "type": "FeatureCollection",
        "county": county,
        "gk_epsg": info.epsg,
        "as_of": f.as_of.isoformat() if f.as_of else None,
        "numberMatched": len(rows),
        "numberReturned": len(features),
        "features": features,
    }


def write_xlsx(
    rows: list[dict[str, Any]],
    path: Path | BinaryIO,
    county_name: str,
    epsg: int,
    as_of: date | None = None,
    note: str | None = None,
) -> Path | BinaryIO:
    """The rows as a spreadsheet (to a path or a binary file): title, how areas were
    measured, Chinese headers, one row per overlap, 合计."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    sheet = book.active
    sheet.title = "小区与规划片区重叠"
    width = len(COLUMNS)
    sheet.append([f"{county_name}小区与规划片区重叠面积表"])
    sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=width)
    sheet["A1"].font = Font(bold=True, size=14)
    sheet["A1"].alignment = Alignment(horizontal="center")
    day = as_of or today()
    basis = (
        f"面积在 CGCS2000 3 度带高斯-克吕格投影（EPSG:{epsg}）下计算；比例 = 重叠面积 ÷ "
        f"小区面积；统计日期 {day.year}年{day.month}月{day.day}日"
    )
    sheet.append([basis + (f"；{note}" if note else "")])
    sheet.merge_cells(start_row=2, start_column=1, end_row=2, end_column=width)
    sheet.append([header for _, header, _ in COLUMNS])
    for head in sheet[3]:
        head.font = Font(bold=True)
        head.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    for row in rows:
        sheet.append([cell(sheet, row.get(key)) for key, _, _ in COLUMNS])
    total = sum(row["overlap_m2"] or 0 for row in rows)
    sheet.append(["合计", f"{len({r['compound_code'] for r in rows})} 个小区", None, None, None,
                  f"{len(rows)} 处重叠", None, round(total, 2)])  # fmt: skip
    for total_cell in sheet[sheet.max_row]:
        total_cell.font = Font(bold=True)
    for index, (key, _, chars) in enumerate(COLUMNS, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = chars
        if key.endswith("m2") or key == "percent":
            for (number,) in sheet.iter_rows(min_row=4, min_col=index, max_col=index):
                number.number_format = "0.00"
    sheet.freeze_panes = "A4"
    book.save(path)
    return path
