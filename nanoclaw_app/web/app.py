"""Build the Litestar app; every controller is registered here, in one place."""

from __future__ import annotations

import secrets
from pathlib import Path

from litestar import Litestar
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import ResponseHeader, State
from litestar.di import Provide
from litestar.middleware.base import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.types import ControllerRouterHandler

from nanoclaw_app import __version__
from nanoclaw_app.host_state import HostState
from nanoclaw_app.paths import resource
from nanoclaw_app.services.context import AppServices
from nanoclaw_app.serving import WebServer
from nanoclaw_app.web import errors
from nanoclaw_app.web.controllers import (
    activity,
    agents,
    approvals,
    autostart,
    channels,
    chat,
    chats,
    credentials,
    people,
    settings,
    tasks,
    wizard,
)
from nanoclaw_app.web.controllers.events import EventsController
from nanoclaw_app.web.controllers.session import SessionController
from nanoclaw_app.web.health import HealthController
from nanoclaw_app.web.pages import NAV
from nanoclaw_app.web.security import (
    PUBLIC_PATHS,
    ForeignCsrfCookieMiddleware,
    GuardedRequest,
    LoopbackHostMiddleware,
    PathGuardMiddleware,
    SessionAuthMiddleware,
)
from nanoclaw_app.web.strings import Strings

CSRF_COOKIE = "nanoclaw_csrf"
CSRF_HEADER = "x-csrftoken"
_SECURITY_HEADERS = [
    ResponseHeader(name="Content-Security-Policy", value=(
        "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self' 'unsafe-inline'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")),
    ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
    ResponseHeader(name="Referrer-Policy", value="no-referrer"),
]


def routes() -> list[ControllerRouterHandler]:
    """Every route of the app: one controller module per area."""
    return [
        HealthController, SessionController, EventsController,
        *wizard.ROUTES, *chat.ROUTES, *agents.ROUTES, *channels.ROUTES, *chats.ROUTES, *people.ROUTES,
        *credentials.ROUTES, *approvals.ROUTES, *tasks.ROUTES, *activity.ROUTES, *settings.ROUTES, *autostart.ROUTES,
    ]


def csrf_secret(home: Path) -> str:
    """A per-install secret for CSRF tokens, kept across restarts so an open page's token stays valid."""
    file = home / "web-csrf.key"
    if file.exists():
        return file.read_text(encoding="ascii").strip()
    home.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32)
    file.write_text(value, encoding="ascii")
    file.chmod(0o600)
    return value


def create_app(services: AppServices, *, lan: bool = False, tls: bool = False) -> Litestar:
    """The ASGI app for one listener.

    ``lan``: other devices may connect while LAN access is on (password-protected); switching it off refuses them at
    once. Without it only this machine gets in. ``tls``: served over HTTPS, so cookies are marked ``Secure``.
    """
    strings = Strings.load()

    def lan_on() -> bool:
        return lan and services.settings.lan_access

    def provide_services() -> AppServices:
        return services

    def provide_state() -> HostState:
        return services.state

    def setup_jinja(engine: JinjaTemplateEngine) -> None:
        engine.engine.globals.update(t=strings, strings=strings, version=__version__, nav=NAV)

    csrf = CSRFConfig(secret=csrf_secret(services.settings.paths.home), cookie_name=CSRF_COOKIE,
                      header_name=CSRF_HEADER, cookie_samesite="strict", cookie_path="/", cookie_secure=tls)
    foreign_csrf = ForeignCsrfCookieMiddleware(csrf)
    return Litestar(
        route_handlers=[
            *routes(),
            create_static_files_router(path="/static", directories=[resource("ui", "static")],
                                       include_in_schema=False),
        ],
        dependencies={
            "services": Provide(provide_services, sync_to_thread=False),
            "host_state": Provide(provide_state, sync_to_thread=False),
        },
        middleware=[
            foreign_csrf,  # first: it rewrites the request's cookies before anything reads them
            LoopbackHostMiddleware(lan_on),
            PathGuardMiddleware(),
            DefineMiddleware(SessionAuthMiddleware, auth=services.auth, exclude=PUBLIC_PATHS),
        ],
        csrf_config=csrf,
        before_send=[foreign_csrf.before_send],
        template_config=TemplateConfig(directory=resource("ui", "templates"), engine=JinjaTemplateEngine,
                                       engine_callback=setup_jinja),
        exception_handlers=errors.HANDLERS,
        response_headers=_SECURITY_HEADERS,
        openapi_config=OpenAPIConfig(title="NanoClaw", version=__version__, path="/schema"),
        logging_config=None,  # keep the host's console and rotating-file handlers
        request_max_body_size=64 * 1024 * 1024,
        request_class=GuardedRequest,
        state=State({"services": services}),
        debug=False,
    )


def web_servers(services: AppServices) -> tuple[WebServer, WebServer | None]:
    """This computer's server and, with encrypted LAN access, the network's HTTPS server.

    With HTTPS, plain HTTP listens on 127.0.0.1 only (the window and ``nanoclaw open`` never leave this computer), so
    other devices can reach the app, and send the password, only encrypted.
    """
    settings = services.settings
    if settings.lan_access and settings.lan_https:
        return (WebServer(create_app(services), "127.0.0.1", settings.port),
                WebServer(create_app(services, lan=True, tls=True), settings.host, settings.https_port,
                          tls_home=settings.paths.home, label="LAN access"))
    return WebServer(create_app(services, lan=settings.lan_access), settings.host, settings.port), None
