"""Onboarding a county from the folder its offices hand over: every file recognised, one plan,
one transaction.

`onboard(engine, folder, county)` scans the folder (sub-folders, zips, every layer of a
GeoPackage; Office lock files, .DS_Store and Thumbs.db ignored; a Shapefile's .dbf/.shx/.prj/
.cpg read with its .shp), recognises each file's layer from its columns and geometry, and
imports them in dependency order (`onboard_plan.ORDER`) in one transaction — or nothing.

Recognising reuses the importers' own header lists, never a second one: a spatial file is
scored for each layer its geometry fits (points: complaints; polygons: the others) by how many
of the layer's fields its columns map to (`geo.io.layers.map_columns`; a header that only one
layer knows counts double), plus what its values say (a township's name ends in 镇/乡/街道, a
planned area's kind is in the county's vocabulary, a boundary is one or a few polygons named
…县). A table is a ledger when the ledger reader finds its header (`geo.io.ledger_sheet`), a
developers list (失信名单) when `geo.io.developer_list` does; the higher score wins. The file's
name breaks a tie (县界, 乡镇, 小区, 宗地, 规划, 投诉, 台账, 失信 …); a file still in doubt is
listed, not guessed, and `--layer FILE=layer` places it.

Every import runs in a savepoint of the one transaction, taking its good rows, so each later
file is checked against what the earlier ones bring and the plan shows every refusal at once;
then, with any refusal (a file that cannot be used at all counts as one) and without `partial`,
everything is rolled back. `dry_run` rolls back in any case: the plan with the reports of a
real import, nothing written.
"""

import re
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path, PurePosixPath

import numpy as np
import pyogrio
import shapely
from sqlalchemy import Connection, Engine, insert, text

from geo import TitlemapError
from geo.core.codes import province_of
from geo.core.dates import is_blank
from geo.core.model import County
from geo.core.vocabulary import Vocabulary, load_vocabulary
from geo.db.audit import bulk_load, record
from geo.io.archive import Limits, extract_zip
from geo.io.attributes import TOWNSHIP_KINDS
from geo.io.converters import cell_text
from geo.io.developer_list import header_score, import_developers, read_developer_list
from geo.io.headers import header_key
from geo.io.importer import import_file
from geo.io.layers import FIELDS, IMPORT_LAYERS, LAYER_NAMES, POINT_LAYERS, map_columns
from geo.io.ledger_sheet import STAGES, LedgerSheetError, import_ledger, read_sheet
from geo.io.load import county_exists
from geo.io.onboard_plan import LABELS, ORDER, SKIP, FilePlan, Onboarding
from geo.io.registry import ImportOptions, ReadContext, reader_for
from geo.ledger.counties import NoSuchCounty, county_code, county_settings

__all__ = ["ORDER", "FilePlan", "Onboarding", "onboard", "parse_layers"]

Progress = Callable[[str, int, int | None], None]

JUNK_NAMES = frozenset({".ds_store", "thumbs.db", "desktop.ini", "__macosx"})
# A Shapefile's other parts: read with its .shp, not files of their own.
SIDECARS = frozenset({".dbf", ".shx", ".prj", ".cpg", ".sbn", ".sbx", ".qix", ".qmd", ".fix",
                      ".aih", ".ain", ".atx", ".xml", ".ixs", ".mxs"})  # fmt: skip
TABLE_SUFFIXES = frozenset({".xlsx", ".xlsm", ".xls"})
# Words of a file's name for the tables (the layers' are geo.io.layers.LAYER_NAMES).
TABLE_NAMES = {"ledger": ("台账", "化解", "ledger"),
               "developers": ("失信", "黑名单", "企业", "开发商", "developers")}  # fmt: skip
COUNTY_ENDINGS = ("县", "区", "市", "旗")  # a county-level name ends with one
FEW = 3  # a boundary is one polygon, or a few (islands, enclaves)


# -- the folder ------------------------------------------------------------------------------------


@dataclass
class Scan:
    """A folder's files: those to recognise, those that cannot be read, the junk."""

    found: list[FilePlan] = field(default_factory=list)
    unplaced: list[FilePlan] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def _junk(relative: PurePosixPath) -> bool:
    """Office lock files (~$…), hidden files, .DS_Store, Thumbs.db, a zip's __MACOSX."""
    return any(part.startswith(("~$", ".")) or part.lower() in JUNK_NAMES
               for part in relative.parts)  # fmt: skip


