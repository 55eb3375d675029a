"""The trace (全过程留痕) for people and scripts: who changed what, when, from where.

- `GET /history` — the page: filters (person, department, compound, from/to Beijing days,
  kind), the rows newest first, 50 a page, the total, a link to the same rows as Excel.
- `GET /history.xlsx` — the rows matching the same filters (up to geo.query.audit.EXPORT_CAP,
  the newest, saying so when cut), Chinese headers; the export is itself traced (action
  export), for the discipline commission wants to know who took the trace away.
- `GET /api/history` — the same rows as JSON, `limit` / `offset`.

Only signed-in people of the county (its own, or given it) read its trace: a page asked for
by nobody signed in goes to the sign-in (303), the JSON answers 401; another county's
people get 403. Reading changes nothing; only an export adds its own row.
"""

from dataclasses import asdict, dataclass
from io import BytesIO
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from sqlalchemy import Connection

from api.auth import current_user, writer
from api.dependencies import connection
from api.errors import AUTH_RESPONSES
from api.pages import XLSX_TYPE, html_page
from api.routers.account import page_context, to_sign_in
from geo import TitlemapError
from geo.core.dates import DateError, now, parse_date
from geo.core.model import User
from geo.db.audit import record
from geo.io.ledger_sheet import county_name
from geo.ledger.users import home_county, may_read
from geo.query.audit import (
    EXPORT_CAP,
    KIND_LABELS,
    PAGE_SIZE,
    AuditFilter,
    audit_people,
    audit_rows,
    write_xlsx,
)

router = APIRouter(tags=["history"])

EXPORT_TIMEOUT = "120s"  # an export of EXPORT_CAP rows reads longer than a page


@dataclass(frozen=True)
class HistoryQuery:
    """The filters as the form and the links carry them (text, as typed)."""

    person: str | None = None
    department: str | None = None
    compound: str | None = None
    start: str | None = None  # ?from=
    end: str | None = None  # ?to=
    kind: str | None = None

    def filter(self) -> AuditFilter:
        """The filters to apply; TitlemapError (one line) for a bad date or kind."""
        try:
            since, until = parse_date(self.start), parse_date(self.end)
        except DateError as exc:
            raise TitlemapError(str(exc)) from None
        return AuditFilter(self.person, self.department, self.compound, since, until, self.kind)

    def params(self, **extra: str | int) -> str:
        """The query string of these filters (those set) and `extra`."""
        named = {"person": self.person, "department": self.department,
                 "compound": self.compound, "from": self.start, "to": self.end,
                 "kind": self.kind}  # fmt: skip
        return urlencode({k: v for k, v in (named | extra).items() if v})


PERSON_HELP = "人员（姓名或其一部分）/ person (name or part of it)"
COMPOUND_HELP = "小区编号或名称的一部分 / compound code, or part of its name"
FROM_HELP = "起始日（北京时间，含）/ from this Beijing day"
TO_HELP = "截止日（北京时间，含）/ to this Beijing day, inclusive"
KIND_HELP = "对象 / kind: " + ", ".join(KIND_LABELS)


def history_query(
    person: Annotated[str | None, Query(max_length=50, description=PERSON_HELP)] = None,
    department: Annotated[str | None, Query(max_length=100, description="单位（准确）")] = None,
    compound: Annotated[str | None, Query(max_length=100, description=COMPOUND_HELP)] = None,
    start: Annotated[str | None, Query(alias="from", max_length=30, description=FROM_HELP)] = None,
    end: Annotated[str | None, Query(alias="to", max_length=30, description=TO_HELP)] = None,
    kind: Annotated[str | None, Query(max_length=30, description=KIND_HELP)] = None,
) -> HistoryQuery:
    return HistoryQuery(person, department, compound, start, end, kind)


Filters = Annotated[HistoryQuery, Depends(history_query)]
CountyParam = Annotated[str | None, Query(max_length=6, description="县代码，缺省为本人所在县")]


def _county(user: User, county: str | None) -> str:
    """The county asked for (the user's own by default), 403 unless the user belongs to it."""
    county = county or home_county(user)
    if not may_read(user, county, public=False):
        raise HTTPException(403, f"{user.name} 无权查看该县留痕记录 / not given county {county}")
    return county


