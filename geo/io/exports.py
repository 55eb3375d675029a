"""Compounds and parcels as GeoPackage or GeoJSON, with the ledger fields, in EPSG:4490 — or as
the land office's boundary coordinate TXT (`boundary-txt`, see `geo.io.boundary_txt`), in the
county's Gauss-Krüger zone. Any format can be narrowed to some codes or one township.

Field names are Chinese (`names="zh"`, what the county's GIS users read) or English
(`names="en"`, the same keys as /api/compounds). Dates travel as ISO text (2026-12-31), which
GeoJSON needs anyway; lists (blockers, departments) as 、-joined words. A GeoJSON file carries
the CRS member naming EPSG:4490 (CGCS2000), so it is not silently taken for WGS84 — the two
are within centimetres, which web maps may ignore.
"""

import re
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import pyogrio
from sqlalchemy import Connection, Engine, text

from geo import TitlemapError
from geo.core.crs import FIRST_ZONE, STORAGE_EPSG, sql_area, to_projected, zone_of_epsg
from geo.core.dates import BEIJING_ZONE
from geo.core.model import BLOCKER_LABELS, LAND_USE_LABELS
from geo.core.rates import rate_sql
from geo.io.boundary_txt import TxtFeature, county_header
from geo.io.boundary_txt import write as write_txt
from geo.query.compounds import NOT_ON_LEDGER, get_county, status_labels_sql

Progress = Callable[[str, int, int | None], None]  # (stage, done, total), as geo.io.ledger_sheet

EXPORT_LAYERS = ("compounds", "parcels")
FORMATS = {"gpkg": "GPKG", "geojson": "GeoJSON"}
BOUNDARY_TXT = "boundary-txt"
MEDIA_TYPES = {"gpkg": "application/geopackage+sqlite3", "geojson": "application/geo+json",
               BOUNDARY_TXT: "text/plain"}  # fmt: skip
SUFFIXES = {".gpkg": "gpkg", ".geojson": "geojson", ".json": "geojson", ".txt": BOUNDARY_TXT}

# (English, Chinese) field names, in file order.
COMPOUND_FIELDS = (
    ("code", "项目编号"), ("name", "项目名称"), ("address", "地址"), ("township", "所在乡镇"),
    ("developer", "开发企业"), ("developer_credit_code", "统一社会信用代码"),
    ("developer_credit_status", "企业信用状态"), ("buildings", "楼栋数"),
    ("units_sold", "已售套数"), ("sold_on", "首次销售日期"), ("occupied_on", "交付入住日期"),
    ("area_m2", "面积平方米"), ("on_ledger", "是否在台账"), ("ledger_no", "台账编号"),
    ("status", "状态代码"), ("status_label", "化解状态"), ("units_task", "问题房屋套数"),
    ("units_first_registered", "首次登记套数"), ("units_transferred", "转移登记套数"),
    ("first_rate", "首次登记化解率"), ("transfer_rate", "转移登记化解率"),
    ("blockers", "卡点代码"), ("blocker_labels", "主要问题"), ("blocker_note", "问题描述"),
    ("lead_department", "牵头单位"), ("cooperating_departments", "配合单位"),
    ("supervising_leader", "包抓领导"), ("task_force_lead", "专班负责人"),
    ("deadline", "完成时限"), ("overdue", "是否逾期"), ("opened_on", "挂账日期"),
    ("closed_on", "销号日期"),
)  # fmt: skip
PARCEL_FIELDS = (
    ("code", "宗地代码"), ("recorded_area_m2", "登记面积平方米"), ("area_m2", "图形面积平方米"),
    ("land_use", "地类"), ("right_type", "权利类型"), ("premium_due", "应缴出让金元"),
    ("premium_paid", "已缴出让金元"), ("premium_owed", "欠缴出让金元"),
    ("compound_codes", "所属项目编号"), ("compound_names", "所属项目名称"),
    ("status", "状态代码"), ("status_label", "化解状态"),
)  # fmt: skip
INTEGER_FIELDS = {"buildings", "units_sold", "units_task", "units_first_registered",
                  "units_transferred"}  # fmt: skip


def _blocker_labels_sql(column: str) -> str:
    whens = " ".join(f"WHEN '{b.value}' THEN '{label}'" for b, label in BLOCKER_LABELS.items())
    return (
        f"(SELECT string_agg(CASE b {whens} ELSE b END, '、' ORDER BY k) "
        f"FROM unnest({column}) WITH ORDINALITY AS u(b, k))"
    )


