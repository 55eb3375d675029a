"""Parcel checks (宗地核查): the county report as JSON, xlsx and a GeoJSON layer; a page per parcel.

- `GET /api/checks/parcels` — the report (summary with tolerances and the GK zone, problems);
  `?format=xlsx` or `/api/checks/parcels.xlsx` for the problem list with Chinese headers;
  `/api/checks/parcels/pieces.geojson` for the problem pieces as a map layer (styles, reasons,
  a point inside each and links to the parcel pages; colours from maps.styles).
- `GET /api/parcels?q=…` / `?compound=…` — parcels by code (or its start) or by compound, as
  GeoJSON: the web map's search box and compound card.
- `GET /parcels/{code}` — the page staff read: the parcel drawn with its neighbours, compound
  and problem pieces (inline SVG, no external resources), its figures, each check with pass or
  fail and the reason. `GET /parcels?code=…` searches (a 28-character 不动产单元代码 finds its
  宗地); `GET /parcels/at?lon=…&lat=…` opens the parcel under a point (a click on a web map).
"""

import html
import json
import math
import re
from collections import OrderedDict
from io import BytesIO
from typing import Annotated
from urllib.parse import quote

import shapely
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import Connection, text

from api.dependencies import connection, user_errors
from geo import TitlemapError
from geo.checks.run import (
    CHECK_METHODS,
    CHECKS,
    CheckReport,
    CheckSettings,
    ParcelCheck,
    check_parcel,
    crs_words,
    run_parcel_checks,
    write_xlsx,
)
from geo.core.codes import check_parcel_code, check_unit_code
from geo.core.model import LAND_USE_LABELS, STATUS_LABELS, LedgerStatus
from geo.query.compounds import data_version, get_county
from maps.styles import (
    PIECE_STYLES,
    PIECE_WEIGHT,
    piece_legend,
    piece_pattern_svg,
)

router = APIRouter(tags=["checks"])

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
STATUS_WORDS = {"pass": "通过", "fail": "不通过", "skip": "不适用"}
FIND_LIMIT = 200  # parcels /api/parcels gives at most
SVG_WIDTH, SVG_MAX_HEIGHT = 640, 520


DEFAULT = CheckSettings()


def tolerance_query(
    area_tolerance: Annotated[
        float, Query(ge=0, lt=1, description="面积容差（比例，0.01 = 1%）/ area tolerance")
    ] = DEFAULT.area_tolerance,
    overlap_tolerance_m2: Annotated[
        float, Query(ge=0, description="重叠容差 m²，不超过的碎片忽略并计数")
    ] = DEFAULT.overlap_tolerance_m2,
    gap_tolerance_m2: Annotated[
        float, Query(ge=0, description="缝隙容差 m²")
    ] = DEFAULT.gap_tolerance_m2,
    gap_width_m: Annotated[
        float, Query(gt=0, le=100, description="缝隙搜索宽度 m")
    ] = DEFAULT.gap_width_m,
    beyond_tolerance_m2: Annotated[
        float, Query(ge=0, description="超出宗地容差 m²")
    ] = DEFAULT.beyond_tolerance_m2,
    planned_tolerance_m2: Annotated[
        float, Query(ge=0, description="规划冲突容差 m²")
    ] = DEFAULT.planned_tolerance_m2,
    arrears_tolerance_yuan: Annotated[
        float, Query(ge=0, description="欠缴容差 元")
    ] = DEFAULT.arrears_tolerance_yuan,
) -> CheckSettings:
    with user_errors():
        return CheckSettings(
            area_tolerance=area_tolerance,
            overlap_tolerance_m2=overlap_tolerance_m2,
            gap_tolerance_m2=gap_tolerance_m2,
            gap_width_m=gap_width_m,
            beyond_tolerance_m2=beyond_tolerance_m2,
            planned_tolerance_m2=planned_tolerance_m2,
            arrears_tolerance_yuan=arrears_tolerance_yuan,
        )


