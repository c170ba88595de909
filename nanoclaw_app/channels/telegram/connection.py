"""Running PTB's ``Application`` inside our event loop, and keeping the link state honest.

PTB is embedded with ``initialize()``, ``start()`` and ``updater.start_polling()`` (``run_polling`` would take over
the loop). Connecting happens in a background task with backoff, so an unreachable Telegram never blocks or fails the
host's start. While polling, PTB retries failed ``getUpdates`` calls by itself; we learn about failures from its
error callback and then probe with ``getMe`` (backing off) to say when Telegram is back, which is what lets parked
replies go out promptly. Every ``getUpdates`` answer is also observed: a success proves the link is up, a 401 means
the token was revoked (PTB's polling stops silently on that).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from telegram.error import Conflict, InvalidToken, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import Application, ApplicationBuilder
from telegram.request import BaseRequest, HTTPXRequest, RequestData

from nanoclaw_app.channels.telegram.link import Link
from nanoclaw_app.channels.telegram.setup import bot_api_url, bot_file_url

if TYPE_CHECKING:
    from telegram.ext import ContextTypes

    TelegramApp = Application[Any, ContextTypes.DEFAULT_TYPE, Any, Any, Any, Any]

log = logging.getLogger(__name__)

POLL_TIMEOUT_SECONDS = 10
"""Long-poll duration of one ``getUpdates``."""
REQUEST_TIMEOUT_SECONDS = 10.0
MEDIA_WRITE_TIMEOUT_SECONDS = 120.0
"""Uploading a file of up to 50 MB on a slow line."""
BACKOFF_SECONDS = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
"""Waits between connection attempts; the last repeats."""
ALLOWED_UPDATES = ("message", "callback_query")
"""Edited messages are not asked for: the agent already answered the original (see ``inbound``)."""


def backoff() -> Iterator[float]:
    """The waits between attempts: growing, then steady at the last one."""
    yield from BACKOFF_SECONDS
    while True:
        yield BACKOFF_SECONDS[-1]


class PollRequest(HTTPXRequest):
    """PTB's HTTP client for ``getUpdates``, telling us each answer's status code."""

    def __init__(self, observe: Callable[[int], None]) -> None:
        super().__init__(connection_pool_size=1, read_timeout=REQUEST_TIMEOUT_SECONDS,
                         connect_timeout=REQUEST_TIMEOUT_SECONDS)
        self._observe = observe

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Send as PTB does, then report the status code."""
        code, payload = await super().do_request(url, method, request_data, read_timeout, write_timeout,
                                                 connect_timeout, pool_timeout)
        self._observe(code)
        return code, payload


def build_application(token: str, api_base_url: str, observe: Callable[[int], None]) -> TelegramApp:
    """A PTB application for ``token`` against ``api_base_url`` (Telegram's or a self-hosted Bot API server)."""
    builder: ApplicationBuilder[Any, Any, Any, Any, Any, Any] = Application.builder()
    return (
        builder.token(token)
        .base_url(bot_api_url(api_base_url))
        .base_file_url(bot_file_url(api_base_url))
        .connect_timeout(REQUEST_TIMEOUT_SECONDS)
        .read_timeout(REQUEST_TIMEOUT_SECONDS)
        .write_timeout(REQUEST_TIMEOUT_SECONDS)
        .media_write_timeout(MEDIA_WRITE_TIMEOUT_SECONDS)
        .get_updates_request(PollRequest(observe))
        .job_queue(None)
        .build()
    )


def describe(err: BaseException) -> str:
    """A short reason for the app (never the token, which PTB's own messages may contain)."""
    if isinstance(err, TimedOut):
        return "timed out"
    if isinstance(err, RetryAfter):
        return "Telegram asked to slow down"
    if isinstance(err, NetworkError):
        return "network error"
    return type(err).__name__


