"""Reading outline files from surveyors and CAD offices, safely, into one shape.

`read_layer(path, layer, county_epsg=…)` opens a GeoPackage, a zipped (or loose) Shapefile,
GeoJSON, DXF, a CSV of points or the land office's boundary coordinate TXT
(`geo.io.boundary_txt`), picks the reader by the file's kind (`geo.io.registry`; the readers
are registered in `geo.io.readers`), decides the source CRS — the file's own, the caller's
`crs`, or one inferred from the coordinate ranges, always said in words (`geo.io.crs_guess`) —
and maps Chinese or English column headers to titlemap's fields (`FIELDS`). `ImportOptions`
carries what the caller says beyond a CRS: which of a TXT's header and coordinates to trust,
seven parameters for Xi'an 1980 / Beijing 1954 (refused without them), GCJ-02 correction
(`geo.io.datums`).

It returns a `LayerData`: the features with canonical column names, geometries still in the
source CRS (`LayerData.crs.to_storage` moves them to EPSG:4490), and notes on what was assumed.
Validation, references and the database are `geo.io.importer`'s business.

Uploads are untrusted: `Limits` bounds them and a zip is checked before anything is extracted
(`geo.io.archive`).
"""

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

import geo.io.readers  # noqa: F401  (registers every format's reader)
from geo import TitlemapError
from geo.io.archive import Limits, extract_zip, is_zip, size_words
from geo.io.crs_guess import CrsDecision, decide_crs
from geo.io.datums import GCJ_NOTE
from geo.io.headers import header_key, norm
from geo.io.registry import ImportOptions, RawLayer, ReadContext, Reader, readable, reader_for

# -- layers and their fields ------------------------------------------------------------------

# The layers a file can be imported into, with their words.
IMPORT_LAYERS = {
    "compounds": "小区",
    "parcels": "宗地",
    "planned": "规划片区",
    "complaints": "投诉",
    "townships": "乡镇街道",
    "boundary": "县界",
}
POINT_LAYERS = frozenset({"complaints"})


@dataclass(frozen=True)
class Field:
    """A titlemap field and the headers that name it, most specific first."""

    name: str
    headers: tuple[str, ...]
    label: str