Tolerances = Annotated[CheckSettings, Depends(tolerance_query)]
County = Annotated[str | None, Query(description="县级行政区划代码 / county code")]


def _county(request: Request, county: str | None) -> str:
    return county or request.app.state.settings.county


# Recent reports by county, data revision and tolerances: the map's problem layer, the JSON
# and the xlsx of one state of the data cost one run (seconds on a large county), and any
# edit (the revision, bumped by triggers) makes the next request run the checks again.
_REPORTS: OrderedDict[tuple, CheckReport] = OrderedDict()
_KEEP_REPORTS = 4


def _report(request: Request, conn: Connection, county: str | None, settings) -> CheckReport:
    code = _county(request, county)
    key = (code, data_version(conn, code), settings)
    report = _REPORTS.get(key)
    if report is None:
        with user_errors(404):
            report = run_parcel_checks(conn, code, settings)
        _REPORTS[key] = report
        while len(_REPORTS) > _KEEP_REPORTS:
            _REPORTS.popitem(last=False)
    _REPORTS.move_to_end(key)
    return report


# -- the county report ---------------------------------------------------------------------------


@router.get(
    "/api/checks/parcels",
    summary="宗地核查报告 / parcel checks for the whole county",
    responses={200: {"content": {"application/json": {}, XLSX_TYPE: {}}}},
)
def parcel_report(
    request: Request,
    conn: Annotated[Connection, Depends(connection)],
    settings: Tolerances,
    county: County = None,
    format: Annotated[str, Query(pattern="^(json|xlsx)$", description="json / xlsx")] = "json",
    check: Annotated[
        list[str] | None,
        Query(description="只列这些核查项 / only these checks: " + ", ".join(CHECKS)),
    ] = None,
) -> Response:
    """Every check on every parcel: the summary names the tolerances and the Gauss-Krüger zone
    the figures were measured in, so each can be redone."""
    wanted = [c for value in check or [] for c in value.split(",") if c]
    unknown = sorted(set(wanted) - set(CHECKS))
    if unknown:
        raise HTTPException(
            422, f"未知核查项 / unknown check {unknown}; 可选 / allowed: {list(CHECKS)}"
        )
    report = _report(request, conn, county, settings)
    if format == "xlsx":
        return _xlsx(report)
    body = report.to_dict()
    if wanted:
        body["problems"] = [p for p in body["problems"] if p["check"] in wanted]
    return Response(json.dumps(body, ensure_ascii=False), media_type="application/json")


@router.get(
    "/api/checks/parcels.xlsx",
    summary="宗地核查问题清单 xlsx / the problem list as xlsx (Chinese headers)",
    response_class=Response,
    responses={200: {"content": {XLSX_TYPE: {}}}},
)
def parcel_report_xlsx(
    request: Request,
    conn: Annotated[Connection, Depends(connection)],
    settings: Tolerances,
    county: County = None,
) -> Response:
    return _xlsx(_report(request, conn, county, settings))


def _xlsx(report: CheckReport) -> Response:
    buffer = BytesIO()
    write_xlsx(report, buffer)
    name = f"{report.county_name}宗地核查问题清单.xlsx"
    disposition = (
        f'attachment; filename="parcel-checks-{report.county}.xlsx"; '
        f"filename*=UTF-8''{quote(name)}"
    )
    return Response(buffer.getvalue(), media_type=XLSX_TYPE,
                    headers={"Content-Disposition": disposition})  # fmt: skip


