"""Users, roles, departments and how they sign in.

People sign in with a password (argon2; the hash alone is stored) and get a session: a random
cookie whose SHA-256 is the key of a login_session row, with its own CSRF token. Scripts keep
bearer tokens (their SHA-256 alone is stored; shown once).

Who may do what, in one place: a viewer reads; an editor also edits the entries of its
department (the lead or a co-operating department), or all of its county's when it has no
department (the leading group's office, 领导小组办公室); an admin edits all of its county's
and manages its users. Nobody reads or writes another county's data unless it is among the
counties they were given (`User.counties`).

A user of a city or the province (`User.region_code`) reads every county under its region
(GB/T 2260 codes) and writes none but those it was given, by its role.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, delete, or_, select, text
from sqlalchemy.orm import Session

from geo import TitlemapError
from geo.core.codes import in_region
from geo.core.dates import now
from geo.core.model import County, Region, Role, User
from geo.core.work import LoginSession

RANK = {Role.VIEWER: 0, Role.EDITOR: 1, Role.ADMIN: 2}
ROLE_LABELS = {Role.VIEWER: "查看", Role.EDITOR: "编辑", Role.ADMIN: "管理员"}
OFFICE_LABEL = "全县（领导小组办公室）"
MIN_PASSWORD_CHARS, MAX_PASSWORD_CHARS = 8, 200
MAX_NAME_CHARS = 50

_hasher = PasswordHasher()  # argon2id with the library's current defaults


class SignInError(TitlemapError):
    """Wrong name or password: one message for both, so names cannot be probed."""


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _checked_role(role: str) -> str:
    try:
        return Role(role).value
    except ValueError:
        raise TitlemapError(f"未知角色 / unknown role {role!r}: viewer / editor / admin") from None


def _checked_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME_CHARS or any(c.isspace() and c != " " for c in name):
        raise TitlemapError(f"用户名应为 1–{MAX_NAME_CHARS} 个字符 / a name of 1–50 characters")
    return name


def checked_password(password: str) -> str:
    if not MIN_PASSWORD_CHARS <= len(password or "") <= MAX_PASSWORD_CHARS:
        raise TitlemapError(
            f"密码至少 {MIN_PASSWORD_CHARS} 个字符 / a password of at least "
            f"{MIN_PASSWORD_CHARS} characters"
        )
    return password


def add_user(
    session: Session,
    county: str | None,
    name: str,
    role: str,
    *,
    password: str | None = None,
    department: str | None = None,
    with_token: bool = True,
    region: str | None = None,
) -> tuple[User, str | None]:
    """Create a user of `county`, or of `region` (a city or the province; county None);
    returns it with its new token (not retrievable later) when `with_token`. With `password`,
    the user can sign in on the pages."""
    role = _checked_role(role)
    name = _checked_name(name)
    if (county is None) == (region is None):
        raise TitlemapError("用户属于一个县或一个省/市 / a user belongs to a county or a region")
    if county is not None and session.get(County, county) is None:
        raise TitlemapError(f"没有这个县 / no such county: {county}（先载入数据 / load it first）")
    if region is not None and session.get(Region, region) is None:
        raise TitlemapError(f"没有这个省/市 / no such region: {region}（titlemap region add）")
    if session.scalar(select(User).where(_home_is(county or region or ""), User.name == name)):
        raise TitlemapError(f"用户 {name} 已存在 / user exists (换名或先停用 / pick another name)")
    token = secrets.token_urlsafe(32) if with_token else None
    user = User(
        county_code=county,
        region_code=region,
        name=name,
        role=role,
        department=(department or "").strip() or None,
        token_sha256=token_digest(token) if token else None,
        password_hash=_hasher.hash(checked_password(password)) if password is not None else None,
    )
    session.add(user)
    session.flush()
    return user, token


def set_password(session: Session, user: User, password: str) -> None:
    """A new password; every session of the user ends (sign in again everywhere)."""
    user.password_hash = _hasher.hash(checked_password(password))
    session.execute(delete(LoginSession).where(LoginSession.user_id == user.id))
    session.flush()


def change_password(session: Session, user: User, old: str, new: str) -> None:
    if not _password_matches(user, old):
        raise SignInError("原密码不对 / the current password is wrong")
    set_password(session, user, new)


def authenticate(session: Session, token: str) -> User | None:
    user = session.scalar(select(User).where(User.token_sha256 == token_digest(token)))
    return user if user and user.active else None


def _password_matches(user: User | None, password: str) -> bool:
    if user is None or not user.password_hash:
        _hasher.hash(password)  # as long as a real check: a name cannot be told by the time
        return False
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@dataclass
class SignIn:
    """A new session: the cookie value (shown once) and the row it is kept as."""

    cookie: str
    session: LoginSession
    user: User


def sign_in(
    session: Session,
    county: str | None,
    name: str,
    password: str,
    *,
    hours: float = 12,
    address: str | None = None,
    user_agent: str | None = None,
) -> SignIn:
    """Check a name and password (in `county`, or the only user of that name anywhere)."""
    query = select(User).where(User.name == (name or "").strip(), User.active.is_(True))
    if county:
        query = query.where(_home_is(county))
    found = session.scalars(query).all()
    user = found[0] if len(found) == 1 else None
    if not _password_matches(user, password or ""):
        raise SignInError("用户名或密码不对 / wrong name or password")
    assert user is not None
    if user.password_hash and _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return start_session(session, user, hours=hours, address=address, user_agent=user_agent)


def start_session(
    session: Session,
    user: User,
    *,
    hours: float = 12,
    address: str | None = None,
    user_agent: str | None = None,
) -> SignIn:
    """A new session of `user` (after its password was checked): a fresh cookie and CSRF."""
    cookie = secrets.token_urlsafe(32)
    at = now()
    row = LoginSession(
        id=token_digest(cookie), user_id=user.id, csrf=secrets.token_urlsafe(32),
        created_at=at, expires_at=at + timedelta(hours=hours), last_seen_at=at,
        address=address, user_agent=(user_agent or "")[:300] or None,
    )  # fmt: skip
    session.add(row)
    session.flush()
    return SignIn(cookie, row, user)


TOUCH_AFTER = timedelta(minutes=1)  # last_seen_at is written at most this often


def session_user(session: Session, cookie: str) -> tuple[User, LoginSession] | None:
    """The live session of a cookie and its user; None when unknown, expired or disabled."""
    row = session.get(LoginSession, token_digest(cookie))
    at = now()
    if row is None or row.expires_at <= at:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    if at - row.last_seen_at > TOUCH_AFTER:
        row.last_seen_at = at  # the caller commits
    return user, row


def sign_out(session: Session, cookie: str) -> LoginSession | None:
    row = session.get(LoginSession, token_digest(cookie))
    if row is not None:
        session.delete(row)
        session.flush()
    return row


def end_expired_sessions(session: Session, at: datetime | None = None) -> int:
    result = session.execute(delete(LoginSession).where(LoginSession.expires_at <= (at or now())))
    return result.rowcount or 0


# -- a county's users, as its admin (or the command line) manages them ------------------------


def _home_is(code: str):
    """Users whose home is `code`: a county's, or a city's or the province's."""
    return or_(User.county_code == code, User.region_code == code)


