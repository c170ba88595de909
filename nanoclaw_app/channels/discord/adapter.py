"""The Discord channel adapter: a discord.py client in our loop, with inbound, outbound and link state wired up.

``setup`` returns at once: logging in and connecting happen in the background and are reported through
``host.on_status``, so an unreachable Discord never blocks the app. While the link is down ``deliver`` raises
``ChannelDown`` and the message waits, persisted, until the status is ``connected`` again. Messages sent meanwhile
are not lost: discord.py resumes the gateway session and Discord replays what was missed.
"""

from __future__ import annotations

import logging

import discord

from nanoclaw_app.channels.discord.connection import NETWORK_ERRORS, Bot, Connection
from nanoclaw_app.channels.discord.inbound import Inbound
from nanoclaw_app.channels.discord.link import CHANNEL, Link
from nanoclaw_app.channels.discord.outbound import Sender
from nanoclaw_app.channels.discord.settings import DiscordSettings
from nanoclaw_app.channels.manifest import ChannelDeps
from nanoclaw_app.core.adapter_contract import ChannelAdapter, ChannelStatus, HostCallbacks
from nanoclaw_app.core.messages import OutboundMessage
from nanoclaw_app.errors import ChannelDown, TransientError

log = logging.getLogger(__name__)


class DiscordAdapter(ChannelAdapter):
    """A Discord bot, by its token."""

    channel_type = CHANNEL
    supports_threads = True
    idempotent_delivery = False

    def __init__(self, deps: ChannelDeps, *, token: str) -> None:
        self._deps = deps
        self._token = token
        self._link = Link()
        self._connection: Connection | None = None
        self._sender: Sender | None = None

    async def setup(self, host: HostCallbacks) -> None:
        """Wire the handlers and start connecting in the background; never waits for Discord."""
        if self._connection is not None:
            return
        settings = self._deps.settings
        self._link = Link()  # a fresh state for every run (after a refused token, a new token starts clean)
        holder: list[Connection] = []

        def client() -> Bot:
            return holder[0].client

        sender = Sender(client, self._deps.db, self._link)
        inbound = Inbound(self._deps.db, host, sender, client, max_attachment_bytes=settings.max_attachment_bytes)
        connection = Connection(self._token, settings.channel(DiscordSettings), self._link, inbound.attach)
        holder.append(connection)
        self._connection, self._sender = connection, sender
        self._link.start(host)
        connection.start()

    async def teardown(self) -> None:
        """Close the gateway and the HTTP session; safe to call twice."""
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.stop()
        await self._link.stop()

    def is_connected(self) -> bool:
        """Whether the link is up now."""
        return self._connection is not None and self._link.up

    def status(self) -> ChannelStatus:
        """The link's state; ``account`` is the bot's name once Discord told us."""
        if self._connection is None and self._link.status.state == "connecting":
            return ChannelStatus("stopped", "not running")
        return self._link.status

    async def deliver(self, platform_id: str, thread_id: str | None, message: OutboundMessage) -> str | None:
        """Send one message (into the thread when there is one); see ``outbound`` for what each kind becomes."""
        if self._sender is None or self._connection is None:
            raise ChannelDown(CHANNEL, "Discord is not running")
        return await self._sender.deliver(platform_id, thread_id, message)

    async def set_typing(self, platform_id: str, thread_id: str | None) -> None:
        """Show "typing…" in the channel or thread."""
        if self._sender is not None:
            await self._sender.typing(platform_id, thread_id)

    async def subscribe(self, platform_id: str, thread_id: str) -> None:
        """Join the thread, so Discord lists the bot there and keeps sending its messages."""
        if self._connection is None or not self._link.up:
            return
        try:
            await self._connection.client.http.join_thread(int(thread_id))
        except (discord.HTTPException, *NETWORK_ERRORS, ValueError) as err:
            log.info("discord: joining thread %s of %s failed: %s", thread_id, platform_id, err)

    async def open_dm(self, user_handle: str) -> str | None:
        """The DM channel with a person (Discord makes one on first use); None when the id is not a user's."""
        if self._connection is None or not self._link.up:
            raise ChannelDown(CHANNEL, "Discord is not connected")
        try:
            dm = await self._connection.client.create_dm(discord.Object(id=int(user_handle)))
        except ValueError:
            return None
        except discord.HTTPException as err:
            if err.status >= 500 or err.status == 429:
                raise TransientError(f"Discord could not open the DM (HTTP {err.status})") from err
            log.info("discord: opening a DM with %s refused: %s", user_handle, err.text or err.status)
            return None
        except NETWORK_ERRORS as err:
            raise TransientError("Discord could not be reached to open the DM") from err
        return str(dm.id)
