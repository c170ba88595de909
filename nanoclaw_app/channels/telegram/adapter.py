"""The Telegram channel adapter: a PTB application in our loop, with inbound, outbound and link state wired up.

``setup`` returns at once: connecting (and reconnecting with backoff) happens in the background and is reported
through ``host.on_status``, so an unreachable Telegram never blocks the app. While the link is down ``deliver``
raises ``ChannelDown`` and the message waits, persisted, until the status is ``connected`` again. Updates are never
dropped: pending ones are fetched on start, and the offset PTB confirms makes a restart neither lose nor repeat one.
"""

from __future__ import annotations

import logging

from nanoclaw_app.channels.manifest import ChannelDeps
from nanoclaw_app.channels.telegram.connection import Connection
from nanoclaw_app.channels.telegram.inbound import Inbound
from nanoclaw_app.channels.telegram.link import CHANNEL, Link
from nanoclaw_app.channels.telegram.outbound import Sender
from nanoclaw_app.channels.telegram.settings import TelegramSettings
from nanoclaw_app.core.adapter_contract import ChannelAdapter, ChannelStatus, HostCallbacks
from nanoclaw_app.core.messages import OutboundMessage
from nanoclaw_app.errors import ChannelDown

log = logging.getLogger(__name__)


class TelegramAdapter(ChannelAdapter):
    """A Telegram bot, by its BotFather token."""

    channel_type = CHANNEL
    supports_threads = False
    idempotent_delivery = False

    def __init__(self, deps: ChannelDeps, *, token: str) -> None:
        self._deps = deps
        self._token = token
        self._link = Link()
        self._connection: Connection | None = None
        self._sender: Sender | None = None

    async def setup(self, host: HostCallbacks) -> None:
        """Register the handlers and start connecting in the background; never waits for Telegram."""
        if self._connection is not None:
            return
        settings = self._deps.settings
        self._link = Link()  # a fresh state for every run (after a refused token, a new token starts clean)
        connection = Connection(self._token, settings.channel(TelegramSettings).api_base_url, self._link)
        sender = Sender(connection.app.bot, self._deps.db, self._link, connection.lost)
        Inbound(self._deps.db, host, sender, max_attachment_bytes=settings.max_attachment_bytes).register(
            connection.app)
        self._connection, self._sender = connection, sender
        self._link.start(host)
        connection.start()

    async def teardown(self) -> None:
        """Stop polling (updates already fetched are handled first) and close; safe to call twice."""
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.stop()
        await self._link.stop()

    def is_connected(self) -> bool:
        """Whether the link is up now."""
        return self._connection is not None and self._link.up

    def status(self) -> ChannelStatus:
        """The link's state; ``account`` is ``@username`` once Telegram told us."""
        if self._connection is None and self._link.status.state == "connecting":
            return ChannelStatus("stopped", "not running")
        return self._link.status

    async def deliver(self, platform_id: str, thread_id: str | None, message: OutboundMessage) -> str | None:
        """Send one message; see ``outbound`` for what each kind becomes."""
        if self._sender is None or self._connection is None:
            raise ChannelDown(CHANNEL, "Telegram is not running")
        return await self._sender.deliver(platform_id, message)

    async def set_typing(self, platform_id: str, thread_id: str | None) -> None:
        """Show "typing…" in the chat."""
        if self._sender is not None:
            await self._sender.typing(platform_id)

    async def open_dm(self, user_handle: str) -> str | None:
        """A Telegram user's id is also the id of their chat with the bot (once they have pressed Start)."""
        return user_handle
