"""Bearer-token users: reading is open on the intranet, writing needs a role."""

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from geo.core.model import User
from geo.ledger.users import authenticate, may

bearer = HTTPBearer(auto_error=False, description="titlemap user add 生成的令牌 / user token")


def session(request: Request):
    with Session(request.app.state.engine, expire_on_commit=False) as db:
        yield db


def current_user(
    db: Annotated[Session, Depends(session)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> User | None:
    if credentials is None:
        return None
    user = authenticate(db, credentials.credentials)
    if user is None:
        raise HTTPException(401, "令牌无效或已停用 / invalid or disabled token")
    return user


def require(role: str) -> Callable[..., User]:
    """A dependency admitting users with `role` or higher: 401 without a token, 403 below it."""

    def check(user: Annotated[User | None, Depends(current_user)]) -> User:
        if user is None:
            raise HTTPException(
                401,
                "需要登录令牌 / a token is required (Authorization: Bearer …)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not may(user, role):
            raise HTTPException(
                403, f"{user.name}（{user.role}）无权执行此操作，需要 {role} / needs role {role}"
            )
        return user

    return check
