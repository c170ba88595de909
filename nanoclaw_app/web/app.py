"""Build the Litestar app; every controller is registered here, in one place."""

from __future__ import annotations

from litestar import Litestar
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig

from nanoclaw_app import __version__
from nanoclaw_app.web.health import HealthController
from nanoclaw_app.web.state import HostState


def create_app(state: HostState) -> Litestar:
    """The ASGI app for one host; ``state`` is shared with the host that serves it."""

    def provide_state() -> HostState:
        return state

    return Litestar(
        route_handlers=[HealthController],
        dependencies={"host_state": Provide(provide_state, sync_to_thread=False)},
        openapi_config=OpenAPIConfig(title="NanoClaw", version=__version__, path="/schema"),
        debug=False,
    )
