"""Import a file of outlines (or complaint points) into one layer of a county, all or nothing.

`import_file(engine, path, county, layer)` reads the file (`geo.io.layers`), moves it to
EPSG:4490, checks every feature — a geometry that can be repaired is repaired with
`make_valid` and reported; one that is empty, not of the layer's kind, outside the county
(its boundary buffered by `COUNTY_MARGIN_M`, measured in the county's Gauss-Krüger zone), or
whose code is missing, repeated in the file or refers to something unknown is refused with its
id — and upserts by (county_code, code): a corrected file re-imported updates rows in place.
Cells become values by `geo.io.attributes` (dates by `geo.core.dates.parse_date`, parcel codes
by `geo.core.codes`, planned-area kinds by the county's vocabulary, the original word kept),
broken geometries are named in `geo.core.geometry`'s words, the columns written are the
model's: the same rules as the ledger sheet and the parcel checks. The county's own files come
in as they are: developers a compound file names are matched or created (`geo.io.developers`),
planned areas without codes are known by their names, a survey's plots without 宗地代码 by
their project and number (flagged by the parcel checks until they get one).

Everything happens in one transaction, new developers included: with any feature refused
nothing is written (unless `partial`, which writes the good ones and the developers they
name); an import killed half-way leaves nothing behind. Rows travel by COPY into a temporary
table and one INSERT … ON CONFLICT DO UPDATE, so 100 000 features take seconds. Blank cells
never erase what the database holds; the boundary layer replaces the county's outline with the
union of the file's polygons.

A polygon layer whose features sit in a GCJ-02 offset from the county's own compounds and
parcels (traced on Gaode/Tencent maps) gets a warning in the report suggesting `gcj02`.
"""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psycopg
import shapely
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from geo import TitlemapError
from geo.core.crs import measuring_epsg, reproject, to_projected, zone_of_epsg
from geo.core.geometry import validity_words
from geo.core.vocabulary import Vocabulary, load_vocabulary
from geo.io.archive import Limits
from geo.io.attributes import (
    TARGETS,
    Attributes,
    FeatureRows,
    Target,
    check_required,
    read_attributes,
    read_codes,
)
from geo.io.datums import check_convention, gcj_offset
from geo.io.developers import NewDeveloper
from geo.io.import_report import ImportReport
from geo.io.layers import (
    POINT_LAYERS,
    check_layer,
    read_layer,
)
from geo.io.load import copy_by_columns, ewkb
from geo.io.registry import ImportOptions

__all__ = ["ImportReport", "import_file", "import_options", "import_transaction"]

