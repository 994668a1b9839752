"""Guarding the reviewer page (``/review/``) against other sites and against password guessing.

:class:`ReviewGuard` is an ASGI middleware on the whole server that acts on ``/review`` paths only;
the chat page, its API and the widget keep Gradio's CORS policy (the widget depends on it). For the
reviewer page it enforces three rules:

- **Same origin only for browsers.** A request a browser marks as coming from another site
  (``Sec-Fetch-Site`` other than ``same-origin``/``none``; without that header, an ``Origin`` whose
  scheme, host and port differ from the request's own) is refused (``403``) unless its method is
  ``GET`` or ``HEAD``; those pass, stripped of ``Access-Control-Allow-Origin`` and
  ``-Credentials``, so the other site cannot read the answer. Refusing outright is the real defence
  (CORS headers only restrain reading; a cross-site form post would still act). It is the check
  Go's ``net/http.CrossOriginProtection`` makes, except that a cross-origin ``OPTIONS`` (a CORS
  preflight) is refused too. A request with neither header does not come from a browser page, so
  no reviewer's cookie rides along unasked, and it passes (``gradio_client``, curl).
- **SameSite=Lax cookies.** Gradio sets its sign-in cookie with ``SameSite=None`` (so an app
  embedded in another site's iframe can sign in); every ``Set-Cookie`` of the reviewer page is sent
  with ``SameSite=Lax`` instead, so no other site's request carries it. ``Secure`` stays as Gradio
  sets it.
- **Sign-in throttling.** :class:`LoginThrottle` counts failed sign-ins (``POST /review/login``)
  per user name and client address; past the limit, further attempts are refused (``429``) for a
  cool-down, even with the right password. A success clears the count.

The client address is the one uvicorn reports: behind a proxy, uvicorn takes it from
``X-Forwarded-For`` only when the proxy's address is in ``FORWARDED_ALLOW_IPS`` (default: loopback).
An untrusted header would let a guesser pick a fresh address for every attempt.

Gradio 6.31 has no option for any of this (its ``strict_cors`` only concerns apps served as
localhost, and the cookie attributes are fixed in its ``/login`` handler), hence the middleware.
"""

from __future__ import annotations

import math
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from loguru import logger
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.websockets import WebSocketClose

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SAFE_METHODS = frozenset({"GET", "HEAD"})
SAME_ORIGIN_FETCH_SITES = frozenset({"same-origin", "none"})
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
CORS_RESPONSE_HEADERS = (b"access-control-allow-origin", b"access-control-allow-credentials")
LOGIN_PATHS = ("/login", "/login/")
MAX_LOGIN_BODY = 64 * 1024
MAX_USER_CHARS = 128
_SAMESITE_NONE = re.compile(rb";\s*samesite\s*=\s*none\b", re.IGNORECASE)

Origin = tuple[str, str, int]


def _origin(scheme: str, netloc: str) -> Origin | None:
    """``(scheme, host, port)`` of ``scheme://netloc`` (default port filled in), or None if malformed."""
    scheme = scheme.strip().lower()
    if scheme not in DEFAULT_PORTS:
        return None
    try:
        parts = urlsplit(f"//{netloc.strip()}")
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    web_scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    return web_scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme]


def parse_origin(value: str) -> Origin | None:
    """The ``Origin`` header ``value`` as ``(scheme, host, port)``; None for ``null`` or a malformed one.

    >>> parse_origin("https://Chat.Example.org")
    ('https', 'chat.example.org', 443)
    """
    scheme, sep, rest = value.strip().partition("://")
    if not sep or "/" in rest:
        return None
    return _origin(scheme, rest)


def own_origins(headers: Headers, scheme: str) -> set[Origin]:
    """The origins a request may have been addressed to: its ``Host`` over its scheme, and the
    ``X-Forwarded-Host``/``-Proto`` a proxy in front set (Gradio reads them the same way). A browser
    cannot add these headers to a cross-site request without a preflight, which is refused."""
    schemes = {scheme} | {v.split(",")[0].strip() for v in headers.getlist("x-forwarded-proto")}
    hosts = {h for h in (headers.get("host"), *headers.getlist("x-forwarded-host")) if h}
    hosts = {h.split(",")[0].strip() for h in hosts}
    return {o for s in schemes for h in hosts if (o := _origin(s, h)) is not None}


