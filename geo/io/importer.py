"""Import a file of outlines (or complaint points) into one layer of a county, all or nothing.

`import_file(engine, path, county, layer)` reads the file (`geo.io.layers`), moves it to
EPSG:4490, checks every feature — a geometry that can be repaired is repaired with
`make_valid` and reported; one that is empty, not of the layer's kind, outside the county
(its boundary buffered by `COUNTY_MARGIN_M`, measured in the county's Gauss-Krüger zone), or
whose code is missing, repeated in the file or refers to something unknown is refused with its
id — and upserts by (county_code, code): a corrected file re-imported updates rows in place.
Cells become values by `geo.io.converters` (dates by `geo.core.dates.parse_date`, parcel codes
by `geo.core.codes`), broken geometries are named in `geo.core.geometry`'s words, the columns
written are the model's: the same rules as the ledger sheet and the parcel checks.

Everything happens in one transaction: with any feature refused nothing is written (unless
`partial`, which writes the good ones); an import killed half-way leaves nothing behind. Rows
travel by COPY into a temporary table and one INSERT … ON CONFLICT DO UPDATE, so 100 000
features take seconds. Blank cells never erase what the database holds; the boundary layer
replaces the county's outline with the union of the file's polygons.

A polygon layer whose features sit in a GCJ-02 offset from the county's own compounds and
parcels (traced on Gaode/Tencent maps) gets a warning in the report suggesting `gcj02`.
"""

import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path

import numpy as np
import shapely
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from geo import TitlemapError
from geo.core.crs import measuring_epsg, reproject, to_projected, zone_of_epsg
from geo.core.dates import is_blank
from geo.core.geometry import validity_words
from geo.core.model import copy_columns
from geo.io.archive import Limits
from geo.io.converters import (
    amount,
    cell_text,
    convert_all,
    day,
    parcel_code,
    planned_kind,
    township_code,
    whole_number,
)
from geo.io.datums import check_convention, gcj_offset
from geo.io.layers import (
    FIELDS,
    IMPORT_LAYERS,
    POINT_LAYERS,
    LayerData,
    check_layer,
    read_layer,
)
from geo.io.load import copy_rows, ewkb
from geo.io.registry import ImportOptions

COUNTY_MARGIN_M = 500.0
LISTED = 30  # refusals and repairs shown by `lines()`; `to_dict()` keeps up to JSON_LISTED
JSON_LISTED = 1000
COPY_STEP = 2000  # progress is reported every this many rows while writing

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total): stage is words to show ("写入 / writing"); total 0 = unknown."""


# -- the report ------------------------------------------------------------------------------


@dataclass
class ImportReport:
    layer: str
    source: str
    county: str
    crs: str = ""  # the source CRS used, e.g. "EPSG:4544"
    crs_note: str = ""  # how it was decided: the file's own, given, or what was assumed
    notes: list[str] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)  # field → header in the file
    features: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    warnings: list[str] = field(default_factory=list)  # worth a look, not refusals
    repaired: list[tuple[str, str]] = field(default_factory=list)  # (feature id, what)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (feature id or row, why)
    partial: bool = False
    committed: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Committed with nothing refused."""
        return self.committed and not self.refused

    def to_dict(self) -> dict:
        data = asdict(self)
        data["repaired"] = [{"id": i, "what": w} for i, w in self.repaired[:JSON_LISTED]]
        data["refused"] = [{"id": i, "why": w} for i, w in self.refused[:JSON_LISTED]]
        data["repaired_count"] = len(self.repaired)
        data["refused_count"] = len(self.refused)
        data["seconds"] = round(self.seconds, 2)
        return data

    def lines(self) -> list[str]:
        """The report in words for the command line, Chinese first."""
        label = IMPORT_LAYERS.get(self.layer, self.layer)
        out = [
            f"导入{label}（{self.layer}）← {self.source}：{self.features} 个要素 / features",
            f"坐标系 / CRS: {self.crs} — {self.crs_note}",
        ]
        out += [f"说明 / note: {note}" for note in self.notes]
        out += [f"警告 / warning: {warning}" for warning in self.warnings]
        out.append(
            f"新增 / added {self.added}，更新 / updated {self.updated}，"
            f"未变 / unchanged {self.unchanged}"
        )
        for title, items in (
            ("已修复 / repaired", self.repaired),
            ("已拒绝 / refused", self.refused),
        ):
            if items:
                out.append(f"{title} {len(items)}:")
                out += [f"  {ident}: {why}" for ident, why in items[:LISTED]]
                if len(items) > LISTED:
                    out.append(f"  …另有 {len(items) - LISTED} 条 / {len(items) - LISTED} more")
        if self.committed and self.refused:
            out.append(
                f"已写入无误的要素，{len(self.refused)} 个被拒绝的未写入 / the good features were "
                "written (--partial); the refused ones were not"
            )
        elif self.committed:
            out.append(f"已写入数据库 / committed ({self.seconds:.1f} s)")
        elif self.refused and self.partial:
            out.append(
                "没有无误的要素可写入，数据库未改变 / no good feature to write: nothing changed"
            )
        elif self.refused:
            out.append(
                f"未写入任何数据：{len(self.refused)} 个要素被拒绝，数据库未改变；修正后重新导入，"
                "或加 --partial 只导入无误的要素 / nothing written: fix the file and import again, "
                "or use --partial to import the good features only"
            )
        else:
            out.append("没有可写入的要素 / nothing to write")
        return out


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


