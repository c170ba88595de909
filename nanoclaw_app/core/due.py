"""The due timer: a scheduled row wakes its session at its ``process_after``, not at the sweep's next pass.

The host knows every future time it writes into an ``inbound.db`` (a task scheduled, updated or resumed; the sweep's
retries and recurring clones, and every session's next due time after a restart, which the sweep hands over on each
pass). Each is noted here: one owned task sleeps until ``lead`` seconds before the earliest, then checks that session
and wakes its container when work falls due within the lead and none runs, so the cold start is over by the time the
row is due; the runner sleeps until the time itself, as one that was running anyway does.
A note is only a hint: the session DB says what is due, so a cancelled task or a duplicate note costs one read.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from datetime import UTC, datetime, timedelta

from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.sweep import due_and_next
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.errors import SessionDamaged

log = logging.getLogger(__name__)

MAX_SLEEP_SECONDS = 300.0
LEAD_SECONDS = 3.0
"""Start a container this long before its row falls due: a cold start (about 2 s with Podman) must not delay it."""
"""Sleep at most this long at once, so a wall-clock jump (suspend, NTP) delays a task by minutes at worst."""


class DueTimer:
    """Implements the core's ``DueNotes``: a heap of (epoch, session id) and one task that wakes at the earliest."""

    def __init__(self, ctx: CoreContext, *, max_sleep: float = MAX_SLEEP_SECONDS,
                 lead: float = LEAD_SECONDS) -> None:
        self._ctx = ctx
        self._max_sleep = max_sleep
        self._lead = lead
        self._heap: list[tuple[float, str]] = []
        self._noted: set[tuple[float, str]] = set()
        """What the heap holds, so the sweep noting the same time every pass never grows it."""
        self._kick = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def note(self, session_id: str, when: float | None = None) -> None:
        """Check ``session_id`` ahead of epoch ``when`` (None: now)."""
        entry = (time.time() if when is None else when - self._lead, session_id)
        if entry in self._noted:
            return
        self._noted.add(entry)
        heapq.heappush(self._heap, entry)
        if self._heap[0] == entry:
            self._kick.set()

    def pending(self) -> list[tuple[float, str]]:
        """The noted check times (a due time less the lead), soonest first (tests read it)."""
        return sorted(self._heap)

    async def start(self) -> None:
        """Start the timer task (idempotent)."""
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._run(), name="due-timer")

    async def stop(self) -> None:
        """Stop, letting a check in progress finish."""
        self._stopping.set()
        self._kick.set()
        task, self._task = self._task, None
        if task is not None:
            await task

    async def _run(self) -> None:
        while not self._stopping.is_set():
            self._kick.clear()
            now = time.time()
            due: list[str] = []
            while self._heap and self._heap[0][0] <= now:
                entry = heapq.heappop(self._heap)
                self._noted.discard(entry)
                if entry[1] not in due:
                    due.append(entry[1])
            for session_id in due:
                try:
                    await self._check(session_id)
                except Exception:
                    log.exception("due check of session %s failed; the sweep covers it", session_id)
            if due:
                continue
            delay = self._max_sleep if not self._heap else min(self._max_sleep, self._heap[0][0] - now)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(delay, 0.0)):
                    await self._kick.wait()

    async def _check(self, session_id: str) -> None:
        """Wake the session if something falls due within the lead and no container runs; note the next time."""
        ctx = self._ctx
        session = await sessions_db.get(ctx.db, session_id)
        if session is None or session.status != "active":
            return
        folder = ctx.store.dir(session.agent_group_id, session.id)
        try:
            horizon = datetime.now(UTC) + timedelta(seconds=self._lead)
            due, upcoming = await ctx.store.read(folder, lambda conn: due_and_next(conn, horizon))
        except (FileNotFoundError, SessionDamaged) as err:
            log.warning("due check skipped session %s (the sweep deals with it): %s", session_id, err)
            return
        if upcoming is not None:
            self.note(session_id, upcoming)
        if due and not await ctx.waker.is_running(session_id):
            log.info("session %s has %d row(s) due within %.0f s; waking it", session_id, len(due), self._lead)
            if not await ctx.waker.wake(session):
                log.info("could not wake session %s now; its due rows wait for the sweep", session_id)


__all__ = ["LEAD_SECONDS", "MAX_SLEEP_SECONDS", "DueTimer"]
