"""Running a discord.py ``Client`` inside our event loop, and keeping the link state honest.

``Client.start``/``run`` would own the loop's lifetime, so the client is embedded with ``login`` (REST: who we are)
and then ``connect(reconnect=True)`` in a task this class owns and cancels in :meth:`Connection.stop`. Logging in is
retried here with backoff (discord.py does not retry it); once the gateway is up, discord.py reconnects and resumes
by itself, and its events report the state. A refused token and a refused Message Content intent (close code 4014)
end the loop with a plain status instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import discord

from nanoclaw_app.channels.discord.link import Link
from nanoclaw_app.channels.discord.settings import DiscordSettings
from nanoclaw_app.channels.discord.setup import point_library

log = logging.getLogger(__name__)

BACKOFF_SECONDS = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)
"""Waits between login attempts; the last repeats."""
CLOSE_SECONDS = 10.0

NETWORK_ERRORS = (aiohttp.ClientError, OSError, TimeoutError)


def backoff() -> Iterator[float]:
    """The waits between attempts: growing, then steady at the last one."""
    yield from BACKOFF_SECONDS
    while True:
        yield BACKOFF_SECONDS[-1]


def describe(err: BaseException) -> str:
    """A short reason for the app (never the token)."""
    if isinstance(err, TimeoutError):
        return "timed out"
    if isinstance(err, discord.HTTPException):
        return f"Discord answered HTTP {err.status}"
    if isinstance(err, NETWORK_ERRORS):
        return "network error"
    return type(err).__name__


def intents() -> discord.Intents:
    """Servers, their messages and DMs, with message text (the privileged Message Content intent)."""
    wanted = discord.Intents.default()
    wanted.message_content = True
    return wanted


MessageHandler = Callable[[discord.Message], Awaitable[None]]
InteractionHandler = Callable[[discord.Interaction], Awaitable[None]]


class Bot(discord.Client):
    """The client, forwarding what matters to the link and the inbound handlers."""

    def __init__(self, link: Link, guild_ready_timeout: float) -> None:
        super().__init__(intents=intents(), guild_ready_timeout=guild_ready_timeout, chunk_guilds_at_startup=False,
                         allowed_mentions=discord.AllowedMentions.none())
        self.link = link
        self.on_person_message: MessageHandler | None = None
        self.on_click: InteractionHandler | None = None

    @property
    def account(self) -> str | None:
        """The bot's name once logged in."""
        return self.user.name if self.user is not None else None

    async def on_ready(self) -> None:
        """A new gateway session (the first, or after Discord invalidated the old one)."""
        self.link.connected(self.account)

    async def on_resumed(self) -> None:
        """The session resumed: what was sent meanwhile is being replayed."""
        self.link.connected(self.account)

    async def on_disconnect(self) -> None:
        """The gateway dropped (also every failed reconnect attempt); discord.py tries again by itself."""
        if not self.is_closed():
            self.link.reconnecting("the connection dropped")

    async def on_message(self, message: discord.Message) -> None:
        """Every message the bot sees, its own included (the handler filters)."""
        if self.on_person_message is not None:
            await self.on_person_message(message)

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """A button click (we register no views: the handler answers every component interaction)."""
        if self.on_click is not None and interaction.type == discord.InteractionType.component:
            await self.on_click(interaction)

    async def on_error(self, event_method: str, /, *args: Any, **kwargs: Any) -> None:
        """A handler raised: log it with the event and carry on (discord.py's default prints to stderr)."""
        log.exception("discord: handling %s failed", event_method)


class Connection:
    """Logs in and keeps the gateway connection in the background; stops cleanly (twice is fine)."""

    def __init__(self, token: str, settings: DiscordSettings, link: Link,
                 attach: Callable[[Bot], None]) -> None:
        self._token = token
        self._settings = settings
        self.link = link
        self._attach = attach
        self.client = self._new_client()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        self._wake = asyncio.Event()
        """Set by :meth:`stop`, so a login backoff wait ends at once."""

    def stopping(self) -> bool:
        """Whether :meth:`stop` was called (a call, not an attribute: it changes while a coroutine waits)."""
        return self._stopped

    def _new_client(self) -> Bot:
        point_library(self._settings)
        client = Bot(self.link, self._settings.guild_ready_timeout)
        self._attach(client)
        return client

    def start(self) -> None:
        """Connect in the background; returns at once."""
        self.link.connecting()
        self._task = asyncio.create_task(self._run(), name="discord-connect")

    async def stop(self) -> None:
        """Close the gateway and the HTTP session, and end the connection task. Safe to call twice.

        The task is cancelled rather than awaited: after ``close`` it may still sit in discord.py's reconnect wait
        (up to minutes during an outage), and there is nothing left for it to finish.
        """
        self._stopped = True
        self._wake.set()
        try:
            await asyncio.wait_for(self.client.close(), CLOSE_SECONDS)
        except Exception:
            log.exception("closing the Discord client failed")
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                try:
                    await task
                except Exception:
                    log.debug("discord connection task ended with an error while stopping", exc_info=True)

    async def _run(self) -> None:
        if not await self._login():
            return
        try:
            await self.client.connect(reconnect=True)
        except discord.PrivilegedIntentsRequired:
            self.link.intent_refused()
        except discord.ConnectionClosed as err:
            if self._stopped:
                return
            if err.code == 4004:
                self.link.refused()
            else:
                log.error("discord: the gateway closed the connection for good (code %s)", err.code)
                self.link.broken(f"Discord closed the connection (code {err.code}). Press Try again; if it "
                                 "happens again, check the bot in the developer portal.")
        except Exception as err:
            if self._stopped:
                return
            log.exception("discord: the connection ended")
            self.link.broken(f"The Discord connection stopped ({describe(err)}). Press Try again.")

    async def _login(self) -> bool:
        """Log in, retrying network failures with backoff; False when the token is refused or we are stopping."""
        delays = backoff()
        while not self._stopped:
            try:
                await self.client.login(self._token)
                return True
            except discord.LoginFailure:
                self.link.refused()
                return False
            except (*NETWORK_ERRORS, discord.DiscordServerError, discord.RateLimited) as err:
                if self.stopping():
                    return False
                delay = next(delays)
                log.info("discord: logging in failed (%s); next try in %.0f s", describe(err), delay)
                self.link.reconnecting(describe(err), delay)
                await self.client.close()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                if self.stopping():
                    return False
                self.client = self._new_client()  # a closed client cannot log in again
            except Exception as err:
                log.exception("discord: logging in failed")
                self.link.broken(f"Discord could not start ({describe(err)}). Press Try again.")
                return False
        return False
