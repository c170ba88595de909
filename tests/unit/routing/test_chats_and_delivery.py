"""Routing: chats auto-created only when addressed, delivery into sessions and fan-out to agents."""


from __future__ import annotations

import json

from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.messages import Quoted
from nanoclaw_app.core.router import Router
from nanoclaw_app.db import drops, messaging, users
from nanoclaw_app.db.messaging import WiringSpec
from tests.fakes.channel import FakeChannel
from tests.fakes.waker import RecordingWaker
from tests.unit.routing.helpers import Hooks, agent, chat_with, drop_reasons, inbound, member, rows_of, sessions_of

# ---------------------------------------------------------------------------------------------- chats


async def test_unknown_group_chat_not_addressed_is_recorded_and_not_created(
    ctx: CoreContext, router: Router, hooks: Hooks
) -> None:
    result = await router.route(inbound("just chatting", chat="grp-9", group=True))
    assert result.drop_reason == "unknown_chat_not_addressed"
    assert await messaging.find(ctx.db, "test", "grp-9") is None
    assert (await drop_reasons(ctx)) == {("unknown_chat_not_addressed", None): 1}
    assert hooks.channel_requests == []


async def test_unknown_chat_mention_creates_it_and_asks_for_registration(
    ctx: CoreContext, router: Router, hooks: Hooks
) -> None:
    msg = inbound("@bot hi", chat="grp-9", group=True, mention=True, chat_name="Family")
    result = await router.route(msg)
    chat = await messaging.find(ctx.db, "test", "grp-9")
    assert chat is not None
    assert chat.name == "Family"
    assert chat.is_group == 1
    assert chat.unknown_sender_policy == "request_approval"
    assert result.drop_reason == "no_agent_wired"
    assert hooks.channel_requests == [chat.id]
    assert await users.get(ctx.db, "test:alice") is not None


async def test_unknown_dm_creates_the_chat_as_addressed(ctx: CoreContext, router: Router, hooks: Hooks) -> None:
    await router.route(inbound("hi", chat="dm-alice"))
    chat = await messaging.find(ctx.db, "test", "dm-alice")
    assert chat is not None
    assert chat.is_group == 0
    assert hooks.channel_requests == [chat.id]
    assert (await drop_reasons(ctx)) == {("no_agent_wired", None): 1}


async def test_unwired_chat_not_addressed_is_dropped_without_a_card(
    ctx: CoreContext, router: Router, hooks: Hooks
) -> None:
    await chat_with(ctx, [], platform_id="grp", group=True)
    result = await router.route(inbound("chatter", chat="grp", group=True))
    assert result.drop_reason == "not_addressed"
    assert hooks.channel_requests == []


async def test_denied_chat_stays_silent_even_when_mentioned(ctx: CoreContext, router: Router, hooks: Hooks) -> None:
    chat = await chat_with(ctx, [], platform_id="grp", group=True)
    await messaging.update(ctx.db, chat.id, denied_at="2024-01-01T00:00:00.000Z")
    result = await router.route(inbound("@bot", chat="grp", group=True, mention=True))
    assert result.drop_reason == "channel_denied"
    assert hooks.channel_requests == []
    assert ("channel_denied", None) in await drop_reasons(ctx)


async def test_intercepted_message_is_not_routed(ctx: CoreContext, router: Router, hooks: Hooks) -> None:
    a = await agent(ctx)
    await chat_with(ctx, [a], engage_mode="pattern", engage_pattern=".")
    await member(ctx, "alice", a)
    hooks.consume = True
    result = await router.route(inbound("My New Agent"))
    assert result.intercepted
    assert hooks.intercepted == [result.message_id]
    assert await sessions_of(ctx, a) == []
    assert await drops.list_recent(ctx.db) == []


# ---------------------------------------------------------------------------------------------- delivery


async def test_dm_from_member_is_written_with_reply_address_and_wakes(
    ctx: CoreContext, router: Router, waker: RecordingWaker, channel: FakeChannel
) -> None:
    a = await agent(ctx)
    chat = await chat_with(ctx, [a], engage_mode="pattern", engage_pattern=".")
    await member(ctx, "alice", a)
    msg = inbound("what's the weather?", message_id="p-1", reply_to=Quoted("earlier", "Bob", "p-0"))
    result = await router.route(msg)

    [outcome] = result.delivered
    rows = await rows_of(ctx, outcome.session_id or "")
    assert [r["seq"] for r in rows] == [2]
    row = rows[0]
    assert row["id"] == f"p-1:{a}"
    assert (row["kind"], row["trigger"], row["status"]) == ("chat", 1, "pending")
    assert (row["channel_type"], row["platform_id"], row["thread_id"]) == ("test", "chat-1", None)
    content = json.loads(row["content"])
    assert content["text"] == "what's the weather?"
    assert content["sender_id"] == "test:alice"
    assert content["sender_name"] == "Alice"
    assert content["platform_message_id"] == "p-1"
    assert content["reply_to"] == {"text": "earlier", "sender": "Bob", "message_id": "p-0"}
    assert content["is_group"] is False
    assert waker.woken == [outcome.session_id]
    assert channel.typing == [("chat-1", None)]
    assert result.messaging_group_id == chat.id