# -- what goes where ---------------------------------------------------------------------------


KEYS = ("county_code", "code", "geom")  # what the upsert writes itself


@dataclass(frozen=True)
class Target:
    table: str
    required: tuple[str, ...]  # columns a new row cannot do without
    noun: str

    @property
    def columns(self) -> tuple[str, ...]:
        """The table's columns besides county_code, code and geom, as the model declares them."""
        return tuple(c for c in copy_columns(self.table) if c not in KEYS)


TARGETS = {
    "compounds": Target("compound", ("name",), "小区"),
    "parcels": Target("parcel", (), "宗地"),
    "planned": Target("planned_area", ("kind", "name"), "片区"),
    "complaints": Target("complaint", ("received_on", "text"), "投诉"),
    "townships": Target("township", ("name", "kind"), "乡镇"),
}

# file field → (database column, converter); references and links are resolved separately.
VALUE_FIELDS: dict[str, dict[str, tuple[str, Callable]]] = {
    "compounds": {"name": ("name", cell_text), "address": ("address", cell_text),
                  "buildings": ("buildings", whole_number),
                  "units_sold": ("units_sold", whole_number),
                  "sold_on": ("sold_on", day), "occupied_on": ("occupied_on", day)},
    "parcels": {"area": ("recorded_area_m2", amount(Decimal("1e12"))),
                "land_use": ("land_use", cell_text), "right_type": ("right_type", cell_text),
                "premium_due": ("premium_due", amount(Decimal("1e14"))),
                "premium_paid": ("premium_paid", amount(Decimal("1e14")))},
    "planned": {"kind": ("kind", planned_kind), "name": ("name", cell_text)},
    "complaints": {"received_on": ("received_on", day), "source": ("source", cell_text),
                   "text": ("text", cell_text)},
    "townships": {"name": ("name", cell_text), "kind": ("kind", cell_text)},
}  # fmt: skip
COLUMN_WORDS = {"name": "名称", "kind": "类型", "received_on": "日期", "text": "内容"}


class _Rows:
    """Per-feature refusals and repairs, keyed by position in the file."""

    def __init__(self, data: LayerData):
        self.refs = list(data.frame["_ref"])
        self.codes: list[str | None] = [None] * len(self.refs)
        self.why: dict[int, list[str]] = defaultdict(list)
        self.repairs: dict[int, str] = {}

    def refuse(self, i: int, why: str) -> None:
        self.why[int(i)].append(why)

    def ident(self, i: int) -> str:
        return self.codes[i] or self.refs[i]

    def refused(self) -> list[tuple[str, str]]:
        out = []
        for i in sorted(self.why):
            where = f"[{self.refs[i]}] " if self.codes[i] else ""
            out.append((self.ident(i), where + "；".join(self.why[i])))
        return out

    def repaired(self) -> list[tuple[str, str]]:
        return [(self.ident(i), what) for i, what in sorted(self.repairs.items())]

    def good(self) -> np.ndarray:
        keep = np.ones(len(self.refs), dtype=bool)
        keep[list(self.why)] = False
        return keep


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


