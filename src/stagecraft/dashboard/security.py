"""Who may talk to a dashboard: the URL token, the Host and Origin checks, the CSRF token.

Both dashboards listen on 127.0.0.1 only. On top of that, :class:`Guard`
refuses (403):

- a ``Host`` header that is not the dashboard's own (a DNS-rebinding page
  cannot reach the server under another name);
- for the environment dashboard, a request without its random token, taken
  from the ``token`` query parameter (the URL printed once), the
  ``X-Stagecraft-Token`` header or the ``stagecraft_token`` cookie that the
  page sets (``HttpOnly``, ``SameSite=Strict``);
- a POST (every action) whose ``Origin`` is not the dashboard's own or that
  lacks the page's CSRF token in ``X-CSRF-Token``: another site's page can
  neither send the first nor read the second.

Every response carries a strict Content-Security-Policy (scripts and styles
from the dashboard only), ``Referrer-Policy: no-referrer`` (the token must not
leak through a link) and ``X-Content-Type-Options: nosniff``.

Example::

    guard = Guard.for_loopback(port=8123, token=new_token())
    app = GuardMiddleware(starlette_app, guard)
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

TOKEN_COOKIE = "stagecraft_token"
TOKEN_HEADER = "x-stagecraft-token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def new_token() -> str:
    """A random URL-safe token (32 bytes of entropy)."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Guard:
    """The checks one dashboard applies to every request (see the module docstring)."""

    hosts: frozenset[str]
    """Accepted ``Host`` header values (``127.0.0.1:8123``)."""
    origins: frozenset[str]
    """Accepted ``Origin`` values of actions (``http://127.0.0.1:8123``)."""
    csrf: str
    """The token every action must carry in ``X-CSRF-Token`` (embedded in the page)."""
    token: str | None = None
    """The access token (None: no token, as for the dev dashboard behind the dev proxy)."""

    @classmethod
    def for_loopback(cls, port: int, token: str | None) -> Guard:
        """A server on 127.0.0.1:``port``, reached as ``127.0.0.1`` or ``localhost``."""
        names = (f"127.0.0.1:{port}", f"localhost:{port}")
        return cls(
            hosts=frozenset(names),
            origins=frozenset(f"http://{name}" for name in names),
            csrf=new_token(),
            token=token,
        )

    @classmethod
    def for_public_url(cls, url: str, port: int) -> Guard:
        """A server behind the dev proxy at ``url`` (``https://stagecraft.shop.localhost``)."""
        origin = url.rstrip("/")
        host = origin.split("://", 1)[1]
        return cls(
            hosts=frozenset({host, f"127.0.0.1:{port}", f"localhost:{port}"}),
            origins=frozenset({origin}),
            csrf=new_token(),
        )

    def refusal(
        self, method: str, headers: dict[str, str], query: str, cookie: str | None
    ) -> str | None:
        """Why this request is refused, or None when it may pass (pure)."""
        if headers.get("host", "") not in self.hosts:
            return "unexpected Host header"
        if self.token is not None and not self._has_token(headers, query, cookie):
            return "missing or wrong token: open the URL printed by `stagecraft dashboard`"
        if method in SAFE_METHODS:
            return None
        if headers.get("origin", "") not in self.origins:
            return "cross-origin request refused"
        if not _same(headers.get(CSRF_HEADER, ""), self.csrf):
            return "missing or wrong CSRF token"
        return None

    def _has_token(self, headers: dict[str, str], query: str, cookie: str | None) -> bool:
        assert self.token is not None
        offered = [
            *parse_qs(query).get("token", []),
            headers.get(TOKEN_HEADER, ""),
            cookie or "",
        ]
        return any(_same(value, self.token) for value in offered if value)


def _same(offered: str, expected: str) -> bool:
    return hmac.compare_digest(offered.encode(), expected.encode())


class GuardMiddleware:
    """ASGI middleware: refuse what :meth:`Guard.refusal` refuses, add the security headers."""

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {
            key.decode("latin-1").lower(): value.decode("latin-1")
            for key, value in scope.get("headers", [])
        }
        query = scope.get("query_string", b"").decode("latin-1")
        reason = self.guard.refusal(
            scope.get("method", "GET"), headers, query, _cookie(headers.get("cookie"))
        )
        if reason is not None:
            await _forbidden(send, reason)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _cookie(header: str | None) -> str | None:
    if not header:
        return None
    jar = SimpleCookie()
    try:
        jar.load(header)
    except Exception:  # a malformed Cookie header carries no token
        return None
    morsel = jar.get(TOKEN_COOKIE)
    return morsel.value if morsel is not None else None


async def _forbidden(send: Send, reason: str) -> None:
    body = f"403 Forbidden: {reason}\n".encode()
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *SECURITY_HEADERS,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