def compound_select(epsg: int) -> str:
    """SELECT … FROM … of every compound field (COMPOUND_FIELDS, plus id, township_code and
    geom), without WHERE: shared by the exports and the OGC API (geo.ogc.collections)."""
    return f"""
        SELECT c.id, c.code, c.name, c.address, t.name AS township, t.code AS township_code,
               d.name AS developer,
               d.credit_code AS developer_credit_code,
               d.credit_status AS developer_credit_status, c.buildings, c.units_sold,
               to_char(c.sold_on, 'YYYY-MM-DD') AS sold_on,
               to_char(c.occupied_on, 'YYYY-MM-DD') AS occupied_on,
               round({sql_area("c.geom", epsg)}::numeric, 1)::float8 AS area_m2,
               e.id IS NOT NULL AS on_ledger, e.ledger_no,
               coalesce(e.status, '{NOT_ON_LEDGER}') AS status,
               {status_labels_sql()} AS status_label,
               e.units_task, e.units_first_registered, e.units_transferred,
               {rate_sql("e.units_first_registered", "e.units_task")} AS first_rate,
               {rate_sql("e.units_transferred", "e.units_task")} AS transfer_rate,
               array_to_string(e.blockers, ',') AS blockers,
               {_blocker_labels_sql("e.blockers")} AS blocker_labels,
               e.blocker_note, e.lead_department,
               array_to_string(e.cooperating_departments, '、') AS cooperating_departments,
               e.supervising_leader, e.task_force_lead,
               to_char(e.deadline, 'YYYY-MM-DD') AS deadline,
               coalesce(e.deadline < (now() AT TIME ZONE '{BEIJING_ZONE}')::date
                        AND e.status <> 'closed', false) AS overdue,
               to_char(e.opened_on, 'YYYY-MM-DD') AS opened_on,
               to_char(e.closed_on, 'YYYY-MM-DD') AS closed_on,
               c.geom
        FROM compound c
        LEFT JOIN ledger_entry e ON e.compound_id = c.id
        LEFT JOIN township t ON t.id = c.township_id
        LEFT JOIN developer d ON d.id = c.developer_id
    """


def _compounds_sql(epsg: int, where: str = "") -> str:
    return f"{compound_select(epsg)} WHERE c.county_code = :county {where} ORDER BY c.code"


def parcel_select(epsg: int) -> str:
    """SELECT … FROM … of every parcel field (PARCEL_FIELDS plus geom), without WHERE."""
    # A parcel shared by several compounds lists them all, with their statuses, in code order.
    return f"""
        SELECT p.code, p.recorded_area_m2::float8 AS recorded_area_m2,
               round({sql_area("p.geom", epsg)}::numeric, 1)::float8 AS area_m2,
               p.land_use, p.right_type, p.premium_due::float8 AS premium_due,
               p.premium_paid::float8 AS premium_paid,
               greatest(coalesce(p.premium_due, 0) - coalesce(p.premium_paid, 0), 0)::float8
                   AS premium_owed,
               l.compound_codes, l.compound_names, l.status, l.status_label,
               p.geom
        FROM parcel p
        LEFT JOIN LATERAL (
            SELECT string_agg(c.code, '、' ORDER BY c.code) AS compound_codes,
                   string_agg(c.name, '、' ORDER BY c.code) AS compound_names,
                   string_agg(coalesce(e.status, '{NOT_ON_LEDGER}'), ',' ORDER BY c.code)
                       AS status,
                   string_agg({status_labels_sql()}, '、' ORDER BY c.code) AS status_label
            FROM compound_parcel cp
            JOIN compound c ON c.id = cp.compound_id
            LEFT JOIN ledger_entry e ON e.compound_id = c.id
            WHERE cp.parcel_id = p.id
        ) l ON true
    """


def _parcels_sql(epsg: int, where: str = "") -> str:
    return f"{parcel_select(epsg)} WHERE p.county_code = :county {where} ORDER BY p.code"


def _selection(
    conn: Connection, county: str, layer: str, codes, township: str | None
) -> tuple[str, dict]:
    """SQL narrowing the layer to `codes` and/or a township (code or name), and its params."""
    alias = "c" if layer == "compounds" else "p"
    clauses, params = [], {}
    if codes:
        params["codes"] = sorted({str(c).strip() for c in codes if str(c).strip()})
        clauses.append(f"AND {alias}.code = ANY(:codes)")
        table = "compound" if layer == "compounds" else "parcel"
        known = set(
            conn.execute(
                text(f"SELECT code FROM {table} WHERE county_code = :c AND code = ANY(:codes)"),
                {"c": county, "codes": params["codes"]},
            ).scalars()
        )
        unknown = [c for c in params["codes"] if c not in known]
        if unknown:
            raise TitlemapError(
                f"没有这些编号 / unknown codes: {'、'.join(unknown[:10])}"
                + (f" 等 {len(unknown)} 个" if len(unknown) > 10 else "")
            )
    if township:
        found = conn.execute(
            text("SELECT id FROM township WHERE county_code = :c AND (code = :t OR name = :t)"),
            {"c": county, "t": township.strip()},
        ).scalars().all()  # fmt: skip
        if len(found) != 1:
            why = "没有这个乡镇" if not found else "乡镇名称不唯一，请用代码"
            raise TitlemapError(f"{why} / unknown or ambiguous township: {township}")
        params["township_id"] = found[0]
        if layer == "compounds":
            clauses.append("AND c.township_id = :township_id")
        else:  # a parcel belongs where its inside point lies
            clauses.append(
                "AND EXISTS (SELECT 1 FROM township tw WHERE tw.id = :township_id "
                "AND ST_Covers(tw.geom, ST_PointOnSurface(p.geom)))"
            )
    return " ".join(clauses), params


