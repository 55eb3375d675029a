"""Who is asking: a signed-in person (session cookie, CSRF token on every write) or a script
(bearer token). Reading is open on the intranet unless a county closes its map
(county.map_public); writing needs a role, and the rules of geo.ledger.users."""

import asyncio
from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Connection, event, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.errors import OUTAGES
from geo.core.model import County, Role, User
from geo.db.audit import Actor, act_as, act_for
from geo.db.revisions import data_version, known_version
from geo.ledger.users import authenticate, may, may_read, session_user

bearer = HTTPBearer(auto_error=False, description="titlemap user add 生成的令牌 / user token")

COOKIE = "titlemap_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
FORM = "application/x-www-form-urlencoded"


def session(request: Request) -> Iterator[Session]:
    with Session(request.app.state.engine, expire_on_commit=False) as db:
        yield db


def actor_of(request: Request, user: User | None) -> Actor:
    """Who the audit log names for this request, and from which address."""
    address = request.client.host if request.client else None
    if user is None:
        return Actor("匿名 / anonymous", None, address)
    return Actor(user.name, user.department, address)


def _signed_in(request: Request, db: Session) -> User | None:
    """The user of the session cookie (its session kept on request.state.login)."""
    cookie = request.cookies.get(COOKIE)
    found = session_user(db, cookie) if cookie else None
    if found is None:
        return None
    user, login = found
    db.commit()  # last_seen_at
    request.state.login = login
    return user


def _identify(request: Request, token: str | None) -> User | None:
    """The bearer token's user, else the session cookie's; a session of its own, closed at
    once (a request keeps no connection for knowing its user)."""
    with Session(request.app.state.engine, expire_on_commit=False) as db:
        if token is None:
            return _signed_in(request, db)
        user = authenticate(db, token)
    if user is None:
        raise HTTPException(401, "令牌无效或已停用 / invalid or disabled token")
    return user


async def _check_csrf(request: Request) -> None:
    login = getattr(request.state, "login", None)
    if login is None or request.method in SAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER)
    # A page's form carries the token as a field; a file upload (multipart) must carry the
    # header: its body is not read before the writer is known to be allowed.
    if sent is None and request.headers.get("content-type", "").startswith(FORM):
        sent = (await request.form()).get(CSRF_FIELD)
    if not isinstance(sent, str) or sent != login.csrf:
        raise HTTPException(
            403, "缺少或无效的 CSRF 令牌，请刷新页面后重试 / missing or wrong CSRF token: reload"
        )


async def current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> User | None:
    """The bearer token's user, else the session cookie's (a write must then carry the
    session's CSRF token: header X-CSRF-Token or form field csrf_token); None if neither.
    Looked up in a worker thread: the event loop never waits for a database connection."""
    token = credentials.credentials if credentials is not None else None
    user = await run_in_threadpool(_identify, request, token)
    if token is None:
        await _check_csrf(request)
    request.state.user = user
    # whatever this request writes names its user (a kept-alive connection's next request
    # starts anew: None for nobody)
    act_for(actor_of(request, user) if user is not None else None)
    return user


def require(role: str) -> Callable[..., User]:
    """A dependency admitting users with `role` or higher: 401 when not signed in, 403 below."""

    def check(user: Annotated[User | None, Depends(current_user)]) -> User:
        if user is None:
            raise HTTPException(
                401,
                "请先登录 / sign in first (页面 /signin，脚本 Authorization: Bearer …)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not may(user, role):
            raise HTTPException(
                403, f"{user.name}（{user.role}）无权执行此操作，需要 {role} / needs role {role}"
            )
        return user

    return check


def writer(request: Request, user: User) -> Session:
    """A session whose every transaction names `user` and the request's address in the audit
    log (the triggers of migration 0009). Close it (use as a context manager)."""
    db = Session(request.app.state.engine, expire_on_commit=False)
    actor = actor_of(request, user)

    @event.listens_for(db, "after_begin")
    def _name_actor(_session, _transaction, connection) -> None:
        act_as(connection, actor)

    return db


def editor_session(role: str = Role.EDITOR) -> Callable[..., Iterator[tuple[Session, User]]]:
    """A dependency yielding (audited session, user) for a user of `role` or higher."""

    def open_(request: Request, user: Annotated[User, Depends(require(role))]):
        with writer(request, user) as db:
            yield db, user

    return open_


# -- reading a county ------------------------------------------------------------------------


def _read_public(app, county: str, conn: Connection | None = None) -> bool:
    """county.map_public read now — on `conn` when the caller holds one (a second checkout
    while holding one starves the pool under load) — kept with the county's data revision."""
    if conn is None:
        with app.state.engine.connect() as own:
            return _read_public(app, county, own)
    version = data_version(conn, county)
    public = conn.execute(select(County.map_public).where(County.code == county))
    public = public.scalar() is not False
    app.state.county_public[county] = (version, public)
    return public


def _refresh_public(app, county: str) -> None:
    """Read the county's flag again off the event loop — one read a county at a time: where
    revisions are not held in memory (Citus) every tile asks, and a read each would flood the
    pool."""
    pending = app.state.county_public_pending
    if county in pending:
        return
    pending.add(county)

    def read() -> None:
        try:
            _quietly(_read_public, app, county)
        finally:
            pending.discard(county)

    asyncio.get_running_loop().run_in_executor(None, read)


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def county_is_public(request: Request, county: str, conn: Connection | None = None) -> bool:
    """Whether `county`'s map is open to the intranet (county.map_public); an unknown county
    is public (it answers 404 wherever it is asked for). Kept by the app with the county's
    data revision it was read at (a change of the county row moves it): a cached tile needs
    no query. On the event loop (the tile routes) nothing waits for the database: after an
    edit the last answer stands while a worker thread reads the new one; and while the
    database is away, the last answer stands. `conn`: a connection the caller holds."""
    app = request.app
    held = app.state.county_public.get(county)
    version = known_version(app.state.engine, county)
    if held is not None and version is not None and held[0] == version:
        return held[1]
    if held is not None and _on_event_loop():
        # Where no revision is held (Citus, a listener down) a tile goes to a worker thread,
        # which reads the flag again on its own connection: a read from here too was a second
        # connection per tile, the starvation test_a_tile_is_built_on_one_connection guards.
        if version is not None:
            _refresh_public(app, county)
        return held[1]
    try:
        return _read_public(app, county, conn)
    except OUTAGES:
        # The caller's connection, dropped under the read, is of no further use to it: say so.
        if held is None or (conn is not None and conn.invalidated):
            raise
        return held[1]


def _quietly(read, *args) -> None:
    try:
        read(*args)
    except OUTAGES:
        pass  # the next request reads it again


def reader(request: Request) -> User | None:
    """The request's user for reading (cookie or bearer), resolved once per request; no CSRF
    (reads change nothing); a wrong token reads as nobody."""
    if hasattr(request.state, "user"):
        return request.state.user
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    bearer_token = token.strip() if scheme.lower() == "bearer" and token.strip() else None
    try:
        user = _identify(request, bearer_token)
    except HTTPException:
        user = None
    request.state.user = user
    return user


def check_read(request: Request, county: str, conn: Connection | None = None) -> None:
    """403 (401 when not signed in) for a county whose map is not public, unless the user
    belongs to it or was given it. `conn`: a connection the caller holds, to read on."""
    if county_is_public(request, county, conn):
        return
    user = reader(request)
    if not may_read(user, county, public=False):
        if user is None:
            raise HTTPException(401, "本县地图须登录查看 / this county's map needs signing in")
        raise HTTPException(403, f"{user.name} 无权查看该县 / not given this county")
