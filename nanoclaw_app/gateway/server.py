"""The model gateway component: the only way containers reach a model, and the only place keys are used.

It serves the proxy app in the host's event loop (uvicorn in-process, like the web UI) on unix sockets (Linux), or
on 127.0.0.1 with free ports (Podman machine on macOS/Windows, whose containers reach the host's loopback as
``host.containers.internal``). Either way nothing on the network can reach it.

Every container gets a listener of its own (``attach``): a socket file in a host-only folder, bind-mounted alone into
that container, or a port of its own; its token is accepted there and nowhere else, so a token copied into another
container is worthless. ``revoke`` closes the listener. The gateway's own socket or port is for the host's calls (the
setup wizard's check) and is never given to a container. On tcp every container can reach every port, so there the
binding only keeps a stolen token from working without its own port (and on unix sockets it is absolute).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import httpx
from litestar import Litestar

from nanoclaw_app.core.events import EventBus
from nanoclaw_app.db.database import Database
from nanoclaw_app.errors import ConfigError
from nanoclaw_app.gateway.app import create_gateway_app
from nanoclaw_app.gateway.pricing import PriceBook
from nanoclaw_app.gateway.proxy import LISTENER, Proxy
from nanoclaw_app.gateway.spend import SpendTracker
from nanoclaw_app.gateway.tokens import TokenRegistry
from nanoclaw_app.gateway.upstream import build_upstreams, new_client, transcription_upstream
from nanoclaw_app.gateway.usage_log import UsageLog
from nanoclaw_app.secrets.store import SecretStore
from nanoclaw_app.serving import WebServer, bind_loopback, bind_unix
from nanoclaw_app.settings import Settings

log = logging.getLogger(__name__)

Transport = Literal["unix", "tcp"]

UNIX_ORIGIN = "http://gateway"
"""The origin runners use over the unix socket (the host name is only a label there)."""

_UPSTREAM_OF_PROVIDER = {"claude": "anthropic", "anthropic": "anthropic", "openai": "openai"}


@dataclass(frozen=True, slots=True)
class ContainerAccess:
    """What ``attach`` gives one container: its token and the only listener that accepts it."""

    token: str
    socket_path: Path | None
    """The container's own socket file on the host (unix transport), to bind-mount into it alone."""
    port: int | None
    """Its own loopback port (tcp transport)."""


@dataclass(frozen=True, slots=True)
class _Listener:
    server: asyncio.Server
    socket_path: Path | None

    def close(self) -> None:
        """Stop accepting (connections in flight finish) and remove the socket file; no await needed."""
        self.server.close()
        if self.socket_path is not None:
            self.socket_path.unlink(missing_ok=True)


def resolve_transport(setting: str) -> Transport:
    """``auto`` means a unix socket on Linux (bind-mountable into containers) and loopback TCP elsewhere."""
    if setting == "unix":
        return "unix"
    if setting == "tcp":
        return "tcp"
    return "unix" if sys.platform.startswith("linux") else "tcp"