@router.get(
    "/api/checks/parcels/pieces.geojson",
    summary="问题图斑 / problem pieces (overlaps, gaps, land beyond parcels, planned conflicts)",
    response_class=Response,
    responses={200: {"content": {"application/geo+json": {}}}},
)
def parcel_pieces(
    request: Request,
    conn: Annotated[Connection, Depends(connection)],
    settings: Tolerances,
    county: County = None,
) -> Response:
    """A layer for the web map: each piece with its kind, Chinese label, area, the parcels it
    concerns with links to their pages, the reasons of its problems, a point inside it (for
    a pin where the piece is too small to see) and its style from maps.styles; the report
    summary rides along."""
    report = _report(request, conn, county, settings)
    layer = report.pieces_geojson()
    reasons: dict[str, list[str]] = {}
    for problem in report.problems:
        for piece in problem.pieces:
            if problem.reason not in reasons.setdefault(piece, []):
                reasons[piece].append(problem.reason)
    # copies: the report's own pieces stay as the checks made them (reports are kept)
    layer["features"] = [
        {**feature, "properties": dict(feature["properties"])} for feature in layer["features"]
    ]
    for feature in layer["features"]:
        props = feature["properties"]
        style = PIECE_STYLES[props["kind"]]
        props |= {"colour": style["colour"], "hatch": style["hatch"], "label_en": style["label_en"]}
        props["links"] = [_page_url(code, report.county) for code in props.get("parcels") or []]
        props["reasons"] = reasons.get(feature["id"], [])
        inside = shapely.geometry.shape(feature["geometry"]).representative_point()
        props["lon"], props["lat"] = round(inside.x, 7), round(inside.y, 7)
    return Response(json.dumps(layer, ensure_ascii=False), media_type="application/geo+json")


@router.get(
    "/api/parcels",
    summary="按代码或小区找宗地 / find parcels by code (or its start) or by compound",
    response_class=Response,
    responses={200: {"content": {"application/geo+json": {}}}},
)
def parcel_find(
    request: Request,
    conn: Annotated[Connection, Depends(connection)],
    q: Annotated[
        str | None,
        Query(max_length=28, description="宗地代码或其开头；28 位不动产单元代码取前 19 位"),
    ] = None,
    compound: Annotated[
        str | None, Query(max_length=64, description="小区编号 / compound code")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=FIND_LIMIT)] = 20,
    county: County = None,
) -> Response:
    """Parcels as GeoJSON (EPSG:4490) with the properties of the map's parcel layer, the GK
    area, a point inside, the box and the parcel page's address — for the web map's search
    box and the compound card."""
    county = _county(request, county)
    prefix = (q or "").strip().upper()
    prefix = prefix[:19] if len(prefix) == 28 else prefix  # a 不动产单元代码 names its 宗地
    if not prefix and not compound:
        raise HTTPException(
            422, "需要 q（宗地代码或其开头）或 compound（小区编号）/ give q or compound"
        )
    if prefix and not re.fullmatch("[0-9A-Z]+", prefix):
        raise HTTPException(
            422, f"宗地代码只含数字和大写字母 / a parcel code holds digits and letters: {q!r}"
        )
    with user_errors(404):
        epsg = get_county(conn, county).epsg
    where = ["p.county_code = :county"]
    if prefix:
        where.append("p.code LIKE :prefix")
    if compound:
        where.append("""EXISTS (SELECT 1 FROM compound_parcel cp JOIN compound c ON c.id =
                        cp.compound_id WHERE cp.parcel_id = p.id AND c.code = :compound)""")
    sql = f"""
        WITH src AS (SELECT p.* FROM parcel p WHERE {" AND ".join(where)}),
        page AS (SELECT * FROM src ORDER BY code LIMIT :limit)
        SELECT json_build_object(
            'type', 'FeatureCollection',
            'numberMatched', (SELECT count(*) FROM src),
            'numberReturned', (SELECT count(*) FROM page),
            'features', coalesce(json_agg(json_build_object(
                'type', 'Feature',
                'geometry', ST_AsGeoJSON(s.geom, 7)::json,
                'bbox', json_build_array(ST_XMin(s.geom), ST_YMin(s.geom),
                                         ST_XMax(s.geom), ST_YMax(s.geom)),
                'properties', json_build_object(
                    'code', s.code, 'land_use', s.land_use, 'right_type', s.right_type,
                    'recorded_area_m2', s.recorded_area_m2::float8,
                    'drawn_area_m2', round(ST_Area(ST_Transform(s.geom, :epsg))::numeric, 2),
                    'premium_owed', greatest(coalesce(s.premium_due, 0)
                                             - coalesce(s.premium_paid, 0), 0)::float8,
                    'compound_codes', (SELECT string_agg(c.code, ',' ORDER BY c.code)
                                       FROM compound_parcel cp JOIN compound c
                                       ON c.id = cp.compound_id WHERE cp.parcel_id = s.id),
                    'lon', ST_X(ST_PointOnSurface(s.geom)),
                    'lat', ST_Y(ST_PointOnSurface(s.geom))
                )
            ) ORDER BY s.code), '[]'::json)
        )::text
        FROM page s
    """
    params = {"county": county, "prefix": prefix + "%", "compound": compound, "limit": limit,
              "epsg": epsg}  # fmt: skip
    body = json.loads(conn.execute(text(sql), params).scalar_one())
    for feature in body["features"]:
        props = feature["properties"]
        props["land_use_label"] = LAND_USE_LABELS.get(props["land_use"] or "")
        props["page"] = _page_url(props["code"], county)
    return Response(json.dumps(body, ensure_ascii=False), media_type="application/geo+json")


