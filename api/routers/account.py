"""Signing in and out, one's own password (pages), who is signed in (/api/me, for the map's
script), and the admin's page of the county's users.

Pages answer a browser: not signed in, they send it to /signin (303, coming back after);
signed in without the role, a 403 page saying so. Every form posts the session's CSRF token
(field csrf_token, checked by api.auth.current_user); every change goes through an audited
session (api.auth.writer), so the audit log names who made it.

- `GET/POST /signin`, `POST /signout` — a session cookie (HttpOnly, SameSite=Lax); wrong name
  and wrong password are one message (401); too many failures from one address, 429.
- `GET/POST /account/password` — change one's own password (the current one, the new one
  twice). Every session of the user ends, this browser is signed in again with a new cookie.
- `GET /admin/users` (admin) — the county's users; `POST /admin/users` adds one (with an
  initial password); `POST /admin/users/{id}/active|password|role` disables or enables,
  sets a new password, changes role and department; `POST /admin/county` opens or closes
  the county's map (map_public).
"""

from collections.abc import Callable
from typing import Annotated
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.auth import COOKIE, actor_of, current_user, session, writer
from api.dependencies import RowId
from api.pages import html_page
from geo import TitlemapError
from geo.core.model import County, Role, User
from geo.db.audit import act_as, record
from geo.ledger.counties import county_choices, set_county
from geo.ledger.users import (
    MAX_NAME_CHARS,
    MAX_PASSWORD_CHARS,
    MIN_PASSWORD_CHARS,
    OFFICE_LABEL,
    ROLE_LABELS,
    SignInError,
    add_user,
    admin_refusal,
    change_password,
    county_departments,
    county_users,
    describe_user,
    home_of,
    may,
    set_active,
    set_password,
    set_role,
    sign_in,
    sign_out,
    start_session,
)

router = APIRouter(tags=["account"])

Field = Annotated[str, Form(max_length=MAX_PASSWORD_CHARS)]  # a form field, "" when left out


def page_context(request: Request, user: User | None, **context) -> dict:
    """What work_layout.html needs: who is signed in and the session's CSRF token."""
    login = getattr(request.state, "login", None)
    me = describe_user(user) if user else None
    base = {"me": me, "csrf": login.csrf if login else "", "flash": None, "flash_kind": "ok"}
    return base | context


def _safe_next(target: str | None) -> str:
    """Only a path of this site: a sign-in never sends anyone elsewhere."""
    target = target or "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or "\\" in target:
        return "/"
    return target


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _set_session_cookie(request: Request, response: Response, cookie: str) -> None:
    response.set_cookie(
        COOKIE, cookie, httponly=True, samesite="lax", path="/",
        secure=request.url.scheme == "https",
        max_age=int(request.app.state.settings.session_hours * 3600),
    )  # fmt: skip


def _user_key(name: str) -> str:
    """The key a person's name is counted under beside the addresses: a password guessed
    from many addresses is slowed as well."""
    return "user:" + (name or "").strip()


def _too_many(request: Request, name: str | None = None) -> int:
    """Seconds to wait after too many wrong passwords from this address, or for this user
    (`name`); 0 if none. Counted with wrong tokens (app.state.failed_tokens)."""
    failures = request.app.state.failed_tokens
    wait = max(failures.wait(_address(request)), failures.wait(_user_key(name)) if name else 0)
    return int(wait) + 1 if wait > 0 else 0


def _failed(request: Request, name: str) -> None:
    failures = request.app.state.failed_tokens
    failures.failed(_address(request))
    failures.failed(_user_key(name))


def _too_many_words(seconds: int) -> str:
    return f"尝试次数过多，请 {seconds} 秒后再试 / too many tries: wait {seconds} s"


# -- signing in and out ------------------------------------------------------------------------


def _signin_page(
    request: Request, db: Session, status: int = 200, headers: dict | None = None, **context
) -> Response:
    counties = county_choices(db.connection())
    base = {"name": "", "county": "", "next": "/", "counties": counties, "title": "登录"}
    context = page_context(request, None, **(base | context))
    return html_page("signin.html", status, headers, **context)


