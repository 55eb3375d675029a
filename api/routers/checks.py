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

import json
import math
import re
import unicodedata
from io import BytesIO
from typing import Annotated
from urllib.parse import quote

import shapely
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from markupsafe import Markup
from sqlalchemy import Connection, text

from api.dependencies import connection, county_of, user_errors
from api.pages import XLSX_TYPE, html_page
from geo import TitlemapError
from geo.checks.parcel import ParcelCheck, check_parcel
from geo.checks.report import CHECK_METHODS, CHECKS, CheckReport, CheckSettings, crs_words
from geo.checks.run import run_parcel_checks
from geo.checks.xlsx import write_xlsx
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

HTML_PAGE = {200: {"content": {"text/html": {}}, "description": "网页 / the page"}}
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


# Recent reports by county, tolerances and data revision, kept by the app
# (`app.state.check_reports`): the map's problem layer, the JSON and the xlsx of one state of
# the data cost one run (seconds on a large county), and any edit (the revision, bumped by
# triggers) makes the next request run the checks again.
def _report(
    request: Request, conn: Connection, county: str | None, settings: CheckSettings
) -> CheckReport:
    code = county_of(request, county)
    key = ("check_report", code, settings, data_version(conn, code))
    with user_errors(404):
        return request.app.state.check_reports(key, lambda: run_parcel_checks(conn, code, settings))


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
    county = county_of(request, county)
    prefix = _code_asked(q)
    if not prefix and not compound:
        raise HTTPException(
            422, "需要 q（宗地代码或其开头）或 compound（小区编号）/ give q or compound"
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
    params = {"county": county, "prefix": _starting_with(prefix), "compound": compound,
              "limit": limit, "epsg": epsg}  # fmt: skip
    body = json.loads(conn.execute(text(sql), params).scalar_one())
    for feature in body["features"]:
        props = feature["properties"]
        props["land_use_label"] = LAND_USE_LABELS.get(props["land_use"] or "")
        props["page"] = _page_url(props["code"], county)
    return Response(json.dumps(body, ensure_ascii=False), media_type="application/geo+json")


def _code_asked(value: str | None) -> str:
    """A parcel code as typed: 宗地代码 (any case; a 28-character 不动产单元代码 names its
    宗地 by its first 19) or a survey's own plot number (滨河安置小区-1), as stored."""
    code = unicodedata.normalize("NFKC", value or "").strip()
    if re.fullmatch("[0-9A-Za-z]+", code):
        code = code.upper()
        return code[:19] if len(code) == 28 else code
    return code


def _starting_with(prefix: str) -> str:
    """A LIKE pattern for codes starting with `prefix`, its % and _ taken literally."""
    return re.sub(r"([\\%_])", r"\\\1", prefix) + "%"


# -- the parcel page -----------------------------------------------------------------------------


@router.get(
    "/parcels",
    response_class=Response,  # the page as HTML; its errors as JSON (api.errors)
    responses=HTML_PAGE,
    summary="宗地查询 / find a parcel by code",
)
def parcel_search(
    request: Request,
    conn: Annotated[Connection, Depends(connection)],
    code: Annotated[
        str | None, Query(max_length=64, description="宗地代码或不动产单元代码")
    ] = None,
    county: County = None,
) -> Response:
    county = county_of(request, county)
    if not code or not code.strip():
        return _search_page(county, "", [])
    code = code.strip()
    parcel = _code_asked(code)
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
        {"c": county, "prefix": _starting_with(parcel)},
    ).scalars().all()  # fmt: skip
    return _search_page(county, code, like, 404)


@router.get("/parcels/at", summary="坐标处的宗地 / the parcel at a point (web-map clicks)")
def parcel_at(
    request: Request,
    conn: Annotated[Connection, Depends(connection)],
    lon: Annotated[float, Query(ge=-180, le=180)],
    lat: Annotated[float, Query(ge=-90, le=90)],
    county: County = None,
) -> Response:
    county = county_of(request, county)
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