def _filter(query: HistoryQuery) -> AuditFilter:
    try:
        return query.filter()
    except TitlemapError as exc:
        raise HTTPException(422, str(exc)) from None


@router.get("/history", include_in_schema=False)
def history_page(
    request: Request,
    user: Annotated[User | None, Depends(current_user)],
    conn: Annotated[Connection, Depends(connection)],
    query: Filters,
    county: CountyParam = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    if user is None:
        return to_sign_in(request)
    try:
        county = _county(user, county)
    except HTTPException as exc:
        context = page_context(request, user, title="留痕记录", denied=True, flash=exc.detail,
                               flash_kind="error")  # fmt: skip
        return html_page("history.html", exc.status_code, **context)
    people, departments = audit_people(conn, county)
    context = page_context(
        request, user, title="留痕记录", denied=False, county=county,
        county_name=county_name(conn, county), query=query, people=people,
        departments=departments, kinds=KIND_LABELS, rows=[], total=0, total_capped=False,
        page=page, pages=0, prev_url=None, next_url=None,
        xlsx_url="/history.xlsx?" + query.params(county=county),
    )  # fmt: skip
    try:
        f = query.filter()
    except TitlemapError as exc:
        return html_page("history.html", 422, **(context | {"flash": str(exc),
                                                            "flash_kind": "error"}))  # fmt: skip
    found = audit_rows(conn, county, **asdict(f), limit=PAGE_SIZE,
                       offset=(page - 1) * PAGE_SIZE)  # fmt: skip
    pages = max(1, -(-found.total // PAGE_SIZE))
    more = found.total_capped or page < pages

    def link(number: int) -> str:
        return "/history?" + query.params(county=county, page=number)

    context |= {
        "rows": found.rows, "total": found.total, "total_capped": found.total_capped,
        "pages": pages, "prev_url": link(page - 1) if page > 1 else None,
        "next_url": link(page + 1) if more and len(found.rows) == PAGE_SIZE else None,
    }  # fmt: skip
    return html_page("history.html", **context)


@router.get("/history.xlsx", include_in_schema=False)
def history_xlsx(
    request: Request,
    user: Annotated[User | None, Depends(current_user)],
    query: Filters,
    county: CountyParam = None,
) -> Response:
    if user is None:
        return to_sign_in(request)
    county = _county(user, county)
    f = _filter(query)
    buffer = BytesIO()
    with writer(request, user) as db:  # the export is traced under its user's name
        conn = db.connection()
        conn.exec_driver_sql(f"SET LOCAL statement_timeout = '{EXPORT_TIMEOUT}'")
        found = audit_rows(conn, county, **asdict(f), limit=EXPORT_CAP)
        name = county_name(conn, county)
        write_xlsx(found, buffer, county=county, county_name=name, exported_at=now(),
                   exported_by=user.name)  # fmt: skip
        record(db, county, "audit_log", "export", None,
               after={"format": "xlsx", "filters": f.words(), "rows": len(found.rows)})  # fmt: skip
        db.commit()
    title = f"{name}留痕记录.xlsx"
    disposition = f"attachment; filename=\"history-{county}.xlsx\"; filename*=UTF-8''{quote(title)}"
    return Response(buffer.getvalue(), media_type=XLSX_TYPE,
                    headers={"Content-Disposition": disposition})  # fmt: skip


@router.get(
    "/api/history",
    summary="留痕记录 / the audit trail, readable (signed-in people of the county)",
    responses=AUTH_RESPONSES,
)
def history_json(
    user: Annotated[User | None, Depends(current_user)],
    conn: Annotated[Connection, Depends(connection)],
    query: Filters,
    county: CountyParam = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = PAGE_SIZE,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict:
    """The county's audit rows newest first: when (Beijing), who, from where, what, which
    action and the changes as "字段：前 → 后" lines, with the raw codes beside the words;
    `total` counts up to 100 000 (`total_capped` beyond)."""
    if user is None:
        raise HTTPException(401, "请先登录 / sign in first", headers={"WWW-Authenticate": "Bearer"})
    county = _county(user, county)
    found = audit_rows(conn, county, **asdict(_filter(query)), limit=limit, offset=offset)
    return {"county": county, **found.to_dict()}
