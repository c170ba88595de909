"""The gateway's Litestar app: one raw-ASGI mount per upstream (``/anthropic/...``, ``/openai/...``), nothing else.

Mounted ASGI handlers get the untouched request and write the response themselves, so the proxy controls every header
and streams each chunk as it arrives; Litestar only routes. No OpenAPI schema and no logging setup: this app is
reachable by containers only and must not reconfigure the host's logging.
"""

from __future__ import annotations

from typing import Any, cast

from litestar import Litestar
from litestar.handlers import asgi
from litestar.types import Receive, Scope, Send

from nanoclaw_app.gateway.proxy import Proxy
from nanoclaw_app.gateway.upstream import Upstream


def _mount(proxy: Proxy, upstreams: dict[str, Upstream], name: str) -> Any:
    async def forward(scope: Scope, receive: Receive, send: Send) -> None:
        # Looked up per call: the user may point an upstream elsewhere (settings) while the gateway runs.
        await proxy.handle(upstreams[name], cast(Any, scope), cast(Any, receive), cast(Any, send))

    return asgi(path=f"/{name}", is_mount=True, copy_scope=False, name=f"gateway-{name}")(forward)


def create_gateway_app(proxy: Proxy, upstreams: dict[str, Upstream]) -> Litestar:
    """The ASGI app the gateway serves; ``upstreams`` are mounted under their names (the dict may change later)."""
    return Litestar(
        route_handlers=[_mount(proxy, upstreams, name) for name in upstreams],
        openapi_config=None,
        logging_config=None,
        debug=False,
    )
