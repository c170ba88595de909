"""The WhatsApp adapter: this computer linked to the user's WhatsApp, fed to and from the host.

It ties the parts together: :mod:`.connection` (the link's state machine), :mod:`.inbound` and :mod:`.outbound`. It
also owns what the app shows while pairing: the current QR code (``adapter.qr``, and ``channel.qr`` events on every
rotation, ``svg=None`` when pairing ends), the phone-number code fallback, and unlinking.

Status changes reach the host in the order they happened through one queue, so a slow "connected" handler (the host
sends everything that waited) never lets an older status overwrite a newer one.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import zoneinfo
from collections.abc import Sequence
from datetime import tzinfo
from pathlib import Path
from typing import Any

from nanoclaw_app.channels.manifest import ChannelDeps
from nanoclaw_app.channels.whatsapp import native
from nanoclaw_app.channels.whatsapp.connection import QR_TIMEOUT, ClientFactory, Connection
from nanoclaw_app.channels.whatsapp.decisions import (
    BACKOFF,
    OUTAGE_ALERT_AFTER,
    STABLE_AFTER,
    pair_error_words,
    unreachable_words,
)
from nanoclaw_app.channels.whatsapp.inbound import Inbound
from nanoclaw_app.channels.whatsapp.jids import Me, format_number, phone_digits
from nanoclaw_app.channels.whatsapp.memory import MessageMemory
from nanoclaw_app.channels.whatsapp.outbound import Outbound
from nanoclaw_app.channels.whatsapp.qr import QrCode, render_svg
from nanoclaw_app.channels.whatsapp.ratelimit import TokenBucket
from nanoclaw_app.channels.whatsapp.settings import WhatsAppSettings
from nanoclaw_app.channels.whatsapp.state_keys import MODE_KEY, NUMBER_KEY, SELF_MODE
from nanoclaw_app.core.adapter_contract import ChannelAdapter, ChannelStatus, HostCallbacks, LinkState
from nanoclaw_app.core.messages import OutboundMessage
from nanoclaw_app.db import app_state
from nanoclaw_app.errors import TransientError, UserError
from nanoclaw_app.timeutil import now_iso

log = logging.getLogger(__name__)

CHANNEL = "whatsapp"
DEVICE_DB = "device.db"


def device_db_path(channels_dir: Path) -> Path:
    """Where neonize keeps the linked device (keys, session): ``<home>/channels/whatsapp/device.db``."""
    return channels_dir / CHANNEL / DEVICE_DB


class WhatsAppAdapter(ChannelAdapter):
    """``channel_type`` ``whatsapp``; platform ids are chat JIDs (``491701234567@s.whatsapp.net``, ``…@g.us``)."""

    channel_type = CHANNEL
    supports_threads = False
    idempotent_delivery = False

    def __init__(
        self,
        deps: ChannelDeps,
        *,
        client_factory: ClientFactory | None = None,
        backoff: Sequence[float] = BACKOFF,
        stable_after: float = STABLE_AFTER,
        outage_alert_after: float = OUTAGE_ALERT_AFTER,
        qr_timeout: float = QR_TIMEOUT,
        limiter: TokenBucket | None = None,
    ) -> None:
        """Build the adapter; nothing connects before :meth:`setup`.

        ``client_factory`` builds a neonize client for the device-database path (None: the real ``NewAClient``);
        the timing parameters and ``limiter`` exist so tests run fast.
        """
        if client_factory is None:
            from nanoclaw_app.channels.whatsapp.client import new_client

            client_factory = new_client
        self._deps = deps
        self.device_db = device_db_path(deps.settings.paths.channels)
        self.limiter = limiter or TokenBucket(deps.settings.channel(WhatsAppSettings).sends_per_minute)
        self.memory = MessageMemory()
        self.qr: QrCode | None = None
        """The QR code to show while pairing (None when there is none)."""
        self.host: HostCallbacks | None = None
        self.connection = Connection(
            client_factory=client_factory, device_db=self.device_db, listener=self,
            tz=_timezone(deps.settings.timezone), paired=False, backoff=backoff, stable_after=stable_after,
            outage_alert_after=outage_alert_after,
            qr_timeout=qr_timeout,
        )
        self.inbound = Inbound(deps, self.connection, self.memory, reply=self._notice)
        self.outbound = Outbound(deps, self.connection, self.memory, self.limiter)
        self._status = ChannelStatus("stopped", "WhatsApp is not running.")
        self._reports: asyncio.Queue[ChannelStatus] = asyncio.Queue()
        self._reporter: asyncio.Task[None] | None = None
        self._running = False

    # ------------------------------------------------------------------------------------------ lifecycle

    async def setup(self, host: HostCallbacks) -> None:
        """Start linking: connect with the stored device, or fetch QR codes for a new link."""
        self.host = host
        self.inbound.host = host
        self.device_db.parent.mkdir(parents=True, exist_ok=True)
        number = await app_state.get(self._deps.db, NUMBER_KEY)
        self.connection.prime(Me(number) if number else None)
        self._running = True
        self._reporter = asyncio.get_running_loop().create_task(self._report_loop(), name="whatsapp-status")
        await self.on_link(self.connection.state, self.connection.detail, None, None)
        await self.connection.start()

    async def teardown(self) -> None:
        """Stop the link and the status queue (safe to call twice)."""
        if not self._running:
            return
        self._running = False
        await self.connection.stop()
        await self.on_qr(None)
        reporter, self._reporter = self._reporter, None
        if reporter is not None:
            reporter.cancel()
            await asyncio.gather(reporter, return_exceptions=True)
        self._status = ChannelStatus("stopped", "WhatsApp is not running.", account=self._account())

    def is_connected(self) -> bool:
        """Whether sends go out now."""
        return self._running and self.connection.connected

    def status(self) -> ChannelStatus:
        """The link's state as last reported."""
        return self._status

    # ------------------------------------------------------------------------------------------ sending

    async def deliver(self, platform_id: str, thread_id: str | None, message: OutboundMessage) -> str | None:
        """Send (see :mod:`.outbound`)."""
        return await self.outbound.deliver(platform_id, message)

    async def set_typing(self, platform_id: str, thread_id: str | None) -> None:
        """Show "typing…" while the agent works."""
        await self.outbound.typing(platform_id)

    # ------------------------------------------------------------------------------------------ pairing

    async def pair_with_phone(self, phone: str) -> str:
        """Ask WhatsApp for an 8-character code (``ABCD-EFGH``) to type on the phone instead of scanning the QR."""
        digits = phone_digits(phone)
        if digits is None:
            raise UserError("That is not a complete phone number. Type the number of the WhatsApp account with its "
                            "country code, for example +49 170 1234567.")
        connection = self.connection
        if connection.paired:
            raise UserError("WhatsApp is already linked. Unlink it first to link another number.")
        client = connection.client
        if not self._running or client is None or not connection.qr_seen:
            raise TransientError("WhatsApp is not reachable yet; try again in a few seconds.", retry_after=5)
        name = native.ClientName.WINDOWS if sys.platform.startswith("win") else native.ClientName.LINUX
        try:
            code = await client.PairPhone(digits, True, client_name=name, client_type=native.ClientType.CHROME)
        except native.PairPhoneError as err:
            text = str(err)
            if "nil" in text.lower() or "not connected" in text.lower():
                raise TransientError("WhatsApp is not reachable yet; try again in a few seconds.",
                                     retry_after=5) from err
            raise UserError(pair_error_words(text)) from err
        return _format_code(str(code))

    async def logout(self) -> None:
        """Unlink this computer (on WhatsApp too, when reachable), delete the device and show a fresh QR code."""
        await self.connection.unlink()

    async def reconnect(self) -> None:
        """Connect again now, without waiting for the backoff (a "Reconnect" button; after "replaced" or "failed")."""
        await self.connection.reconnect()

    # ------------------------------------------------------------------------------------------ connection events

    async def on_link(self, state: LinkState, detail: str, retry_at: str | None, alert: str | None) -> None:
        """The connection's state changed: compose the status and queue it for the host."""
        extra: dict[str, str] = {}
        me = self.connection.me
        if state == "connected" and me is not None and await self._self_mode():
            extra = {"owner_chat": me.jid, "owner_handle": me.jid}
        if self.connection.problem:
            technical = self.connection.technical
            extra = {"problem": self.connection.problem, "reason": _sentence(unreachable_words(technical)),
                     "technical": technical}
        status = ChannelStatus(state, detail, account=self._account(), retry_at=retry_at, alert=alert, extra=extra)
        self._status = status
        self._reports.put_nowait(status)

    async def on_qr(self, data: str | None) -> None:
        """Show a new QR code (every rotation), or take it away."""
        if data is None:
            if self.qr is not None:
                self.qr = None
                self._deps.events.publish("channel.qr", channel_type=CHANNEL, svg=None)
            return
        self.qr = QrCode(data=data, svg=render_svg(data), issued_at=now_iso())
        self._deps.events.publish("channel.qr", channel_type=CHANNEL, svg=self.qr.svg, issued_at=self.qr.issued_at)

    async def on_identity(self, me: Me | None) -> None:
        """Remember the linked number across restarts (forgotten when unlinked)."""
        if me is None:
            await app_state.delete(self._deps.db, NUMBER_KEY)
        else:
            await app_state.put(self._deps.db, NUMBER_KEY, me.number)

    async def on_message(self, event: Any) -> None:
        """A message arrived."""
        await self.inbound.handle(event)

    # ------------------------------------------------------------------------------------------ helpers

    def _account(self) -> str | None:
        me = self.connection.me
        return format_number(me.number) if me is not None else None

    async def _self_mode(self) -> bool:
        return await app_state.get(self._deps.db, MODE_KEY) == SELF_MODE

    async def _notice(self, platform_id: str, text: str) -> str:
        return await self.outbound.send_text(platform_id, text)

    async def _report_loop(self) -> None:
        """Hand statuses to the host one after the other, in the order they happened."""
        while True:
            status = await self._reports.get()
            host = self.host
            if host is None:
                continue
            try:
                await host.on_status(CHANNEL, status)
            except Exception:
                log.exception("the host could not take WhatsApp's status %s", status.state)


def _timezone(name: str) -> tzinfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def _sentence(words: str) -> str:
    """``this computer cannot…`` → ``This computer cannot….``: the page shows the reason on its own line."""
    return words[:1].upper() + words[1:] + "."


def _format_code(code: str) -> str:
    """``ABCDEFGH`` or ``abcd-efgh`` → ``ABCD-EFGH``, the way WhatsApp shows it on the phone."""
    raw = re.sub(r"[^0-9A-Za-z]", "", code).upper()
    return f"{raw[:4]}-{raw[4:]}" if len(raw) == 8 else code
