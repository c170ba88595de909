"""Signing in and out, and the front door (``/`` goes to setup until it is done, then to the chat)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody
from litestar.response import Redirect
from litestar.status_codes import HTTP_401_UNAUTHORIZED

from nanoclaw_app.db import app_state
from nanoclaw_app.services.context import AppServices
from nanoclaw_app.web.auth import COOKIE, SESSION_DAYS
from nanoclaw_app.web.pages import page
from nanoclaw_app.web.schemas import Ok, PasswordLogin

WIZARD_DONE = "wizard.completed"


def _with_cookie(response: Response[Any], value: str) -> Response[Any]:
    response.set_cookie(key=COOKIE, value=value, httponly=True, samesite="lax", path="/",
                        max_age=SESSION_DAYS * 86400)
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
        self, services: NamedDependency[AppServices], token: FromQuery[str | None] = None
    ) -> Response[Any]:
        """With ``?token=`` from a login link: sign in and go on; otherwise the sign-in page."""
        if token:
            value = await services.auth.redeem_link(token)
            if value is not None:
                return _with_cookie(Redirect("/"), value)
            return page("login.html", "login", link_refused=True, has_password=await services.auth.has_password(),
                        status_code=HTTP_401_UNAUTHORIZED)
        return page("login.html", "login", has_password=await services.auth.has_password())

    @post("/api/login", status_code=200, summary="Sign in with the LAN password")
    async def login(self, services: NamedDependency[AppServices], data: JSONBody[PasswordLogin]) -> Response[Ok]:
        """Sets the session cookie; 401 for a wrong password."""
        value = await services.auth.password_login(data.password)
        if value is None:
            return Response(Ok(ok=False), status_code=HTTP_401_UNAUTHORIZED)
        return _with_cookie(Response(Ok(ok=True)), value)

    @post("/api/logout", status_code=200, summary="Sign out this browser")
    async def logout(self, services: NamedDependency[AppServices], request: Request[Any, Any, Any]) -> Response[Ok]:
        """Ends this session and clears the cookie."""
        await services.auth.sign_out(request.cookies.get(COOKIE))
        response = Response(Ok(ok=True))
        response.delete_cookie(COOKIE, path="/")
        return response