def _base(path: Path) -> str:
    """The name a Shapefile's parts share: 小区 for 小区.dbf and 小区.shp.xml."""
    stem = path.stem
    return (stem[:-4] if stem.lower().endswith(".shp") else stem).lower()


def _scan(folder: Path, prefix: str, workdir: Path, limits: Limits, scan: Scan) -> None:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    shapefiles = {(p.parent, _base(p)) for p in files if p.suffix.lower() == ".shp"}
    for path in files:
        relative = PurePosixPath(path.relative_to(folder).as_posix())
        source = f"{prefix}{relative}"
        suffix = path.suffix.lower()
        if _junk(relative):
            scan.ignored.append(source)
        elif suffix in SIDECARS and (path.parent, _base(path)) in shapefiles:
            continue
        elif suffix == ".zip":
            _scan_zip(path, source, workdir, limits, scan, nested=bool(prefix))
        elif suffix == ".gpkg":
            _scan_gpkg(path, source, scan)
        else:
            scan.found.append(FilePlan(source, path))


def _scan_zip(path: Path, source: str, workdir: Path, limits: Limits, scan: Scan,
              nested: bool) -> None:  # fmt: skip
    if nested:
        scan.unplaced.append(FilePlan(source, path, how="压缩包内还有压缩包：请解开 / a zip "
                                                        "inside a zip: unpack it"))  # fmt: skip
        return
    target = workdir / f"zip-{len(list(workdir.iterdir()))}"
    target.mkdir()
    try:
        extract_zip(path, target, limits)
    except TitlemapError as exc:
        scan.unplaced.append(FilePlan(source, path, how=str(exc)))
        return
    _scan(target, f"{source}/", workdir, limits, scan)


def _scan_gpkg(path: Path, source: str, scan: Scan) -> None:
    """Each spatial layer of a GeoPackage is a file of its own: gpkg:layer."""
    try:
        spatial = [str(name) for name, kind in pyogrio.list_layers(path) if kind is not None]
    except Exception as exc:  # GDAL says what is wrong with it
        scan.unplaced.append(FilePlan(source, path, how=f"无法读取 / cannot read: {exc}"))
        return
    if not spatial:
        scan.unplaced.append(FilePlan(source, path, how="没有图形图层 / no spatial layer"))
    for name in spatial:
        label = source if len(spatial) == 1 else f"{source}:{name}"
        scan.found.append(FilePlan(label, path, source_layer=name))


# -- recognising a file ----------------------------------------------------------------------------


@cache
def _shared_headers() -> frozenset[str]:
    """Header words more than one layer knows (名称, 编号, 类型 …): weaker evidence."""
    words = [{header_key(h)[0] for f in fields for h in f.headers} for fields in FIELDS.values()]
    layers_of = Counter(word for layer in words for word in layer)
    return frozenset(word for word, n in layers_of.items() if n > 1)


def _texts(frame, header: str | None) -> list[str]:
    """A column's cells as text, blanks left out (none for a column not mapped)."""
    return [] if header is None else [cell_text(v) for v in frame[header] if not is_blank(v)]


def _most(values: list[str], test: Callable[[str], object]) -> bool:
    return bool(values) and sum(1 for v in values if test(v)) * 2 >= len(values)


def _evidence(layer: str, frame, headers: list[str], words: Vocabulary) -> tuple[int, list[str]]:
    """How strongly a file's columns and values say `layer`, and the words that say so."""
    mapping, _, _ = map_columns(headers, layer)
    shared = _shared_headers()
    score = sum(1 if header_key(h)[0] in shared else 2 for h in mapping.values())
    why = [f"列 {'、'.join(mapping.values())}"] if mapping else []
    names = _texts(frame, mapping.get("name"))
    if layer == "boundary" and len(frame) <= FEW:
        score += 1
        if _most(names, lambda n: n.endswith(COUNTY_ENDINGS)):
            score, why = score + 2, [*why, f"名称 {names[0]}"]
    if layer == "townships" and _most(names, lambda n: n.endswith(TOWNSHIP_KINDS)):
        score, why = score + 2, [*why, "名称以乡、镇、街道结尾"]
    kinds = _texts(frame, mapping.get("kind"))
    if layer == "planned" and _most(kinds, words.planned_kind):
        score, why = score + 2, [*why, "类型在词表中"]
    return score, why