@router.get(
    "/parcels/{code}",
    response_class=Response,
    responses=HTML_PAGE,
    summary="宗地核查页 / one parcel",
)
def parcel_page(
    request: Request,
    code: str,
    conn: Annotated[Connection, Depends(connection)],
    settings: Tolerances,
    county: County = None,
) -> Response:
    county = county_of(request, county)
    try:
        checked = check_parcel(conn, county, code, settings)
    except TitlemapError:
        like: list[str] = []
        return _search_page(county, code, like, 404)
    name = get_county(conn, county).name
    return _parcel_page(checked, name)


# -- HTML (templates in api/templates: parcels_layout, parcel, parcel_search, parcel_drawing) --


def _page_url(code: str, county: str) -> str:
    return f"/parcels/{quote(code, safe='')}?county={quote(county, safe='')}"


def _layout(county: str, code: str) -> dict:
    """What the header of every parcel page shows: the search box and the county's xlsx."""
    return {"county": county, "code": code,
            "xlsx_href": f"/api/checks/parcels.xlsx?county={quote(county)}"}  # fmt: skip


def _search_page(
    county: str, code: str, similar: list[str], status_code: int = 200
) -> HTMLResponse:
    failures = []
    if code:
        failures = (check_unit_code(code, county) if len(code) > 19 else
                    check_parcel_code(code, county))  # fmt: skip
    return html_page(
        "parcel_search.html",
        status_code,
        title=f"宗地查询 {code}",
        failures=failures,
        similar=[{"code": c, "href": _page_url(c, county)} for c in similar],
        **_layout(county, code),
    )


def _parcel_page(checked: ParcelCheck, county_name: str) -> HTMLResponse:
    report = checked.report
    counts = {s: sum(r.status == s for r in checked.results) for s in STATUS_WORDS}
    # the hatch patterns are maps.styles' own markup (colours and numbers, no user text)
    patterns = Markup("".join(piece_pattern_svg(f"piece-{kind}", kind) for kind in PIECE_STYLES))
    return html_page(
        "parcel.html",
        title=f"宗地核查 {checked.code}",
        county_name=county_name,
        badges=[(s, n) for s, n in counts.items() if n],
        words=STATUS_WORDS,
        drawing=_drawing(checked),
        patterns=patterns,
        pieces=[(kind, label, style["colour"]) for kind, label, style in piece_legend()],
        figures_code=checked.figures["code"],
        compounds=[c | {"status": _ledger_status(c)} for c in checked.compounds],
        figures=_figures(checked),
        results=checked.results,
        neighbours=_neighbours(checked),
        methods=[(CHECKS[r.check][0], CHECK_METHODS[r.check]) for r in checked.results],
        crs=crs_words(report.epsg),
        tolerances=report.settings.line(),
        checked_at=report.generated_at.strftime("%Y年%m月%d日 %H:%M"),
        **_layout(report.county, checked.code),
    )


def _ledger_status(compound: dict) -> str | None:
    """The compound's ledger status in Chinese, None when it is not on the ledger."""
    status = compound.get("status")
    return STATUS_LABELS.get(LedgerStatus(status), status) if status else None


def _figures(checked: ParcelCheck) -> list[tuple[str, str]]:
    """The parcel's figures after its county, code and compounds, as (name, words)."""
    f = checked.figures

    def m2(value) -> str:
        return "—" if value is None else f"{value:,.2f} m²"

    def yuan(value) -> str:
        return "—" if value is None else f"{value:,.2f} 元"

    difference = f["area_difference"]
    land_use = f["land_use"] or ""
    return [
        ("登记面积", m2(f["recorded_area_m2"])),
        (f"图形面积（EPSG:{f['gk_epsg']}）", m2(f["drawn_area_m2"])),
        ("面积相差", "—" if difference is None else f"{difference:+.2%}"),
        ("周长", f"{f['perimeter_m']:,.1f} m"),
        ("地类", f"{land_use} {LAND_USE_LABELS.get(land_use, '')}".strip() or "—"),
        ("权利性质", f["right_type"] or "—"),
        ("应缴出让金", yuan(f["premium_due"])),
        ("已缴出让金", yuan(f["premium_paid"])),
        ("欠缴出让金", yuan(f["premium_owed"])),
        ("界址点数", "" if f["vertices"] is None else str(f["vertices"])),
        ("位置（经度, 纬度）", f"{f['lon']:.6f}, {f['lat']:.6f}" if f["lon"] is not None else "—"),
    ]


