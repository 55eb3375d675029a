"""Users, roles and bearer tokens. Only a token's SHA-256 is stored; the token is shown once."""

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from geo import TitlemapError
from geo.core.model import County, Role, User

RANK = {Role.VIEWER: 0, Role.EDITOR: 1, Role.ADMIN: 2}


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_user(session: Session, county: str, name: str, role: str) -> tuple[User, str]:
    """Create a user; returns it with its new token (not retrievable later)."""
    try:
        role = Role(role).value
    except ValueError:
        raise TitlemapError(f"未知角色 / unknown role {role!r}: viewer / editor / admin") from None
    if session.get(County, county) is None:
        raise TitlemapError(f"没有这个县 / no such county: {county}（先载入数据 / load it first）")
    exists = session.scalar(select(User).where(User.county_code == county, User.name == name))
    if exists:
        raise TitlemapError(f"用户 {name} 已存在 / user exists (换名或先停用 / pick another name)")
    token = secrets.token_urlsafe(32)
    user = User(county_code=county, name=name, role=role, token_sha256=token_digest(token))
    session.add(user)
    session.flush()
    return user, token


def authenticate(session: Session, token: str) -> User | None:
    user = session.scalar(select(User).where(User.token_sha256 == token_digest(token)))
    return user if user and user.active else None


def may(user: User | None, role: str) -> bool:
    """Whether `user` holds `role` or a higher one."""
    return user is not None and RANK[Role(user.role)] >= RANK[Role(role)]