def _said(name: str) -> set[str]:
    """The layers a name speaks of: Chinese words anywhere in it, English ones as words."""
    name = name.lower()
    tokens = set(re.split(r"[^a-z0-9]+", name))
    return {layer for layer, names in {**LAYER_NAMES, **TABLE_NAMES}.items()
            for w in names if (w in tokens if w.isascii() else w in name)}  # fmt: skip


def _named_layers(plan: FilePlan) -> set[str]:
    """The layers a file's names speak of: its GeoPackage layer's, else its own, else those of
    the folders (or zip) holding it."""
    path = PurePosixPath(_path_of(plan))
    names = [plan.source_layer or "", path.stem, *reversed(path.parts[:-1])]
    return next((found for name in names if (found := _said(name))), set())


def _choose(plan: FilePlan, scores: dict[str, int], why: dict[str, list[str]]) -> FilePlan:
    """The layer with the strongest evidence, the file's name breaking a tie; else unplaced."""
    plan.scores = scores
    named = _named_layers(plan)
    rank = {layer: (score, layer in named) for layer, score in scores.items()}
    best = max(rank.values(), default=(0, False))
    tied = [layer for layer, r in rank.items() if r == best]
    if best[0] == 0:
        plan.how = ("列和图形不像任何图层 / its columns and geometry fit no layer"
                    if not plan.how else plan.how)  # fmt: skip
    elif len(tied) > 1:
        plan.how = (f"无法判断是{'还是'.join(LABELS[t] for t in tied)} / cannot tell which of "
                    f"{', '.join(tied)}")  # fmt: skip
    else:
        plan.layer = tied[0]
        plan.how = "；".join([*why.get(tied[0], []), *(["文件名"] if best[1] else [])])
    return plan


def _spatial(plan: FilePlan, frame, words: Vocabulary) -> FilePlan:
    headers = [str(c) for c in frame.columns if c != frame.geometry.name]
    geoms = np.asarray(frame.geometry.values, dtype=object)
    present = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    kinds = set(shapely.get_type_id(present).tolist())
    plan.features = len(frame)
    if not kinds:
        plan.how = "没有图形 / no geometry"
        return plan
    points = kinds <= {0, 4}
    candidates = [layer for layer in IMPORT_LAYERS if (layer in POINT_LAYERS) == points]
    found = {layer: _evidence(layer, frame, headers, words) for layer in candidates}
    _choose(plan, {layer: s for layer, (s, _) in found.items()},
            {layer: w for layer, (_, w) in found.items()})  # fmt: skip
    if plan.layer:
        plan.columns = map_columns(headers, plan.layer)[0]
    return plan


def _table(plan: FilePlan, given: dict[str, str]) -> FilePlan:
    """A spreadsheet (or a CSV without coordinates): the ledger or a developers list."""
    scores, why, trouble = {}, {}, ""
    try:
        sheet = read_sheet(plan.path, name=plan.source, given=given)
        scores["ledger"], why["ledger"] = len(sheet.columns), ["台账表头"]
    except LedgerSheetError as exc:
        scores["ledger"], trouble, sheet = 0, str(exc), None
    scores["developers"] = header_score(plan.path, plan.source)
    why["developers"] = ["企业名单表头"]
    plan.how = trouble if trouble and not scores["developers"] else ""
    _choose(plan, scores, why)
    if plan.layer == "developers":
        listed = read_developer_list(plan.path, plan.source)
        plan.columns, plan.features = listed.columns, len(listed.rows)
    elif plan.layer == "ledger":
        plan.columns, plan.features, plan.sheet = sheet.columns, len(sheet.rows), sheet
    return plan


