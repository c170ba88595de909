"""Writes the gateway's ``usage`` rows in small batches from one owned task, off the forwarding hot path.

A write per call costs a few thread hops into SQLite right when the next call of the same agent arrives; measured on
the gateway benchmark that was about a third of the gateway's own per-call overhead. Queueing the row (microseconds)
and writing everything that arrived within ``LINGER_SECONDS`` in one transaction removes that. The spend cap does not
wait for the rows: today's spend is kept in memory (``SpendTracker``) at the moment of each call. ``stop`` writes what
is still queued, so a clean shutdown loses nothing; a crash can lose at most the last ``LINGER_SECONDS`` of rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from nanoclaw_app.core.events import EventBus
from nanoclaw_app.db import usage as usage_db
from nanoclaw_app.db.database import Database

log = logging.getLogger(__name__)

LINGER_SECONDS = 0.05
"""How long the first queued row waits for company before its batch is written."""


class UsageLog:
    """A queue of calls and the task that writes them; ``usage.recorded`` is published after each batch commits."""

    def __init__(self, db: Database, events: EventBus, *, linger: float = LINGER_SECONDS) -> None:
        self._db = db
        self._events = events
        self._linger = linger
        self._queue: asyncio.Queue[usage_db.CallUsage | None] = asyncio.Queue()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def add(self, call: usage_db.CallUsage) -> None:
        """Queue one call's row (never blocks, never fails)."""
        self._queue.put_nowait(call)

    async def start(self) -> None:
        """Start the writer task."""
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._run(), name="gateway-usage-log")

    async def stop(self) -> None:
        """Write whatever is queued, then end the writer (a write in progress is never cut off)."""
        task, self._task = self._task, None
        if task is None:
            await self._write(self._drain())
            return
        self._stopping.set()
        self._queue.put_nowait(None)  # wakes the writer if it waits for a first row
        await task

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            if first is not None and not self._stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self._linger)
            batch = self._drain()
            await self._write([first, *batch] if first is not None else batch)
            if self._stopping.is_set() and self._queue.empty():
                return

    def _drain(self) -> list[usage_db.CallUsage]:
        batch: list[usage_db.CallUsage] = []
        while not self._queue.empty():
            call = self._queue.get_nowait()
            if call is not None:
                batch.append(call)
        return batch

    async def _write(self, batch: list[usage_db.CallUsage]) -> None:
        if not batch:
            return
        try:
            await usage_db.record_calls(self._db, batch)
        except Exception:
            log.exception("model gateway: could not record %d model calls ($%.6f, sessions %s)", len(batch),
                          sum(c.cost_usd for c in batch), sorted({c.session_id or "-" for c in batch}))
            self._events.publish("gateway.usage_failed", calls=len(batch), cost_usd=sum(c.cost_usd for c in batch))
            return
        self._events.publish("usage.recorded", calls=len(batch), cost_usd=sum(c.cost_usd for c in batch),
                             session_ids=sorted({c.session_id for c in batch if c.session_id}))