# -- the parcel page -----------------------------------------------------------------------------


@router.get("/parcels", response_class=HTMLResponse, summary="宗地查询 / find a parcel by code")
def parcel_search(
    request: Request,
    conn: Annotated[Connection, Depends(connection)],
    code: Annotated[
        str | None, Query(max_length=64, description="宗地代码或不动产单元代码")
    ] = None,
    county: County = None,
) -> Response:
    county = _county(request, county)
    if not code or not code.strip():
        return HTMLResponse(_search_page(county, "", []))
    code = code.strip().upper()
    parcel = code[:19] if len(code) == 28 else code
    found = conn.execute(
        text("SELECT code FROM parcel WHERE county_code = :c AND code = :code"),
        {"c": county, "code": parcel},
    ).scalar()
    if found:
        return RedirectResponse(f"/parcels/{quote(found)}?county={quote(county)}", status_code=303)
    like = conn.execute(
        text("""
            SELECT code FROM parcel WHERE county_code = :c AND code LIKE :prefix
            ORDER BY code LIMIT 20
        """),
        {"c": county, "prefix": parcel.replace("%", "").replace("_", "") + "%"},
    ).scalars().all()  # fmt: skip
    return HTMLResponse(_search_page(county, code, like), status_code=404)


@router.get("/parcels/at", summary="坐标处的宗地 / the parcel at a point (web-map clicks)")
def parcel_at(
    request: Request,
    conn: Annotated[Connection, Depends(connection)],
    lon: Annotated[float, Query(ge=-180, le=180)],
    lat: Annotated[float, Query(ge=-90, le=90)],
    county: County = None,
) -> Response:
    county = _county(request, county)
    code = conn.execute(
        text("""
            SELECT code FROM parcel
            WHERE county_code = :c
              AND geom && ST_Expand(ST_SetSRID(ST_MakePoint(:x, :y), 4490), 0.0002)
            ORDER BY ST_Distance(geom, ST_SetSRID(ST_MakePoint(:x, :y), 4490)), code LIMIT 1
        """),
        {"c": county, "x": lon, "y": lat},
    ).scalar()  # fmt: skip
    if code is None:
        raise HTTPException(
            404, f"该位置附近没有宗地 / no parcel within about 20 m of {lon}, {lat}"
        )
    return RedirectResponse(f"/parcels/{quote(code)}?county={quote(county)}", status_code=303)


@router.get("/parcels/{code}", response_class=HTMLResponse, summary="宗地核查页 / one parcel")
def parcel_page(
    request: Request,
    code: str,
    conn: Annotated[Connection, Depends(connection)],
    settings: Tolerances,
    county: County = None,
) -> Response:
    county = _county(request, county)
    try:
        checked = check_parcel(conn, county, code, settings)
    except TitlemapError:
        like: list[str] = []
        return HTMLResponse(_search_page(county, code, like), status_code=404)
    name = get_county(conn, county).name
    return HTMLResponse(_parcel_page(checked, name))