@router.get("/signin", include_in_schema=False)
def signin_form(
    request: Request, db: Annotated[Session, Depends(session)], next: str = "/"
) -> Response:
    return _signin_page(request, db, next=_safe_next(next))


@router.post("/signin", include_in_schema=False)
def signin(
    request: Request,
    db: Annotated[Session, Depends(session)],
    name: Annotated[str, Form(max_length=MAX_NAME_CHARS)],
    password: Annotated[str, Form(max_length=MAX_PASSWORD_CHARS)],
    county: Annotated[str, Form(max_length=6)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    address = _address(request)
    wait = _too_many(request, name)
    if wait:
        return _signin_page(request, db, 429, {"Retry-After": str(wait)}, name=name,
                            next=_safe_next(next), flash=_too_many_words(wait),
                            flash_kind="error")  # fmt: skip
    try:
        signed = sign_in(db, county or None, name, password,
                         hours=request.app.state.settings.session_hours, address=address,
                         user_agent=request.headers.get("user-agent"))  # fmt: skip
    except SignInError as exc:
        db.rollback()
        _failed(request, name)
        return _signin_page(request, db, 401, name=name, county=county,
                            next=_safe_next(next), flash=str(exc), flash_kind="error")  # fmt: skip
    act_as(db, actor_of(request, signed.user))
    record(db, home_of(signed.user), "app_user", "sign_in", str(signed.user.id))
    db.commit()
    response = RedirectResponse(_safe_next(next), status_code=303)
    _set_session_cookie(request, response, signed.cookie)
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
        record(db, home_of(user), "app_user", "sign_out", str(user.id))
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


# -- pages for signed-in people ----------------------------------------------------------------


def to_sign_in(request: Request) -> RedirectResponse:
    """A page's answer to a browser not signed in: /signin, coming back here after (a GET
    with its query; a form's POST to the map)."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    back = here if request.method == "GET" else "/"
    return RedirectResponse("/signin?" + urlencode({"next": back}), status_code=303)


def refused_page(
    request: Request, user: User, words: str, back: tuple[str, str] = ("/", "返回地图"),
    status: int = 403, title: str = "无权访问",
) -> Response:  # fmt: skip
    """A page its reader may not see or use: `words` say why, `back` (href, label) the way."""
    context = page_context(request, user, title=title, flash=words, flash_kind="error",
                           back_href=back[0], back_label=back[1])  # fmt: skip
    return html_page("refused.html", status, **context)


def _refusal(request: Request, user: User | None, role: str = Role.VIEWER) -> Response | None:
    """Where a page sends a browser that may not see it: to /signin when not signed in
    (coming back after), a 403 page below `role`; None when it may."""
    if user is None:
        return to_sign_in(request)
    if not may(user, role):
        label, needed = ROLE_LABELS[Role(user.role)], ROLE_LABELS[Role(role)]
        words = f"{user.name}（{label}）无权访问此页，需要{needed}角色 / needs role {role}"
        return refused_page(request, user, words)
    if role == Role.ADMIN and user.county_code is None:  # a city's or the province's admin
        words = (f"省/市的用户在命令行管理：titlemap user list --county {user.region_code} / "
                 "a region's users are managed from the command line")  # fmt: skip
        return refused_page(request, user, words)
    return None


# -- one's own password ------------------------------------------------------------------------


def _password_page(request: Request, user: User, status: int = 200, **context) -> Response:
    base = {"title": "修改密码", "min_chars": MIN_PASSWORD_CHARS, "max_chars": MAX_PASSWORD_CHARS}
    context = page_context(request, user, **(base | context))
    return html_page("account_password.html", status, **context)


@router.get("/account/password", include_in_schema=False)
def password_form(
    request: Request, user: Annotated[User | None, Depends(current_user)], changed: int = 0
) -> Response:
    if refused := _refusal(request, user):
        return refused
    assert user is not None
    if changed:
        done = "密码已修改，其他设备上的登录已退出 / password changed: signed out elsewhere"
        return _password_page(request, user, flash=done)
    return _password_page(request, user)


@router.post("/account/password", include_in_schema=False)
def password_change(
    request: Request,
    user: Annotated[User | None, Depends(current_user)],  # checks the CSRF token
    old: Field = "",
    new: Field = "",
    again: Field = "",
) -> Response:
    """A new password: every session of the user ends, this browser gets a new one."""
    if refused := _refusal(request, user):
        return refused
    assert user is not None
    if wait := _too_many(request, user.name):
        return _password_page(request, user, 429, flash=_too_many_words(wait), flash_kind="error")
    if new != again:
        words = "两次输入的新密码不一致 / the new password and its repetition differ"
        return _password_page(request, user, 400, flash=words, flash_kind="error")
    with writer(request, user) as db:
        me = db.get(User, user.id)
        assert me is not None
        try:
            change_password(db, me, old, new)
        except SignInError as exc:  # the current password is wrong: counted as a failure
            _failed(request, user.name)
            return _password_page(request, user, 400, flash=str(exc), flash_kind="error")
        except TitlemapError as exc:
            return _password_page(request, user, 400, flash=str(exc), flash_kind="error")
        record(db, home_of(me), "app_user", "password_change", str(me.id))
        signed = start_session(db, me, hours=request.app.state.settings.session_hours,
                               address=_address(request),
                               user_agent=request.headers.get("user-agent"))  # fmt: skip
        db.commit()
    response = RedirectResponse("/account/password?changed=1", status_code=303)
    _set_session_cookie(request, response, signed.cookie)
    return response


# -- the admin's page of the county's users -----------------------------------------------------

# What the page says after a change (?done=…&who=id): fixed words, so a link cannot make the
# page say anything else.
DONE = {
    "added": "已添加用户 {name}，可用初始密码登录 / added: signs in with the initial password",
    "enabled": "已启用 {name} / enabled",
    "disabled": "已停用 {name}，其登录和令牌已失效 / disabled: signed out, token refused",
    "password": "已为 {name} 设置新密码，其登录已退出 / new password set: signed out",
    "role": "已修改 {name} 的角色和单位 / role and department changed",
    "county": "已保存本县地图设置 / the county's map setting saved",
}
ROLES = [{"value": role.value, "label": label} for role, label in ROLE_LABELS.items()]


def _user_row(user: User) -> dict:
    given = sorted(set(user.counties or []) - {user.county_code})
    return describe_user(user) | {"token": bool(user.token_sha256), "given": given}


def _admin_page(
    request: Request, db: Session, admin: User, status: int = 200, **context
) -> Response:
    code = admin.county_code
    county = db.execute(select(County.name, County.map_public).where(County.code == code)).one()
    users = county_users(db, code)
    base = {
        "title": "用户管理", "county": {"code": code, "name": county.name,
                                      "map_public": county.map_public},
        "users": [_user_row(u) for u in users],
        "departments": county_departments(db, code, people=False),
        "roles": ROLES, "office_label": OFFICE_LABEL, "min_chars": MIN_PASSWORD_CHARS,
        "form": {"name": "", "role": Role.VIEWER.value, "department": ""},
    }  # fmt: skip
    return html_page("admin_users.html", status, **page_context(request, admin, **(base | context)))


@router.get("/admin/users", include_in_schema=False)
def admin_users(
    request: Request,
    db: Annotated[Session, Depends(session)],
    user: Annotated[User | None, Depends(current_user)],
    done: str = "",
    who: int | None = None,
) -> Response:
    if refused := _refusal(request, user, Role.ADMIN):
        return refused
    assert user is not None
    flash = None
    if done in DONE:
        named = db.get(User, who) if who is not None else None
        name = named.name if named is not None and named.county_code == user.county_code else ""
        flash = DONE[done].format(name=name)
    return _admin_page(request, db, user, flash=flash)


def _done(done: str, user_id: int | None = None) -> Response:
    query = {"done": done} | ({"who": user_id} if user_id is not None else {})
    return RedirectResponse("/admin/users?" + urlencode(query), status_code=303)


@router.post("/admin/users", include_in_schema=False)
def admin_add_user(
    request: Request,
    user: Annotated[User | None, Depends(current_user)],  # checks the CSRF token
    name: Field = "",
    role: Field = Role.VIEWER.value,
    department: Field = "",
    password: Field = "",
) -> Response:
    """A new user of the admin's county, signing in with `password` (no token: scripts get
    theirs from the command line)."""
    if refused := _refusal(request, user, Role.ADMIN):
        return refused
    assert user is not None
    with writer(request, user) as db:
        try:
            added, _ = add_user(db, user.county_code, name, role, password=password,
                                department=department, with_token=False)  # fmt: skip
        except TitlemapError as exc:
            db.rollback()
            form = {"name": name, "role": role, "department": department}
            return _admin_page(request, db, user, 400, flash=str(exc), flash_kind="error",
                               form=form)  # fmt: skip
        db.commit()
        return _done("added", added.id)


def _manage(
    request: Request,
    admin: User | None,
    user_id: RowId,
    done: str,
    change: Callable[[Session, User], None],
    **refusal: object,
) -> Response:
    """`change` one user of the admin's county in an audited session, or a page saying why
    not (404 another county's or no such user, 403 locking oneself out, 400 a bad value)."""
    if refused := _refusal(request, admin, Role.ADMIN):
        return refused
    assert admin is not None
    with writer(request, admin) as db:
        user = db.get(User, user_id)
        if user is None or user.county_code != admin.county_code:
            words = "本县没有这个用户 / no such user in your county"
            return _admin_page(request, db, admin, 404, flash=words, flash_kind="error")
        if words := admin_refusal(admin, user, **refusal):  # type: ignore[arg-type]
            return _admin_page(request, db, admin, 403, flash=words, flash_kind="error")
        try:
            change(db, user)
        except TitlemapError as exc:
            db.rollback()
            return _admin_page(request, db, admin, 400, flash=str(exc), flash_kind="error")
        db.commit()
    return _done(done, user_id)


@router.post("/admin/users/{user_id}/active", include_in_schema=False)
def admin_set_active(
    request: Request,
    user_id: RowId,
    user: Annotated[User | None, Depends(current_user)],
    active: Field = "",
) -> Response:
    """Enable (active=true) or disable (anything else) a user: a disabled one's sessions end."""
    on = active == "true"
    return _manage(request, user, user_id, "enabled" if on else "disabled",
                   lambda db, target: set_active(db, target, on), active=on)  # fmt: skip


@router.post("/admin/users/{user_id}/password", include_in_schema=False)
def admin_set_password(
    request: Request,
    user_id: RowId,
    user: Annotated[User | None, Depends(current_user)],
    password: Field = "",
) -> Response:
    """A new password for a user (forgotten, or first sign-in): its sessions end."""

    def reset(db: Session, target: User) -> None:
        set_password(db, target, password)
        record(db, home_of(target), "app_user", "password_reset", str(target.id))

    return _manage(request, user, user_id, "password", reset)


@router.post("/admin/users/{user_id}/role", include_in_schema=False)
def admin_set_role(
    request: Request,
    user_id: RowId,
    user: Annotated[User | None, Depends(current_user)],
    role: Field = "",
    department: Field = "",
) -> Response:
    """A user's role and department (blank: the whole county, the leading group's office)."""
    return _manage(request, user, user_id, "role",
                   lambda db, target: set_role(db, target, role, department),
                   role=role)  # fmt: skip


@router.post("/admin/county", include_in_schema=False)
def admin_county(
    request: Request,
    user: Annotated[User | None, Depends(current_user)],
    map_public: Field = "",
) -> Response:
    """Open the county's map to the intranet (map_public=true) or close it to all but the
    county's signed-in people (false), as PATCH /api/counties/{code} does."""
    if refused := _refusal(request, user, Role.ADMIN):
        return refused
    assert user is not None
    with request.app.state.engine.connect() as conn:
        act_as(conn, actor_of(request, user))
        try:
            set_county(conn, user.county_code, {"map_public": map_public})
        except TitlemapError as exc:
            conn.rollback()
            with Session(request.app.state.engine) as db:
                return _admin_page(request, db, user, 400, flash=str(exc), flash_kind="error")
    return _done("county")
