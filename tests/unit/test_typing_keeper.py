"""Typing stays on for the whole of a long turn (platforms expire it after seconds) and stops with the reply."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from agent_runner.protocol import ChatContent, MessageKind
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.typing_keeper import TypingKeeper
from nanoclaw_app.db import agents
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.rows import Session
from nanoclaw_app.ids import new_id
from nanoclaw_app.sessions.store import NewInbound
from nanoclaw_app.timeutil import now_iso
from tests.fakes.channel import FakeChannel

TIMEOUT = 10.0
TICK = 0.02
"""The keeper's refresh interval here: a few ticks show whether it still sends."""


@pytest.fixture
async def turn(ctx: CoreContext) -> tuple[Session, Path, str]:
    """A session with one message waiting for the agent (its turn is on)."""
    agent = await agents.create(ctx.db, "Helper")
    session, _ = await sessions_db.find_or_create(ctx.db, agent.id, "agent-shared", None, None)
    folder = await ctx.store.create(agent.id, session.id)
    row = NewInbound(id=new_id("msg"), kind=MessageKind.CHAT, timestamp=now_iso(), platform_id="chat-1",
                     channel_type="test", content=ChatContent(text="hi", sender_id="test:alice").to_json())
    await ctx.store.write_inbound(folder, row)
    return session, folder, row.id


@pytest.fixture
async def keeper(ctx: CoreContext) -> AsyncIterator[TypingKeeper]:
    kept = TypingKeeper(ctx, interval=TICK)
    ctx.typing = kept
    try:
        yield kept
    finally:
        await kept.stop()


async def until(predicate: Callable[[], Any], what: str) -> None:
    async with asyncio.timeout(TIMEOUT):
        while not predicate():
            await asyncio.sleep(TICK)
    assert predicate(), what


async def test_typing_is_sent_again_during_a_long_turn_and_stops_with_the_reply(
    turn, keeper: TypingKeeper, channel: FakeChannel
) -> None:
    session, _, _ = turn
    keeper.begin(session, "test", "chat-1", None)
    await until(lambda: len(channel.typing) >= 3, "typing refreshed while the agent works")
    await keeper.replied("test", "chat-1", None)
    sent = len(channel.typing)
    await asyncio.sleep(TICK * 5)
    assert len(channel.typing) == sent
    assert keeper.active() == []


async def test_typing_stops_when_the_turn_ends_without_a_reply(turn, keeper: TypingKeeper,
                                                                channel: FakeChannel) -> None:
    session, folder, message_id = turn
    keeper.begin(session, "test", "chat-1", None)
    await until(lambda: channel.typing, "typing refreshed")
    await ack_completed(folder, message_id)
    await until(lambda: not keeper.active(), "the keeper to notice the turn ended")
    sent = len(channel.typing)
    await asyncio.sleep(TICK * 5)
    assert len(channel.typing) == sent


async def ack_completed(folder: Path, message_id: str) -> None:
    """What the runner writes when it finishes a turn without answering (a task whose script said no)."""
    conn = sqlite3.connect(folder / "outbound.db")
    try:
        conn.execute("INSERT INTO processing_ack (message_id, status, status_changed) VALUES (?, 'completed', ?)",
                     (message_id, now_iso()))
        conn.commit()
    finally:
        conn.close()