def _neighbours(checked: ParcelCheck) -> list[dict]:
    county = checked.report.county
    flagged = {p["code"] for p in checked.map["parcels"] if p.get("flagged")}
    return [
        {"code": n["code"], "href": _page_url(n["code"], county),
         "compounds": "、".join(n["compounds"]) or "未关联小区",
         "distance": f"{n['distance_m']:.1f}", "flagged": n["code"] in flagged}
        for n in checked.neighbours
    ]  # fmt: skip


def _drawing(checked: ParcelCheck) -> dict | None:
    """The parcel, its neighbours, compound, planned areas and problem pieces, in the county's
    GK zone (x east, y north), with a scale bar and a north arrow: numbers and path data for
    parcel_drawing.svg, or None when there is nothing to draw."""
    drawing = checked.map
    me = [p for p in drawing["parcels"] if p["me"]]
    focus = [shapely.geometry.shape(p["geometry"]) for p in me]
    focus += [shapely.geometry.shape(c["geometry"]) for c in drawing["compounds"]]
    focus += [shapely.geometry.shape(p["geometry"]) for p in drawing["pieces"]]
    focus = [g for g in focus if not g.is_empty]
    if not focus:
        return None
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

    def label(geometry: dict, words: str) -> dict | None:
        point = shapely.geometry.shape(geometry).intersection(view).representative_point()
        if point.is_empty:
            return None
        return {"x": f"{(point.x - minx) * scale:.1f}", "y": f"{(maxy - point.y) * scale:.1f}",
                "words": words}  # fmt: skip

    county = checked.report.county

    def parcel(p: dict) -> dict:
        return {"d": path(p["geometry"]), "code": p["code"], "href": _page_url(p["code"], county),
                "stroke": "#b23c00" if p.get("flagged") else "#888",
                "label": label(p["geometry"], p["code"][-7:])}  # fmt: skip

    def piece(p: dict) -> dict:
        kind = p["kind"] if p["kind"] in PIECE_STYLES else "overlap"
        return {"kind": kind, "d": path(p["geometry"]), "label": p["label"],
                "colour": PIECE_STYLES[kind]["colour"], "weight": PIECE_WEIGHT,
                "area": f"{p['area_m2']:,.1f}"}  # fmt: skip

    planned = [{"d": path(a["geometry"]), "name": a["name"]} for a in drawing["planned"]]
    compounds = [{"d": path(c["geometry"]), "code": c["code"], "name": c["name"]}
                 for c in drawing["compounds"]]  # fmt: skip
    return {
        "width": f"{width:.0f}",
        "height": f"{height:.0f}",
        "crs": crs_words(drawing["epsg"]),
        "planned": planned,
        "neighbours": [parcel(p) for p in drawing["parcels"] if not p["me"]],
        "me": [parcel(p) for p in me],
        "pieces": [piece(p) for p in drawing["pieces"]],
        "compounds": compounds,
        "scale_bar": _scale_bar(scale, height),
        "north_x": f"{width - 24:.0f}",
    }


def _scale_bar(scale: float, height: float) -> dict:
    """A bar of a round length (1, 2 or 5 × 10ⁿ m) about a quarter of the map wide."""
    target = SVG_WIDTH / 4 / scale
    power = 10 ** math.floor(math.log10(target))
    metres = max(step * power for step in (1, 2, 5) if step * power <= target)
    length = metres * scale
    y = height - 14
    return {"top": f"{y - 16:.0f}", "box": f"{length + 50:.0f}", "y": f"{y:.0f}",
            "tick": f"{y - 5:.0f}", "length": f"{length:.1f}", "end": f"{14 + length:.1f}",
            "text_x": f"{18 + length:.1f}", "metres": f"{metres:g}"}  # fmt: skip
