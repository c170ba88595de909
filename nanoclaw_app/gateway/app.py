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


def _mount(proxy: Proxy, upstream: Upstream) -> Any:
    async def forward(scope: Scope, receive: Receive, send: Send) -> None:
        await proxy.handle(upstream, cast(Any, scope), cast(Any, receive), cast(Any, send))

    return asgi(path=f"/{upstream.name}", is_mount=True, copy_scope=False, name=f"gateway-{upstream.name}")(forward)


def create_gateway_app(proxy: Proxy, upstreams: dict[str, Upstream]) -> Litestar:
    """The ASGI app the gateway serves; ``upstreams`` are mounted under their names."""
    return Litestar(
        route_handlers=[_mount(proxy, upstream) for upstream in upstreams.values()],
        openapi_config=None,
        logging_config=None,
        debug=False,
    )