COUNTY_MARGIN_M = 500.0
COPY_STEP = 2000  # progress is reported every this many rows while writing

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total): stage is words to show ("写入 / writing"); total 0 = unknown."""


# -- the county --------------------------------------------------------------------------------


@dataclass
class Place:
    code: str
    name: str
    epsg: int | None  # the county's measuring GK zone
    boundary: shapely.Geometry | None  # EPSG:4490


def county_place(conn: Connection, county: str) -> Place:
    row = conn.execute(
        text(
            "SELECT code, name, gk_epsg, ST_AsBinary(geom) AS wkb, "
            "ST_X(ST_Centroid(geom)) AS lon FROM county WHERE code = :c"
        ),
        {"c": county},
    ).first()
    if row is None:
        raise TitlemapError(f"没有这个县 / no such county: {county}（先载入县 / load it first）")
    epsg = measuring_epsg(row.lon, row.gk_epsg) if row.lon is not None or row.gk_epsg else None
    boundary = shapely.from_wkb(bytes(row.wkb)) if row.wkb is not None else None
    return Place(row.code, row.name, epsg, boundary)


# -- geometry checks -----------------------------------------------------------------------------


def _polygonal(geom) -> shapely.Geometry | None:
    parts = shapely.get_parts(geom)
    polygons = [p for p in parts if p.geom_type == "Polygon" and not p.is_empty]
    polygons += [q for p in parts if p.geom_type == "MultiPolygon" for q in p.geoms]
    polygons += [
        q for p in parts if p.geom_type == "GeometryCollection" for q in shapely.get_parts(p)
        if q.geom_type == "Polygon"
    ]  # fmt: skip
    if not polygons:
        return None
    combined = shapely.MultiPolygon(polygons)
    if not combined.is_valid:  # parts that touch or overlap: dissolve them
        combined = shapely.union_all(polygons)
        if combined.geom_type == "Polygon":
            combined = shapely.MultiPolygon([combined])
    return combined


def _check_geometries(geoms: np.ndarray, layer: str, rows: FeatureRows) -> np.ndarray:
    geoms = np.array(geoms, dtype=object)
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    for i in np.flatnonzero(missing):
        rows.refuse(i, "没有图形或坐标 / no geometry")
    present = np.flatnonzero(~missing)
    coords, index = shapely.get_coordinates(geoms[present], return_index=True)
    bad = np.unique(present[index[~np.isfinite(coords).all(axis=1)]])
    for i in bad:
        rows.refuse(i, "坐标无法换算 / coordinates cannot be transformed")
    present = np.setdiff1d(present, bad)
    kinds = shapely.get_type_id(geoms)
    if layer in POINT_LAYERS:
        for i in present[kinds[present] != 0]:  # only what is not a point already
            if kinds[i] == 4 and shapely.get_num_geometries(geoms[i]) == 1:
                geoms[i] = shapely.get_geometry(geoms[i], 0)
            else:
                rows.refuse(i, f"不是点 / not a point ({geoms[i].geom_type})")
        return geoms
    for i in present[~np.isin(kinds[present], (3, 6))]:  # only what is not a polygon already
        if kinds[i] == 7:
            geoms[i] = _polygonal(geoms[i])
            if geoms[i] is None:
                rows.refuse(i, "图形集合中没有面 / no polygon in the collection")
        else:
            rows.refuse(i, f"不是面 / not a polygon ({geoms[i].geom_type})")
    candidates = _unrefused(present, rows)
    if len(candidates):
        invalid = candidates[~shapely.is_valid(geoms[candidates])]
        for i in invalid:
            reason = shapely.is_valid_reason(geoms[i])
            fixed = _polygonal(shapely.make_valid(geoms[i]))
            if fixed is None or fixed.is_empty or not fixed.is_valid:
                rows.refuse(i, f"{validity_words(reason)}，图形无效且无法修复 / cannot repair")
            else:
                geoms[i] = fixed
                rows.repairs[int(i)] = f"{validity_words(reason)}，已用 make_valid 修复 / repaired"
    return geoms


def _unrefused(positions: np.ndarray, rows: FeatureRows) -> np.ndarray:
    """The `positions` not refused so far, in order."""
    refused = np.fromiter(rows.why, dtype=int, count=len(rows.why))
    return positions[~np.isin(positions, refused)]


def _inside_county(geoms: np.ndarray, place: Place, rows: FeatureRows, notes: list[str]) -> None:
    if place.boundary is None or place.epsg is None:
        notes.append(
            "本县尚无边界，未检查要素是否在县内 / the county has no boundary yet: extent not "
            "checked (import the boundary layer first)"
        )
        return
    checked = _unrefused(np.arange(len(geoms)), rows)
    if not len(checked):
        return
    outline_gk = to_projected(place.boundary, place.epsg)
    zone = reproject(outline_gk.buffer(COUNTY_MARGIN_M), place.epsg, 4490)
    shapely.prepare(zone)  # GEOS uses a prepared geometry as the predicate's first argument
    inside = shapely.covers(zone, geoms[checked])
    outside = checked[~inside]
    for i in outside:
        if shapely.intersects(geoms[i], zone):
            rows.refuse(i, "部分超出本县范围 / partly outside the county")
        else:
            km = to_projected(geoms[i], place.epsg).distance(outline_gk) / 1000
            if not np.isfinite(km):
                rows.refuse(i, "超出本县范围 / outside the county")
                continue
            rows.refuse(
                i,
                f"超出本县范围，距县界约 {km:.1f} km / outside the county, about {km:.1f} km away",
            )
    if len(outside) == len(checked):
        notes.append(
            "全部要素都在本县范围之外：坐标系可能不对，或文件不属于本县 / every feature lies "
            "outside the county: the CRS may be wrong, or the file is another county's"
        )


# -- writing --------------------------------------------------------------------------------------


def _take(values: list, positions: np.ndarray) -> list:
    """The `positions` of `values` (all of them, as they are, when nothing was refused)."""
    if len(positions) == len(values):
        return values
    return [values[i] for i in positions]


def _upsert(conn: Connection, target: Target, county: str, keep, codes, values, geoms, progress):
    cols = target.columns
    # an earlier import in the caller's transaction (onboarding) left its own behind
    conn.execute(text("DROP TABLE IF EXISTS pg_temp.import_rows"))
    conn.execute(
        text(
            f"CREATE TEMP TABLE import_rows ON COMMIT DROP AS "
            f"SELECT code, {', '.join(cols)}, geom FROM {target.table} WITH NO DATA"
        )
    )
    positions = np.flatnonzero(keep)
    chosen_geoms = geoms[positions]
    single = shapely.get_type_id(chosen_geoms) == 3
    if single.any():  # one vectorised call instead of one MultiPolygon per row in ewkb()
        chosen_geoms[single] = shapely.multipolygons(
            chosen_geoms[single], indices=np.arange(int(single.sum()))
        )
    # a column at a time: one COPY text per column, not one Python call per cell
    columns = {"code": _take(codes, positions)}
    columns |= {c: _take(values[c], positions) for c in cols}
    columns["geom"] = ewkb(chosen_geoms)

    def writing(done: int, total: int) -> None:
        progress("写入 / writing", done, total)

    copy_by_columns(conn, "import_rows", columns, safe=("geom",), step=COPY_STEP, progress=writing)
    progress("更新 / upserting", len(positions), len(positions))
    defaults = dict(target.defaults)
    chosen = ", ".join(
        f"COALESCE(i.{c}, e.{c}, {defaults[c]})" if c in defaults else f"COALESCE(i.{c}, e.{c})"
        for c in cols
    )
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in (*cols, "geom"))
    old = ", ".join(f"t.{c}" for c in (*cols, "geom"))
    new = ", ".join(f"EXCLUDED.{c}" for c in (*cols, "geom"))
    # the codes come back as two arrays in one row: 100 000 result rows cost 0.3 s to fetch
    added, updated = conn.execute(
        text(
            f"WITH written AS ("
            f"INSERT INTO {target.table} AS t (county_code, code, {', '.join(cols)}, geom) "
            f"SELECT :c, i.code, {chosen}, i.geom FROM import_rows i "
            f"LEFT JOIN {target.table} e ON e.county_code = :c AND e.code = i.code "
            f"ON CONFLICT (county_code, code) DO UPDATE SET {sets} "
            f"WHERE ({old}) IS DISTINCT FROM ({new}) "
            "RETURNING t.code, (t.xmax = 0) AS added) "
            "SELECT array_agg(code) FILTER (WHERE added), array_agg(code) FILTER (WHERE NOT added) "
            "FROM written"
        ),
        {"c": county},
    ).one()
    return dict.fromkeys(added or (), True) | dict.fromkeys(updated or (), False), len(positions)


def _write_layer(conn: Connection, target: Target, county: str, keep: np.ndarray, rows: FeatureRows,
                 found: Attributes, geoms, report: ImportReport, progress) -> None:  # fmt: skip
    """The kept features upserted (their new developers first), parcels linked; the counts."""
    values = found.values
    if found.developers is not None:
        chosen = values["developer_id"]
        report.new_developers = found.developers.write(
            conn, county, [chosen[i] for i in np.flatnonzero(keep)]
        )
        values["developer_id"] = [d.id if isinstance(d, NewDeveloper) else d for d in chosen]
    changed, written = _upsert(conn, target, county, keep, rows.codes, values, geoms, progress)
    links = {i: ids for i, ids in found.links.items() if keep[i]}
    moved = _link(conn, county, links, rows.codes)
    report.added = sum(1 for added in changed.values() if added)
    report.updated = len(changed) - report.added + len(moved - set(changed))
    report.unchanged = written - report.added - report.updated


def _link(conn: Connection, county: str, links: dict[int, list[int]], codes) -> set[str]:
    """Set each listed parcel's compounds to those in the file; the parcels whose links moved."""
    if not links:
        return set()
    conn.execute(text("DROP TABLE IF EXISTS pg_temp.import_links"))
    conn.execute(text("CREATE TEMP TABLE import_links (code text, compound_id int) ON COMMIT DROP"))
    pairs = [(codes[i], cid) for i, ids in links.items() for cid in ids]
    copy_by_columns(conn, "import_links", {"code": [code for code, _ in pairs],
                                           "compound_id": [cid for _, cid in pairs]})  # fmt: skip
    params = {"c": county}
    # each statement's parcel codes come back as one array, not one result row per link
    removed = conn.execute(
        text(
            "WITH gone AS (DELETE FROM compound_parcel cp USING parcel p "
            "WHERE cp.parcel_id = p.id AND p.county_code = :c "
            "AND p.code IN (SELECT code FROM import_links) AND NOT EXISTS ("
            "  SELECT 1 FROM import_links l "
            "  WHERE l.code = p.code AND l.compound_id = cp.compound_id"
            ") RETURNING p.code) "
            "SELECT array_agg(code) FROM gone"
        ),
        params,
    ).scalar()
    added = conn.execute(
        text(
            "WITH made AS (INSERT INTO compound_parcel (compound_id, parcel_id, county_code) "
            "SELECT l.compound_id, p.id, :c FROM import_links l "
            "JOIN parcel p ON p.county_code = :c AND p.code = l.code "
            "ON CONFLICT DO NOTHING RETURNING parcel_id) "
            "SELECT array_agg(p.code) FROM made JOIN parcel p ON p.id = made.parcel_id"
        ),
        params,
    ).scalar()
    return set(removed or ()) | set(added or ())


