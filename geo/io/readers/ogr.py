"""GeoPackage, Shapefile and GeoJSON, read through GDAL (pyogrio).

A GeoPackage with several layers gives the one named like the layer wanted (or the caller's
`source_layer`); a Shapefile needs its .dbf and .shx, and its attributes are decoded as its .cpg
says or, without one, as UTF-8 or GBK, whichever decodes them. GDAL's errors come back as one
line naming the file.
"""

import codecs
from pathlib import Path

import geopandas as gpd
import pyogrio
from pyproj import CRS
from pyproj.exceptions import CRSError

from geo import TitlemapError
from geo.io.registry import RawLayer, ReadContext, Reader


def _ogr_error(path: Path, exc: Exception) -> TitlemapError:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return TitlemapError(
        f"无法读取文件 {path.name}（已损坏或格式不对）：{reason} / cannot read the file "
        "(corrupt or not that format)"
    )


def read_ogr(path: Path, layer: str | None = None, **options) -> gpd.GeoDataFrame:
    """The file (or its `layer`) as GDAL reads it; TitlemapError in one line when it cannot."""
    try:
        return pyogrio.read_dataframe(path, layer=layer, on_invalid="ignore", **options)
    except Exception as exc:  # GDAL says what is wrong; pass it on in one line
        raise _ogr_error(path, exc) from None


def _file_crs(path: Path, layer: str | None = None) -> CRS | None:
    """The file's declared CRS; one pyproj cannot read counts as none (and is inferred)."""
    try:
        wkt = pyogrio.read_info(path, layer=layer)["crs"]
    except Exception as exc:
        raise _ogr_error(path, exc) from None
    try:
        return CRS.from_user_input(wkt) if wkt else None
    except CRSError:
        return None


def _read_gpkg(path: Path, ctx: ReadContext) -> RawLayer:
    try:
        listed = pyogrio.list_layers(path)
    except Exception as exc:
        raise _ogr_error(path, exc) from None
    spatial = [str(name) for name, kind in listed if kind is not None]
    if ctx.source_layer:
        if ctx.source_layer not in spatial:
            raise TitlemapError(
                f"GeoPackage 中没有图层 {ctx.source_layer!r}（有 {spatial}）/ no such layer"
            )
        chosen = ctx.source_layer
    elif not spatial:
        raise TitlemapError("GeoPackage 中没有图形图层 / no spatial layer in the GeoPackage")
    elif len(spatial) == 1:
        chosen = spatial[0]
    else:
        named = [n for n in spatial if n.lower() in ctx.names]
        if len(named) != 1:
            raise TitlemapError(
                f"GeoPackage 有多个图层 {spatial}，无法判断哪个是{ctx.label}："
                f"请只保留一个，或命名为 {ctx.names[0]} / several layers: keep one "
                "or name it"
            )
        chosen = named[0]
    frame = read_ogr(path, layer=chosen)
    notes = [f"读取图层 {chosen} / layer {chosen}"] if len(spatial) > 1 else []
    return RawLayer(frame, _file_crs(path, chosen), notes)


def _cpg_encoding(cpg: Path) -> str | None:
    name = cpg.read_text("ascii", errors="ignore").strip().lstrip("\ufeff").upper()
    name = {"936": "GB18030", "CP936": "GB18030", "GBK": "GB18030", "GB2312": "GB18030",
            "ANSI 936": "GB18030", "65001": "UTF-8", "UTF8": "UTF-8", "1252": "CP1252",
            "ANSI 1252": "CP1252", "950": "BIG5", "BIG5": "BIG5"}.get(name, name)  # fmt: skip
    try:
        codecs.lookup(name)
    except LookupError:
        return None
    return name


def _dbf_encoding(dbf: Path) -> str:
    """UTF-8 or GB18030, whichever decodes the .dbf's field names and records.

    Field names are cut at 10 bytes, sometimes inside a character: a cut tail is forgiven."""
    data = dbf.read_bytes()
    if len(data) < 32:
        raise TitlemapError(f"{dbf.name} 已损坏 / the .dbf is corrupt")
    header_len = int.from_bytes(data[8:10], "little")
    names = [data[i : i + 11].split(b"\0")[0] for i in range(32, max(32, header_len - 32), 32)]
    records = data[header_len:]
    if records.isascii() and all(name.isascii() for name in names):
        return "ASCII"
    for encoding in ("utf-8", "gb18030"):
        try:
            records.decode(encoding)
            for name in names:
                codecs.getincrementaldecoder(encoding)().decode(name, final=False)
        except UnicodeDecodeError:
            continue
        return "UTF-8" if encoding == "utf-8" else "GB18030"
    raise TitlemapError(
        f"无法识别 {dbf.name} 的文字编码（非 UTF-8 也非 GBK）：请附上 .cpg 文件 / cannot tell "
        "the .dbf's encoding: add a .cpg file"
    )


def _sidecar(path: Path, suffix: str) -> Path | None:
    for candidate in path.parent.iterdir():
        if candidate.stem == path.stem and candidate.suffix.lower() == suffix:
            return candidate
    return None


def _read_shapefile(path: Path, ctx: ReadContext) -> RawLayer:
    missing = [s for s in (".dbf", ".shx") if _sidecar(path, s) is None]
    if missing:
        raise TitlemapError(
            f"Shapefile {path.name} 缺少 {'、'.join(missing)} 文件：请把同名的 .shp/.shx/.dbf/.prj"
            "/.cpg 一起打包上传 / the shapefile lacks its " + ", ".join(missing)
        )
    cpg = _sidecar(path, ".cpg")
    encoding = _cpg_encoding(cpg) if cpg else None
    if encoding:
        said = cpg.read_text("ascii", errors="ignore").strip()
        notes = [f"按 .cpg 指定的编码 {said} 读取属性 / attributes read as {said} (.cpg)"]
    else:
        encoding = _dbf_encoding(_sidecar(path, ".dbf"))
        if encoding == "ASCII":
            encoding, notes = "UTF-8", []
        else:
            why = "没有 .cpg 文件" if cpg is None else ".cpg 内容无法识别"
            notes = [
                f"{why}，按内容判断属性编码为 {encoding}"
                f"{'（GBK）' if encoding == 'GB18030' else ''} / no usable .cpg: attributes "
                f"decode as {encoding}"
            ]  # fmt: skip
    frame = read_ogr(path, encoding=encoding)
    return RawLayer(frame, _file_crs(path), notes)


def _read_geojson(path: Path, ctx: ReadContext) -> RawLayer:
    frame = read_ogr(path)
    return RawLayer(frame, _file_crs(path))


GPKG = Reader("gpkg", "GeoPackage", (".gpkg",), _read_gpkg, lambda h: h.startswith(b"SQLite"))
SHAPEFILE = Reader("shapefile", "Shapefile", (".shp",), _read_shapefile)
GEOJSON = Reader(
    "geojson", "GeoJSON", (".geojson", ".json"), _read_geojson,
    lambda h: h.lstrip(b"\xef\xbb\xbf \r\n\t").startswith(b"{"),
)  # fmt: skip
