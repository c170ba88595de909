"""Where a chat channel's link stands, told to the host in order (the part every token channel shares).

A state is recorded at once (so ``deliver`` knows right away whether to park a message) and reported to the host from
one owned task in the order the changes happened, because they come from library callbacks (some synchronous),
watchers and failed sends alike. A link down for ``ALERT_AFTER_SECONDS`` carries an alert for the owner; a refused
token is final until a new adapter (a new token) starts clean. A channel subclasses :class:`ChannelLink` with its
names and notices, and adds the states only it has.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import ClassVar

from nanoclaw_app.core.adapter_contract import ChannelStatus, HostCallbacks, LinkState
from nanoclaw_app.errors import ChannelDown
from nanoclaw_app.timeutil import iso, utcnow

ALERT_AFTER_SECONDS = 120.0
"""A link down this long is worth telling the owner about (over another channel)."""


class ChannelLink:
    """One channel's connection state as the app shows it."""

    channel: ClassVar[str]
    """The channel's name (``telegram``): the host's key, the task's and the log's prefix."""
    title: ClassVar[str]
    """The name people read (``Telegram``)."""
    refused_notice: ClassVar[str]
    """What the user reads (and the owner is alerted with) when the platform refuses the token."""
    refused_problem: ClassVar[str | None] = None
    """``extra["problem"]`` on a refused token, for a page that shows a fix per problem; None adds nothing."""
    broken_problem: ClassVar[str | None] = None
    """``extra["problem"]`` when starting failed on our side."""
    quiet_retries: ClassVar[bool] = False
    """Report ``reconnecting`` once per outage (no new retry time each attempt, which would only flicker)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._status = ChannelStatus("connecting", f"Connecting to {self.title}…")
        self._account: str | None = None
        self._down_since: float | None = None
        self._alerted = False
        self._queue: asyncio.Queue[ChannelStatus] = asyncio.Queue()
        self._host: HostCallbacks | None = None
        self._reporter: asyncio.Task[None] | None = None
        self._log = logging.getLogger(type(self).__module__)  # records stay under the channel's own name

    # ------------------------------------------------------------------------------------------ lifecycle

    def start(self, host: HostCallbacks) -> None:
        """Begin reporting to ``host`` (the current state first)."""
        self._host = host
        self._queue.put_nowait(self._status)
        self._reporter = asyncio.create_task(self._report_loop(), name=f"{self.channel}-status")

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
    def failed(self) -> bool:
        """Whether the channel failed for good (a refused token): nothing helps until the user acts."""
        return self._status.state == "failed"

    def down(self) -> ChannelDown:
        """The error a send raises while the link is not up: the state in words, so the wait is explained."""
        return ChannelDown(self.channel, f"{self.title} is {self._status.state}: {self._status.detail}".rstrip(": "))

    def connecting(self) -> None:
        """The first connection attempt of this run."""
        self._set("connecting", f"Connecting to {self.title}…")

    def connected(self, account: str | None = None) -> None:
        """The platform answers; sends go out."""
        if account:
            self._account = account
        if self.failed:
            return  # only a new token (a new adapter) recovers from that
        self._down_since = None
        self._alerted = False
        self._set("connected", "")

    def reconnecting(self, reason: str, retry_in: float | None = None) -> None:
        """The platform cannot be reached; the next attempt is in about ``retry_in`` seconds (None: not known)."""
        if self.failed:
            return
        now = self._clock()
        if self._down_since is None:
            self._down_since = now
        alert = None
        if not self._alerted and now - self._down_since >= ALERT_AFTER_SECONDS:
            self._alerted = True
            minutes = round((now - self._down_since) / 60)
            alert = (f"{self.title} has been unreachable for {minutes} minutes ({reason}). Messages to {self.title} "
                     "wait and are sent when it is back.")
        if self.quiet_retries and self._status.state == "reconnecting" and alert is None:
            return
        retry_at = iso(utcnow() + timedelta(seconds=retry_in)) if retry_in is not None else None
        self._set("reconnecting", f"{self.title} cannot be reached ({reason}); trying again shortly.",
                  retry_at=retry_at, alert=alert)

    def refused(self) -> None:
        """The token was revoked or refused: report it once, with an alert for the owner."""
        self._fail(self.refused_notice, problem=self.refused_problem)

    def broken(self, detail: str) -> None:
        """Starting failed for a reason retrying cannot fix; shown as it is, with an alert."""
        self._set("failed", detail, alert=detail, problem=self.broken_problem)

    def _fail(self, notice: str, *, problem: str | None = None) -> None:
        """Fail for good with ``notice`` (and an alert), unless already failed: the first cause is the one to fix."""
        if not self.failed:
            self._set("failed", notice, alert=notice, problem=problem)

    def _set(self, state: LinkState, detail: str, *, retry_at: str | None = None, alert: str | None = None,
             problem: str | None = None) -> None:
        extra = {"problem": problem} if problem else {}
        status = ChannelStatus(state, detail, account=self._account, retry_at=retry_at, alert=alert, extra=extra)
        if status == self._status:
            return
        if state != self._status.state:
            self._log.info("%s link: %s%s", self.channel, state, f" ({detail})" if detail else "")
        self._status = status
        if self._host is not None:
            self._queue.put_nowait(status)

    async def _report_loop(self) -> None:
        while True:
            status = await self._queue.get()
            if self._host is None:
                continue
            try:
                await self._host.on_status(self.channel, status)
            except Exception:
                self._log.exception("telling the host that %s is %s failed", self.title, status.state)
