"""Routing: odd input never lost, events and last_active, and the drop audit."""


from __future__ import annotations

import asyncio
import dataclasses
import json
import logging

import pytest

from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.events import Event
from nanoclaw_app.core.messages import InboundMessage
from nanoclaw_app.core.router import Router
from nanoclaw_app.db import drops, messaging, users
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.rows import MessagingGroup, Wiring
from tests.fakes.channel import FakeChannel
from tests.fakes.waker import RecordingWaker
from tests.unit.routing.helpers import Hooks, agent, chat_with, drop_reasons, inbound, member, rows_of, sessions_of

# ---------------------------------------------------------------------------------------------- robustness


async def test_unknown_channel_is_logged_and_recorded(
    ctx: CoreContext, router: Router, caplog: pytest.LogCaptureFixture
) -> None:
    msg = InboundMessage(channel_type="carrier-pigeon", platform_id="coop", message_id="x", sender_id="bird",
                         text="coo")
    with caplog.at_level(logging.ERROR):
        result = await router.route(msg)
    assert result.drop_reason == "unknown_channel"
    assert "carrier-pigeon" in caplog.text
    [d] = await drops.list_recent(ctx.db)
    assert (d.reason, d.channel_type, d.platform_id) == ("unknown_channel", "carrier-pigeon", "coop")


async def test_message_without_sender_is_logged_and_recorded(
    ctx: CoreContext, router: Router, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        result = await router.route(inbound(sender=""))
    assert result.drop_reason == "malformed_message"
    assert "no sender id" in caplog.text
    assert ("malformed_message", None) in await drop_reasons(ctx)


async def test_odd_input_is_coerced_rather_than_lost(ctx: CoreContext, router: Router) -> None:
    a = await agent(ctx)
    await chat_with(ctx, [a], engage_mode="pattern", engage_pattern=".")
    await member(ctx, "alice", a)
    odd = InboundMessage(channel_type="test", platform_id="chat-1", message_id="", sender_id="alice",
                         text=None, timestamp="yesterday-ish")  # type: ignore[arg-type]
    result = await router.route(odd)
    [outcome] = result.delivered
    [row] = await rows_of(ctx, outcome.session_id or "")
    assert json.loads(row["content"])["text"] == ""
    assert row["id"].startswith("msg-")
    assert row["timestamp"].endswith("Z")


async def test_failed_wake_keeps_the_message_pending(
    ctx: CoreContext, router: Router, waker: RecordingWaker, caplog: pytest.LogCaptureFixture
) -> None:
    a = await agent(ctx)
    await chat_with(ctx, [a], engage_mode="pattern", engage_pattern=".")
    await member(ctx, "alice", a)
    waker.fail = True
    with caplog.at_level(logging.WARNING):
        result = await router.route(inbound())
    [row] = await rows_of(ctx, result.delivered[0].session_id or "")
    assert row["status"] == "pending"
    assert "pending for the sweep" in caplog.text


async def test_typing_failure_does_not_stop_delivery(
    ctx: CoreContext, router: Router, channel: FakeChannel, caplog: pytest.LogCaptureFixture
) -> None:
    a = await agent(ctx)
    await chat_with(ctx, [a], engage_mode="pattern", engage_pattern=".")
    await member(ctx, "alice", a)

    async def broken_typing(platform_id: str, thread_id: str | None) -> None:
        raise ConnectionError("platform hiccup")

    channel.set_typing = broken_typing  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING):
        result = await router.route(inbound())
    assert result.delivered
    assert "platform hiccup" in caplog.text


