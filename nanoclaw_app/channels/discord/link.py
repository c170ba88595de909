"""Where the link to Discord stands, told to the host in order.

discord.py reconnects (with growing, randomised waits) and resumes the gateway session by itself; its events
(``ready``, ``resumed``, ``disconnect``) and what ends its connection loop are turned into states here. A state is
recorded at once (so ``deliver`` knows right away whether to park a message) and reported to the host from one task,
in the order the states happened.
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

CHANNEL = "discord"
ALERT_AFTER_SECONDS = 120.0
"""A link down this long is worth telling the owner about (over another channel)."""
REFUSED_NOTICE = (
    "Discord refused the bot token: it was reset or the bot was deleted in the developer portal. Paste the new token "
    "on the Channels page."
)
INTENT_NOTICE = (
    "Discord refused the connection because the bot's Message Content Intent is off. In the Discord developer portal "
    "open your application → Bot → Privileged Gateway Intents, turn on Message Content Intent, save, then press "
    "Try again."
)


class Link:
    """The Discord connection's state as the app shows it."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._status = ChannelStatus("connecting", "Connecting to Discord…")
        self._account: str | None = None
        self._down_since: float | None = None
        self._alerted = False
        self._queue: asyncio.Queue[ChannelStatus] = asyncio.Queue()
        self._host: HostCallbacks | None = None
        self._reporter: asyncio.Task[None] | None = None

    def start(self, host: HostCallbacks) -> None:
        """Begin reporting to ``host`` (the current state first)."""
        self._host = host
        self._queue.put_nowait(self._status)
        self._reporter = asyncio.create_task(self._report_loop(), name="discord-status")

    async def stop(self) -> None:
        """Stop reporting; states not yet told are dropped (the host is tearing the channel down)."""
        task, self._reporter = self._reporter, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def status(self) -> ChannelStatus:
        """The latest state."""
        return self._status

    @property
    def up(self) -> bool:
        """Whether sends can go out now."""
        return self._status.up

    @property
    def failed(self) -> bool:
        """Whether the channel failed for good (a refused token or intent): nothing helps until the user acts."""
        return self._status.state == "failed"

    def connecting(self) -> None:
        """The first connection attempt of this run."""
        self._set("connecting", "Connecting to Discord…")

    def connected(self, account: str | None = None) -> None:
        """The gateway session is ready (or resumed); sends go out."""
        if account:
            self._account = account
        if self.failed:
            return
        self._down_since = None
        self._alerted = False
        self._set("connected", "")

    def reconnecting(self, reason: str, retry_in: float | None = None) -> None:
        """Discord cannot be reached; discord.py (or our login loop) tries again."""
        if self.failed:
            return
        now = self._clock()
        if self._down_since is None:
            self._down_since = now
        alert = None
        if not self._alerted and now - self._down_since >= ALERT_AFTER_SECONDS:
            self._alerted = True
            minutes = round((now - self._down_since) / 60)
            alert = (f"Discord has been unreachable for {minutes} minutes ({reason}). Messages to Discord wait and "
                     "are sent when it is back.")
        retry_at = iso(utcnow() + timedelta(seconds=retry_in)) if retry_in is not None else None
        self._set("reconnecting", f"Discord cannot be reached ({reason}); trying again shortly.", retry_at=retry_at,
                  alert=alert)

    def refused(self) -> None:
        """The token was refused: report it once, with an alert for the owner."""
        if not self.failed:
            self._set("failed", REFUSED_NOTICE, alert=REFUSED_NOTICE, problem="token")

    def intent_refused(self) -> None:
        """Discord closed the gateway with 4014: the Message Content intent is not turned on for the bot."""
        if not self.failed:
            self._set("failed", INTENT_NOTICE, alert=INTENT_NOTICE, problem="intent")

    def broken(self, detail: str) -> None:
        """The connection ended for a reason retrying cannot fix; shown as it is, with an alert."""
        self._set("failed", detail, alert=detail, problem="other")

    def _set(self, state: LinkState, detail: str, *, retry_at: str | None = None, alert: str | None = None,
             problem: str | None = None) -> None:
        extra = {"problem": problem} if problem else {}
        status = ChannelStatus(state, detail, account=self._account, retry_at=retry_at, alert=alert, extra=extra)
        if status == self._status:
            return
        if state != self._status.state:
            log.info("discord link: %s%s", state, f" ({detail})" if detail else "")
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
                log.exception("telling the host that Discord is %s failed", status.state)
