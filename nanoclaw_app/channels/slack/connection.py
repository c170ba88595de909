"""Running slack-bolt's ``AsyncApp`` over Socket Mode inside our event loop, and keeping the link state honest.

bolt is embedded with ``AsyncSocketModeHandler.connect_async()`` (``start_async`` would sleep forever). The first
connection is made in a background task with backoff, so an unreachable Slack never blocks or fails the host's start;
both tokens are checked on the way (``auth.test``, ``apps.connections.open``), and a refused one fails the channel
in plain words instead of retrying forever. Once connected, slack_sdk's Socket Mode client pings and redials by
itself (also when Slack asks it to with a ``disconnect`` message); we report its state: Slack's ``hello`` on each new
websocket says "connected", and a watcher asks the client every ping interval whether its session is still alive.
While the link is down the watcher also checks now and then whether the bot token was revoked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator
from typing import Any

import aiohttp
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from nanoclaw_app.channels.slack.link import Link
from nanoclaw_app.channels.slack.settings import SlackSettings
from nanoclaw_app.channels.slack.setup import REFUSED

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_SECONDS = 30
CONNECT_TIMEOUT_SECONDS = 30.0
"""The websocket must open within this; otherwise a fresh URL is asked for (an old one may have expired)."""
BACKOFF_SECONDS = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
PROBE_EVERY = 6
"""While down, the bot token is checked every this many health checks (Slack may have revoked it meanwhile)."""


def backoff() -> Iterator[float]:
    """The waits between attempts: growing, then steady at the last one."""
    yield from BACKOFF_SECONDS
    while True:
        yield BACKOFF_SECONDS[-1]


def describe(err: BaseException) -> str:
    """A short reason for the app (never a token, which library messages may contain)."""
    if isinstance(err, SlackApiError):
        return f"Slack answered {err.response.get('error', 'an error')}"
    if isinstance(err, TimeoutError | asyncio.TimeoutError):
        return "timed out"
    if isinstance(err, aiohttp.ClientError | OSError):
        return "network error"
    return type(err).__name__


class Connection:
    """Connects in the background, watches the Socket Mode client, and stops cleanly (twice is fine)."""

    def __init__(self, bot_token: str, app_token: str, settings: SlackSettings, link: Link) -> None:
        self.link = link
        self._app_token = app_token
        self._interval = settings.ping_interval_seconds
        self.client = AsyncWebClient(token=bot_token, base_url=settings.api_url, timeout=REQUEST_TIMEOUT_SECONDS)
        self.app = AsyncApp(client=self.client, process_before_response=True,
                            logger=logging.getLogger("nanoclaw_app.channels.slack.bolt"))
        self.handler = AsyncSocketModeHandler(self.app, app_token, ping_interval=self._interval,
                                              logger=logging.getLogger("nanoclaw_app.channels.slack.socket"))
        self.handler.client.on_message_listeners.append(self._on_socket_message)
        self.bot_user_id: str | None = None
        self.account: str | None = None
        self._connect: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._stopped = False

    # ------------------------------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Connect in the background; returns at once."""
        self._connect = asyncio.create_task(self._run(), name="slack-connect")

    async def stop(self) -> None:
        """Close the websocket and the client's sessions. Safe to call twice."""
        self._stopped = True
        for task in (self._connect, self._watcher):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._connect = self._watcher = None
        await self._close_socket()

    async def _close_socket(self) -> None:
        client = self.handler.client
        if client.closed:
            return
        try:
            await self.handler.close_async()  # type: ignore[no-untyped-call]
        except Exception:
            log.exception("closing the Slack Socket Mode client failed")

    async def _run(self) -> None:
        delays = backoff()
        while not self._stopped:
            try:
                me = await self.client.auth_test()
                opened = await self.client.apps_connections_open(app_token=self._app_token)
            except SlackApiError as err:
                if str(err.response.get("error", "")) in REFUSED:
                    log.warning("slack: a token was refused (%s)", err.response.get("error"))
                    self.link.refused()
                    await self._close_socket()
                    return
                await self._wait(err, delays)
                continue
            except (aiohttp.ClientError, TimeoutError, OSError) as err:
                await self._wait(err, delays)
                continue
            except Exception as err:  # not Slack's answer but our side: retrying the same thing cannot help
                log.exception("slack could not start")
                self.link.broken(f"Slack could not start: {err}")
                return
            self.bot_user_id = str(me.get("user_id") or "") or None
            self.account = f"@{me.get('user')}" if me.get("user") else None
            self.handler.client.wss_uri = str(opened["url"])  # dial this one; a later redial asks for a new one
            try:
                await asyncio.wait_for(self.handler.connect_async(),  # type: ignore[no-untyped-call]
                                       CONNECT_TIMEOUT_SECONDS)
            except TimeoutError as err:
                self.handler.client.wss_uri = None
                await self._wait(err, delays)
                continue
            self.link.connected(self.account)
            self._watcher = asyncio.create_task(self._watch(), name="slack-health")
            return

    async def _wait(self, err: BaseException, delays: Iterator[float]) -> None:
        delay = next(delays)
        log.info("slack: connecting failed (%s); next try in %.0f s", describe(err), delay)
        self.link.reconnecting(describe(err), delay)
        await asyncio.sleep(delay)

    # ------------------------------------------------------------------------------------------ watching

    async def _on_socket_message(self, message: Any) -> None:
        """Every websocket frame: Slack's ``hello`` opens each new connection, so the link is up again."""
        if self._stopped or not isinstance(message.data, str) or '"hello"' not in message.data:
            return
        with contextlib.suppress(ValueError):
            if json.loads(message.data).get("type") == "hello" and (self._connect is None or self._connect.done()):
                self.link.connected(self.account)

    def lost(self, err: BaseException) -> None:
        """A Web API call failed for network reasons: down until the socket proves otherwise."""
        if not self._stopped and self.link.up:
            self.link.reconnecting(describe(err), self._interval)

    async def _watch(self) -> None:
        """Ask the Socket Mode client how its session is (it redials by itself) and report that."""
        client = self.handler.client
        checks = 0
        while not self._stopped:
            await asyncio.sleep(self._interval)
            if self.link.failed:
                await self._close_socket()
                return
            if await client.is_connected():
                checks = 0
                if not self.link.up:
                    self.link.connected(self.account)
                continue
            self.link.reconnecting("the connection dropped", self._interval)
            checks += 1
            if checks % PROBE_EVERY == 0:
                await self._probe()

    async def _probe(self) -> None:
        try:
            await self.client.auth_test()
        except SlackApiError as err:
            if str(err.response.get("error", "")) in REFUSED:
                self.link.refused()
        except (aiohttp.ClientError, TimeoutError, OSError):
            pass  # still unreachable: the client keeps redialling
