"""The Slack channel adapter: a bolt app in Socket Mode in our loop, with inbound, outbound and link state wired up.

``setup`` returns at once: connecting (and redialling) happens in the background and is reported through
``host.on_status``, so an unreachable Slack never blocks the app. While the link is down ``deliver`` raises
``ChannelDown`` and the message waits, persisted, until the status is ``connected`` again. Events are never dropped:
Slack keeps every one until it is acked, and it is acked only after the host has it.

Slack is threaded: a conversation in a channel is a thread (``thread_ts``), answered in that thread and, for the
router, its own session. Slack sends every message of a channel the app is in (the manifest subscribes to them), so
following a thread needs no call.
"""

from __future__ import annotations

import logging

from nanoclaw_app.channels.manifest import ChannelDeps
from nanoclaw_app.channels.slack.link import CHANNEL, Link
from nanoclaw_app.channels.slack.settings import SlackSettings
from nanoclaw_app.core.adapter_contract import ChannelAdapter, ChannelStatus, HostCallbacks
from nanoclaw_app.core.messages import OutboundMessage
from nanoclaw_app.errors import ChannelDown

log = logging.getLogger(__name__)


class SlackAdapter(ChannelAdapter):
    """A Slack app, by its bot and app-level tokens."""

    channel_type = CHANNEL
    supports_threads = True
    idempotent_delivery = False

    def __init__(self, deps: ChannelDeps, *, bot_token: str, app_token: str) -> None:
        from nanoclaw_app.channels.slack.connection import Connection
        from nanoclaw_app.channels.slack.inbound import Inbound
        from nanoclaw_app.channels.slack.outbound import Sender

        self._deps = deps
        self._bot_token = bot_token
        self._app_token = app_token
        self._link = Link()
        self._parts: tuple[Connection, Sender, Inbound] | None = None

    async def setup(self, host: HostCallbacks) -> None:
        """Register the listeners and start connecting in the background; never waits for Slack."""
        from nanoclaw_app.channels.slack.connection import Connection
        from nanoclaw_app.channels.slack.inbound import Inbound
        from nanoclaw_app.channels.slack.outbound import Sender

        if self._parts is not None:
            return
        settings = self._deps.settings.channel(SlackSettings)
        self._link = Link()  # a fresh state for every run (after refused tokens, new tokens start clean)
        connection = Connection(self._bot_token, self._app_token, settings, self._link)
        sender = Sender(connection.client, self._deps.db, self._link, connection.lost)
        inbound = Inbound(connection.client, self._deps.db, host, sender, bot_token=self._bot_token,
                          api_url=settings.api_url, max_attachment_bytes=self._deps.settings.max_attachment_bytes,
                          bot_user=lambda: connection.bot_user_id, on_refused=self._link.refused)
        inbound.register(connection.app)
        self._parts = (connection, sender, inbound)
        self._link.start(host)
        connection.start()

    async def teardown(self) -> None:
        """Close the websocket, let card answers under way finish; safe to call twice."""
        parts, self._parts = self._parts, None
        if parts is not None:
            connection, _, inbound = parts
            await connection.stop()
            await inbound.stop()
        await self._link.stop()

    def is_connected(self) -> bool:
        """Whether the link is up now."""
        return self._parts is not None and self._link.up

    def status(self) -> ChannelStatus:
        """The link's state; ``account`` is ``@botname`` once Slack told us."""
        if self._parts is None and self._link.status.state == "connecting":
            return ChannelStatus("stopped", "not running")
        return self._link.status

    async def deliver(self, platform_id: str, thread_id: str | None, message: OutboundMessage) -> str | None:
        """Send one message (in the thread when given); see ``outbound`` for what each kind becomes."""
        if self._parts is None:
            raise ChannelDown(CHANNEL, "Slack is not running")
        return await self._parts[1].deliver(platform_id, thread_id, message)

    async def set_typing(self, platform_id: str, thread_id: str | None) -> None:
        """Slack has no typing indicator for bots outside its AI-assistant threads; nothing to show."""

    async def subscribe(self, platform_id: str, thread_id: str) -> None:
        """Nothing to do: Slack already sends every message of the channels the app is in."""

    async def open_dm(self, user_handle: str) -> str | None:
        """The DM with a person (``conversations.open``), opened now if there was none; None for no such person."""
        if self._parts is None:
            raise ChannelDown(CHANNEL, "Slack is not running")
        return await self._parts[1].open_dm(user_handle)
