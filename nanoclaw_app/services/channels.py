"""The channels from the app, the wizard and ``nanoclaw channels``: generic over the channels' manifests.

What is common to every channel lives here: listing with health, waiting sends and paired chats; turning on and off;
pairing codes; running a channel's setup actions. What differs (a token check, a QR code) is in the channel's own
``setup`` module, reached through its manifest, so this module names no channel. What needs a live link needs the
running host: in a CLI process without one (``services.channels`` is None) those actions say to start NanoClaw first.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nanoclaw_app.channels import registry
from nanoclaw_app.channels.manifest import ChannelManifest
from nanoclaw_app.core import pairing
from nanoclaw_app.core.adapter_contract import ChannelAdapter
from nanoclaw_app.core.events import EventBus
from nanoclaw_app.db import agents as agents_db
from nanoclaw_app.db import delivery_attempts, messaging
from nanoclaw_app.db.database import Database
from nanoclaw_app.errors import ConfigError, NanoClawError, NotFound, UserError
from nanoclaw_app.secrets.store import SecretStore
from nanoclaw_app.services.context import AppServices, ChannelControl
from nanoclaw_app.services.secrets import delete_secret, put_secret
from nanoclaw_app.settings import ENV_PREFIX, Settings, load_settings, save_settings

log = logging.getLogger(__name__)

START_FIRST = "NanoClaw is not running: start it (`nanoclaw`, or `nanoclaw serve` on a server), then try again"


# ---------------------------------------------------------------------------------------------------- shapes


@dataclass
class LinkStatus:
    """Where a channel's link stands, in the adapter's own words (see ``core.adapter_contract.ChannelStatus``)."""

    state: str
    detail: str = ""
    account: str | None = None
    retry_at: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass
class PairedChat:
    """A chat of this channel NanoClaw knows, with the agents answering there."""

    id: str
    title: str
    platform_id: str
    is_group: bool
    agents: list[str] = field(default_factory=list)


@dataclass
class PairingCodeView:
    """A code to send from a chat to bind it, and whom to send it to."""

    code: str
    channel_type: str
    intent: str
    created_at: str
    send_to: str | None
    """``@bot`` on Telegram, the linked number on WhatsApp (None while unknown)."""


@dataclass
class ChannelView:
    """One channel as the channels page, the wizard and ``nanoclaw channels list`` show it."""

    name: str
    title: str
    enabled: bool
    """Turned on by the user: it starts with NanoClaw."""
    running: bool
    set_up: bool
    """It can start without more setup (a token saved, a device linked)."""
    status: LinkStatus
    waiting: int
    """Replies waiting for this channel's link to come back."""
    page_module: str
    """The ES module that renders this channel's setup."""
    in_wizard: bool
    chats: list[PairedChat] = field(default_factory=list)
    pairing_code: PairingCodeView | None = None
    details: dict[str, Any] = field(default_factory=dict)
    """What the channel's page module shows beyond this (its own shape: the bot, the QR code, the mode)."""


# ---------------------------------------------------------------------------------------------------- the context


