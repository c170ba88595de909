"""Where the link to Telegram stands, told to the host in order.

State changes are recorded at once (so ``deliver`` knows right away whether to park a message) and reported to the
host from one task in the order they happened, because they come from PTB's synchronous error callback as well as
from coroutines.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import timedelta

from nanoclaw_app.core.adapter_contract import ChannelStatus, HostCallbacks, LinkState
from nanoclaw_app.timeutil import iso, utcnow

log = logging.getLogger(__name__)

CHANNEL = "telegram"
ALERT_AFTER_SECONDS = 120.0
"""A link down this long is worth telling the owner about (over another channel)."""
REVOKED_NOTICE = (
    "Telegram refused the bot token: it was revoked or replaced in @BotFather. Enter the new token on the Channels "
    "page."
)


class Link:
    """The Telegram connection's state as the app shows it."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._status = ChannelStatus("connecting", "Connecting to Telegram…")
        self._account: str | None = None
        self._down_since: float | None = None
        self._alerted = False
        self._queue: asyncio.Queue[ChannelStatus] = asyncio.Queue()
        self._host: HostCallbacks | None = None
        self._reporter: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------------------------------ lifecycle

    def start(self, host: HostCallbacks) -> None:
        """Begin reporting to ``host`` (the current state first)."""
        self._host = host
        self._queue.put_nowait(self._status)
        self._reporter = asyncio.create_task(self._report_loop(), name="telegram-status")

    async def stop(self) -> None:
        """Stop reporting; states not yet told are dropped (the host is tearing the channel down)."""
        task, self._reporter = self._reporter, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # ------------------------------------------------------------------------------------------ state

    @property
    def status(self) -> ChannelStatus:
        """The latest state."""
        return self._status

    @property
    def up(self) -> bool:
        """Whether sends can go out now."""
        return self._status.up

    @property
    def can_send(self) -> bool:
        """Whether sends may be tried: connected, or only polling is taken over by another program."""
        return self._status.state in ("connected", "replaced")

    @property
    def failed(self) -> bool:
        """Whether the channel failed for good (a refused token): nothing helps until the user acts."""
        return self._status.state == "failed"

    def connecting(self) -> None:
        """The first connection attempt of this run."""
        self._set("connecting", "Connecting to Telegram…")

    def connected(self, account: str | None = None) -> None:
        """Polling works; sends go out."""
        if account:
            self._account = account
        if self.failed:
            return  # only a new token (a new adapter) recovers from that
        self._down_since = None
        self._alerted = False
        self._set("connected", "")

    def reconnecting(self, reason: str, retry_in: float) -> None:
        """Telegram cannot be reached; the next attempt is in ``retry_in`` seconds."""
        if self.failed:
            return
        now = self._clock()
        if self._down_since is None:
            self._down_since = now
        alert = None
        if not self._alerted and now - self._down_since >= ALERT_AFTER_SECONDS:
            self._alerted = True
            minutes = round((now - self._down_since) / 60)
            alert = (f"Telegram has been unreachable for {minutes} minutes ({reason}). Messages to Telegram wait "
                     "and are sent when it is back.")
        retry_at = iso(utcnow() + timedelta(seconds=retry_in))
        self._set("reconnecting", f"Telegram cannot be reached ({reason}); trying again shortly.", retry_at=retry_at,
                  alert=alert)

    def replaced(self) -> None:
        """Another program polls with the same token; Telegram gives updates to one of them only."""
        if self._status.state == "replaced" or self.failed:
            return
        self._set("replaced", "Another program is receiving this bot's messages (Telegram allows one at a time). "
                              "Stop the other program, or create a new token for NanoClaw in @BotFather.",
                  alert="Telegram: another program is using the bot's token, so NanoClaw misses messages there.")

    def refused(self) -> None:
        """The token was revoked: report it once, with an alert for the owner."""
        if self.failed:
            return
        self._set("failed", REVOKED_NOTICE, alert=REVOKED_NOTICE)

    def broken(self, detail: str) -> None:
        """Starting failed on our side (not Telegram's answer); shown as it is, with an alert."""
        self._set("failed", detail, alert=detail)

    def _set(self, state: LinkState, detail: str, *, retry_at: str | None = None, alert: str | None = None) -> None:
        status = ChannelStatus(state, detail, account=self._account, retry_at=retry_at, alert=alert)
        if status == self._status:
            return
        if state != self._status.state:
            log.info("telegram link: %s%s", state, f" ({detail})" if detail else "")
        self._status = status
        if self._host is not None:
            self._queue.put_nowait(status)

    async def _report_loop(self) -> None:
        while True:
            status = await self._queue.get()
            if self._host is None:
                continue
            try:
                await self._host.on_status(CHANNEL, status)
            except Exception:
                log.exception("telling the host that Telegram is %s failed", status.state)