CODE_WORDS = ("编号", "代码", "编码", "code", "id")
FIELDS: dict[str, tuple[Field, ...]] = {
    "compounds": (
        Field("code", ("小区编号", "小区代码", "项目编号", "项目代码", "xmbh", "compound_code",
                       *CODE_WORDS, "地块编号"), "编号"),
        Field("name", ("小区名称", "项目名称", "小区名", "名称", "xmmc", "name", "地块名称"),
              "名称"),
        Field("address", ("地址", "小区地址", "项目地址", "坐落", "address", "addr"), "地址"),
        Field("township", ("乡镇代码", "街道代码", "所属乡镇", "乡镇街道", "乡镇（街道）", "乡镇",
                           "街道", "乡镇名称", "township_code", "township_name", "township",
                           "town"), "乡镇"),
        Field("developer", ("开发企业", "开发企业名称", "开发商", "开发单位", "开发公司",
                            "建设单位", "developer", "developer_name"), "开发企业"),
        # a .dbf keeps ten bytes of a name: 统一社会信用代码 in GBK comes back as 统一社会信
        Field("developer_code", ("统一社会信用代码", "开发企业统一社会信用代码", "开发企业信用代码",
                                 "社会信用代码", "统一社会信",
                                 "信用代码", "developer_credit_code", "credit_code"),
              "统一社会信用代码"),
        Field("buildings", ("楼栋数", "栋数", "幢数", "楼栋", "buildings"), "楼栋数"),
        Field("units_sold", ("已售套数", "销售套数", "售出套数", "套数", "units_sold", "units"),
              "已售套数"),
        Field("sold_on", ("首次销售日期", "销售日期", "开盘日期", "sold_on", "sale_date"),
              "销售日期"),
        Field("occupied_on", ("交付入住日期", "入住日期", "交付日期", "交房日期", "occupied_on",
                              "occupancy_date"), "入住日期"),
    ),
    "parcels": (
        Field("code", ("宗地代码", "宗地编码", "宗地号", "地籍号", "zddm", "parcel_code",
                       *CODE_WORDS, "地块编号"), "宗地代码"),
        Field("area", ("登记面积", "宗地面积", "土地面积", "用地面积", "批准面积", "面积", "zdmj",
                       "recorded_area_m2", "recorded_area", "area_m2", "area_ha", "area",
                       "地块面积"), "面积"),
        Field("land_use", ("地类", "地块用途", "地类编码", "地类代码", "土地用途", "用途", "tdyt",
                           "dlbm", "land_use"), "地类"),
        Field("right_type", ("权利性质", "使用权类型", "取得方式", "供地方式", "权利类型", "qlxz",
                             "right_type"), "权利性质"),
        Field("premium_due", ("应缴出让金", "应缴土地出让金", "应缴出让价款", "出让金",
                              "土地出让金", "出让价款", "premium_due"), "应缴出让金"),
        Field("premium_paid", ("已缴出让金", "已缴土地出让金", "实缴出让金", "已缴出让价款",
                               "premium_paid"), "已缴出让金"),
        Field("compound", ("小区编号", "小区代码", "所属小区", "项目编号", "compound_code",
                           "compound"), "小区编号"),
    ),
    "planned": (
        Field("code", ("片区编号", "规划编号", "片区代码", *CODE_WORDS), "编号"),
        Field("kind", ("片区类型", "规划类型", "类型", "类别", "kind", "type", "category"), "类型"),
        Field("name", ("片区名称", "规划名称", "名称", "name"), "名称"),
    ),
    "complaints": (
        Field("code", ("投诉编号", "工单编号", "工单号", "留言编号", "信访编号", *CODE_WORDS),
              "编号"),
        Field("received_on", ("受理日期", "投诉日期", "留言日期", "来电日期", "登记日期", "日期",
                              "时间", "received_on", "date"), "日期"),
        Field("source", ("来源", "投诉来源", "来源渠道", "渠道", "source", "channel"), "来源"),
        Field("text", ("投诉内容", "留言内容", "诉求内容", "反映问题", "内容", "诉求", "text",
                       "content", "description"), "内容"),
    ),
    "townships": (
        Field("code", ("乡镇代码", "街道代码", "行政区划代码", "区划代码", "xzqdm", *CODE_WORDS),
              "代码"),
        Field("name", ("乡镇名称", "街道名称", "名称", "乡镇", "街道", "xzqmc", "name"), "名称"),
        Field("kind", ("类型", "类别", "kind", "type"), "类型"),
    ),
    "boundary": (Field("name", ("县名", "名称", "name"), "名称"),),
}  # fmt: skip

# Units a header may carry (in brackets or as a suffix): factor to the stored unit.
AREA_UNITS = {"公顷": 10_000.0, "hectare": 10_000.0, "hectares": 10_000.0, "ha": 10_000.0,
              "亩": 10_000.0 / 15, "mu": 10_000.0 / 15, "平方米": 1.0, "m2": 1.0, "㎡": 1.0,
              "sqm": 1.0}  # fmt: skip
MONEY_UNITS = {"万元": 10_000.0, "万": 10_000.0, "元": 1.0, "yuan": 1.0}
UNITS = {"area": AREA_UNITS, "premium_due": MONEY_UNITS, "premium_paid": MONEY_UNITS}

# Names a layer goes by inside a GeoPackage or a zip with several files.
LAYER_NAMES = {
    "compounds": ("compounds", "compound", "小区", "项目", "xq"),
    "parcels": ("parcels", "parcel", "宗地", "zd"),
    "planned": ("planned_areas", "planned", "规划片区", "规划", "片区"),
    "complaints": ("complaints", "complaint", "投诉", "留言"),
    "townships": ("townships", "township", "乡镇", "街道", "乡镇街道"),
    "boundary": ("county", "boundary", "县界", "行政区", "边界", "xzq"),
}