class _Setup:
    """The setup context a channel's actions run in (``channels.manifest.SetupContext``), over the app's services."""

    def __init__(self, services: AppServices, manifest: ChannelManifest) -> None:
        self._services = services
        self.manifest = manifest
        self.name = manifest.name
        self.title = manifest.title
        self.db: Database = services.ctx.db
        self.secrets: SecretStore = services.secrets
        self.events: EventBus = services.ctx.events

    @property
    def settings(self) -> Settings:
        return self._services.settings

    @property
    def adapter(self) -> ChannelAdapter | None:
        return self._services.ctx.channels.get(self.name) if self._services.channels is not None else None

    @property
    def host_running(self) -> bool:
        return self._services.channels is not None

    @property
    def component(self) -> str:
        """What the host last reported about this channel starting (``failed: …``), or empty."""
        return self._services.state.components.get(f"channel:{self.name}", "")

    def require_host(self) -> None:
        _host(self._services)

    async def start(self, *, restart: bool = False) -> None:
        host = _host(self._services)
        if restart and self.adapter is not None:
            await host.stop_channel(self.name)
        try:
            await host.start_channel(self.name)
        except NanoClawError:
            await registry.set_enabled(self.db, self.name, False)
            self.changed()
            raise

    async def stop(self) -> None:
        if self._services.channels is not None:
            await self._services.channels.stop_channel(self.name)

    async def set_enabled(self, enabled: bool) -> None:
        await registry.set_enabled(self.db, self.name, enabled)

    async def put_secret(self, name: str, value: str, label: str) -> None:
        await put_secret(self._services, name, value, label)

    async def delete_secret(self, name: str) -> None:
        await delete_secret(self._services, name)

    async def save_settings(self, changes: Mapping[str, Any]) -> None:
        for key in changes:
            if ENV_PREFIX + key.upper() in os.environ:
                raise UserError(f"{ENV_PREFIX}{key.upper()} is set in NanoClaw's environment and overrides this "
                                "setting; change or remove the variable instead")
        services = self._services
        paths = services.settings.paths
        load_settings(paths, **changes)  # the whole file must stay valid
        save_settings(paths, changes, theirs=registry.setting_fields())
        after = services.settings.replaced(changes)
        if services.reload_settings is not None:
            await services.reload_settings(after)
        else:
            services.ctx.settings = after
        services.ctx.events.publish("settings.changed", changed=sorted(changes), restart_needed=[])

    def changed(self) -> None:
        self.events.publish("channels.changed", channel_type=self.name)

    async def view(self) -> ChannelView:
        return await get_channel(self._services, self.name)


def _manifest(name: str) -> ChannelManifest:
    found = registry.manifest(name)
    if found is None:
        known = ", ".join(m.name for m in registry.CHANNELS)
        raise NotFound(f"there is no channel called {name!r}; choose one of {known}")
    return found


def _host(services: AppServices) -> ChannelControl:
    if services.channels is None:
        raise ConfigError(START_FIRST)
    return services.channels


def _context(services: AppServices, name: str) -> _Setup:
    return _Setup(services, _manifest(name))


# ---------------------------------------------------------------------------------------------------- reading


async def list_channels(services: AppServices) -> list[ChannelView]:
    """Every channel with its health, waiting sends and paired chats."""
    waiting = await delivery_attempts.waiting_counts(services.ctx.db)
    chats = await _chats_by_channel(services)
    return [await _view(_Setup(services, m), waiting, chats) for m in registry.CHANNELS]


async def get_channel(services: AppServices, name: str) -> ChannelView:
    """One channel."""
    ctx = _context(services, name)
    waiting = await delivery_attempts.waiting_counts(services.ctx.db)
    return await _view(ctx, waiting, await _chats_by_channel(services))


async def _view(ctx: _Setup, waiting: dict[str, int], chats: dict[str, list[PairedChat]]) -> ChannelView:
    manifest = ctx.manifest
    adapter = ctx.adapter
    set_up = await manifest.setup.is_set_up(ctx)
    enabled = await registry.is_enabled(ctx.db, ctx.name)
    return ChannelView(
        name=ctx.name, title=ctx.title, enabled=enabled, running=adapter is not None, set_up=set_up,
        status=_status(ctx, enabled=enabled, set_up=set_up), waiting=waiting.get(ctx.name, 0),
        page_module=manifest.page_module, in_wizard=manifest.in_wizard, chats=chats.get(ctx.name, []),
        pairing_code=await _pending_code(ctx), details=await manifest.setup.details(ctx),
    )


def _status(ctx: _Setup, *, enabled: bool, set_up: bool) -> LinkStatus:
    adapter = ctx.adapter
    if adapter is not None:
        status = adapter.status()
        return LinkStatus(status.state, status.detail, status.account, status.retry_at, dict(status.extra))
    component = ctx.component
    if enabled and component.startswith("failed"):
        return LinkStatus("failed", component.removeprefix("failed").lstrip(": ") or "it could not start")
    if enabled and not ctx.host_running:
        return LinkStatus("stopped", "NanoClaw is not running; it starts with NanoClaw")
    return LinkStatus("stopped" if set_up or enabled else "not_paired", "turned off" if set_up else "")


