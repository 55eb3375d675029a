"""CSV tables of points (x/y, 经度/纬度) or of any geometry (a WKT column).

Offices save CSVs in UTF-8 or GBK, with a title row above the header, blank lines, a 合计 row
and sign-off lines under the table (制表人：…): the header is looked for in the first ten rows,
and the rest is skipped. Each feature is pointed at by its line in the file ("第 5 行").
"""

import csv
import io
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo import TitlemapError
from geo.io.headers import header_key, norm
from geo.io.registry import RawLayer, ReadContext, Reader

LON_HEADERS = (
    "经度",
    "lon",
    "lng",
    "long",
    "longitude",
    "x",
    "x坐标",
    "横坐标",
    "东坐标",
    "easting",
)
LAT_HEADERS = ("纬度", "lat", "latitude", "y", "y坐标", "纵坐标", "北坐标", "northing")
WKT_HEADERS = ("wkt", "geometry", "geom", "图形", "shape")


TOTAL_WORDS = ("合计", "总计", "小计", "total")


def _geometry_headers(headers: list[str]) -> tuple[str | None, str | None, str | None]:
    """(wkt, x, y) headers among `headers`, by their names."""
    keys: dict[str, str] = {}
    for header in headers:
        keys.setdefault(header_key(header)[0], header)

    def first(names) -> str | None:
        return next((keys[k] for k in map(norm, names) if k in keys), None)

    return first(WKT_HEADERS), first(LON_HEADERS), first(LAT_HEADERS)


def _read_csv(path: Path, ctx: ReadContext) -> RawLayer:
    """Points from x/y (经度/纬度) columns, or any geometry from a WKT column. The header may
    sit below a title row; blank lines and a 合计 row are skipped."""
    raw = path.read_bytes()
    try:
        text_value, encoding = raw.decode("utf-8-sig"), "UTF-8"
    except UnicodeDecodeError:
        try:
            text_value, encoding = raw.decode("gb18030"), "GB18030"
        except UnicodeDecodeError:
            raise TitlemapError("CSV 编码无法识别（非 UTF-8 也非 GBK）/ CSV is neither UTF-8 "
                                "nor GBK") from None  # fmt: skip
    try:
        sep = csv.Sniffer().sniff(text_value[:8192], delimiters=",\t;|").delimiter
    except csv.Error:
        sep = ","
    try:
        lines = list(csv.reader(io.StringIO(text_value), delimiter=sep))
    except csv.Error as exc:
        raise TitlemapError(f"CSV 格式有误 / malformed CSV: {exc}") from None
    width = max((len(line) for line in lines), default=0)
    cells = np.array([line + [""] * (width - len(line)) for line in lines], dtype=object)
    cells = cells.reshape(len(lines), width)
    head = next(
        (r for r in range(min(len(cells), 10))
         if _has_geometry(_geometry_headers([str(v).strip() for v in cells[r]]))),
        None,
    )  # fmt: skip
    if head is None:
        first_row = [str(v).strip() for v in cells[0]] if len(cells) else []
        raise TitlemapError(
            f"CSV 中找不到坐标列（表头为 {first_row}）：需要 经度/纬度、lon/lat 或 x/y 列，"
            "或 WKT 图形列 / no coordinate columns: need lon/lat (经度/纬度), x/y or wkt"
        )
    headers = _unique([str(v).strip() for v in cells[head]])
    body = pd.DataFrame(cells[head + 1 :], columns=headers)
    refs = [f"第 {head + 2 + i} 行" for i in range(len(body))]  # line numbers in the file
    texts = np.char.strip(cells[head + 1 :].astype(str)).reshape(len(body), len(headers))
    filled = texts != ""
    blank = ~filled.any(axis=1)
    firsts = texts[np.arange(len(body)), filled.argmax(axis=1)] if len(body) else texts[:, 0]
    total = np.array([v.lower().replace(" ", "").startswith(TOTAL_WORDS) for v in firsts])
    keep = ~blank & ~total
    # Sign-off lines under the table (制表人：…, 审核：…): a cell or two, no coordinates.
    wkt, lon, lat = _geometry_headers(headers)
    where = [headers.index(c) for c in (wkt, lon, lat) if c]
    located = filled[:, where].any(axis=1)
    sparse = filled.sum(axis=1) <= 2
    footer = np.zeros(len(body), dtype=bool)
    for i in range(len(body) - 1, -1, -1):
        if located[i] or not (sparse[i] or blank[i] or total[i]):
            break
        footer[i] = not blank[i] and not total[i]
    keep &= ~footer
    body = body[keep].reset_index(drop=True)
    refs = [r for r, k in zip(refs, keep, strict=True) if k]
    if wkt:
        geoms = shapely.from_wkt(body[wkt].replace("", None).to_numpy(), on_invalid="ignore")
        used = f"图形列 {wkt} (WKT)"
    else:
        x = pd.to_numeric(body[lon].str.replace(",", "").str.strip(), errors="coerce")
        y = pd.to_numeric(body[lat].str.replace(",", "").str.strip(), errors="coerce")
        ok = np.isfinite(x.to_numpy()) & np.isfinite(y.to_numpy())
        geoms = np.full(len(body), None, dtype=object)
        geoms[ok] = shapely.points(x.to_numpy()[ok], y.to_numpy()[ok])
        used = f"坐标列 {lon}/{lat}"
    attributes = body.drop(columns=[c for c in (wkt, lon, lat) if c])
    frame = gpd.GeoDataFrame(attributes, geometry=list(geoms))
    notes = [f"CSV 编码 {encoding}，{used} / CSV read as {encoding}"]
    if head:
        notes.append(f"表头在第 {head + 1} 行 / header on line {head + 1}")
    if total.any() or footer.any():
        notes.append(
            f"跳过合计行和表尾签字行 {int(total.sum() + footer.sum())} 行 / skipped total and "
            "sign-off rows"
        )
    return RawLayer(frame, None, notes, refs)


def _has_geometry(found: tuple[str | None, str | None, str | None]) -> bool:
    wkt, lon, lat = found
    return bool(wkt or (lon and lat))


def _unique(headers: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for header in headers:
        name = header or "列"
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out


CSV = Reader("csv", "CSV", (".csv",), _read_csv)