def _write_boundary(conn: Connection, place: Place, geoms, keep, report: ImportReport) -> None:
    union = shapely.union_all(geoms[keep])
    outline = _polygonal(union)
    if outline is None:
        report.refused.append(("县界 / boundary", "合并后没有面 / no polygon after the union"))
        return
    if place.boundary is not None and not outline.intersects(place.boundary):
        report.refused.append(
            ("县界 / boundary", "新县界与原县界不相交：坐标系或县代码可能不对 / the new "
             "boundary does not overlap the current one: check the CRS or the county code")
        )  # fmt: skip
        return
    changed = conn.execute(
        text(
            "UPDATE county SET geom = CAST(:g AS geometry) WHERE code = :c "
            "AND geom IS DISTINCT FROM CAST(:g AS geometry) RETURNING code"
        ),
        {"g": ewkb([outline])[0], "c": place.code},
    ).first()
    if changed is None:
        report.unchanged = 1
    elif place.boundary is None:
        report.added = 1
    else:
        report.updated = 1
    if int(keep.sum()) > 1:
        report.notes.append(f"{int(keep.sum())} 个面合并为县界 / features unioned into one outline")


# -- the import --------------------------------------------------------------------------------


def _quiet(stage: str, done: int, total: int) -> None:
    pass


TRUSTS = ("header", "coordinates")
OFFSET_LAYERS = frozenset({"compounds", "parcels", "planned"})