class ModelGateway:
    """Grants per-container tokens, forwards their model calls with the real key, meters and caps the spending."""

    def __init__(self, *, settings: Settings, db: Database, secrets: SecretStore, events: EventBus,
                 on_cap_reached: Callable[[str], Awaitable[None]] | None = None) -> None:
        self._db = db
        self._secrets = secrets
        self._events = events
        self._on_cap_reached = on_cap_reached
        self._transport = resolve_transport(settings.gateway_transport)
        self._socket_path = settings.paths.run / "gateway.sock" if self._transport == "unix" else None
        self._listener_dir = settings.paths.run / "gw"
        """Containers' sockets: short names (unix paths are limited to ~100 bytes), host-only, emptied at start."""
        self._listeners: dict[str, list[_Listener]] = {}
        self._tokens = TokenRegistry()
        self._spend = SpendTracker(settings.daily_spend_cap_usd, settings.tz)
        self._prices = PriceBook()
        self._usage = UsageLog(db, events)
        self._upstreams = {**build_upstreams(settings), "transcribe": transcription_upstream(settings)}
        self._client: httpx.AsyncClient | None = None
        self._proxy: Proxy | None = None
        self._server: WebServer | None = None
        self._app: Litestar | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- lifecycle -----------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Load today's spend, then listen; raises ``ConfigError`` when the socket or port cannot be bound."""
        if self._server is not None:
            return
        await self._spend.load(self._db)
        if self._socket_path is not None:
            self._socket_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        client = new_client()
        proxy = Proxy(client=client, tokens=self._tokens, secrets=self._secrets, spend=self._spend,
                      prices=self._prices, usage=self._usage, events=self._events, cap_reached=self._cap_reached)
        app = create_gateway_app(proxy, self._upstreams)
        server = WebServer(app, "127.0.0.1", 0, uds=str(self._socket_path) if self._socket_path is not None else None,
                           label="model gateway")
        await self._usage.start()
        try:
            await server.start()
        except BaseException:
            await client.aclose()
            await self._usage.stop()
            raise
        self._client, self._proxy, self._server, self._app = client, proxy, server, app
        if self._socket_path is not None:  # ours now (a live gateway would have kept us from binding): clear leftovers
            self._listener_dir.mkdir(mode=0o700, exist_ok=True)
            for stale in self._listener_dir.glob("*.sock"):
                stale.unlink(missing_ok=True)
        log.info("model gateway forwards /anthropic to %s and /openai to %s; daily cap %s",
                 self._upstreams["anthropic"].display, self._upstreams["openai"].display,
                 f"${self._spend.cap_usd:.2f}" if self._spend.cap_usd else "off")

    async def stop(self) -> None:
        """Refuse new calls, end calls in flight, stop serving, write the last rows; idempotent."""
        proxy, client, server = self._proxy, self._client, self._server
        self._proxy = self._client = self._server = None
        if proxy is not None:
            proxy.stopping = True
        for listeners in self._listeners.values():
            for listener in listeners:
                listener.close()
        self._listeners.clear()
        if client is not None:
            await client.aclose()  # calls in flight end now instead of holding uvicorn's graceful shutdown
        if server is not None:
            await server.stop()  # also removes the socket file (never one a failed start did not create)
        await self._usage.stop()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def apply_settings(self, settings: Settings) -> None:
        """Take changed upstream URLs (transcription's too) and the spend cap without a restart (timezone needs one)."""
        self._upstreams.update(build_upstreams(settings), transcribe=transcription_upstream(settings))
        self._spend.cap_usd = settings.daily_spend_cap_usd

    # -- what the host and the runtime use -----------------------------------------------------------------------

    @property
    def transport(self) -> Transport:
        """``unix`` or ``tcp``, fixed at construction."""
        return self._transport

    @property
    def socket_path(self) -> Path | None:
        """The unix socket on the host (unix transport), else None."""
        return self._socket_path

    @property
    def port(self) -> int | None:
        """The loopback port (tcp transport, once started), else None."""
        return self._server.port if self._server is not None and self._transport == "tcp" else None

    def grant(self, session_id: str, agent_group_id: str, *, upstream: str | None = None) -> str:
        """A token for the gateway's own listener: the host's own calls. Containers use ``attach``.

        The setup check may call either model API; transcribing a voice note passes ``upstream="transcribe"``.
        """
        return self._tokens.grant(session_id, agent_group_id, upstream=upstream)

    async def attach(self, session_id: str, agent_group_id: str, provider: str) -> ContainerAccess:
        """A listener and a token for one container start of ``session_id``: valid only there, for its provider's API.

        Raises ``ConfigError`` for a provider without a route, or when the gateway is not started.
        """
        upstream = _route(provider)
        server, app = self._server, self._app
        if server is None or app is None:
            raise ConfigError("the model gateway is not started; restart NanoClaw")
        listener = secrets.token_hex(4)
        path = self._listener_dir / f"{listener}.sock" if self._transport == "unix" else None
        sock = bind_unix(str(path)) if path is not None else bind_loopback()
        port = None if path is not None else int(sock.getsockname()[1])

        async def bound(scope: dict[str, Any], receive: Any, send: Any) -> None:
            scope[LISTENER] = listener
            await app(cast(Any, scope), receive, send)

        try:
            served = await server.add_listener(sock, bound)
        except BaseException:
            if path is not None:
                path.unlink(missing_ok=True)
            raise
        self._listeners.setdefault(session_id, []).append(_Listener(served, path))
        if self._server is not server:  # stop() ran meanwhile
            self.revoke(session_id)
            raise ConfigError("the model gateway stopped")
        token = self._tokens.grant(session_id, agent_group_id, listener=listener, upstream=upstream)
        log.debug("model gateway: session %s gets listener %s", session_id, path or f"127.0.0.1:{port}")
        return ContainerAccess(token=token, socket_path=path, port=port)

    def revoke(self, session_id: str) -> None:
        """Every token of ``session_id`` stops working at once and its listeners close (calls in flight finish)."""
        if self._tokens.revoke(session_id):
            log.debug("model gateway: tokens of session %s revoked", session_id)
        for listener in self._listeners.pop(session_id, []):
            listener.close()

    def runner_env(self, access: ContainerAccess | str, provider: str, *, socket_in_runner: str | None,
                   host_alias: str | None) -> dict[str, str]:
        """The environment a runner needs to reach the gateway: its token, the base URL and, on unix, the socket.

        ``access`` is what ``attach`` gave the container (a bare token means the gateway's own listener);
        ``socket_in_runner`` is where the socket is mounted in the container (defaults to the host path, right for
        a runner started as a plain process); ``host_alias`` is how a container names the host on tcp
        (``host.containers.internal`` on Podman machine).
        """
        upstream = _route(provider)
        if isinstance(access, str):
            access = ContainerAccess(access, self._socket_path, self.port)
        env = {"NANOCLAW_MODEL_TOKEN": access.token}
        if self._transport == "unix":
            assert access.socket_path is not None
            env["NANOCLAW_MODEL_BASE_URL"] = f"{UNIX_ORIGIN}/{upstream}"
            env["NANOCLAW_GATEWAY_SOCKET"] = socket_in_runner or str(access.socket_path)
        else:
            if access.port is None:
                raise ConfigError("the model gateway is not started, so it has no port yet")
            env["NANOCLAW_MODEL_BASE_URL"] = f"http://{host_alias or '127.0.0.1'}:{access.port}/{upstream}"
        return env

    @property
    def spent_today_usd(self) -> float:
        """Model spending since the user's last midnight (for the app's status)."""
        return self._spend.spent_usd

    # -- internals -----------------------------------------------------------------------------------------------

    def _cap_reached(self, text: str) -> None:
        """Once per day: tell subscribers and the host's callback (run as an owned task, the call is not held up)."""
        log.warning("model gateway: %s", text)
        self._events.publish("gateway.cap_reached", cap_usd=self._spend.cap_usd, spent_usd=self._spend.spent_usd,
                             resets_at=self._spend.resets_at().isoformat(), message=text)
        if self._on_cap_reached is None:
            return
        task = asyncio.create_task(self._notify(self._on_cap_reached, text), name="gateway-cap-notice")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _notify(callback: Callable[[str], Awaitable[None]], text: str) -> None:
        try:
            await callback(text)
        except Exception:
            log.exception("model gateway: telling the user that the daily spend cap is reached failed")


def _route(provider: str) -> str:
    """The upstream a provider's calls go to."""
    upstream = _UPSTREAM_OF_PROVIDER.get(provider)
    if upstream is None:
        raise ConfigError(f"provider {provider!r} has no model gateway route; use claude, anthropic or openai")
    return upstream