# -- HTML ----------------------------------------------------------------------------------------

STYLE = """
body{font-family:"Noto Sans CJK SC","Noto Sans SC","Microsoft YaHei","PingFang SC",sans-serif;
margin:0;color:#222;background:#fafafa}
header{background:#1f3a5f;color:#fff;padding:10px 20px;display:flex;gap:20px;align-items:center;
flex-wrap:wrap}
header h1{font-size:20px;margin:0}header a{color:#fff}
form{display:flex;gap:6px}input[type=text]{width:300px;padding:4px 6px;font-family:monospace}
main{padding:16px 20px;display:grid;grid-template-columns:minmax(0,660px) minmax(0,1fr);gap:20px}
section{background:#fff;border:1px solid #ddd;border-radius:4px;padding:12px 14px}
h2{font-size:16px;margin:0 0 8px}table{border-collapse:collapse;width:100%;font-size:14px}
th,td{border-bottom:1px solid #eee;padding:5px 6px;text-align:left;vertical-align:top}
th{background:#f3f3f3;white-space:nowrap}.num{text-align:right;font-variant-numeric:tabular-nums}
.pass{color:#00734f;font-weight:bold}.fail{color:#b23c00;font-weight:bold}.skip{color:#777}
.badge{display:inline-block;padding:2px 8px;border-radius:10px;color:#fff;font-size:13px}
.b-pass{background:#009E73}.b-fail{background:#D55E00}.b-skip{background:#999}
.code{font-family:monospace}.note{color:#666;font-size:13px}.wide{grid-column:1/-1}
.legend span{display:inline-block;margin-right:12px;font-size:13px}
.legend i{display:inline-block;width:14px;height:10px;margin-right:4px;border:1px solid #555}
.legend svg{vertical-align:middle;margin-right:4px}
svg a:hover path{stroke:#000;stroke-width:2}
@media (max-width:1000px){main{grid-template-columns:1fr}}
"""


def _page_url(code: str, county: str) -> str:
    return f"/parcels/{quote(code, safe='')}?county={quote(county, safe='')}"


def _e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>{body}</body></html>"
    )


def _header(county: str, code: str = "") -> str:
    return (
        f'<header><h1>宗地核查</h1><form method="get" action="/parcels">'
        f'<input type="hidden" name="county" value="{_e(county)}">'
        f'<input type="text" name="code" value="{_e(code)}" maxlength="64" '
        f'placeholder="宗地代码（19 位）或不动产单元代码（28 位）" aria-label="宗地代码">'
        f'<button type="submit">查询</button></form>'
        f'<a href="/api/checks/parcels.xlsx?county={_e(quote(county))}">'
        "全县问题清单（xlsx）</a></header>"
    )


def _search_page(county: str, code: str, similar: list[str]) -> str:
    parts = [_header(county, code), '<main><section class="wide">']
    if code:
        failures = (check_unit_code(code, county) if len(code) > 19 else
                    check_parcel_code(code, county))  # fmt: skip
        parts.append(f'<h2>本县没有宗地 <span class="code">{_e(code)}</span></h2>')
        if failures:
            parts.append("<p>代码本身有误：</p><ul>")
            parts += [f"<li>第 {_e(f.position)} 位：{_e(f.zh)}</li>" for f in failures]
            parts.append("</ul>")
        else:
            parts.append("<p>代码格式正确，但数据库中没有这一宗地。</p>")
        if similar:
            parts.append("<p>以此开头的宗地：</p><ul>")
            parts += [f'<li><a class="code" href="{_e(_page_url(c, county))}">{_e(c)}</a></li>'
                      for c in similar]  # fmt: skip
            parts.append("</ul>")
    else:
        parts.append("<h2>按宗地代码查询</h2><p>输入 19 位宗地代码或 28 位不动产单元代码。</p>")
    parts.append("</section></main>")
    return _page(f"宗地查询 {code}", "".join(parts))