# -- column mapping -----------------------------------------------------------------------------


def _unit_factor(field_name: str, base: str, unit: str) -> tuple[str, float] | None:
    """The header's base without a unit suffix and the unit's factor, when it names one."""
    table = UNITS.get(field_name)
    if not table:
        return base, 1.0
    if unit:
        for word, factor in table.items():
            if unit == word or unit.endswith(word):
                return base, factor
        return None
    for word in sorted(table, key=len, reverse=True):
        if base.endswith(word) and len(base) > len(word):
            return base[: -len(word)], table[word]
    return base, 1.0


def map_columns(
    headers: list[str], layer: str, fields: tuple[Field, ...] | None = None
) -> tuple[dict[str, str], dict[str, float], list[str]]:
    """({field: header}, {field: unit factor}, unused headers) for `layer`, or for a table's
    own `fields` (the developers list, `geo.io.developer_list`)."""
    keys = {h: header_key(h) for h in headers}
    mapping: dict[str, str] = {}
    factors: dict[str, float] = {}
    taken: set[str] = set()
    for spec in fields or FIELDS[layer]:
        wanted = [norm(h) for h in spec.headers]
        best: tuple[int, str, float] | None = None
        for header, (base, unit) in keys.items():
            if header in taken:
                continue
            found = _unit_factor(spec.name, base, unit)
            if found is None:
                continue
            stripped, factor = found
            for candidate in {base, stripped}:
                if candidate in wanted:
                    rank = wanted.index(candidate)
                    if best is None or rank < best[0]:
                        best = (rank, header, factor)
        if best:
            mapping[spec.name] = best[1]
            factors[spec.name] = best[2]
            taken.add(best[1])
    unused = [h for h in headers if h not in taken]
    return mapping, factors, unused


# -- the whole read ------------------------------------------------------------------------------


def check_layer(layer: str) -> None:
    """TitlemapError unless `layer` is one a file can be imported into."""
    if layer not in IMPORT_LAYERS:
        raise TitlemapError(
            f"未知图层 {layer!r}，可选 / unknown layer, one of: {', '.join(IMPORT_LAYERS)}"
        )


@dataclass
class LayerData:
    """Features ready for the importer: canonical columns, `_ref`, geometry in `crs`."""

    layer: str
    source: str
    kind: str
    frame: gpd.GeoDataFrame
    crs: CrsDecision
    columns: dict[str, str]
    factors: dict[str, float]
    unused: list[str]
    notes: list[str]
    headers: list[str]  # every column of the file, as it names them
    project: str  # what the file is about: a TXT's 项目名称, else the file's name


def read_layer(
    path: str | Path,
    layer: str,
    *,
    county_epsg: int | None,
    crs: str | int | None = None,
    limits: Limits | None = None,
    source: str | None = None,
    source_layer: str | None = None,
    options: ImportOptions | None = None,
) -> LayerData:
    """Read `path` (a file, or a zip holding one) as `layer` for a county measuring in
    `county_epsg`; raise TitlemapError with one line when the file cannot be used."""
    check_layer(layer)
    path = Path(path)
    limits = limits or Limits()
    if not path.is_file():
        raise TitlemapError(f"找不到文件 / no such file: {path}")
    size = path.stat().st_size
    if size > limits.upload_bytes:
        raise TitlemapError(
            f"文件过大（{size_words(size)}，上限 {size_words(limits.upload_bytes)}）/ file too "
            "large"
        )
    if size == 0:
        raise TitlemapError(f"文件为空 / the file is empty: {path.name}")
    options = options or ImportOptions()
    ctx = ReadContext(
        layer, limits, source_layer, options, label=IMPORT_LAYERS[layer],
        names=LAYER_NAMES[layer], points=layer in POINT_LAYERS,
    )  # fmt: skip
    workdir = None
    try:
        if is_zip(path):
            workdir = Path(tempfile.mkdtemp(prefix="titlemap-import-"))
            data_file = _data_file(extract_zip(path, workdir, limits), workdir, layer)
        else:
            data_file = path
        reader = reader_for(data_file)
        if reader is None:
            raise TitlemapError(
                f"不支持的文件类型 {data_file.suffix or data_file.name!r} / unsupported file: "
                "GeoPackage, zipped Shapefile, GeoJSON, DXF, CSV or a boundary coordinate TXT "
                "(界址点坐标交换文件)"
            )
        raw = reader.read(data_file, ctx)
    finally:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
    return _finish(raw, reader, layer, source or path.name, county_epsg, crs, options)


