"""Errors as answers: one line for the user (Chinese first, English after " / "), one shape
everywhere, and the OpenAPI saying so.

- `Message` {"detail": "…"}: every 4xx/5xx the app gives (HTTPException, a TitlemapError).
- `Invalid` (422): that one line, or FastAPI's list of the fields at fault.
- The database out of reach (stopped, restarting, a dropped connection, no free connection)
  or a statement over its time limit: 503 with one line, logged as one line — not a
  traceback per request. A full disk (the database's or the file store's): 507 with one
  line. Anything else unforeseen: 500 with one line; its traceback is
  logged, as a bug's should be.
"""

import logging
import time
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import exc as sa

from geo.db.engine import DISK_FULL, disk_full

log = logging.getLogger(__name__)

NUL_REFUSED = "请求含 NUL 字符（\\u0000），已拒绝 / the request holds a NUL character (\\u0000)"
RETRY_AFTER = "5"  # seconds a client is asked to wait before trying again (503, 429)


class Message(BaseModel):
    """An error: one line, Chinese first, English after " / "."""

    detail: str


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Invalid(BaseModel):
    """422: one line (as `Message`), or the fields at fault (FastAPI's HTTPValidationError)."""

    detail: str | list[FieldError]


def _answer(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"model": model, "description": description}


# Every operation may answer these (FastAPI(responses=…)); routes add 401/403/409/413.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _answer(Message, "请求有误 / bad request"),
    404: _answer(Message, "没有找到 / not found"),
    422: _answer(Invalid, "无法处理：原因一行，或出错的字段 / refused: why, or the fields"),
    429: _answer(Message, "令牌失败过多或打印繁忙，稍后再试 / too many failed tokens, or busy"),
    500: _answer(Message, "服务器内部错误 / internal server error"),
    503: _answer(Message, "数据库暂不可用或查询超时 / database unavailable, or query too long"),
    507: _answer(Message, "磁盘已满，未做任何修改 / the disk is full: nothing was changed"),
}
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _answer(Message, "需要有效令牌 / a valid token is required"),
    403: _answer(Message, "角色或县不符 / not your role or county"),
}


def message(status_code: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """An error answer as every route gives it."""
    return JSONResponse({"detail": detail}, status_code=status_code, headers=headers)


# What the driver and the pool raise when the database cannot be reached or used now (a
# refused or dropped connection, none free, a statement cancelled at its time limit), as
# opposed to a bug (a DataError, a ProgrammingError: those stay 500).
OUTAGES = (
    sa.OperationalError, sa.InterfaceError, sa.TimeoutError,
    psycopg.OperationalError, psycopg.InterfaceError,
)  # fmt: skip


def _reason(exc: BaseException) -> str:
    cause = exc.orig if isinstance(exc, sa.DBAPIError) else exc
    if isinstance(cause, psycopg.errors.QueryCanceled):
        return "查询超时，请缩小范围 / the query took too long: ask for less"
    if isinstance(exc, sa.TimeoutError):
        return "数据库连接已满，请稍后再试 / no database connection free: try again shortly"
    return "数据库暂不可用，请稍后再试 / the database is unavailable: try again shortly"


class _Quiet:
    """One log line per `every` seconds: an outage is said, not repeated per request."""

    def __init__(self, every: float = 10.0):
        self.every, self.last, self.missed = every, float("-inf"), 0

    def warn(self, text: str) -> None:
        now = time.monotonic()
        if now - self.last < self.every:
            self.missed += 1
            return
        more = f" (+{self.missed} more)" if self.missed else ""
        log.warning("%s%s", text, more)
        self.last, self.missed = now, 0


_outages = _Quiet()


async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    if disk_full(exc):
        return await insufficient_storage(request, exc)
    reason = _reason(exc)
    first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    _outages.warn(f"503 {request.url.path}: {reason} — {first[0] if first else type(exc)}")
    return message(503, reason, {"Retry-After": RETRY_AFTER})


async def server_error(request: Request, exc: Exception) -> JSONResponse:
    return message(500, "服务器内部错误 / internal server error")


async def insufficient_storage(request: Request, exc: Exception) -> JSONResponse:
    """A full disk (the database's or the file store's): 507 in one line, logged as one."""
    first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    _outages.warn(f"507 {request.url.path}: {first[0] if first else type(exc)}")
    return message(507, DISK_FULL)


async def os_error(request: Request, exc: OSError) -> JSONResponse:
    if disk_full(exc):
        return await insufficient_storage(request, exc)
    log.error("%s %s", request.url.path, exc, exc_info=exc)  # a bug or the machine: logged whole
    return await server_error(request, exc)


class StaleEdit(Exception):
    """409: an edit made on an old version. The answer holds what is there now (`current`), so
    the person sees what changed meanwhile and can redo their edit on it."""

    def __init__(self, detail: str, current: dict):
        self.detail, self.current = detail, current


async def stale_edit(request: Request, exc: StaleEdit) -> JSONResponse:
    return JSONResponse({"detail": exc.detail, "current": exc.current}, status_code=409)


def install_handlers(app: FastAPI) -> None:
    """503 for the database out of reach, 500 as one line (Starlette still logs the bug)."""
    app.add_exception_handler(StaleEdit, stale_edit)
    for kind in OUTAGES:
        app.add_exception_handler(kind, database_unavailable)
    app.add_exception_handler(OSError, os_error)
    app.add_exception_handler(Exception, server_error)
