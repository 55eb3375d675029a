"""Signing in and out (pages), and who is signed in (/api/me, for the map's script)."""

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from api.auth import COOKIE, actor_of, current_user, session
from api.pages import html_page
from geo.core.model import User
from geo.db.audit import act_as, record
from geo.ledger.counties import county_choices
from geo.ledger.users import SignInError, describe_user, sign_in, sign_out

router = APIRouter(tags=["account"])


def page_context(request: Request, user: User | None, **context) -> dict:
    """What work_layout.html needs: who is signed in and the session's CSRF token."""
    login = getattr(request.state, "login", None)
    me = describe_user(user) if user else None
    return {"me": me, "csrf": login.csrf if login else "", "flash": None, **context}


def _safe_next(target: str | None) -> str:
    """Only a path of this site: a sign-in never sends anyone elsewhere."""
    target = target or "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or "\\" in target:
        return "/"
    return target


def _signin_page(request: Request, db: Session, status: int = 200, **context) -> Response:
    counties = county_choices(db.connection())
    base = {"name": "", "county": "", "next": "/", "counties": counties, "title": "登录"}
    return html_page("signin.html", status, **page_context(request, None, **(base | context)))


@router.get("/signin", include_in_schema=False)
def signin_form(
    request: Request, db: Annotated[Session, Depends(session)], next: str = "/"
) -> Response:
    return _signin_page(request, db, next=_safe_next(next))


@router.post("/signin", include_in_schema=False)
def signin(
    request: Request,
    db: Annotated[Session, Depends(session)],
    name: Annotated[str, Form(max_length=50)],
    password: Annotated[str, Form(max_length=200)],
    county: Annotated[str, Form(max_length=6)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    address = request.client.host if request.client else "unknown"
    failures = request.app.state.failed_tokens  # wrong passwords slow down like wrong tokens
    if failures.wait(address):
        return _signin_page(request, db, 429, name=name, flash="尝试次数过多，请稍后再试 / "
                            "too many tries: wait a minute", flash_kind="error")  # fmt: skip
    try:
        signed = sign_in(db, county or None, name, password,
                         hours=request.app.state.settings.session_hours, address=address,
                         user_agent=request.headers.get("user-agent"))  # fmt: skip
    except SignInError as exc:
        db.rollback()
        failures.failed(address)
        return _signin_page(request, db, 401, name=name, county=county,
                            next=_safe_next(next), flash=str(exc), flash_kind="error")  # fmt: skip
    act_as(db, actor_of(request, signed.user))
    record(db, signed.user.county_code, "app_user", "sign_in", str(signed.user.id))
    db.commit()
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        COOKIE, signed.cookie, httponly=True, samesite="lax", path="/",
        secure=request.url.scheme == "https",
        max_age=int(request.app.state.settings.session_hours * 3600),
    )  # fmt: skip
    return response


@router.post("/signout", include_in_schema=False)
def signout(
    request: Request,
    db: Annotated[Session, Depends(session)],
    user: Annotated[User | None, Depends(current_user)],  # checks the CSRF token
) -> Response:
    cookie = request.cookies.get(COOKIE)
    if user is not None and cookie:
        sign_out(db, cookie)
        act_as(db, actor_of(request, user))
        record(db, user.county_code, "app_user", "sign_out", str(user.id))
        db.commit()
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/api/me", summary="当前用户 / who is signed in")
def me(request: Request, user: Annotated[User | None, Depends(current_user)]) -> dict:
    """The signed-in user (role, department, counties) and the CSRF token its writes carry
    (header X-CSRF-Token); `{"signed_in": false}` when nobody is."""
    if user is None:
        return {"signed_in": False}
    login = getattr(request.state, "login", None)
    return {"signed_in": True, **describe_user(user), "csrf": login.csrf if login else None}
