"""Request authentication: every route needs the session cookie except login, health and static files."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import AbstractAuthenticationMiddleware, ASGIMiddleware, AuthenticationResult
from litestar.types import ASGIApp, Receive, Scope, Send

from nanoclaw_app.web.auth import COOKIE, WebAuth

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


class LoopbackHostMiddleware(ASGIMiddleware):
    """Refuse requests whose Host header is not this machine (DNS rebinding); off with LAN access.

    A web page on another site that resolves its own name to 127.0.0.1 must not reach the app.
    """

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Check the Host header's name (any port), then pass on."""
        host = ""
        for name, value in scope.get("headers", ()):
            if name == b"host":
                host = value.decode("latin-1")
                break
        hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if hostname.lower() not in LOOPBACK_NAMES:
            refused = Response({"error": "this address is not allowed"}, status_code=400)
            await refused.to_asgi_response(app=None, request=Request(scope))(scope, receive, send)
            return
        await next_app(scope, receive, send)