async def test_second_message_gets_the_next_even_seq_in_the_same_session(ctx: CoreContext, router: Router) -> None:
    a = await agent(ctx)
    await chat_with(ctx, [a], engage_mode="pattern", engage_pattern=".")
    await member(ctx, "alice", a)
    first = await router.route(inbound("one"))
    second = await router.route(inbound("two"))
    assert first.delivered[0].session_id == second.delivered[0].session_id
    assert [first.delivered[0].seq, second.delivered[0].seq] == [2, 4]


async def test_routing_the_same_platform_message_twice_stores_it_once(
    ctx: CoreContext, router: Router
) -> None:
    a = await agent(ctx)
    await chat_with(ctx, [a], engage_mode="pattern", engage_pattern=".")
    await member(ctx, "alice", a)
    first = await router.route(inbound("once", message_id="dup"))
    again = await router.route(inbound("once", message_id="dup"))
    assert first.delivered[0].seq == again.delivered[0].seq == 2
    assert len(await rows_of(ctx, first.delivered[0].session_id or "")) == 1


async def test_fan_out_gives_each_agent_its_own_session_and_row(
    ctx: CoreContext, router: Router, waker: RecordingWaker
) -> None:
    a, b = await agent(ctx, "Alpha"), await agent(ctx, "Beta")
    await chat_with(ctx, [a, b], engage_mode="pattern", engage_pattern=".")
    await member(ctx, "alice", a, b)
    result = await router.route(inbound("to everyone", message_id="fan"))
    assert {o.agent_group_id for o in result.delivered} == {a, b}
    sa, sb = result.for_agent(a), result.for_agent(b)
    assert sa is not None
    assert sb is not None
    assert sa.session_id != sb.session_id
    assert [r["id"] for r in await rows_of(ctx, sa.session_id or "")] == [f"fan:{a}"]
    assert [r["id"] for r in await rows_of(ctx, sb.session_id or "")] == [f"fan:{b}"]
    assert set(waker.woken) == {sa.session_id, sb.session_id}


async def test_wirings_are_evaluated_by_priority(ctx: CoreContext, router: Router) -> None:
    low, high = await agent(ctx, "Low"), await agent(ctx, "High")
    chat = await messaging.create(ctx.db, "test", "chat-1")
    await messaging.wire(ctx.db, chat.id, low, WiringSpec("pattern", ".", priority=1))
    await messaging.wire(ctx.db, chat.id, high, WiringSpec("pattern", ".", priority=9))
    await member(ctx, "alice", low, high)
    result = await router.route(inbound())
    assert [o.agent_group_id for o in result.agents] == [high, low]


async def test_routing_metadata_is_stamped_per_agent(ctx: CoreContext, router: Router, channel: FakeChannel) -> None:
    channel.supports_threads = True
    a, b = await agent(ctx, "Alpha"), await agent(ctx, "Beta")
    await chat_with(ctx, [a], platform_id="grp", group=True, engage_mode="mention")
    await chat_with(ctx, [b], platform_id="dm-bob", engage_mode="pattern", engage_pattern=".")
    await member(ctx, "alice", a)
    await member(ctx, "bob", b)
    ra = await router.route(inbound("@a", chat="grp", group=True, mention=True, thread="t-7"))
    rb = await router.route(inbound("hi", chat="dm-bob", sender="bob", thread="t-x"))
    [row_a] = await rows_of(ctx, ra.delivered[0].session_id or "")
    [row_b] = await rows_of(ctx, rb.delivered[0].session_id or "")
    assert (row_a["platform_id"], row_a["thread_id"]) == ("grp", "t-7")
    assert (row_b["platform_id"], row_b["thread_id"]) == ("dm-bob", "t-x")


async def test_threads_are_stripped_for_adapters_without_thread_support(ctx: CoreContext, router: Router) -> None:
    a = await agent(ctx)
    await chat_with(ctx, [a], platform_id="grp", group=True, engage_mode="mention", session_mode="per-thread")
    await member(ctx, "alice", a)
    r1 = await router.route(inbound("@a", chat="grp", group=True, mention=True, thread="t-1"))
    r2 = await router.route(inbound("@a", chat="grp", group=True, mention=True, thread="t-2"))
    assert r1.delivered[0].session_id == r2.delivered[0].session_id
    rows = await rows_of(ctx, r1.delivered[0].session_id or "")
    assert [r["thread_id"] for r in rows] == [None, None]


async def test_sender_is_upserted_with_display_name(ctx: CoreContext, router: Router) -> None:
    a = await agent(ctx)
    await chat_with(ctx, [a], policy="public", engage_mode="pattern", engage_pattern=".")
    await router.route(inbound("hi", sender="carol"))
    user = await users.get(ctx.db, "test:carol")
    assert user is not None
    assert user.display_name == "Carol"