def import_options(
    place: Place,
    trust: str | None = None,
    gcj02: bool = False,
    parameters: str | None = None,
    datum_parameters: str | None = None,
    helmert_convention: str = "position_vector",
) -> ImportOptions:
    """The caller's choices plus the county's: its seven parameters and their convention (the
    settings TITLEMAP_DATUM_PARAMETERS, TITLEMAP_HELMERT_CONVENTION, passed in by the CLI and
    the API), its place on the map."""
    trust = (trust or "").strip().lower() or None
    if trust is not None and trust not in TRUSTS:
        raise TitlemapError(
            f"trust 应为 header（按文件头）或 coordinates（按坐标）：收到 {trust!r} / trust must "
            "be header or coordinates"
        )
    bounds = tuple(place.boundary.bounds) if place.boundary is not None else None
    lon = (bounds[0] + bounds[2]) / 2 if bounds else None
    if lon is None and place.epsg is not None:
        lon = zone_of_epsg(place.epsg)[0] * 3.0
    return ImportOptions(
        trust=trust, gcj02=gcj02, parameters=(parameters or "").strip() or None,
        county_parameters=(datum_parameters or "").strip() or None,
        convention=check_convention(helmert_convention),
        county_lon=lon, county_bounds=bounds,
    )  # fmt: skip


def _offset_warning(conn: Connection, county: str, place: Place, geoms, report) -> None:
    """Warn when the file sits in a GCJ-02 offset from the county's own polygons."""
    present = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    if not len(present) or place.epsg is None:
        return
    minx, miny, maxx, maxy = shapely.total_bounds(present)
    reference = conn.execute(
        text(
            "SELECT ST_AsBinary(geom) FROM compound WHERE county_code = :c AND geom && "
            "ST_Expand(ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4490), 0.02) UNION ALL "
            "SELECT ST_AsBinary(geom) FROM parcel WHERE county_code = :c AND geom && "
            "ST_Expand(ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4490), 0.02) LIMIT 20000"
        ),
        {"c": county, "x0": minx, "y0": miny, "x1": maxx, "y1": maxy},
    ).scalars()
    found = gcj_offset(present, shapely.from_wkb([bytes(r) for r in reference]), place.epsg)
    if found is not None:
        report.warnings.append(found.warning())


@contextmanager
def import_transaction(
    engine: Engine, conn: Connection | None
) -> Iterator[tuple[Connection, object]]:
    """The import's own transaction, or a savepoint in the caller's `conn`: rolled back alone
    when the import writes nothing, released when it writes (the caller commits or not)."""
    if conn is not None:
        with conn.begin_nested() as savepoint:
            yield conn, savepoint
        return
    with engine.connect() as own, own.begin() as tx:
        yield own, tx