def _parcel_page(checked: ParcelCheck, county_name: str) -> str:
    report = checked.report
    county = report.county
    counts = {s: sum(r.status == s for r in checked.results) for s in STATUS_WORDS}
    badges = " ".join(
        f'<span class="badge b-{s}">{STATUS_WORDS[s]} {n}</span>' for s, n in counts.items() if n
    )
    parts = [_header(county, checked.code), "<main>"]
    parts.append(
        f'<section><h2>宗地 <span class="code">{_e(checked.code)}</span> {badges}</h2>'
        f"{_svg(checked)}{_legend()}</section>"
    )
    parts.append(f"<section><h2>宗地信息</h2>{_figures_table(checked, county_name)}</section>")
    rows = "".join(
        f'<tr><td>{_e(r.label)}</td><td class="{r.status}">{STATUS_WORDS[r.status]}</td>'
        f"<td>{_e(r.reason)}</td></tr>"
        for r in checked.results
    )
    parts.append(
        '<section class="wide"><h2>核查结果</h2><table><thead><tr><th>核查项</th><th>结果</th>'
        f"<th>原因</th></tr></thead><tbody>{rows}</tbody></table></section>"
    )
    parts.append(f'<section class="wide"><h2>相邻宗地</h2>{_neighbours(checked)}</section>')
    methods = "".join(
        f"<tr><td>{_e(CHECKS[c][0])}</td><td>{_e(CHECK_METHODS[c])}</td></tr>"
        for c in (r.check for r in checked.results)
    )
    parts.append(
        '<section class="wide"><h2>核查依据</h2>'
        f"<p>面积、距离均在 {_e(crs_words(report.epsg))} 下计算；"
        "图形以 CGCS2000（EPSG:4490）存储。</p>"
        f"<p>容差：{_e(report.settings.line())}。</p>"
        f'<table><tbody>{methods}</tbody></table><p class="note">核查时间 '
        f"{_e(report.generated_at.strftime('%Y年%m月%d日 %H:%M'))}</p></section></main>"
    )
    return _page(f"宗地核查 {checked.code}", "".join(parts))


def _figures_table(checked: ParcelCheck, county_name: str) -> str:
    f = checked.figures
    epsg = f["gk_epsg"]

    def m2(value) -> str:
        return "—" if value is None else f"{value:,.2f} m²"

    def yuan(value) -> str:
        return "—" if value is None else f"{value:,.2f} 元"

    difference = f["area_difference"]
    land_use = f["land_use"] or ""
    compounds = "<br>".join(
        f'<span class="code">{_e(c["code"])}</span> {_e(c["name"])}'
        + (f"（{_e(STATUS_LABELS.get(LedgerStatus(c['status']), c['status']))}）"
           if c.get("status") else "（不在台账）")
        for c in checked.compounds
    ) or "未关联小区"  # fmt: skip
    rows = [
        ("县（区）", _e(f"{county_name}（{checked.report.county}）")),
        ("宗地代码", f'<span class="code">{_e(f["code"])}</span>'),
        ("所属小区", compounds),
        ("登记面积", m2(f["recorded_area_m2"])),
        (f"图形面积（EPSG:{epsg}）", m2(f["drawn_area_m2"])),
        ("面积相差", "—" if difference is None else f"{difference:+.2%}"),
        ("周长", f"{f['perimeter_m']:,.1f} m"),
        ("地类", _e(f"{land_use} {LAND_USE_LABELS.get(land_use, '')}".strip()) or "—"),
        ("权利性质", _e(f["right_type"] or "—")),
        ("应缴出让金", yuan(f["premium_due"])),
        ("已缴出让金", yuan(f["premium_paid"])),
        ("欠缴出让金", yuan(f["premium_owed"])),
        ("界址点数", _e(f["vertices"])),
        ("位置（经度, 纬度）", f"{f['lon']:.6f}, {f['lat']:.6f}" if f["lon"] is not None else "—"),
    ]
    body = "".join(f"<tr><th>{name}</th><td>{value}</td></tr>" for name, value in rows)
    return f"<table><tbody>{body}</tbody></table>"


