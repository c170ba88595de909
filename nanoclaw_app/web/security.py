"""Request authentication: every route needs the session cookie except login, health and static files."""

from __future__ import annotations

import hmac
import ipaddress
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.exceptions import ClientException, NotAuthorizedException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.middleware import AbstractAuthenticationMiddleware, ASGIMiddleware, AuthenticationResult
from litestar.middleware.csrf import CSRF_SECRET_LENGTH, generate_csrf_hash, generate_csrf_token
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from litestar.types.empty import Empty
from litestar.utils.scope.state import ScopeState

from nanoclaw_app.services.auth import COOKIE, WebAuth
from nanoclaw_app.text_safety import has_unsafe

if TYPE_CHECKING:
    from litestar.config.csrf import CSRFConfig

PUBLIC_PATHS = ["^/health", "^/login", "^/api/login", "^/static/"]
"""Reachable without a session: the login page and its form, the supervisor's health check, CSS/JS for the login."""


class SessionAuthMiddleware(AbstractAuthenticationMiddleware):
    """Checks the session cookie; a missing or unknown one is a 401 (pages show the sign-in page for it)."""

    def __init__(self, app: ASGIApp, auth: WebAuth, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._auth = auth

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        """Accept a live session cookie, refuse anything else."""
        value = connection.cookies.get(COOKIE)
        if not await self._auth.check(value):
            raise NotAuthorizedException("sign in first: open the app window, or run `nanoclaw open` for a link")
        return AuthenticationResult(user="owner", auth=value)


LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]"})


def _from_this_machine(scope: Scope) -> bool:
    client = scope.get("client")
    try:
        ip = ipaddress.ip_address(client[0]) if client else None
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip is not None and ip.is_loopback


class LoopbackHostMiddleware(ASGIMiddleware):
    """While LAN access is off, only this machine gets in: by its Host header and by the connection's address.

    A web page on another site that resolves its own name to 127.0.0.1 must not reach the app (DNS rebinding), and a
    device on the network must not either: after LAN access is switched off the app may still listen on every
    interface until it restarts. ``lan_on`` is read on every request, so switching off applies at once.
    """

    scopes = (ScopeType.HTTP,)

    def __init__(self, lan_on: Callable[[], bool] = lambda: False) -> None:
        self._lan_on = lan_on

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Check the Host header's name (any port) and the client's address, then pass on."""
        host = ""
        for name, value in scope.get("headers", ()):
            if name == b"host":
                host = value.decode("latin-1")
                break
        hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if not self._lan_on() and (hostname.lower() not in LOOPBACK_NAMES or not _from_this_machine(scope)):
            refused = Response({"error": "this address is not allowed: LAN access is off, so NanoClaw opens only "
                                         "on the computer it runs on"}, status_code=400)
            await refused.to_asgi_response(app=None, request=Request(scope))(scope, receive, send)
            return
        await next_app(scope, receive, send)


_RENEW = "nanoclaw.renew_csrf_cookie"
"""Set in the request's state when its CSRF cookie was foreign: the response must bring a fresh one."""