def layer_frame(
    engine: Engine,
    county: str,
    layer: str,
    names: str = "zh",
    *,
    codes: list[str] | None = None,
    township: str | None = None,
) -> gpd.GeoDataFrame:
    """The layer as a GeoDataFrame in EPSG:4490 with Chinese or English field names, narrowed
    to `codes` and/or a `township` (code or name) when given."""
    if layer not in EXPORT_LAYERS:
        raise TitlemapError(f"未知图层 / unknown layer {layer!r}: {' / '.join(EXPORT_LAYERS)}")
    if names not in ("zh", "en"):
        raise TitlemapError(f"字段名应为 zh 或 en / names must be zh or en: {names!r}")
    with engine.connect() as conn:
        info = get_county(conn, county)
        where, params = _selection(conn, county, layer, codes, township)
        build = _compounds_sql if layer == "compounds" else _parcels_sql
        frame = gpd.read_postgis(
            text(build(info.epsg, where)), conn, geom_col="geom", crs=STORAGE_EPSG,
            params={"county": county, **params},
        )  # fmt: skip
    fields = COMPOUND_FIELDS if layer == "compounds" else PARCEL_FIELDS
    frame = frame[[en for en, _ in fields] + ["geom"]]
    for column in INTEGER_FIELDS & set(frame.columns):
        frame[column] = frame[column].astype("Int64")  # whole numbers, NULL off the ledger
    if names == "zh":
        frame = frame.rename(columns=dict(fields))
    return frame.set_geometry("geom")


def export_layer(
    engine: Engine,
    county: str,
    layer: str,
    path: str | Path,
    fmt: str | None = None,
    *,
    names: str = "zh",
    progress: Progress | None = None,
    codes: list[str] | None = None,
    township: str | None = None,
    utf8: bool = False,
) -> Path:
    """Write `layer` (compounds | parcels) of `county` to `path` as gpkg, geojson or
    boundary-txt (GBK unless `utf8`), all of it or the given `codes` / `township`.

    `fmt` defaults to the file's suffix. The GeoPackage layer is named after the layer.
    """
    path = Path(path)
    fmt = (fmt or SUFFIXES.get(path.suffix.lower(), path.suffix.lstrip("."))).lower()
    if fmt not in (*FORMATS, BOUNDARY_TXT):
        raise TitlemapError(
            f"不支持的格式 / unsupported format {fmt!r}: gpkg、geojson 或 / or {BOUNDARY_TXT}"
        )
    if progress is not None:
        progress("query", 0, None)
    frame = layer_frame(engine, county, layer, "en" if fmt == BOUNDARY_TXT else names,
                        codes=codes, township=township)  # fmt: skip
    count = len(frame)
    if fmt == BOUNDARY_TXT:
        if not count:
            raise TitlemapError("没有要导出的要素 / nothing to export")
        _write_boundary_txt(engine, county, layer, frame, path, utf8)
        if progress is not None:
            progress("write", count, count)
        return path
    if progress is not None:
        progress("write", 0, count)
    if path.exists():
        path.unlink()  # GeoJSON cannot be overwritten in place; a GeoPackage would gain a layer
    options = {"COORDINATE_PRECISION": 7} if fmt == "geojson" else {}
    pyogrio.write_dataframe(
        frame,
        path,
        layer=layer,
        driver=FORMATS[fmt],
        geometry_type="MultiPolygon",
        promote_to_multi=True,
        layer_options=options,
    )
    if progress is not None:
        progress("write", count, count)
    return path


LAND_CLASS = re.compile(r"^\d{2}(\d{2})?[A-Z]?$")  # 地类编码 such as 07, 0701, 0701A


def _plain(value) -> str:
    """Text of a cell; "" for NULL (None or NaN from pandas)."""
    return "" if value is None or value != value else str(value).strip()


def _write_boundary_txt(engine: Engine, county: str, layer: str, frame, path: Path, utf8: bool):
    """The boundary coordinate TXT, in the county's GK zone without prefix (带号 says it)."""
    with engine.connect() as conn:
        info = get_county(conn, county)
    zone, _ = zone_of_epsg(info.epsg)
    geoms = to_projected(frame.geometry.to_numpy(), 4534 + zone - FIRST_ZONE)
    features = []
    for row, geom in zip(frame.itertuples(index=False), geoms, strict=True):
        if layer == "compounds":
            use, land_class, name = "", "", _plain(row.name)
        else:
            value = _plain(row.land_use)
            # a 地类编码 also gets its name as 地块用途, as land offices write both
            use, land_class = (
                (LAND_USE_LABELS.get(value, ""), value) if LAND_CLASS.match(value) else (value, "")
            )
            name = _plain(row.compound_names)
        features.append(TxtFeature(row.code, name, use, land_class, geom))
    write_txt(features, path, county_header(f"{info.name}（titlemap）", zone), utf8=utf8)
