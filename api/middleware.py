"""What every request passes through, as plain ASGI (a cached tile costs ~0.2 ms: no more):

- `RefuseNul`: a NUL character wherever a value comes from — the path, the query string, a
  JSON or form body — is refused with 422 before any route runs: PostgreSQL text cannot hold
  one, and a route would fail with a 500 deep inside. (Multipart uploads: api.routers.imports.)
- `SlowFailedTokens`: an address that sent FailedTokens.limit wrong tokens within its window
  gets 429 on every request bearing a token until the window ends; reading without a token
  still works. Its state is `app.state.failed_tokens`, bounded.
- `SecurityHeaders`: `X-Content-Type-Options: nosniff` and a Content-Security-Policy on every
  answer: nothing from other origins but a basemap's images (a route may set its own policy:
  the map page names its inline scripts by hash, `page_policy`).

`protect(app)` installs them with the error handlers of api.errors.
"""

import base64
import hashlib
import math
import re
import time
from collections import OrderedDict
from collections.abc import Iterable
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import NUL_REFUSED, install_handlers, message

MAX_BUFFERED_BODY = 10 * 1024 * 1024  # JSON and form bodies are read whole to be checked
# A JSON string's \u0000 escape, not preceded by an escaped backslash (\\u0000 is text).
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
FORM = "application/x-www-form-urlencoded"


def _kind(scope: Scope) -> str | None:
    """ "json" or "form" for a body read whole to be checked; None for any other."""
    kind = Headers(scope=scope).get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json" or kind.endswith("+json"):
        return "json"
    return "form" if kind == FORM else None


def _has_nul(body: bytes, kind: str) -> bool:
    if b"\x00" in body:
        return True
    return _JSON_NUL.search(body) is not None if kind == "json" else b"%00" in body


class _HttpMiddleware:
    """An ASGI middleware for HTTP requests (`http`); anything else (lifespan) passes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        return await self.http(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class RefuseNul(_HttpMiddleware):
    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = scope.get("query_string", b"")
        if "\x00" in scope["path"] or b"%00" in query or b"\x00" in query:
            return await message(422, NUL_REFUSED)(scope, receive, send)
        kind = _kind(scope)
        if kind is None:
            return await self.app(scope, receive, send)
        body = await _read_body(receive)
        if body is None:
            too_large = f"请求体超过 {MAX_BUFFERED_BODY >> 20} MB / the body is over the limit"
            return await message(413, too_large)(scope, receive, send)
        if _has_nul(body, kind):
            return await message(422, NUL_REFUSED)(scope, receive, send)
        await self.app(scope, _replay(body, receive), send)


async def _read_body(receive: Receive) -> bytes | None:
    """The request body, or None past MAX_BUFFERED_BODY."""
    chunks, size = [], 0
    while True:
        event = await receive()
        if event["type"] != "http.request":
            break
        chunk = event.get("body", b"")
        size += len(chunk)
        if size > MAX_BUFFERED_BODY:
            return None
        chunks.append(chunk)
        if not event.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives `body` once, then what the client sends next (a disconnect)."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


class FailedTokens:
    """Wrong tokens per client address, counted in fixed windows; at most `addresses` kept
    (the least recently failing dropped first), so a flood of addresses costs bounded memory."""

    def __init__(self, limit: int = 20, window: float = 60.0, addresses: int = 10_000) -> None:
        self.limit, self.window, self.addresses = limit, window, addresses
        self._counts: OrderedDict[str, tuple[float, int]] = OrderedDict()  # start, failures

    def wait(self, address: str) -> float:
        """Seconds `address` must wait before its next token is looked at; 0 if none."""
        start, failures = self._counts.get(address, (0.0, 0))
        left = start + self.window - time.monotonic()
        return left if failures >= self.limit and left > 0 else 0.0

    def failed(self, address: str) -> None:
        now = time.monotonic()
        start, failures = self._counts.pop(address, (now, 0))
        if now - start >= self.window:
            start, failures = now, 0
        self._counts[address] = (start, failures + 1)
        while len(self._counts) > self.addresses:
            self._counts.popitem(last=False)

    def __len__(self) -> int:
        return len(self._counts)


class SlowFailedTokens(_HttpMiddleware):
    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if "authorization" not in Headers(scope=scope):
            return await self.app(scope, receive, send)  # no token: nothing to slow down
        tokens: FailedTokens = scope["app"].state.failed_tokens
        address = (scope.get("client") or ("?", 0))[0]
        wait = tokens.wait(address)
        if wait > 0:
            seconds = math.ceil(wait)
            refused = message(
                429,
                f"令牌错误次数过多，请 {seconds} 秒后再试 / too many wrong tokens from this "
                f"address: try again in {seconds} s",
                {"Retry-After": str(seconds)},
            )
            return await refused(scope, receive, send)

        async def watch(event: Message) -> None:
            if event["type"] == "http.response.start" and event["status"] == 401:
                tokens.failed(address)
            await send(event)

        await self.app(scope, receive, watch)


# Scripts, styles, data and fonts from this app only; inline styles (the pages' own and
# Leaflet's); images also as data: and blob: URLs (markers, the SVG patterns).
_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'", "'unsafe-inline'"],
    "img-src": ["'self'", "data:", "blob:"],
    "font-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "frame-ancestors": ["'self'"],
    "form-action": ["'self'"],
}


def policy(extra: dict[str, list[str]] | None = None) -> str:
    """The Content-Security-Policy, with `extra` sources added to its directives."""
    merged = {k: [*v, *(extra or {}).get(k, [])] for k, v in _POLICY.items()}
    merged |= {k: v for k, v in (extra or {}).items() if k not in merged}
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in merged.items())


DEFAULT_POLICY = policy()
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def page_policy(html: str, images: Iterable[str] = (), workers: Iterable[str] = ()) -> str:
    """The policy for a page of ours: its inline scripts allowed by their SHA-256 (so no
    script injected into it runs), images also from `images` (a basemap's tile origins),
    workers from `workers`."""
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in _INLINE_SCRIPT.findall(html)
    ]
    extra = {"script-src": hashes, "img-src": list(images)}
    if workers:
        extra["worker-src"] = ["'self'", *workers]
    return policy(extra)


def origin_of(url_template: str) -> str | None:
    """The CSP source for the origin of a tile URL template: https://t{s}.tianditu.gov.cn/…
    → https://*.tianditu.gov.cn; None for one on this app ("/tiles/…")."""
    parts = urlsplit(url_template)
    if not parts.scheme or not parts.hostname:
        return None
    first, _, rest = parts.netloc.partition(".")
    if "{" in first and rest and "{" not in rest:
        return f"{parts.scheme}://*.{rest}"
    if "{" in parts.netloc:
        return f"{parts.scheme}:"  # a placeholder CSP cannot say: the scheme alone
    return f"{parts.scheme}://{parts.netloc}"


class SecurityHeaders(_HttpMiddleware):
    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(event: Message) -> None:
            if event["type"] == "http.response.start":
                headers = MutableHeaders(scope=event)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Content-Security-Policy", DEFAULT_POLICY)
            await send(event)

        await self.app(scope, receive, with_headers)


def protect(app: FastAPI) -> None:
    """Error handlers (api.errors) and the three middlewares, the headers outermost so that
    the others' refusals carry them too."""
    install_handlers(app)
    app.state.failed_tokens = FailedTokens()
    app.add_middleware(RefuseNul)
    app.add_middleware(SlowFailedTokens)
    app.add_middleware(SecurityHeaders)