class Connection:
    """Connects in the background, watches polling, and stops cleanly (twice is fine)."""

    def __init__(self, token: str, api_base_url: str, link: Link) -> None:
        self.link = link
        self.app: TelegramApp = build_application(token, api_base_url, self._observe_poll)
        self._connect: asyncio.Task[None] | None = None
        self._probe: asyncio.Task[None] | None = None
        self._stopped = False

    @property
    def account(self) -> str | None:
        """``@username`` once known."""
        try:
            username = self.app.bot.username
        except RuntimeError:  # getMe has not answered yet
            return None
        return f"@{username}" if username else None

    # ------------------------------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Connect in the background; returns at once."""
        self.link.connecting()
        self._connect = asyncio.create_task(self._run(), name="telegram-connect")

    async def stop(self) -> None:
        """Stop polling, finish handling fetched updates, close the HTTP clients. Safe to call twice."""
        self._stopped = True
        for task in (self._connect, self._probe):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._connect = self._probe = None
        app = self.app
        if app.updater is not None and app.updater.running:
            try:
                await app.updater.stop()
            except Exception as err:  # the polling task ended with an error (a revoked token)
                log.info("telegram polling had stopped: %s", describe(err))
        if app.running:
            try:
                await app.stop()
            except Exception:
                log.exception("stopping the Telegram application failed")
        try:
            await app.shutdown()
            await app.bot.shutdown()  # when initializing never finished, the application skips this
        except Exception:
            log.exception("shutting the Telegram client down failed")

    async def _run(self) -> None:
        delays = backoff()
        while not self._stopped:
            try:
                await self.app.initialize()
                if not self.app.running:
                    await self.app.start()
                updater = self.app.updater
                assert updater is not None
                if not updater.running:
                    await updater.start_polling(
                        timeout=POLL_TIMEOUT_SECONDS,
                        drop_pending_updates=False,  # messages sent while we were away still arrive
                        allowed_updates=list(ALLOWED_UPDATES),
                        error_callback=self._on_poll_error,
                    )
            except InvalidToken:
                self.link.refused()
                return
            except TelegramError as err:
                delay = next(delays)
                log.info("telegram: connecting failed (%s); next try in %.0f s", describe(err), delay)
                self.link.reconnecting(describe(err), delay)
                await asyncio.sleep(delay)
                continue
            except Exception as err:  # not Telegram's answer but our side: retrying the same thing cannot help
                log.exception("telegram could not start")
                self.link.broken(f"Telegram could not start: {err}")
                return
            self.link.connected(self.account)
            return

    # ------------------------------------------------------------------------------------------ watching

    def lost(self, err: BaseException) -> None:
        """A request failed for network reasons: the link is down until a probe (or a poll) gets through."""
        if self._stopped or self.link.failed or (self._connect is not None and not self._connect.done()):
            return
        if self._probe is None or self._probe.done():
            self.link.reconnecting(describe(err), BACKOFF_SECONDS[0])
            self._probe = asyncio.create_task(self._probe_until_back(err), name="telegram-probe")

    def _on_poll_error(self, err: TelegramError) -> None:
        """PTB's polling error callback (synchronous; PTB retries the poll itself)."""
        if isinstance(err, Conflict):
            log.warning("telegram: another program polls with this bot token")
            self.link.replaced()
            return
        log.warning("telegram: polling failed (%s); retrying", describe(err))
        self.lost(err)

    def _observe_poll(self, code: int) -> None:
        """Every ``getUpdates`` answer: 2xx proves the link, 401/404 means the token is gone."""
        if self._stopped:
            return
        if 200 <= code < 300:
            if not self.link.up and (self._connect is None or self._connect.done()):
                self.link.connected(self.account)
                if self._probe is not None:
                    self._probe.cancel()
        elif code in (401, 404):
            self.link.refused()

    async def _probe_until_back(self, err: BaseException) -> None:
        reason = describe(err)
        delays = backoff()
        first = True
        while not self._stopped:
            delay = next(delays)
            if not first:  # the first wait was announced when the link was lost
                self.link.reconnecting(reason, delay)
            first = False
            await asyncio.sleep(delay)
            if self.link.up or self.link.failed:
                return
            try:
                await self.app.bot.get_me()
            except InvalidToken:
                self.link.refused()
                return
            except TelegramError as failure:
                reason = describe(failure)
                continue
            self.link.connected(self.account)
            return