async def test_failure_inside_routing_is_logged_and_recorded_not_raised(
    ctx: CoreContext, hooks: Hooks, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken_find(*args: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(messaging, "find", broken_find)
    with caplog.at_level(logging.ERROR):
        result = await Router(ctx, hooks).route(inbound())
    assert result.drop_reason == "route_error"
    assert "disk on fire" in caplog.text
    [d] = await drops.list_recent(ctx.db)
    assert d.reason == "route_error"
    assert d.detail is not None
    assert "disk on fire" in d.detail


async def test_concurrent_messages_in_one_chat_keep_arrival_order(ctx: CoreContext, router: Router) -> None:
    a = await agent(ctx)
    await chat_with(ctx, [a], engage_mode="pattern", engage_pattern=".")
    await member(ctx, "alice", a)
    results = await asyncio.gather(*(router.route(inbound(f"n{i}")) for i in range(12)))
    session_id = results[0].delivered[0].session_id or ""
    rows = await rows_of(ctx, session_id)
    assert [json.loads(r["content"])["text"] for r in rows] == [f"n{i}" for i in range(12)]


async def test_replay_from_inside_routing_does_not_deadlock(ctx: CoreContext, router: Router) -> None:
    a = await agent(ctx)
    chat = await chat_with(ctx, [a], policy="request_approval", engage_mode="pattern", engage_pattern=".")

    class ApproveAtOnce(Hooks):
        async def request_sender_approval(
            self, msg: InboundMessage, chat: MessagingGroup, wiring: Wiring, user_id: str
        ) -> None:
            await users.add_member(ctx.db, user_id, wiring.agent_group_id)
            await router.route(msg)  # replay while the chat is being routed

    router._hooks = ApproveAtOnce()
    async with asyncio.timeout(5):
        await router.route(inbound("knock knock", sender="newbie"))
    [session] = await sessions_of(ctx, a)
    assert session.messaging_group_id == chat.id
    assert len(await rows_of(ctx, session.id)) == 1


# ---------------------------------------------------------------------------------------------- events, last_active


async def test_routed_and_dropped_events_are_published(ctx: CoreContext, router: Router) -> None:
    a = await agent(ctx)
    await chat_with(ctx, [a], policy="strict", engage_mode="pattern", engage_pattern=".")
    await member(ctx, "alice", a)
    async with ctx.events.subscribe() as queue:
        await router.route(inbound(sender="alice"))
        await router.route(inbound(sender="mallory"))
        events: list[Event] = []
        while not queue.empty():
            events.append(queue.get_nowait())
    routed = [e for e in events if e.kind == "message.routed"]
    dropped = [e for e in events if e.kind == "message.dropped"]
    assert len(routed) == 1
    assert routed[0].data["agent_group_id"] == a
    assert routed[0].data["seq"] == 2
    assert [e.data["reason"] for e in dropped] == ["unknown_sender_strict"]


async def test_last_active_is_refreshed_when_stale_but_not_on_every_message(ctx: CoreContext, router: Router) -> None:
    a = await agent(ctx)
    await chat_with(ctx, [a], engage_mode="pattern", engage_pattern=".")
    await member(ctx, "alice", a)
    first = await router.route(inbound())
    session_id = first.delivered[0].session_id or ""
    await ctx.db.execute("UPDATE sessions SET last_active = '2020-01-01T00:00:00.000Z' WHERE id = ?", (session_id,))
    await router.route(inbound())
    refreshed = await sessions_db.get(ctx.db, session_id)
    assert refreshed is not None
    assert refreshed.last_active is not None
    assert refreshed.last_active > "2024"
    writes_before = ctx.db.writer.total_changes
    await router.route(inbound())
    assert ctx.db.writer.total_changes == writes_before  # recent enough: no central write for this message


# ---------------------------------------------------------------------------------------------- drop audit


async def test_drops_aggregate_per_chat_sender_reason_and_agent(ctx: CoreContext) -> None:
    for text in ("first", "second " + "x" * 300):
        await drops.record(ctx.db, channel_type="test", platform_id="grp", reason="no_agent_engaged",
                           user_id="test:alice", sender_name="Alice", text=text)
    await drops.record(ctx.db, channel_type="test", platform_id="grp", reason="no_agent_engaged",
                       user_id="test:bob", text="hi")
    await drops.record(ctx.db, channel_type="test", platform_id="grp", reason="unknown_sender_strict",
                       user_id="test:alice", agent_group_id=None, text="again")
    recent = await drops.list_recent(ctx.db)
    assert len(recent) == 3
    alice = next(d for d in recent if d.user_id == "test:alice" and d.reason == "no_agent_engaged")
    assert alice.message_count == 2
    assert alice.sender_name == "Alice"
    assert alice.last_text == ("second " + "x" * 300)[:200]
    assert alice.first_seen <= alice.last_seen


async def test_recent_drops_come_newest_first_and_respect_the_limit(ctx: CoreContext) -> None:
    for reason in ("a", "b", "c"):
        await drops.record(ctx.db, channel_type="test", platform_id="grp", reason=reason)
    assert [d.reason for d in await drops.list_recent(ctx.db, limit=2)] == ["c", "b"]


async def test_a_new_display_name_is_stored_even_for_a_known_sender(ctx: CoreContext, router: Router) -> None:
    a = await agent(ctx)
    await chat_with(ctx, [a], policy="public", engage_mode="pattern", engage_pattern=".")
    await router.route(inbound("hi", sender="carol"))
    await router.route(dataclasses.replace(inbound("hi again", sender="carol"), sender_name="Caroline"))
    user = await users.get(ctx.db, "test:carol")
    assert user is not None
    assert user.display_name == "Caroline"


async def test_same_platform_id_from_two_chats_in_an_agent_shared_session_keeps_both(
    ctx: CoreContext, router: Router
) -> None:
    a = await agent(ctx)
    for chat in ("c1", "c2"):
        await chat_with(ctx, [a], platform_id=chat, engage_mode="pattern", engage_pattern=".",
                        session_mode="agent-shared")
    await member(ctx, "alice", a)
    # Telegram numbers messages per chat, so "17" can arrive from both chats.
    r1 = await router.route(inbound("from c1", chat="c1", message_id="17"))
    r2 = await router.route(inbound("from c2", chat="c2", message_id="17"))
    again = await router.route(inbound("from c2", chat="c2", message_id="17"))
    assert r1.delivered[0].session_id == r2.delivered[0].session_id
    assert [r1.delivered[0].seq, r2.delivered[0].seq, again.delivered[0].seq] == [2, 4, 4]
    rows = await rows_of(ctx, r1.delivered[0].session_id or "")
    assert [json.loads(r["content"])["text"] for r in rows] == ["from c1", "from c2"]