def _check_geometries(geoms: np.ndarray, layer: str, rows: _Rows) -> np.ndarray:
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
        for i in present:
            if kinds[i] == 4 and shapely.get_num_geometries(geoms[i]) == 1:
                geoms[i] = shapely.get_geometry(geoms[i], 0)
            elif kinds[i] != 0:
                rows.refuse(i, f"不是点 / not a point ({geoms[i].geom_type})")
        return geoms
    for i in present:
        if kinds[i] == 7:
            geoms[i] = _polygonal(geoms[i])
            if geoms[i] is None:
                rows.refuse(i, "图形集合中没有面 / no polygon in the collection")
        elif kinds[i] not in (3, 6):
            rows.refuse(i, f"不是面 / not a polygon ({geoms[i].geom_type})")
    candidates = np.array([i for i in present if i not in rows.why], dtype=int)
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


def _inside_county(geoms: np.ndarray, place: Place, rows: _Rows, notes: list[str]) -> None:
    if place.boundary is None or place.epsg is None:
        notes.append(
            "本县尚无边界，未检查要素是否在县内 / the county has no boundary yet: extent not "
            "checked (import the boundary layer first)"
        )
        return
    checked = np.array([i for i in range(len(geoms)) if i not in rows.why], dtype=int)
    if not len(checked):
        return
    outline_gk = to_projected(place.boundary, place.epsg)
    zone = reproject(outline_gk.buffer(COUNTY_MARGIN_M), place.epsg, 4490)
    shapely.prepare(zone)
    inside = shapely.covered_by(geoms[checked], zone)
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


# -- attributes ----------------------------------------------------------------------------------


def _codes(data: LayerData, county: str, rows: _Rows) -> None:
    if "code" not in data.columns and data.kind != "dxf":
        spec = next(f for f in FIELDS[data.layer] if f.name == "code")
        raise TitlemapError(
            f"找不到编号列（可用列名：{'、'.join(spec.headers[:8])} 等）；文件中的列为 "
            f"{data.unused} / no code column"
        )
    convert = {"parcels": parcel_code(county), "townships": township_code}.get(
        data.layer, cell_text
    )
    codes, errors = convert_all(data.frame["code"], convert)
    for i, why in errors.items():
        rows.refuse(i, why)
    seen: dict[str, list[int]] = defaultdict(list)
    for i, code in enumerate(codes):
        rows.codes[i] = code
        if code is None and i not in errors:
            hint = "（图形内没有文字注记）" if data.kind == "dxf" else ""
            rows.refuse(i, f"缺少编号{hint} / no code")
        elif code is not None:
            seen[code].append(i)
    for positions in seen.values():
        if len(positions) > 1:
            where = "、".join(rows.refs[p] for p in positions)
            for p in positions:
                rows.refuse(p, f"编号在文件中重复（{where}）/ duplicate code in the file")


def _lookup(conn: Connection, sql: str, county: str) -> tuple[dict, dict]:
    """({key: id}, {name: [ids]}) from rows (id, key, name)."""
    by_key: dict[str, int] = {}
    by_name: dict[str, list[int]] = defaultdict(list)
    for ident, key, name in conn.execute(text(sql), {"c": county}):
        if key:
            by_key[key] = ident
        if name:
            by_name[name.strip()].append(ident)
    return by_key, by_name


def _resolver(by_key: dict, by_name: dict, noun: tuple[str, str]) -> Callable[[object], int]:
    cn, en = noun

    def resolve(value) -> int:
        raw = cell_text(value)
        if raw in by_key:
            return by_key[raw]
        found = by_name.get(raw, [])
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise ValueError(f"{cn}名称 {raw!r} 不唯一，请用代码 / ambiguous {en} name")
        raise ValueError(f"未知{cn} {raw!r}（按代码或名称都找不到）/ unknown {en}")

    return resolve