def home_of(user: User) -> str:
    """The code of the county, city or province the user belongs to."""
    return user.county_code or user.region_code or ""


NO_HOME_COUNTY = (
    "省/市的用户只能写入授予它的一个县 / a region's user writes only in the one county it was given"
)


def home_county(user: User) -> str | None:
    """The county a user works in when none is named: its own; for a region's user the one
    county it was given, if just one; else None (the request must name a county)."""
    if user.county_code:
        return user.county_code
    return user.counties[0] if len(user.counties or []) == 1 else None


def county_users(session: Session, county: str) -> list[User]:
    """The users of `county` (or of a region, by its code), disabled ones too, by name."""
    return list(session.scalars(select(User).where(_home_is(county)).order_by(User.name)))


def find_user(session: Session, county: str, name: str) -> User:
    """The user of `county` (or region) called `name`; one line saying so when there is none."""
    user = session.scalar(select(User).where(_home_is(county), User.name == (name or "").strip()))
    if user is None:
        raise TitlemapError(
            f"县 {county} 没有用户 {name} / no user {name} in {county}（titlemap user list）"
        )
    return user


def set_active(session: Session, user: User, active: bool) -> None:
    """Enable or disable `user`; a disabled user's sessions end at once (its token stops
    working too: `authenticate` and `session_user` admit active users only)."""
    user.active = bool(active)
    if not user.active:
        session.execute(delete(LoginSession).where(LoginSession.user_id == user.id))
    session.flush()


def set_role(session: Session, user: User, role: str, department: str | None) -> None:
    """A new role and department (blank: the whole county, the leading group's office)."""
    user.role = _checked_role(role)
    user.department = (department or "").strip() or None
    session.flush()


def give_counties(session: Session, user: User, counties: list[str]) -> None:
    """The other counties `user` may read (and, by role, edit) besides its own: the whole
    list, replacing the one before; each must be a county of this database."""
    wanted = sorted({c.strip() for c in counties if c.strip()} - {user.county_code})
    known = set(session.scalars(select(County.code).where(County.code.in_(wanted))))
    missing = [c for c in wanted if c not in known]
    if missing:
        raise TitlemapError(f"没有这个县 / no such county: {'、'.join(missing)}")
    user.counties = wanted
    session.flush()