class ForeignCsrfCookieMiddleware(ASGIMiddleware):
    """A CSRF cookie this install did not sign is taken out of the request, and the response brings a fresh one.

    Browsers keep cookies per host name, not per port, so every NanoClaw this browser opened on 127.0.0.1 (another
    port, another home) shares one CSRF cookie. Litestar keeps whatever cookie it is given, so another install's token
    stayed, and every save failed its check until the user deleted the cookie by hand. Now the first page load
    replaces it, and a save that failed on it (a page open while another install took the cookie over) works the next
    time. Put this first in the middleware list, and :meth:`before_send` in the app's ``before_send`` hooks: those
    also see the responses of requests refused before they reach a handler (a 401 sign-in page).
    """

    scopes = (ScopeType.HTTP,)

    def __init__(self, config: CSRFConfig) -> None:
        self._config = config
        self._name = config.cookie_name.encode("latin-1")

    def signed_here(self, token: str) -> bool:
        """Whether ``token`` carries this install's signature (Litestar's format: a random part, then its HMAC)."""
        if len(token) <= CSRF_SECRET_LENGTH:
            return False
        expected = generate_csrf_hash(token=token[:CSRF_SECRET_LENGTH], secret=self._config.secret)
        return hmac.compare_digest(token[CSRF_SECRET_LENGTH:].encode(), expected.encode())

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Drop a foreign CSRF cookie from the request's headers and mark the request for a fresh one."""
        headers: list[tuple[bytes, bytes]] = []
        dropped = False
        for name, value in scope.get("headers", ()):
            if name == b"cookie":
                parts = [part.strip() for part in value.split(b";")]
                kept = [part for part in parts if not self._foreign(part)]
                if len(kept) < len(parts):
                    dropped = True
                    if not kept:
                        continue
                    value = b"; ".join(kept)
            headers.append((name, value))
        if dropped:
            scope["headers"] = headers
            state = ScopeState.from_scope(scope)
            state.headers = state.cookies = Empty  # nothing read before us may keep the old cookie
            scope["state"][_RENEW] = True
        await next_app(scope, receive, send)

    def _foreign(self, part: bytes) -> bool:
        name, _, value = part.partition(b"=")
        return name == self._name and not self.signed_here(value.decode("latin-1").strip('"'))

    def before_send(self, message: Message, scope: Scope) -> None:
        """Give a request whose CSRF cookie was foreign a fresh one, unless the CSRF middleware already did."""
        if message["type"] != "http.response.start" or not scope.get("state", {}).get(_RENEW):
            return
        headers = MutableScopeHeaders.from_message(message)
        prefix = f"{self._config.cookie_name}="
        if any(value.startswith(prefix) for value in headers.getall("set-cookie", [])):
            return
        cookie = Cookie(key=self._config.cookie_name, value=generate_csrf_token(self._config.secret),
                        path=self._config.cookie_path, secure=self._config.cookie_secure,
                        httponly=self._config.cookie_httponly, samesite=self._config.cookie_samesite,
                        domain=self._config.cookie_domain)
        headers.add("set-cookie", cookie.to_header(header=""))


MAX_JSON_BYTES = 1024 * 1024
"""A JSON body may be this large; the biggest real one (a memory file of 256 KiB) fits several times over."""
MAX_JSON_DEPTH = 32
"""A JSON body may nest this deep; the deepest real one (an agent's mounts) has three levels."""
_TOO_DEEP = f"the request's JSON is nested too deeply (at most {MAX_JSON_DEPTH} levels)"


class GuardedRequest(Request[Any, Any, Any]):
    """The app's request class: every JSON body is bounded in size and depth before any handler sees it.

    Litestar decodes every handler's ``data`` (and our own ``request.json()`` calls) through :meth:`json`, so one
    check here covers every JSON endpoint; without it a body nested 100 000 levels deep crashed the decoder (a 500).
    """

    async def json(self) -> Any:
        """The decoded body, or a 413 (too large) or 400 (nested too deeply) that says which limit it broke."""
        body = await self.body()
        if len(body) > MAX_JSON_BYTES:
            raise RequestEntityTooLarge(f"the request is too large (at most {MAX_JSON_BYTES // 1024} KiB of JSON)")
        try:
            value = await super().json()
        except RecursionError as err:  # the decoder's own depth limit: no handler ran, nothing to clean up
            raise ClientException(_TOO_DEEP) from err
        if _deeper_than(value, MAX_JSON_DEPTH):
            raise ClientException(_TOO_DEEP)
        return value


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether lists and objects nest more than ``limit`` levels (walked with a stack, not recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


_STATIC_FILE = re.compile(r"/static/(?:[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}/)*[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")
"""The shape of every file the app ships under ``/static/``: plain names, no dot files, no ``..``."""


class PathGuardMiddleware(ASGIMiddleware):
    """Refuse request paths with control characters (400), and static-file paths no shipped file has (404).

    Such a path used to reach the file system (``app.js%00.css`` raised "embedded null byte": a 500 without a
    session); now nothing past this point sees one.
    """

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Check the decoded path, then pass on."""
        path = scope.get("path", "")
        refused: Response[Any] | None = None
        if has_unsafe(path):
            refused = Response({"error": "this address has characters that are not allowed"}, status_code=400)
        elif path.startswith("/static/") and not _STATIC_FILE.fullmatch(path):
            refused = Response({"error": "there is no such file"}, status_code=404)
        if refused is not None:
            await refused.to_asgi_response(app=None, request=Request(scope))(scope, receive, send)
            return
        await next_app(scope, receive, send)