def _attributes(
    conn: Connection, data: LayerData, county: str, rows: _Rows
) -> tuple[dict[str, list], dict[int, list[int]]]:
    """{column: values} for the target table, and for parcels {row: [compound ids]}."""
    frame = data.frame
    n = len(frame)
    values: dict[str, list] = {c: [None] * n for c in TARGETS[data.layer].columns}
    for name, (column, convert) in VALUE_FIELDS[data.layer].items():
        if name not in frame:
            continue
        factor = data.factors.get(name, 1.0)
        func = (lambda v, c=convert, f=factor: c(v, f)) if factor != 1.0 else convert
        values[column], errors = convert_all(frame[name], func)
        word = next(f.label for f in FIELDS[data.layer] if f.name == name)
        for i, why in errors.items():
            rows.refuse(i, f"{word}：{why}")
    if data.layer == "townships" and "kind" in values:
        for i, (kind, name) in enumerate(zip(values["kind"], values["name"], strict=True)):
            if kind is None and name:
                values["kind"][i] = next(
                    (k for k in ("街道", "镇", "乡") if name.endswith(k)), None
                )
    if data.layer == "compounds":
        refs = {
            "township": ("township_id", "SELECT id, code, name FROM township "
                         "WHERE county_code = :c", ("乡镇", "township")),
            "developer": ("developer_id", "SELECT id, credit_code, name FROM developer "
                          "WHERE county_code = :c", ("开发企业", "developer")),
        }  # fmt: skip
        for name, (column, sql, noun) in refs.items():
            if name in frame:
                resolve = _resolver(*_lookup(conn, sql, county), noun)
                values[column], errors = convert_all(frame[name], resolve)
                for i, why in errors.items():
                    rows.refuse(i, why)
    links: dict[int, list[int]] = {}
    if data.layer == "parcels" and "compound" in frame:
        known, _ = _lookup(
            conn, "SELECT id, code, NULL FROM compound WHERE county_code = :c", county
        )
        for i, value in enumerate(frame["compound"]):
            if is_blank(value):
                continue
            codes = [c for c in re.split(r"[,，、;；\s]+", cell_text(value)) if c]
            unknown = [c for c in codes if c not in known]
            if unknown:
                rows.refuse(i, f"未知小区 {'、'.join(unknown)} / unknown compound")
            else:
                links[i] = sorted({known[c] for c in codes})
    return values, links


def _required(conn: Connection, target: Target, county: str, values, rows: _Rows) -> None:
    """A new row must bring every NOT NULL column; an existing one keeps what it has."""
    if not target.required:
        return
    existing = set(
        conn.execute(
            text(f"SELECT code FROM {target.table} WHERE county_code = :c"), {"c": county}
        ).scalars()
    )
    for i, code in enumerate(rows.codes):
        if code is None or code in existing or i in rows.why:
            continue
        lacking = [COLUMN_WORDS.get(c, c) for c in target.required if values[c][i] is None]
        if lacking:
            rows.refuse(
                i, f"新{target.noun}缺少{'、'.join(lacking)} / a new {target.table} needs "
                + ", ".join(c for c in target.required if values[c][i] is None)
            )  # fmt: skip


# -- writing --------------------------------------------------------------------------------------


def _counted(rows: Iterable[tuple], total: int, progress: Progress) -> Iterator[tuple]:
    for done, row in enumerate(rows, start=1):
        yield row
        if done % COPY_STEP == 0 or done == total:
            progress("写入 / writing", done, total)


def _upsert(conn: Connection, target: Target, county: str, keep, codes, values, geoms, progress):
    cols = target.columns
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
    hexes = ewkb(chosen_geoms)
    rows = ((codes[i], *(values[c][i] for c in cols), hexes[k]) for k, i in enumerate(positions))
    copy_rows(conn, "import_rows", ["code", *cols, "geom"],
              _counted(rows, len(positions), progress))  # fmt: skip
    progress("更新 / upserting", len(positions), len(positions))
    chosen = ", ".join(f"COALESCE(i.{c}, e.{c})" for c in cols)
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in (*cols, "geom"))
    old = ", ".join(f"t.{c}" for c in (*cols, "geom"))
    new = ", ".join(f"EXCLUDED.{c}" for c in (*cols, "geom"))
    result = conn.execute(
        text(
            f"INSERT INTO {target.table} AS t (county_code, code, {', '.join(cols)}, geom) "
            f"SELECT :c, i.code, {chosen}, i.geom FROM import_rows i "
            f"LEFT JOIN {target.table} e ON e.county_code = :c AND e.code = i.code "
            f"ON CONFLICT (county_code, code) DO UPDATE SET {sets} "
            f"WHERE ({old}) IS DISTINCT FROM ({new}) "
            "RETURNING t.code, (t.xmax = 0) AS added"
        ),
        {"c": county},
    ).all()
    return {code: added for code, added in result}, len(positions)