def is_cross_origin(headers: Headers, scheme: str) -> bool:
    """Whether a browser sent this request from another origin (another site, or another scheme,
    host or port of this one). ``Sec-Fetch-Site`` decides when present (browsers set it, pages cannot);
    else the ``Origin`` header is compared with :func:`own_origins`; with neither, False."""
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site.strip().lower() not in SAME_ORIGIN_FETCH_SITES
    origin = headers.get("origin")
    if origin is None:
        return False
    parsed = parse_origin(origin)
    return parsed is None or parsed not in own_origins(headers, scheme)


@dataclass
class _Failures:
    """Failed (or still pending) sign-ins of one key; ``last`` and ``locked_until`` on the throttle's clock."""

    count: int = 0
    last: float = 0.0
    locked_until: float = 0.0


class LoginThrottle:
    """Counts failed sign-ins per key (user name and client address) and locks a key out for
    ``lockout`` seconds after ``max_failures`` of them, each within ``lockout`` seconds of the
    previous. A success clears the key. Attempts still in flight count as failures until they
    succeed, so concurrent guesses cannot overtake the limit. At most ``max_keys`` keys are kept
    (the least recently failed ones go first), so memory stays bounded.

    Args:
        max_failures: failed sign-ins allowed before the lock-out.
        lockout: seconds a key stays locked out (also how long a failure is remembered).
        max_keys: the most keys remembered.
        clock: monotonic seconds (injected by tests).

    Raises:
        ValueError: for a non-positive or non-finite argument, naming it.
    """

    def __init__(
        self,
        *,
        max_failures: int = 5,
        lockout: float = 300.0,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not isinstance(max_failures, int) or max_failures < 1:
            raise ValueError(f"'max_failures' must be a positive integer, not {max_failures!r}")
        if not isinstance(lockout, int | float) or not math.isfinite(lockout) or lockout <= 0:
            raise ValueError(f"'lockout' must be a positive number of seconds, not {lockout!r}")
        if not isinstance(max_keys, int) or max_keys < 1:
            raise ValueError(f"'max_keys' must be a positive integer, not {max_keys!r}")
        self.max_failures = max_failures
        self.lockout = float(lockout)
        self.max_keys = max_keys
        self._clock = clock
        self._failures: OrderedDict[tuple[str, str], _Failures] = OrderedDict()

    def __len__(self) -> int:
        return len(self._failures)

    def begin(self, key: tuple[str, str]) -> float:
        """Start a sign-in attempt for ``key``: 0 if it may go ahead (it counts as a failure until
        :meth:`end` says otherwise), else the seconds to wait before the next attempt."""
        now = self._clock()
        entry = self._current(key, now)
        if entry.locked_until > now:
            return entry.locked_until - now
        if entry.count >= self.max_failures:  # the limit is reached by attempts still in flight
            return self.lockout
        entry.count += 1
        entry.last = now
        self._remember(key, entry, now)
        return 0.0

    def end(self, key: tuple[str, str], *, success: bool) -> None:
        """Finish an attempt :meth:`begin` let through: a success clears ``key``; a failure stays
        counted, and locks ``key`` out (one warning line) when it reaches the limit."""
        if success:
            self._failures.pop(key, None)
            return
        now = self._clock()
        entry = self._failures.get(key)
        if entry is None:  # cleared by a concurrent success meanwhile: count this failure afresh
            entry = _Failures(count=1)
        entry.last = now
        if entry.count >= self.max_failures and entry.locked_until <= now:
            entry.locked_until = now + self.lockout
            logger.warning(
                "reviewer sign-in locked for {:.0f} s after {} failed attempts (user name {!r})",
                self.lockout,
                entry.count,
                key[0][:40],
            )
        self._remember(key, entry, now)

    def _current(self, key: tuple[str, str], now: float) -> _Failures:
        entry = self._failures.get(key)
        if entry is None or self._expired(entry, now):
            return _Failures()
        return entry

    def _expired(self, entry: _Failures, now: float) -> bool:
        return entry.locked_until <= now and now - entry.last >= self.lockout

    def _remember(self, key: tuple[str, str], entry: _Failures, now: float) -> None:
        self._failures[key] = entry
        self._failures.move_to_end(key)
        while len(self._failures) > self.max_keys:
            oldest = next(iter(self._failures.values()))
            if not self._expired(oldest, now):
                logger.debug("sign-in throttle full ({} keys): forgetting the oldest", self.max_keys)
            self._failures.popitem(last=False)


class ReviewGuard:
    """ASGI middleware applying the reviewer page's rules (see the module docstring) to the requests
    under ``prefix``; every other request passes untouched.

    Args:
        app: the ASGI app (the server with the reviewer page mounted at ``prefix``).
        prefix: where the reviewer page is mounted, e.g. ``"/review"``.
        throttle: the sign-in throttle (a default :class:`LoginThrottle` if None).
    """

    def __init__(self, app: ASGIApp, *, prefix: str, throttle: LoginThrottle | None = None) -> None:
        if not prefix.startswith("/") or prefix.endswith("/"):
            raise ValueError(f"'prefix' must start with '/' and not end with one, not {prefix!r}")
        self.app = app
        self.prefix = prefix
        self.throttle = throttle if throttle is not None else LoginThrottle()  # an empty one is falsy (__len__)

    def covers(self, path: str) -> bool:
        """Whether ``path`` is the reviewer page's (the mount at ``prefix`` routes exactly these)."""
        return path == self.prefix or path.startswith(self.prefix + "/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not self.covers(scope["path"]):
            await self.app(scope, receive, send)
            return
        cross = is_cross_origin(Headers(scope=scope), scope.get("scheme", "http"))
        if scope["type"] == "websocket":
            if cross:
                await WebSocketClose(code=1008, reason="cross-origin")(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        if cross and scope["method"] not in SAFE_METHODS:
            logger.info("refused a cross-origin {} to the reviewer page", scope["method"])
            refusal = "Cross-origin requests to the reviewer page are not allowed."
            await JSONResponse({"detail": refusal}, status_code=403)(scope, receive, send)
            return
        send = _rewrite_headers(send, strip_cors=cross)
        if scope["method"] == "POST" and scope["path"][len(self.prefix) :] in LOGIN_PATHS:
            await self._login(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _login(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await _read_body(receive, MAX_LOGIN_BODY)
        if body is None:
            await JSONResponse({"detail": "Sign-in request too large."}, status_code=413)(scope, receive, send)
            return
        client = scope.get("client")
        key = ((await _form_username(scope, body))[:MAX_USER_CHARS], client[0] if client else "unknown")
        wait = self.throttle.begin(key)
        if wait:
            seconds = math.ceil(wait)
            refusal = f"Too many failed sign-ins. Try again in {seconds} s."
            await JSONResponse({"detail": refusal}, status_code=429, headers={"Retry-After": str(seconds)})(
                scope, receive, send
            )
            return
        statuses: list[int] = []

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])
            await send(message)

        try:
            await self.app(scope, _replay(body, receive), watch)
        finally:
            self.throttle.end(key, success=statuses[:1] == [200])


def _rewrite_headers(send: Send, *, strip_cors: bool) -> Send:
    """``send`` with the response's cookies made ``SameSite=Lax`` and, if ``strip_cors``, its
    ``Access-Control-Allow-Origin``/``-Credentials`` headers removed."""

    async def rewritten(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = []
            for name, value in message.get("headers", []):
                name_lower = name.lower()
                if strip_cors and name_lower in CORS_RESPONSE_HEADERS:
                    continue
                if name_lower == b"set-cookie":
                    value = _SAMESITE_NONE.sub(b"; SameSite=lax", value)
                headers.append((name, value))
            message["headers"] = headers
        await send(message)

    return rewritten


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None past ``limit`` bytes (or if the client went away)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands out ``body`` once, then defers to ``receive`` (for disconnects)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


async def _form_username(scope: Scope, body: bytes) -> str:
    """The ``username`` field of a sign-in form (urlencoded or multipart, as Gradio's page sends
    it), stripped as Gradio strips it; "" when there is none or the form does not parse."""
    request = Request({k: v for k, v in scope.items() if k != "app"}, _replay(body, _disconnected))
    try:
        form = await request.form(max_files=0, max_fields=16)
    except Exception:  # noqa: BLE001 - a malformed form: Gradio answers it, the attempt still counts
        return ""
    try:
        username = form.get("username")
        return username.strip() if isinstance(username, str) else ""
    finally:
        await form.close()


async def _disconnected() -> Message:
    return {"type": "http.disconnect"}
