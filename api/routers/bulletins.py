"""督查通报 / supervision bulletins: figures, Word and PDF files, issuing, and their page.

A bulletin is read by the signed-in people of its county (and those given it), never by
nobody: anonymous asks answer 401 (a browser asking for a page or a file goes to /signin,
303). The county's office (geo.ledger.users.is_office) issues one, through an audited session;
an issued bulletin is served from what it printed (geo.ledger.bulletin), a period not issued
as a draft computed now.

- `GET /api/bulletins` — the county's issued bulletins.
- `GET /api/bulletins/{period}` — the figures of a period (2026-W48, 2026-11,
  2026-11-01..2026-11-15): as issued, else the draft.
- `POST /api/bulletins/{period}/issue` — issue it under the next number (the office).
- `GET /bulletins/{period}.docx`, `GET /bulletins/{period}.pdf` — the bulletin as Word / PDF.
- `GET /bulletins` (page) — the issued ones with their files, and a period to preview or
  issue; `POST /bulletins/issue` — the page's issue form.
"""

from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import Connection

from api.auth import current_user, editor_session, reader, writer
from api.dependencies import connection, user_errors
from api.pages import html_page
from api.routers.account import page_context, refused_page, to_sign_in
from api.routers.print import Turn
from geo import TitlemapError
from geo.core.dates import today
from geo.core.model import User
from geo.ledger.bulletin import (
    BulletinIssued,
    BulletinRefused,
    bulletin_of,
    issue_bulletin,
    issued_rows,
    may_issue,
    parse_period,
    percent_text,
    points_text,
    week_period,
)
from geo.ledger.users import home_county, may_read

router = APIRouter(tags=["bulletins"])

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
CountyParam = Annotated[
    str | None, Query(max_length=6, description="县代码，缺省为本人所在县 / county code")
]
PERIOD_HELP = "期间：2026-W48（周）、2026-11（月）或 2026-11-01..2026-11-15 / period"


def _wants_page(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _county_reader(request: Request, county: str | None) -> tuple[User, str]:
    """The signed-in reader and the county asked for (theirs by default): 401 for nobody
    (303 to /signin for a browser), 403 for a county not theirs."""
    user = reader(request)
    if user is None:
        if _wants_page(request):
            raise HTTPException(303, "请先登录 / sign in first", headers=_signin_header(request))
        raise HTTPException(
            401, "督查通报须登录查看 / sign in to read bulletins",
            headers={"WWW-Authenticate": "Bearer"},
        )  # fmt: skip
    county = county or home_county(user)
    if not may_read(user, county, public=False):
        raise HTTPException(403, f"{user.name} 无权查看该县督查通报 / not given county {county}")
    return user, county


def _signin_header(request: Request) -> dict[str, str]:
    return {"Location": to_sign_in(request).headers["location"]}


def _period(period: str):
    with user_errors():
        return parse_period(period)


def _figures(conn: Connection, county: str, period: str) -> dict:
    key = _period(period)
    with user_errors():
        return bulletin_of(conn, county, key)


def _file(body: bytes, media_type: str, figures: dict, suffix: str, inline: bool) -> Response:
    from maps.bulletin import file_title  # maps.bulletin (matplotlib, docx): at the first file

    ascii_name = f"bulletin-{figures['county']}-{figures['number']}-{figures['period']}{suffix}"
    name = f"{figures['county_name']}{file_title(figures)}{suffix}"
    how = "inline" if inline else "attachment"
    disposition = f"{how}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"
    headers = {"Content-Disposition": disposition, "Cache-Control": "private, no-cache"}
    return Response(body, media_type=media_type, headers=headers)


# -- JSON ----------------------------------------------------------------------------------------


@router.get("/api/bulletins", summary="已印发的督查通报 / issued bulletins")
def list_bulletins(
    request: Request, conn: Annotated[Connection, Depends(connection)], county: CountyParam = None
) -> dict:
    _user, county = _county_reader(request, county)
    return {"county": county, "bulletins": issued_rows(conn, county)}


@router.get(
    "/api/bulletins/{period}",
    summary="通报所载数字 / what a bulletin prints",
    description="已印发的按印发时原样返回，否则为按当前台账计算的草稿（draft: true）。"
    "/ An issued bulletin's figures as issued; otherwise a draft computed now.",
)
def get_figures(
    request: Request,
    period: str,
    conn: Annotated[Connection, Depends(connection)],
    county: CountyParam = None,
) -> dict:
    _user, county = _county_reader(request, county)
    return _figures(conn, county, period)


@router.post(
    "/api/bulletins/{period}/issue",
    status_code=201,
    summary="印发督查通报（领导小组办公室）/ issue the bulletin (the office)",
)
def issue(
    request: Request,
    period: str,
    editing: Annotated[tuple, Depends(editor_session())],
    county: CountyParam = None,
) -> dict:
    db, user = editing
    return _issue(db, user, period, county or home_county(user))


def _issue(db, user: User, period: str, county: str) -> dict:
    try:
        row = issue_bulletin(db, county, period, user)
        db.commit()
    except BulletinRefused as exc:
        raise HTTPException(403, str(exc)) from None
    except BulletinIssued as exc:
        db.rollback()
        raise HTTPException(409, str(exc)) from None
    except TitlemapError as exc:
        raise HTTPException(422, str(exc)) from None
    return {
        "county": county,
        "number": row.number,
        "period": row.period,
        "issued_at": row.issued_at.isoformat(),
        "issued_by": row.issued_by,
        "docx": f"/bulletins/{row.period}.docx?county={county}",
        "pdf": f"/bulletins/{row.period}.pdf?county={county}",
        "figures": row.figures,
    }


# -- files ---------------------------------------------------------------------------------------


@router.get(
    "/bulletins/{period}.docx",
    summary="督查通报 Word 文件 / the bulletin as .docx",
    response_class=Response,
    responses={200: {"content": {DOCX_TYPE: {}}, "description": "Word"}},
)
def docx_file(
    request: Request,
    period: str,
    conn: Annotated[Connection, Depends(connection)],
    county: CountyParam = None,
) -> Response:
    from maps.bulletin import bulletin_docx

    _user, county = _county_reader(request, county)
    figures = _figures(conn, county, period)
    return _file(bulletin_docx(figures), DOCX_TYPE, figures, ".docx", inline=False)


@router.get(
    "/bulletins/{period}.pdf",
    summary="督查通报 PDF（含变化小区示意图）/ the bulletin as PDF, with its map",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "PDF"}},
)
def pdf_file(
    request: Request,
    period: str,
    _turn: Turn,
    conn: Annotated[Connection, Depends(connection)],
    county: CountyParam = None,
) -> Response:
    from maps.bulletin import bulletin_pdf

    _user, county = _county_reader(request, county)
    figures = _figures(conn, county, period)
    with user_errors():
        body = bulletin_pdf(conn, figures)
    return _file(body, "application/pdf", figures, ".pdf", inline=True)


