"""The due timer: a scheduled task wakes its session at its time, never waiting for the sweep's next pass."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from nanoclaw_app.core import scheduling
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.due import DueTimer
from nanoclaw_app.core.scheduling import NewTask
from nanoclaw_app.core.sweep import Sweep, due_trigger_ids
from nanoclaw_app.db import agents, messaging
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.rows import Session
from nanoclaw_app.timeutil import iso, utcnow
from tests.fakes.waker import RecordingWaker

TIMEOUT = 10.0
HOUR = timedelta(hours=1)
SOON = 0.3
"""Seconds until the test's task falls due: the sweep (interval one hour) can never be what wakes it."""


@pytest.fixture
async def setup(ctx: CoreContext) -> tuple[Session, Path]:
    agent = await agents.create(ctx.db, "Helper")
    chat = await messaging.create(ctx.db, "test", "chat-1", name="Family")
    await messaging.wire(ctx.db, chat.id, agent.id)
    session, _ = await sessions_db.find_or_create(ctx.db, agent.id, "shared", chat.id, None)
    folder = await ctx.store.create(agent.id, session.id)
    return session, folder


@pytest.fixture
async def timer(ctx: CoreContext) -> AsyncIterator[DueTimer]:
    due = DueTimer(ctx, lead=0.0)
    ctx.due = due
    await due.start()
    try:
        yield due
    finally:
        await due.stop()


def soon() -> str:
    return iso(utcnow() + timedelta(seconds=SOON))


async def until(predicate: Callable[[], Any], what: str) -> None:
    async with asyncio.timeout(TIMEOUT):
        while not predicate():
            await asyncio.sleep(0.02)
    assert predicate(), what


async def test_a_task_the_agent_schedules_wakes_its_idle_session_at_its_time(ctx, setup, timer, waker) -> None:
    session, _ = setup
    await scheduling.schedule_task(ctx, session, {"prompt": "stretch", "processAfter": soon()})
    assert waker.woken == []  # not before its time
    await until(lambda: waker.woken, "the session woken at the task's time")
    assert waker.woken == [session.id]


async def test_a_task_from_before_a_restart_wakes_its_session_without_a_second_sweep(ctx, setup, timer,
                                                                                     waker) -> None:
    session, folder = setup
    await ctx.store.write(folder, lambda conn: scheduling.schedule(conn, NewTask(id="t-1", prompt="x",
                                                                                  process_after=soon())))
    sweep = Sweep(ctx, interval=3600)
    await sweep.start()  # its first pass notes the time; its next pass is an hour away
    try:
        await until(lambda: waker.woken, "the session woken at the task's time")
    finally:
        await sweep.stop()
    assert waker.woken == [session.id]


async def test_a_running_container_is_left_to_its_own_runner(ctx, setup, timer, waker: RecordingWaker) -> None:
    session, _ = setup
    waker.running.add(session.id)
    await scheduling.schedule_task(ctx, session, {"prompt": "stretch", "processAfter": soon()})
    await until(lambda: not timer.pending(), "the due check")
    await asyncio.sleep(0.05)
    assert waker.woken == []


async def test_a_task_cancelled_before_its_time_wakes_nothing(ctx, setup, timer, waker) -> None:
    session, _ = setup
    task_id = await scheduling.schedule_task(ctx, session, {"prompt": "stretch", "processAfter": soon()})
    await scheduling.cancel_task(ctx, session, {"task_id": task_id})
    await until(lambda: not timer.pending(), "the due check")
    await asyncio.sleep(0.05)
    assert waker.woken == []


async def test_a_stopped_session_is_woken_ahead_of_its_task_so_the_cold_start_is_over_by_then(ctx, setup,
                                                                                              waker) -> None:
    session, folder = setup
    due = DueTimer(ctx, lead=600.0)
    ctx.due = due
    await due.start()
    try:
        await scheduling.schedule_task(ctx, session, {"prompt": "stretch", "processAfter": iso(utcnow() + HOUR / 6)})
        await until(lambda: waker.woken, "the session woken ahead of the task")
    finally:
        await due.stop()
    assert waker.woken == [session.id]
    assert not await ctx.store.read(folder, lambda conn: due_trigger_ids(conn, utcnow()))  # its runner waits for it


async def test_resuming_a_paused_task_whose_time_passed_runs_it_now(ctx, setup, timer, waker) -> None:
    session, folder = setup
    past = iso(utcnow() - timedelta(minutes=5))
    await ctx.store.write(folder, lambda conn: scheduling.schedule(conn, NewTask(id="t-1", prompt="x",
                                                                                  process_after=past)))
    await ctx.store.write(folder, lambda conn: scheduling.pause(conn, "t-1"))
    await scheduling.resume_task(ctx, session, {"task_id": "t-1"})
    await until(lambda: waker.woken, "the resumed task woken at once")
    assert waker.woken == [session.id]
