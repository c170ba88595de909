"""Signing in and out, and the front door (``/`` goes to setup until it is done, then to the chat)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody
from litestar.response import Redirect
from litestar.status_codes import HTTP_401_UNAUTHORIZED

from nanoclaw_app.db import app_state
from nanoclaw_app.services.auth import COOKIE, SESSION_DAYS
from nanoclaw_app.services.context import AppServices
from nanoclaw_app.web.pages import page
from nanoclaw_app.web.schemas import Ok, PasswordLogin

WIZARD_DONE = "wizard.completed"


@dataclass
class OtherSessions:
    """Sessions besides the one asking: other browsers and devices (the app window counts when it is not the one)."""

    others: int


@dataclass
class SignedOut:
    """How many other sessions were just ended."""

    signed_out: int


def _with_cookie(request: Request[Any, Any, Any], response: Response[Any], value: str) -> Response[Any]:
    """``Secure`` over HTTPS, so a browser never sends the cookie back over plain HTTP."""
    response.set_cookie(key=COOKIE, value=value, httponly=True, samesite="lax", path="/",
                        max_age=SESSION_DAYS * 86400, secure=request.url.scheme == "https")
    return response


class SessionController(Controller):
    """``/``, ``/login`` and the login/logout API."""

    @get("/", include_in_schema=False)
    async def front(self, services: NamedDependency[AppServices]) -> Redirect:
        """Setup first, then the owner's chat."""
        done = await app_state.get(services.ctx.db, WIZARD_DONE)
        return Redirect("/chat" if done else "/setup")

    @get("/login", include_in_schema=False)
    async def login_page(
        self, services: NamedDependency[AppServices], request: Request[Any, Any, Any],
        token: FromQuery[str | None] = None,
    ) -> Response[Any]:
        """With ``?token=`` from a login link: sign in and go on; otherwise the sign-in page."""
        if token:
            value = await services.auth.redeem_link(token)
            if value is not None:
                return _with_cookie(request, Redirect("/"), value)
            return page("login.html", "login", link_refused=True, has_password=await services.auth.has_password(),
                        status_code=HTTP_401_UNAUTHORIZED)
        return page("login.html", "login", has_password=await services.auth.has_password())

    @post("/api/login", status_code=200, summary="Sign in with the LAN password")
    async def login(
        self, services: NamedDependency[AppServices], request: Request[Any, Any, Any], data: JSONBody[PasswordLogin]
    ) -> Response[Ok]:
        """Sets the session cookie; 401 for a wrong password, 400 after too many from this device."""
        value = await services.auth.password_login(data.password, request.client.host if request.client else None)
        if value is None:
            return Response(Ok(ok=False), status_code=HTTP_401_UNAUTHORIZED)
        return _with_cookie(request, Response(Ok(ok=True)), value)

    @post("/api/logout", status_code=200, summary="Sign out this browser")
    async def logout(self, services: NamedDependency[AppServices], request: Request[Any, Any, Any]) -> Response[Ok]:
        """Ends this session and clears the cookie."""
        await services.auth.sign_out(request.cookies.get(COOKIE))
        response = Response(Ok(ok=True))
        response.delete_cookie(COOKIE, path="/")
        return response



    @get("/api/sessions", summary="How many other browsers and devices are signed in")
    async def sessions(self, services: NamedDependency[AppServices],
                       request: Request[Any, Any, Any]) -> OtherSessions:
        """Counts live sessions besides this one."""
        return OtherSessions(others=await services.auth.other_sessions(request.cookies.get(COOKIE)))

    @post("/api/sessions/sign-out-others", status_code=200, summary="Sign out every other browser and device")
    async def sign_out_others(self, services: NamedDependency[AppServices],
                              request: Request[Any, Any, Any]) -> SignedOut:
        """Keeps only this session; the answer says how many were signed out."""
        return SignedOut(signed_out=await services.auth.sign_out_others(request.cookies.get(COOKIE) or ""))