# -- the page ------------------------------------------------------------------------------------


def _page(request: Request, user: User, conn: Connection, county: str, status: int = 200,
          period: str | None = None, **context) -> Response:  # fmt: skip
    preview, wrong = None, None
    if period:
        try:
            preview = bulletin_of(conn, county, parse_period(period))
        except TitlemapError as exc:
            wrong = str(exc)
    ended = bool(preview) and preview["last_day"] < today().isoformat()
    context = {
        "title": "督查通报",
        "county": county,
        "bulletins": issued_rows(conn, county),
        "period": period or week_period(today()).previous().key,
        "preview": preview,
        "may_issue": may_issue(user, county) and bool(preview) and preview["draft"] and ended,
        "ended": ended,
        "percent": percent_text,
        "points": points_text,
        **({"flash": wrong, "flash_kind": "error"} if wrong else {}),
        **context,
    }
    return html_page("bulletins.html", status, **page_context(request, user, **context))


@router.get("/bulletins", include_in_schema=False)
def bulletins_page(
    request: Request,
    user: Annotated[User | None, Depends(current_user)],
    conn: Annotated[Connection, Depends(connection)],
    county: CountyParam = None,
    period: Annotated[str | None, Query(max_length=40)] = None,
    issued: Annotated[int | None, Query()] = None,
) -> Response:
    if user is None:
        return to_sign_in(request)
    county = county or home_county(user)
    if not may_read(user, county, public=False):
        words = f"{user.name} 无权查看该县督查通报 / not given county {county}"
        return refused_page(request, user, words, ("/bulletins", "返回督查通报"), title="督查通报")
    done = {"flash": f"已印发第 {issued} 期 / issued"} if issued else {}
    return _page(request, user, conn, county, period=period, **done)


@router.post("/bulletins/issue", include_in_schema=False)
def issue_form(
    request: Request,
    user: Annotated[User | None, Depends(current_user)],  # checks the form's CSRF token
    period: Annotated[str, Form(max_length=40)],
    county: Annotated[str, Form(max_length=6)] = "",
) -> Response:
    if user is None:
        return to_sign_in(request)
    county = county or home_county(user)
    with writer(request, user) as db:
        try:
            result = _issue(db, user, period, county)
        except HTTPException as exc:
            db.rollback()
            with request.app.state.engine.connect() as conn:
                return _page(request, user, conn, county, exc.status_code, period=period,
                             flash=exc.detail, flash_kind="error")  # fmt: skip
    query = urlencode({"county": county, "period": result["period"], "issued": result["number"]})
    return RedirectResponse(f"/bulletins?{query}", status_code=303)