def _link(conn: Connection, county: str, links: dict[int, list[int]], codes) -> set[str]:
    """Set each listed parcel's compounds to those in the file; the parcels whose links moved."""
    if not links:
        return set()
    conn.execute(text("CREATE TEMP TABLE import_links (code text, compound_id int) ON COMMIT DROP"))
    pairs = ((codes[i], cid) for i, ids in links.items() for cid in ids)
    copy_rows(conn, "import_links", ["code", "compound_id"], pairs)
    params = {"c": county}
    removed = conn.execute(
        text(
            "DELETE FROM compound_parcel cp USING parcel p "
            "WHERE cp.parcel_id = p.id AND p.county_code = :c "
            "AND p.code IN (SELECT code FROM import_links) AND NOT EXISTS ("
            "  SELECT 1 FROM import_links l "
            "  WHERE l.code = p.code AND l.compound_id = cp.compound_id"
            ") RETURNING p.code"
        ),
        params,
    ).scalars()
    added = conn.execute(
        text(
            "INSERT INTO compound_parcel (compound_id, parcel_id, county_code) "
            "SELECT l.compound_id, p.id, :c FROM import_links l "
            "JOIN parcel p ON p.county_code = :c AND p.code = l.code "
            "ON CONFLICT DO NOTHING "
            "RETURNING (SELECT code FROM parcel WHERE id = parcel_id)"
        ),
        params,
    ).scalars()
    return set(removed) | set(added)


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
) -> ImportReport:
    """Import `path` into `layer` of `county`; see the module's docstring.

    `trust` ("header" | "coordinates") settles a coordinate file whose header and coordinates
    disagree; `gcj02` corrects lon/lat traced on Gaode/Tencent maps; `parameters` are the
    seven Xi'an 1980 / Beijing 1954 → CGCS2000 parameters (else the file's, else the county's
    `datum_parameters`, the setting TITLEMAP_DATUM_PARAMETERS); `helmert_convention` says how
    their rotations turn (the setting TITLEMAP_HELMERT_CONVENTION).

    Raises TitlemapError when the file as a whole cannot be used (unreadable, unsafe zip,
    CRS that cannot be told, swapped axes, no code column); problems of single features go
    into the report. `source` names the file in the report (an upload's own name)."""
    started = time.monotonic()
    progress = progress or _quiet
    check_layer(layer)
    progress("读取 / reading", 0, 0)
    with engine.connect() as conn:
        place = county_place(conn, county)
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
    rows = _Rows(data)
    geoms = _check_geometries(data.crs.to_storage(data.frame.geometry.values), layer, rows)
    try:
        with engine.connect() as conn, conn.begin() as tx:
            place = county_place(conn, county)  # again, inside the transaction
            if layer in OFFSET_LAYERS and not gcj02:
                _offset_warning(conn, county, place, geoms, report)
            if layer != "boundary":
                _inside_county(geoms, place, rows, report.notes)
                _codes(data, county, rows)
                target = TARGETS[layer]
                values, links = _attributes(conn, data, county, rows)
                _required(conn, target, county, values, rows)
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
                changed, written = _upsert(
                    conn, target, county, keep, rows.codes, values, geoms, progress
                )
                moved = _link(conn, county, {i: v for i, v in links.items() if keep[i]}, rows.codes)
                report.added = sum(1 for added in changed.values() if added)
                report.updated = len(changed) - report.added + len(moved - set(changed))
                report.unchanged = written - report.added - report.updated
            tx.commit()
            report.committed = True
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise TitlemapError(
            f"写入数据库失败，未做任何修改：{reason} / the database refused the import; nothing "
            "was changed"
        ) from None
    progress("完成 / done", n, n)
    return _done(report, started)


def _done(report: ImportReport, started: float) -> ImportReport:
    report.seconds = time.monotonic() - started
    return report