def _finish(
    raw: RawLayer, reader: Reader, layer: str, source: str, county_epsg, crs, options
) -> LayerData:
    frame = raw.frame.reset_index(drop=True)
    if len(frame) == 0:
        raise TitlemapError(f"文件中没有要素 / no features in {source}")
    geoms = np.asarray(frame.geometry.values, dtype=object)
    if (shapely.get_coordinate_dimension(geoms) > 2).any():  # force_2d copies every geometry
        geoms = shapely.force_2d(geoms)
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    bounds = shapely.total_bounds(geoms[present]) if present.any() else np.array([np.nan] * 4)
    decision = decide_crs(bounds, raw.crs, crs, county_epsg, options)
    if options.gcj02:
        decision.gcj02 = True
        decision.note = f"{decision.note}；{GCJ_NOTE}"
    headers = [str(c) for c in frame.columns if c != frame.geometry.name]
    mapping, factors, unused = map_columns(headers, layer)
    out = gpd.GeoDataFrame(
        {name: frame[header].to_numpy() for name, header in mapping.items()},
        geometry=list(geoms),
    )
    out["_ref"] = raw.refs if raw.refs is not None else [f"要素 {i + 1}" for i in range(len(out))]
    notes = [*raw.notes]
    if mapping:
        pairs = "，".join(f"{h}→{n}" for n, h in mapping.items())
        notes.append(f"列对应 / columns: {pairs}")
    for name, factor in factors.items():
        if factor != 1.0:
            notes.append(f"{mapping[name]} 按单位换算 ×{factor:g} / converted by ×{factor:g}")
    if unused:
        notes.append(f"未导入的列 / columns not imported: {'、'.join(unused)}")
    project = (raw.project or "").strip() or Path(source).stem
    return LayerData(layer, source, reader.kind, out, decision, mapping, factors, unused, notes,
                     headers, project)  # fmt: skip


# -- a zip's data file ---------------------------------------------------------------------------


def _skip(path: Path, root: Path) -> bool:
    return any(part.startswith(("__MACOSX", ".")) for part in path.relative_to(root).parts)


def _pick(candidates: list[Path], layer: str, what: str) -> Path:
    if len(candidates) == 1:
        return candidates[0]
    wanted = LAYER_NAMES[layer]
    named = [p for p in candidates if p.stem.lower() in wanted]
    if len(named) == 1:
        return named[0]
    names = ", ".join(sorted(p.name for p in candidates))
    raise TitlemapError(
        f"{what}中有多个数据文件（{names}），无法判断哪个是{IMPORT_LAYERS[layer]}：请只保留一个，"
        f"或命名为 {wanted[0]} / several data files ({names}): keep one, or name it {wanted[0]}"
    )


def _data_file(files: list[Path], root: Path, layer: str) -> Path:
    files = [f for f in files if not _skip(f, root)]
    if any(f.suffix.lower() == ".zip" for f in files):
        raise TitlemapError("压缩包内还有压缩包：请解开后再上传 / a zip inside the zip: unpack it")
    candidates = [f for f in files if readable(f)]
    if not candidates:
        seen = ", ".join(sorted(f.name for f in files)[:10]) or "（空 / empty）"
        raise TitlemapError(
            f"压缩包中没有可读的数据文件（{seen}）/ no readable data file in the zip: "
            ".gpkg, .shp (+.dbf/.shx), .geojson, .dxf, .csv"
        )
    return _pick(candidates, layer, "压缩包")