def admin_refusal(admin: User, user: User, *, role: str | None = None,
                  active: bool | None = None) -> str | None:  # fmt: skip
    """Why `admin` may not make this change to `user`, in one line; None when it may. An
    admin manages its own county's users only, and never locks itself out."""
    if not may(admin, Role.ADMIN) or home_of(admin) != home_of(user):
        return "只能管理本县用户 / only your own county's users"
    if admin.id == user.id and active is False:
        return "不能停用自己 / you cannot disable yourself"
    if admin.id == user.id and role is not None and role != Role.ADMIN:
        return "不能取消自己的管理员角色 / you cannot take your own admin role"
    return None


def county_departments(conn: Connection | Session, county: str, people: bool = True) -> list[str]:
    """The county's departments, for choosing one: those leading or co-operating on its
    ledger and, with `people`, those of its active users ("未定", not decided, is none)."""
    users = (
        "  UNION ALL SELECT department FROM app_user WHERE county_code = :c AND active"
        if people
        else ""
    )
    return list(
        conn.scalars(
            text(
                "SELECT DISTINCT btrim(d) FROM ("
                "  SELECT lead_department AS d FROM ledger_entry WHERE county_code = :c"
                "  UNION ALL SELECT unnest(cooperating_departments) FROM ledger_entry"
                f"  WHERE county_code = :c{users}"
                ") AS named WHERE btrim(coalesce(d, '')) NOT IN ('', '未定') ORDER BY 1"
            ),
            {"c": county},
        )
    )


# -- who may do what ---------------------------------------------------------------------------


def may(user: User | None, role: str) -> bool:
    """Whether `user` holds `role` or a higher one."""
    return user is not None and RANK[Role(user.role)] >= RANK[Role(role)]


def counties_of(user: User) -> set[str]:
    """The counties `user` works in (writes, by role): its own and those it was given."""
    own = {user.county_code} if user.county_code else set()
    return own | set(user.counties or [])


def may_read(user: User | None, county: str, public: bool) -> bool:
    """Reading a county: anyone when its map is public on the intranet, else its own people,
    and the people of the city and the province it lies in."""
    if public:
        return True
    if user is None or not user.active:
        return False
    return county in counties_of(user) or bool(
        user.region_code and in_region(county, user.region_code)
    )


def may_see_region(user: User | None, region: str, readable: list[str]) -> bool:
    """Whether `user` sees a region's overview at all: a user of that region or of one above
    it, or anyone who may read one of its counties (`readable`: those the user may read); the
    overview then holds the readable counties only."""
    if user is not None and user.active and user.region_code:
        if in_region(region, user.region_code):
            return True
    return bool(readable)


def is_office(user: User) -> bool:
    """The whole county: an admin, or an editor without a department (the office)."""
    return may(user, Role.ADMIN) or (may(user, Role.EDITOR) and not user.department)


def may_edit_entry(user: User | None, entry: Any) -> bool:
    """Whether `user` may change a ledger entry (anything with county_code, lead_department and
    cooperating_departments): its county, and its department leads or co-operates."""
    if user is None or not user.active or not may(user, Role.EDITOR):
        return False
    if entry.county_code not in counties_of(user):
        return False
    if is_office(user):
        return True
    department = user.department.strip()
    return department == (entry.lead_department or "").strip() or department in {
        d.strip() for d in entry.cooperating_departments or []
    }


def edit_refusal(user: User, entry: Any) -> str:
    """Why `user` may not edit `entry`, in one line."""
    if entry.county_code not in counties_of(user):
        return "只能修改本县台账 / only your own county's ledger"
    if not may(user, Role.EDITOR):
        return f"{user.name}（{user.role}）只能查看 / may only read"
    return (
        f"{user.department}不是该小区的牵头或配合单位（牵头：{entry.lead_department or '未定'}）"
        f" / {user.department} neither leads nor co-operates on this compound"
    )


def describe_user(user: User) -> dict[str, Any]:
    """A user as pages and /api/me show it (never a hash)."""
    return {
        "id": user.id,
        "name": user.name,
        "county": user.county_code,
        "region": user.region_code,
        "counties": sorted(counties_of(user)),
        "role": user.role,
        "role_label": ROLE_LABELS[Role(user.role)],
        "department": user.department,
        "department_label": user.department or OFFICE_LABEL,
        "office": is_office(user),
        "active": user.active,
        "signs_in": bool(user.password_hash),
    }
