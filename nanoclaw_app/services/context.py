"""What a service function may use: the core context plus the host parts the app manages."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from nanoclaw_app.core.adapter_contract import ChannelAdapter
    from nanoclaw_app.core.approvals.service import ApprovalService
    from nanoclaw_app.core.context import CoreContext
    from nanoclaw_app.gateway.server import ModelGateway
    from nanoclaw_app.host_state import HostState
    from nanoclaw_app.runtime.base import ContainerRuntime
    from nanoclaw_app.secrets.store import SecretStore
    from nanoclaw_app.services.auth import WebAuth
    from nanoclaw_app.settings import Settings


class ChannelControl(Protocol):
    """Starting and stopping channels in the running host (the app's channel setup needs it)."""

    async def start_channel(self, name: str) -> ChannelAdapter:
        """Build and connect a phone channel now."""

    async def stop_channel(self, name: str) -> None:
        """Disconnect a channel."""


class AppServices:
    """Built once by the composition root (the host) or by the CLI for offline commands.

    ``live`` is False in a CLI process that works on the database while no host (or another host) runs: containers
    cannot be started there, so actions that need them say so instead of pretending. (A plain class, not a dataclass:
    Litestar would otherwise try to read it as a request schema.)
    """

    def __init__(
        self,
        *,
        ctx: CoreContext,
        secrets: SecretStore,
        approvals: ApprovalService,
        auth: WebAuth,
        state: HostState,
        gateway: ModelGateway | None = None,
        runtime: ContainerRuntime | None = None,
        live: bool = True,
        reload_settings: Callable[[Settings], Awaitable[None]] | None = None,
        channels: ChannelControl | None = None,
    ) -> None:
        self.ctx = ctx
        self.secrets = secrets
        self.approvals = approvals
        self.auth = auth
        self.state = state
        self.gateway = gateway
        self.runtime = runtime
        self.live = live
        self.channels = channels
        """None in a CLI process: channels run only in the host."""
        self.reload_settings = reload_settings
        """Called after settings.json changed, so running parts pick up what can change without a restart."""
        self.closing = asyncio.Event()
        """Set when the host stops: open live streams end so the web server can exit."""
        self.restart: Callable[[], None] | None = None
        """Set by what runs the host (the window app, ``nanoclaw serve``) when it can restart it on request."""

    @property
    def settings(self) -> Settings:
        """The settings in force now (replaced in place when the user changes them)."""
        return self.ctx.settings
