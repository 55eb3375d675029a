"""/print: PDFs for on-site offices (现场办公) — the area map and the visit pack — and a
city's or the province's overview on one A3 page (`/print/region/{code}.pdf`).

Choose the compounds one way: `planned_area` (code, name, or a kind such as 城东片区),
`township` (code or name), `bbox` (minx,miny,maxx,maxy in EPSG:4490) or `compounds` (codes or
names, repeated or comma-separated; the visit pack keeps their order). An empty or unknown
selection is a 422 whose `detail` says, in Chinese and English, what to change.

One print at a time per worker (`app.state.printer`): drawing takes seconds, a few hundred MB
and matplotlib's process-wide settings; a print that cannot start within `Printer.wait`
seconds is answered 503 "busy" rather than queued behind the others.

maps.print (matplotlib, the fonts) is imported by the first print, not by every server start.
"""

import ctypes
import ctypes.util
import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from sqlalchemy import Connection

from api.auth import reader
from api.dependencies import Day, connection, county_of, region_of, user_errors
from api.errors import RETRY_AFTER
from geo.core.dates import today
from geo.ledger.regions import county_outlines, overview
from geo.ledger.users import may_read
from geo.query.selection import select

router = APIRouter(prefix="/print", tags=["print"])

PDF = {200: {"content": {"application/pdf": {}}, "description": "PDF"}}
PlannedArea = Annotated[
    str | None, Query(description="规划片区：编号、名称或类别，如 城东片区 / planned area")
]
Township = Annotated[str | None, Query(description="乡镇（街道）编号或名称 / township")]
Box = Annotated[
    str | None, Query(description="范围 minx,miny,maxx,maxy（EPSG:4490 经纬度）/ lon/lat box")
]
Compounds = Annotated[
    list[str] | None,
    Query(description="小区编号或名称，可多选或逗号分隔 / compound codes or names"),
]
County = Annotated[str | None, Query(description="县级行政区划代码 / county code")]
PrintedOn = Annotated[
    Day | None, Query(alias="date", description="打印日期（默认今天）/ date printed on the page")
]


def _pdf(body: bytes, name: str) -> Response:
    # an ASCII fallback plus the UTF-8 name (RFC 6266 / 5987)
    disposition = f"inline; filename=\"{name.split('-')[0]}.pdf\"; filename*=UTF-8''{quote(name)}"
    return Response(
        body, media_type="application/pdf", headers={"Content-Disposition": disposition}
    )


def _compounds(values: list[str] | None) -> list[str] | None:
    return [v for value in values or [] for v in value.split(",") if v.strip()] or None


def page_choice(
    request: Request,
    planned_area: PlannedArea = None,
    township: Township = None,
    bbox: Box = None,
    compounds: Compounds = None,
    county: County = None,
    printed_on: PrintedOn = None,
) -> dict:
    """What a printed page shows, from the query: geo.query.selection.select's arguments."""
    return {
        "county": county_of(request, county),
        "planned_area": planned_area,
        "township": township,
        "bbox": bbox,
        "compounds": _compounds(compounds),
        "printed_on": printed_on,
    }


Choice = Annotated[dict, Depends(page_choice)]


def _malloc_trim() -> "ctypes._CFuncPtr | None":
    libc = ctypes.util.find_library("c")
    return getattr(ctypes.CDLL(libc), "malloc_trim", None) if libc else None  # glibc only


class Printer:
    """The worker's one printing turn; `wait` seconds at most for it."""

    def __init__(self, wait: float = 10.0) -> None:
        self.wait = wait
        self.lock = threading.Lock()
        self.trim = _malloc_trim()

    @contextmanager
    def turn(self) -> Iterator[None]:
        if not self.lock.acquire(timeout=self.wait):
            raise HTTPException(
                503,
                "正在打印其他图，请稍后再试 / busy printing another map: try again shortly",
                headers={"Retry-After": RETRY_AFTER},
            )
        try:
            yield
        finally:
            self.lock.release()
            gc.collect()  # a page's figures are cycles of artists: freed now, not some day
            if self.trim is not None:
                # A print's arrays and artists leave glibc's heap in holes it keeps: ~15 MB more
                # RSS per print until ~80 MB, measured (docs/reliability.md). Handed back now.
                self.trim(0)


def print_turn(request: Request) -> Iterator[None]:
    """Wait for the printing turn before anything else (a database connection included)."""
    with request.app.state.printer.turn():
        yield


Turn = Annotated[None, Depends(print_turn)]


@router.get(
    "/area.pdf",
    summary="区域现场办公图 / the area map with its table of compounds (PDF)",
    response_class=Response,
    responses=PDF,
)
def area(
    _turn: Turn,
    conn: Annotated[Connection, Depends(connection)],
    choice: Choice,
    paper: Annotated[str, Query(description="纸张 / paper: A4 or A3 (landscape)")] = "A4",
) -> Response:
    from maps.print import area_pdf

    with user_errors():
        selection = select(conn, **choice)
        body = area_pdf(conn, selection, paper)
    return _pdf(body, f"area-{selection.area.label}-{selection.printed_on}.pdf")


@router.get(
    "/visit.pdf",
    summary="现场办公资料：路线封面 + 每个小区一页 / visit pack: cover, a page per compound",
    response_class=Response,
    responses=PDF,
)
def visit(
    request: Request,
    _turn: Turn,
    conn: Annotated[Connection, Depends(connection)],
    choice: Choice,
) -> Response:
    from maps.print import VISIT_LIMIT, visit_pdf

    with user_errors():
        selection = select(conn, **choice, limit=VISIT_LIMIT)
        # site photos are the county's papers: in the pack of its own signed-in people only
        own = may_read(reader(request), selection.county.code, public=False)
        photos = request.app.state.settings.data_dir if own else None
        body = visit_pdf(conn, selection, data_dir=photos)
    return _pdf(body, f"visit-{selection.area.label}-{selection.printed_on}.pdf")


@router.get(
    "/region/{code}.pdf",
    summary="省、市化解进度总览（A3 一页）/ a city's or the province's overview on one A3 page",
    response_class=Response,
    responses=PDF,
)
def region(
    request: Request,
    code: str,
    _turn: Turn,
    conn: Annotated[Connection, Depends(connection)],
    as_of: Annotated[Day | None, Query(description="截至日期 / as of (YYYY-MM-DD)")] = None,
    printed_on: PrintedOn = None,
) -> Response:
    """The counties the asker may read (the others counted as withheld, as on the page): their
    map coloured by overall rate against target, and the ranking with its totals."""
    from maps.print import region_pdf

    _, counties = region_of(request, conn, code)
    with user_errors():
        figures = overview(conn, code, counties, as_of)
        body = region_pdf(figures, county_outlines(conn, counties), printed_on or today())
    return _pdf(body, f"region-{code}-{figures['region']['name']}总览-{figures['as_of']}.pdf")
