"""CAD drawings (DXF): closed outlines become features, the text inside one gives its code.

A closed polyline (or a hatch) is a feature; a hatch that only fills a closed polyline is
dropped. A text inside an outline gives its code, a second one with Chinese characters its
name. For a point layer the drawing's points are the features. Chinese text in a DXF is in the
drawing's code page (GBK mostly): GDAL reads it as Latin-1 and it is decoded here.
"""

import re
import threading
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from geo import TitlemapError
from geo.io.readers.ogr import read_ogr
from geo.io.registry import RawLayer, ReadContext, Reader


def _guess_encoding(raw: bytes) -> str:
    for encoding in ("utf-8", "gb18030"):
        try:
            raw.decode(encoding)
            return "UTF-8" if encoding == "utf-8" else "GB18030"
        except UnicodeDecodeError:
            continue
    raise TitlemapError("无法识别文字编码（非 UTF-8 也非 GBK）/ text is neither UTF-8 nor GBK")


_DXF_LOCK = threading.Lock()
_MTEXT_CODES = re.compile(r"\\[A-Za-z][^;\\{}]*;|\\[PpNn~]|[{}]")


def _dxf_text(value, encoding: str) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        value = value.encode("latin-1").decode(encoding)
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass  # already decoded (\U+ escapes) or not text we can fix: keep as it is
    value = _MTEXT_CODES.sub("", value).strip()
    return value or None


def _read_dxf(path: Path, ctx: ReadContext) -> RawLayer:
    """Closed polylines (and hatches) become the features; a text inside one gives its code
    (or, a second one with Chinese characters, its name). Points for point layers."""
    encoding = _guess_encoding(path.read_bytes())
    with _DXF_LOCK:  # GDAL's DXF encoding is a process-wide option
        pyogrio.set_gdal_config_options({"DXF_ENCODING": "ISO-8859-1"})
        try:
            frame = read_ogr(path)
        finally:
            pyogrio.set_gdal_config_options({"DXF_ENCODING": None})
    geoms = shapely.force_2d(np.asarray(frame.geometry.values, dtype=object))
    texts = [_dxf_text(v, encoding) for v in frame.get("Text", pd.Series([None] * len(frame)))]
    kinds = shapely.get_type_id(geoms)
    is_text = np.array([t is not None for t in texts]) & (kinds == 0)
    hatch = frame.get("SubClasses", pd.Series([""] * len(frame))).fillna("").str.contains("Hatch")
    if ctx.points:
        keep = (kinds == 0) & ~is_text
        shapes = geoms[keep]
    else:
        closed = np.zeros(len(geoms), dtype=bool)
        lines = kinds == 1
        closed[lines] = shapely.is_closed(geoms[lines]) & (
            shapely.get_num_points(geoms[lines]) >= 4
        )
        every = np.array(
            [shapely.Polygon(g.coords) if c else g for g, c in zip(geoms, closed, strict=True)],
            dtype=object,
        )
        keep = closed | np.isin(kinds, (3, 6))
        _drop_repeated_hatches(every, closed, kinds, keep)
        shapes = every[keep]
    codes: list[str | None] = [None] * len(shapes)
    names: list[str | None] = [None] * len(shapes)
    points = geoms[is_text]
    labels = [t for t, flag in zip(texts, is_text, strict=True) if flag]
    if len(points) and len(shapes) and not ctx.points:
        tree = shapely.STRtree(points)
        shape_idx, point_idx = tree.query(shapes, predicate="contains")
        inside: dict[int, list[str]] = {}
        for s, p in zip(shape_idx, point_idx, strict=True):
            inside.setdefault(int(s), []).append(labels[p])
        for s, words in inside.items():
            plain = [w for w in words if not re.search(r"[\u4e00-\u9fff]", w)]
            chinese = [w for w in words if re.search(r"[\u4e00-\u9fff]", w)]
            codes[s] = (plain or words)[0]
            names[s] = chinese[0] if chinese and plain else None
    layers = [_dxf_text(v, encoding) for v in frame.get("Layer", pd.Series([None] * len(frame)))]
    out = gpd.GeoDataFrame(
        {
            "code": codes,
            "name": names,
            "dxf_layer": [v for v, k in zip(layers, keep, strict=True) if k],
        },
        geometry=list(shapes),
    )
    dropped = int((~keep & ~is_text & ~hatch.to_numpy()).sum())
    notes = [
        f"DXF：{len(out)} 个闭合图形，编号取自图形内的文字注记 / {len(out)} closed shapes, codes "
        "from the text inside each"
    ]
    if dropped:
        notes.append(
            f"忽略 {dropped} 个非闭合线或其他图元 / ignored {dropped} open lines or others"
        )
    return RawLayer(out, None, notes)


def _drop_repeated_hatches(shapes, closed, kinds, keep) -> None:
    """A hatch filling a closed polyline repeats it: keep the polyline only."""
    hatches = np.flatnonzero(np.isin(kinds, (3, 6)) & keep)
    if not closed.any() or not len(hatches):
        return
    outlines = shapes[closed]
    tree = shapely.STRtree(outlines)
    for i in hatches:
        for j in tree.query(shapes[i]):
            other = outlines[j]
            if shapely.equals(shapes[i], other) or (
                shapely.area(shapely.symmetric_difference(shapes[i], other))
                < 1e-6 * max(shapely.area(other), 1e-12)
            ):
                keep[i] = False
                break


DXF = Reader(
    "dxf", "DXF", (".dxf",), _read_dxf,
    lambda h: h.lstrip().startswith(b"0") and b"SECTION" in h[:200],
)  # fmt: skip