def _neighbours(checked: ParcelCheck) -> str:
    if not checked.neighbours:
        return "<p>50 米内没有其他宗地。</p>"
    county = checked.report.county
    flagged = {p["code"] for p in checked.map["parcels"] if p.get("flagged")}
    rows = "".join(
        f'<tr><td><a class="code" href="{_e(_page_url(n["code"], county))}">'
        f"{_e(n['code'])}</a></td><td>{_e('、'.join(n['compounds']) or '未关联小区')}</td>"
        f'<td class="num">{n["distance_m"]:.1f} m</td>'
        f"<td>{'有问题' if n['code'] in flagged else ''}</td></tr>"
        for n in checked.neighbours
    )
    return (
        "<table><thead><tr><th>宗地代码</th><th>所属小区</th><th>距离</th><th></th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _legend() -> str:
    """The page's legend; it holds the hatch patterns (maps.styles) the drawing refers to."""
    items = [("#4a90d9", "本宗地"), ("#e8e8e8", "相邻宗地"), ("none", "所属小区（虚线）"),
             ("#cfe8d5", "规划道路 / 绿地")]  # fmt: skip
    spans = "".join(f'<span><i style="background:{c}"></i>{_e(t)}</span>' for c, t in items)
    defs = "".join(piece_pattern_svg(f"piece-{kind}", kind) for kind in PIECE_STYLES)
    for kind, label, style in piece_legend():
        spans += (
            f'<span><svg width="16" height="12" aria-hidden="true"><rect x="0.5" y="0.5" '
            f'width="15" height="11" fill="url(#piece-{kind})" stroke="{style["colour"]}"/>'
            f"</svg>{_e(label)}</span>"
        )
    return (
        '<svg width="0" height="0" style="position:absolute" aria-hidden="true">'
        f'<defs>{defs}</defs></svg><p class="legend">{spans}</p>'
    )


def _svg(checked: ParcelCheck) -> str:
    """The parcel, its neighbours, compound, planned areas and problem pieces, in the county's
    GK zone (x east, y north), with a scale bar and a north arrow; neighbours link to pages."""
    drawing = checked.map
    me = [p for p in drawing["parcels"] if p["me"]]
    focus = [shapely.geometry.shape(p["geometry"]) for p in me]
    focus += [shapely.geometry.shape(c["geometry"]) for c in drawing["compounds"]]
    focus += [shapely.geometry.shape(p["geometry"]) for p in drawing["pieces"]]
    focus = [g for g in focus if not g.is_empty]
    if not focus:
        return "<p>没有图形。</p>"
    minx, miny, maxx, maxy = shapely.GeometryCollection(focus).bounds
    pad = max(maxx - minx, maxy - miny) * 0.25 + 10
    minx, miny, maxx, maxy = minx - pad, miny - pad, maxx + pad, maxy + pad
    scale = min(SVG_WIDTH / (maxx - minx), SVG_MAX_HEIGHT / (maxy - miny))
    width, height = (maxx - minx) * scale, (maxy - miny) * scale
    view = shapely.box(minx, miny, maxx, maxy)

    def path(geometry: dict) -> str:
        shape = shapely.geometry.shape(geometry).intersection(view)
        rings = []
        for polygon in shapely.get_parts(shape):
            if polygon.geom_type != "Polygon":
                continue
            for ring in [polygon.exterior, *polygon.interiors]:
                points = " L".join(
                    f"{(x - minx) * scale:.1f} {(maxy - y) * scale:.1f}" for x, y in ring.coords
                )
                rings.append(f"M{points}Z")
        return "".join(rings)

    def label(geometry: dict, words: str, size: int = 11) -> str:
        point = shapely.geometry.shape(geometry).intersection(view).representative_point()
        if point.is_empty:
            return ""
        return (
            f'<text x="{(point.x - minx) * scale:.1f}" y="{(maxy - point.y) * scale:.1f}" '
            f'font-size="{size}" text-anchor="middle" fill="#222">{_e(words)}</text>'
        )

    county = checked.report.county
    layers = [f'<rect width="{width:.0f}" height="{height:.0f}" fill="#fdfdfb"/>']
    for area in drawing["planned"]:
        layers.append(f'<path d="{path(area["geometry"])}" fill="#cfe8d5" stroke="#7fb08f" '
                      f'fill-rule="evenodd"><title>{_e(area["name"])}</title></path>')  # fmt: skip
    for parcel in drawing["parcels"]:
        if parcel["me"]:
            continue
        stroke = "#b23c00" if parcel.get("flagged") else "#888"
        href = _page_url(parcel["code"], county)
        layers.append(
            f'<a href="{_e(href)}"><path d="{path(parcel["geometry"])}" fill="#e8e8e8" '
            f'stroke="{stroke}" fill-rule="evenodd"><title>{_e(parcel["code"])}</title></path>'
            f"{label(parcel['geometry'], parcel['code'][-7:], 10)}</a>"
        )
    for parcel in me:
        layers.append(f'<path d="{path(parcel["geometry"])}" fill="#4a90d9" fill-opacity="0.55" '
                      f'stroke="#1f3a5f" stroke-width="2" fill-rule="evenodd">'
                      f'<title>{_e(parcel["code"])}</title></path>')  # fmt: skip
    for piece in drawing["pieces"]:
        kind = piece["kind"] if piece["kind"] in PIECE_STYLES else "overlap"
        colour = PIECE_STYLES[kind]["colour"]
        layers.append(
            f'<path class="piece piece-{kind}" d="{path(piece["geometry"])}" '
            f'fill="url(#piece-{kind})" stroke="{colour}" stroke-width="{PIECE_WEIGHT}" '
            f'fill-rule="evenodd"><title>{_e(piece["label"])} {piece["area_m2"]:,.1f} m²'
            "</title></path>"
        )
    for compound in drawing["compounds"]:
        layers.append(f'<path d="{path(compound["geometry"])}" fill="none" stroke="#222" '
                      f'stroke-width="2" stroke-dasharray="7 4"><title>{_e(compound["code"])} '
                      f'{_e(compound["name"])}</title></path>')  # fmt: skip
    for parcel in me:
        layers.append(label(parcel["geometry"], parcel["code"][-7:], 12))
    layers.append(_scale_bar(scale, height))
    layers.append(
        f'<g transform="translate({width - 24:.0f},28)"><path d="M0 -16 L7 6 L0 1 L-7 6 Z" '
        'fill="#222"/><text y="20" font-size="12" text-anchor="middle">北</text></g>'
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        f'aria-label="宗地 {_e(checked.code)} 示意图">{"".join(layers)}</svg>'
        f'<p class="note">示意图：{_e(crs_words(drawing["epsg"]))}，上为北。</p>'
    )


def _scale_bar(scale: float, height: float) -> str:
    """A bar of a round length (1, 2 or 5 × 10ⁿ m) about a quarter of the map wide."""
    target = SVG_WIDTH / 4 / scale
    power = 10 ** math.floor(math.log10(target))
    metres = max(step * power for step in (1, 2, 5) if step * power <= target)
    length = metres * scale
    y = height - 14
    return (
        f'<g><rect x="10" y="{y - 16:.0f}" width="{length + 50:.0f}" height="26" fill="#fff" '
        f'fill-opacity="0.8"/><path d="M14 {y:.0f} h{length:.1f} M14 {y - 5:.0f} v5 '
        f'M{14 + length:.1f} {y - 5:.0f} v5" stroke="#222" stroke-width="2" fill="none"/>'
        f'<text x="{18 + length:.1f}" y="{y:.0f}" font-size="12">{metres:g} m</text></g>'
    )