def recognise(plan: FilePlan, words: Vocabulary, limits: Limits, given: dict[str, str]) -> FilePlan:
    """Which layer one file is for (plan.layer, plan.how), or why it cannot be told."""
    suffix = plan.path.suffix.lower()
    if suffix in TABLE_SUFFIXES:
        return _table(plan, given)
    reader = reader_for(plan.path)
    if reader is None:
        plan.how = "不是 titlemap 读得懂的文件 / not a file titlemap reads"
        return plan
    if reader.kind == "boundary_txt":
        plan.layer, plan.how = "parcels", "界址点坐标交换文件 / boundary coordinate TXT"
        return plan
    context = ReadContext("compounds", limits, plan.source_layer, ImportOptions(), label="图层")
    try:
        raw = reader.read(plan.path, context)
    except TitlemapError as exc:
        if reader.kind == "csv":  # no coordinate columns: a table
            return _table(plan, given)
        plan.how = str(exc)
        return plan
    _spatial(plan, raw.frame, words)
    if reader.kind == "csv" and plan.layer is None:  # points, but a ledger's columns?
        table = _table(FilePlan(plan.source, plan.path), given)
        return table if table.layer else plan
    return plan


# -- --layer FILE=layer ----------------------------------------------------------------------------


def parse_layers(items: list[str] | None) -> dict[str, str]:
    """--layer "小区.zip=compounds" (repeatable) → {file: layer}; "FILE=-" leaves it out."""
    out = {}
    for item in items or []:
        name, sep, layer = item.rpartition("=")
        layer = layer.strip()
        if not sep or not name.strip() or (layer not in ORDER and layer != SKIP):
            raise TitlemapError(
                f"--layer “{item}” 应为“文件=图层”，图层可用 / should be FILE=layer, one of: "
                f"{', '.join(ORDER)}（或 - 表示不导入 / or - to leave it out）"
            )
        out[name.strip()] = layer
    return out


def _path_of(plan: FilePlan) -> str:
    """The file's own path in the folder: its source without a GeoPackage layer's name."""
    suffix = f":{plan.source_layer}"
    return plan.source.removesuffix(suffix) if plan.source_layer else plan.source


def _names(plan: FilePlan, name: str) -> bool:
    """Whether --layer's `name` means this file: its whole source, its path, name or stem, a
    GeoPackage layer's name, or the zip or folder holding it."""
    path = PurePosixPath(_path_of(plan))
    name = name.strip().replace("\\", "/").rstrip("/")
    known = (plan.source, str(path), path.name, path.stem, plan.source_layer)
    return name in known or plan.source.startswith(f"{name}/")


def _override(plans: list[FilePlan], given: dict[str, str]) -> None:
    for name, layer in given.items():
        chosen = [plan for plan in plans if _names(plan, name)]
        if not chosen:
            raise TitlemapError(
                f"--layer {name}：文件夹中没有这个文件 / no such file in the folder"
            )
        for plan in chosen:
            plan.layer, plan.given = (None if layer == SKIP else layer), True
            plan.how = "指定不导入 / left out" if layer == SKIP else "指定 / given"


# -- the import ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    """What the caller says beyond the folder: the county's words, its seven parameters, the
    user named in the ledger's history, the upload limits."""

    vocabulary: Vocabulary
    limits: Limits
    user: str = "接入 / onboard"
    datum_parameters: str | None = None
    helmert_convention: str = "position_vector"
    progress: Progress | None = None


def _progress(setup: Setup, plan: FilePlan) -> Progress | None:
    if setup.progress is None:
        return None
    return lambda stage, done, total: setup.progress(
        f"{plan.source} {STAGES.get(stage, stage)}", done, total
    )


def _import(conn: Connection, engine: Engine, plan: FilePlan, county: str, setup: Setup) -> None:
    """One file into the transaction, its good rows taken (the caller rolls back if need be)."""
    try:
        if plan.layer == "ledger":
            plan.report = import_ledger(engine, plan.path, county, setup.user, partial=True,
                                        progress=_progress(setup, plan), file_name=plan.source,
                                        vocabulary=setup.vocabulary, conn=conn,
                                        sheet=plan.sheet)  # fmt: skip
        elif plan.layer == "developers":
            plan.report = import_developers(engine, plan.path, county, partial=True,
                                            source=plan.source, conn=conn)  # fmt: skip
        else:
            plan.report = import_file(
                engine, plan.path, county, plan.layer, partial=True,
                progress=_progress(setup, plan), source=plan.source, limits=setup.limits,
                source_layer=plan.source_layer, datum_parameters=setup.datum_parameters,
                helmert_convention=setup.helmert_convention, vocabulary=setup.vocabulary,
                conn=conn,
            )  # fmt: skip
    except TitlemapError as exc:
        plan.error = str(exc)
        return
    plan.features = getattr(plan.report, "features", None) or getattr(plan.report, "rows", 0)