def import_file(
    engine: Engine,
    path: str | Path,
    county: str,
    layer: str,
    partial: bool = False,
    crs: str | int | None = None,
    progress: Progress | None = None,
    *,
    source: str | None = None,
    limits: Limits | None = None,
    source_layer: str | None = None,
    trust: str | None = None,
    gcj02: bool = False,
    parameters: str | None = None,
    datum_parameters: str | None = None,
    helmert_convention: str = "position_vector",
    vocabulary: Vocabulary | None = None,
    conn: Connection | None = None,
) -> ImportReport:
    """Import `path` into `layer` of `county`; see the module's docstring.

    `trust` ("header" | "coordinates") settles a coordinate file whose header and coordinates
    disagree; `gcj02` corrects lon/lat traced on Gaode/Tencent maps; `parameters` are the
    seven Xi'an 1980 / Beijing 1954 → CGCS2000 parameters (else the file's, else the county's
    `datum_parameters`, the setting TITLEMAP_DATUM_PARAMETERS); `helmert_convention` says how
    their rotations turn (the setting TITLEMAP_HELMERT_CONVENTION); `vocabulary` maps the
    county's words for planned-area kinds (default: the shipped one; the CLI and the API pass
    the county's own, TITLEMAP_VOCABULARY).

    Raises TitlemapError when the file as a whole cannot be used (unreadable, unsafe zip,
    CRS that cannot be told, swapped axes, no code column); problems of single features go
    into the report. `source` names the file in the report (an upload's own name).

    With `conn`, the import runs in a savepoint of the caller's transaction (onboarding a
    folder in one go): `committed` then means written into it; the caller commits."""
    started = time.monotonic()
    progress = progress or _quiet
    vocabulary = vocabulary or load_vocabulary()
    check_layer(layer)
    progress("读取 / reading", 0, 0)
    with nullcontext(conn) if conn is not None else engine.connect() as reading:
        place = county_place(reading, county)  # as the caller's work so far left it
    options = import_options(
        place, trust=trust, gcj02=gcj02, parameters=parameters,
        datum_parameters=datum_parameters, helmert_convention=helmert_convention,
    )  # fmt: skip
    data = read_layer(
        path, layer, county_epsg=place.epsg, crs=crs, limits=limits, source=source,
        source_layer=source_layer, options=options,
    )  # fmt: skip
    n = len(data.frame)
    report = ImportReport(
        layer=layer, source=data.source, county=county, crs=data.crs.label,
        crs_note=data.crs.note, notes=list(data.notes), columns=dict(data.columns), features=n,
        partial=partial,
    )  # fmt: skip
    progress("检查 / checking", 0, n)
    rows = FeatureRows(data)
    geoms = _check_geometries(data.crs.to_storage(data.frame.geometry.values), layer, rows)
    try:
        with import_transaction(engine, conn) as (conn, tx):
            place = county_place(conn, county)  # again, inside the transaction
            if layer in OFFSET_LAYERS and not gcj02:
                _offset_warning(conn, county, place, geoms, report)
            if layer != "boundary":
                _inside_county(geoms, place, rows, report.notes)
                read_codes(conn, data, county, rows, geoms, report.notes)
                found = read_attributes(conn, data, county, rows, vocabulary, report)
                check_required(conn, TARGETS[layer], county, found.values, rows)
            progress("检查 / checking", n, n)
            report.repaired = rows.repaired()
            report.refused = rows.refused()
            keep = rows.good()
            if (report.refused and not partial) or not keep.any():
                tx.rollback()
                return _done(report, started)
            if layer == "boundary":
                _write_boundary(conn, place, geoms, keep, report)
                if report.refused and not (report.added or report.updated or report.unchanged):
                    tx.rollback()
                    return _done(report, started)
            else:
                _write_layer(conn, TARGETS[layer], county, keep, rows, found, geoms, report,
                             progress)  # fmt: skip
            tx.commit()
            report.committed = True
    except (DBAPIError, psycopg.Error) as exc:  # psycopg's own: the COPY runs on the driver
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise TitlemapError(
            f"写入数据库失败，未做任何修改：{reason} / the database refused the import; nothing "
            "was changed"
        ) from None
    progress("完成 / done", n, n)
    return _done(report, started)


def _done(report: ImportReport, started: float) -> ImportReport:
    report.seconds = time.monotonic() - started
    return report
