"""A session database that refuses a write for now: the message is held in the central DB and handed over later,
once, in order; what can never succeed is recorded as a drop."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from typing import Any

import pytest

from nanoclaw_app.core import held as held_module
from nanoclaw_app.core import inbox
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.events import Event
from nanoclaw_app.core.router import Router
from nanoclaw_app.db import held as held_db
from nanoclaw_app.db import users
from nanoclaw_app.settings import load_settings
from tests.fakes.channel import FakeChannel
from tests.fakes.waker import RecordingWaker
from tests.unit.routing.helpers import Hooks, agent, chat_with, drop_reasons, inbound, member, rows_of

WAIT = 20.0


@pytest.fixture
def quick(ctx: CoreContext) -> CoreContext:
    ctx.settings = load_settings(ctx.settings.paths, timezone="Europe/Berlin", retry_base_seconds=0.01)
    return ctx


def refuse(monkeypatch: pytest.MonkeyPatch, error: Callable[[], BaseException], times: int) -> list[str]:
    """The session write fails ``times`` times with ``error()``, then works; returns the texts it was asked for."""
    real = inbox.write_message
    asked: list[str] = []

    async def flaky(ctx: CoreContext, session: Any, msg: Any, *, trigger: bool) -> int:
        asked.append(msg.text)
        if len(asked) <= times:
            raise error()
        return await real(ctx, session, msg, trigger=trigger)

    monkeypatch.setattr(inbox, "write_message", flaky)
    return asked


async def until(queue: asyncio.Queue[Event], kind: str, count: int = 1) -> list[Event]:
    """Every event up to the ``count``-th of ``kind``."""
    seen: list[Event] = []
    async with asyncio.timeout(WAIT):
        while sum(e.kind == kind for e in seen) < count:
            seen.append(await queue.get())
    return seen


def texts(rows: list[sqlite3.Row]) -> list[str]:
    return [json.loads(r["content"])["text"] for r in rows]


async def test_a_locked_session_db_holds_the_message_and_hands_it_over_once_with_later_ones_in_order(
    quick: CoreContext, hooks: Hooks, waker: RecordingWaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = quick
    a = await agent(ctx)
    await chat_with(ctx, [a], engage_mode="pattern", engage_pattern=".")
    await member(ctx, "alice", a)
    asked = refuse(monkeypatch, lambda: sqlite3.OperationalError("database is locked"), times=2)
    router = Router(ctx, hooks)
    first = await router.route(inbound("first"))
    second = await router.route(inbound("second"))  # the session could take it now, but it must not overtake
    assert [o.outcome for o in first.agents + second.agents] == ["held", "held"]
    assert first.drop_reason is None
    assert await drop_reasons(ctx) == {}
    assert asked == ["first"]
    session_id = first.agents[0].session_id or ""
    assert texts(await rows_of(ctx, session_id)) == []

    woken_before = list(waker.woken)
    async with ctx.events.subscribe() as queue:
        await router.start()
        try:
            events = await until(queue, "message.unheld", 2)
        finally:
            await router.stop()
    assert asked == ["first", "first", "first", "second"]  # the second only after the first got in
    assert texts(await rows_of(ctx, session_id)) == ["first", "second"]
    assert await held_db.counts(ctx.db) == {}
    routed = [e.data["message_id"] for e in events if e.kind == "message.routed"]
    assert routed == [first.message_id, second.message_id]
    assert waker.woken[len(woken_before):] == [session_id, session_id]


async def test_a_held_message_survives_a_restart_and_is_not_doubled(
    quick: CoreContext, hooks: Hooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = quick
    a = await agent(ctx)
    await chat_with(ctx, [a], engage_mode="pattern", engage_pattern=".")
    await member(ctx, "alice", a)
    refuse(monkeypatch, lambda: OSError("disk busy"), times=1)
    result = await Router(ctx, hooks).route(inbound("kept", message_id="m-kept"))  # that host never retried
    assert result.held
    again = Router(ctx, hooks)  # the next run
    async with ctx.events.subscribe() as queue:
        await again.start()
        try:
            await until(queue, "message.unheld")
            await again.route(inbound("kept", message_id="m-kept"))  # the platform redelivers it too
        finally:
            await again.stop()
    assert texts(await rows_of(ctx, result.agents[0].session_id or "")) == ["kept"]


async def test_a_message_the_session_refuses_for_good_is_recorded_as_a_drop_with_its_reason(
    quick: CoreContext, hooks: Hooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = quick
    a = await agent(ctx)
    await chat_with(ctx, [a], engage_mode="pattern", engage_pattern=".")
    await member(ctx, "alice", a)
    refuse(monkeypatch, lambda: sqlite3.IntegrityError("CHECK constraint failed: kind"), times=1)
    result = await Router(ctx, hooks).route(inbound("odd"))
    assert [(o.outcome, o.reason) for o in result.agents] == [("dropped", "route_error")]
    assert await drop_reasons(ctx) == {("route_error", a): 1}
    assert await held_db.counts(ctx.db) == {}


async def test_an_unknown_error_is_retried_a_few_times_then_dropped_and_the_owner_told(
    quick: CoreContext, hooks: Hooks, channel: FakeChannel, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = quick
    monkeypatch.setattr(held_module, "MAX_UNKNOWN_TRIES", 3)
    a = await agent(ctx)
    dm = await chat_with(ctx, [a], engage_mode="pattern", engage_pattern=".")
    alice = await member(ctx, "alice", a)
    await users.grant(ctx.db, alice, "owner")
    await users.cache_dm(ctx.db, alice, "test", dm.id)
    asked = refuse(monkeypatch, lambda: RuntimeError("session set aside"), times=100)
    router = Router(ctx, hooks)
    async with ctx.events.subscribe() as queue:
        assert (await router.route(inbound("lost cause"))).held
        await router.start()
        try:
            [gone] = [e for e in await until(queue, "message.unheld") if e.kind == "message.unheld"]
        finally:
            await router.stop()
    assert gone.data["outcome"] == "dropped"
    assert len(asked) == 1 + 3
    assert await drop_reasons(ctx) == {("route_error", a): 1}
    [notice] = channel.texts()
    assert "“lost cause”" in notice
    assert "please send it again" in notice