def _settle(plans: list[FilePlan], written: bool, partial: bool, dry_run: bool) -> None:
    """Each report says what happened to the whole: written or not, partial as asked."""
    for plan in plans:
        report = plan.report
        if report is None:
            continue
        report.partial = partial
        if hasattr(report, "applied"):
            report.applied = report.applied and written
            report.dry_run = dry_run
        else:
            report.committed = report.committed and written


def _county(conn: Connection, county: str, name: str | None) -> tuple[bool, str | None]:
    """(whether the county is new, its name); created with `name` when it is not there yet."""
    row = conn.execute(text("SELECT name FROM county WHERE code = :c"), {"c": county}).first()
    if row is not None:
        return False, row.name
    if not name:
        raise _no_county(county)
    values = county_settings({"name": name})
    conn.execute(insert(County).values(code=county_code(county), province=province_of(county),
                                       **values))  # fmt: skip
    return True, values["name"]


def _no_county(county: str) -> NoSuchCounty:
    return NoSuchCounty(
        f"没有这个县 / no such county: {county}（加 --name 县名 即可新建 / add --name to create "
        "it, or titlemap county add）"
    )


def _remembered(engine: Engine, county: str, name: str | None) -> dict[str, str]:
    """The county's remembered ledger headers; refuses a missing county without a name (or
    with a code of the wrong shape) before any work."""
    with engine.connect() as conn:
        if not county_exists(conn, county):
            if not name:
                raise _no_county(county)
            county_code(county)
            return {}
        columns = conn.execute(
            text("SELECT ledger_columns FROM county WHERE code = :c"), {"c": county}
        ).scalar_one()
    return dict(columns or {})


def onboard(
    engine: Engine,
    folder: str | Path,
    county: str,
    *,
    name: str | None = None,
    dry_run: bool = False,
    partial: bool = False,
    layers: dict[str, str] | None = None,
    vocabulary: Vocabulary | None = None,
    limits: Limits | None = None,
    user: str = "接入 / onboard",
    datum_parameters: str | None = None,
    helmert_convention: str = "position_vector",
    progress: Progress | None = None,
) -> Onboarding:
    """Recognise every file of `folder` and import them into `county` in one transaction;
    see the module. `name` creates the county when it is not there; `layers` ({file: layer},
    `parse_layers`) overrides recognition. TitlemapError for a folder that cannot be read at
    all, an unknown county without `name`, a --layer naming no file."""
    started = time.monotonic()
    folder = Path(folder)
    if not folder.is_dir():
        raise TitlemapError(f"找不到文件夹 / no such folder: {folder}")
    setup = Setup(vocabulary or load_vocabulary(), limits or Limits(), user, datum_parameters,
                  helmert_convention, progress)  # fmt: skip
    given_columns = _remembered(engine, county, name)
    workdir = Path(tempfile.mkdtemp(prefix="titlemap-onboard-"))
    try:
        scan = Scan()
        _scan(folder, "", workdir, setup.limits, scan)
        plans = [recognise(p, setup.vocabulary, setup.limits, given_columns) for p in scan.found]
        _override(plans, layers or {})
        placed = sorted(
            (p for p in plans if p.layer), key=lambda p: (ORDER.index(p.layer), p.source)
        )
        result = Onboarding(county, name, False, placed,
                            [*scan.unplaced, *(p for p in plans if not p.layer)], scan.ignored,
                            dry_run=dry_run, partial=partial)  # fmt: skip
        with engine.connect() as conn, conn.begin() as tx:
            bulk_load(conn)  # one audit row for the folder, not one per row it holds
            result.new_county, result.name = _county(conn, county, name)
            for plan in placed:
                _import(conn, engine, plan, county, setup)
            write = not dry_run and bool(placed) and (partial or not result.refusals())
            if write:
                files = [{"file": p.source, "layer": p.layer} for p in placed]
                record(conn, county, "county", "onboard", county, after={"files": files})
                tx.commit()
            else:
                tx.rollback()
        result.written = write
        _settle(placed, write, partial, dry_run)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result.seconds = time.monotonic() - started
    return result