async def _chats_by_channel(services: AppServices) -> dict[str, list[PairedChat]]:
    db = services.ctx.db
    names = {a.id: a.name for a in await agents_db.list_all(db)}
    found: dict[str, list[PairedChat]] = {}
    for chat in await messaging.list_all(db):
        if registry.manifest(chat.channel_type) is None:
            continue
        agents = [names.get(w.agent_group_id, w.agent_group_id) for w in await messaging.wirings_for(db, chat.id)]
        found.setdefault(chat.channel_type, []).append(PairedChat(
            id=chat.id, title=chat.name or chat.platform_id, platform_id=chat.platform_id,
            is_group=bool(chat.is_group), agents=agents))
    return found


async def _pending_code(ctx: _Setup) -> PairingCodeView | None:
    codes = [c for c in await pairing.pending(ctx.db, ctx.name) if c.intent == pairing.OWNER_INTENT]
    if not codes:
        return None
    code = codes[-1]
    return PairingCodeView(code.code, code.channel_type, code.intent, code.created_at, await _send_to(ctx))


async def _send_to(ctx: _Setup) -> str | None:
    adapter = ctx.adapter
    if adapter is not None and adapter.status().account:
        return adapter.status().account
    return await ctx.manifest.setup.send_to(ctx)


async def not_working(services: AppServices, name: str) -> str | None:
    """Why the channel does not work yet, in words (the wizard's step is not done), or None when it does."""
    ctx = _context(services, name)
    return await ctx.manifest.setup.not_working(ctx)


# ---------------------------------------------------------------------------------------------------- changing


async def run_action(services: AppServices, name: str, action: str, method: str,
                     body: Mapping[str, Any] | None = None) -> object:
    """Run one of a channel's setup actions (``POST /api/channels/whatsapp/logout``); its answer, else the view."""
    manifest = _manifest(name)
    found = manifest.actions.get(action)
    if found is None or found.method != method:
        offered = ", ".join(f"{a.method} {key}" for key, a in manifest.actions.items()) or "none"
        raise NotFound(f"{manifest.title} has no {method} action {action!r} (it offers: {offered})")
    ctx = _Setup(services, manifest)
    answer = await found.run(ctx, body or {})
    return answer if answer is not None else await get_channel(services, name)


async def enable_channel(services: AppServices, name: str) -> ChannelView:
    """Turn a channel that was set up before back on."""
    ctx = _context(services, name)
    ctx.require_host()
    await _manifest(name).setup.enable(ctx)
    ctx.changed()
    return await get_channel(services, name)


async def new_pairing_code(services: AppServices, channel: str, intent: str = pairing.OWNER_INTENT
                           ) -> PairingCodeView:
    """A fresh 4-digit code to send from the chat to bind it (an older pending one stops working)."""
    ctx = _context(services, channel)
    ctx.require_host()
    if not await registry.is_enabled(ctx.db, channel):
        raise UserError(f"{ctx.title} is turned off: set it up first")
    code = await pairing.create_code(ctx.db, channel, intent)
    log.info("channels: new %s pairing code (%s)", channel, intent)
    ctx.events.publish("pairing.code", channel_type=channel)
    return PairingCodeView(code.code, code.channel_type, code.intent, code.created_at, await _send_to(ctx))


async def disable_channel(services: AppServices, name: str, *, forget: bool = False) -> ChannelView:
    """Turn a channel off: it disconnects now and stays off after a restart.

    Its setup stays (a token, a linked device) unless ``forget``: then the channel removes it. Pending pairing codes
    are withdrawn.
    """
    ctx = _context(services, name)
    if forget:
        await _manifest(name).setup.forget(ctx)
    await ctx.stop()
    await ctx.set_enabled(False)
    await pairing.cancel(ctx.db, name)
    log.info("channels: %s turned off%s", name, " and forgotten" if forget else "")
    ctx.changed()
    return await get_channel(services, name)


STATE_WORDS = {
    "not_paired": "not set up", "pairing": "waiting for the QR code to be scanned", "connecting": "connecting",
    "connected": "connected", "reconnecting": "reconnecting", "logged_out": "logged out: link it again in the app",
    "banned": "blocked by the platform for now", "replaced": "taken over by another program",
    "failed": "needs attention", "stopped": "off",
}
"""A link state in a few plain words (the CLI's listing; the app has its own strings)."""
