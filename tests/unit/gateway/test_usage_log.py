"""Usage rows are written in batches off the hot path; a stop writes what is queued; a failed write is not silent."""

from __future__ import annotations

import asyncio

import pytest

from nanoclaw_app.core.events import EventBus
from nanoclaw_app.db import usage as usage_db
from nanoclaw_app.db.database import Database
from nanoclaw_app.gateway.usage_log import UsageLog
from tests.unit.gateway.conftest import TIMEOUT


def call(session: str, cost: float = 0.01) -> usage_db.CallUsage:
    return usage_db.CallUsage("agent-1", session, "anthropic", "claude-sonnet-4-6", input_tokens=5, cost_usd=cost)


async def test_calls_queued_together_are_written_in_one_batch(db: Database) -> None:
    events = EventBus()
    log = UsageLog(db, events)
    async with events.subscribe() as queue:
        await log.start()
        for session in ("s1", "s2", "s1"):
            log.add(call(session))
        async with asyncio.timeout(TIMEOUT):
            recorded = await queue.get()
        await log.stop()

    assert recorded.kind == "usage.recorded"
    assert recorded.data["calls"] == 3
    assert recorded.data["session_ids"] == ["s1", "s2"]
    assert len(await usage_db.calls_of_session(db, "s1")) == 2


async def test_stop_writes_what_is_still_queued_without_waiting_out_the_linger(db: Database) -> None:
    log = UsageLog(db, EventBus(), linger=3600.0)
    await log.start()
    log.add(call("s-late", 0.5))
    await asyncio.sleep(0)  # let the writer pick the row up and start lingering

    async with asyncio.timeout(TIMEOUT):
        await log.stop()

    assert [c.cost_usd for c in await usage_db.calls_of_session(db, "s-late")] == [0.5]


async def test_a_failed_write_is_logged_and_published(db: Database, caplog: pytest.LogCaptureFixture) -> None:
    events = EventBus()
    closed = Database(db.path)  # never opened: every write fails
    log = UsageLog(closed, events)
    async with events.subscribe() as queue:
        log.add(call("s-lost", 0.25))
        await log.stop()
        failed = queue.get_nowait()

    assert failed.kind == "gateway.usage_failed"
    assert failed.data == {"calls": 1, "cost_usd": 0.25}
    assert "could not record 1 model calls ($0.250000, sessions ['s-lost'])" in caplog.text
