"""Inbound routing (original host-core.test): auto-create, fan-out, accumulate vs drop, session scopes, gates, drops."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import sqlite3
from dataclasses import dataclass, field
from typing import Any

import pytest

from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.events import Event
from nanoclaw_app.core.messages import InboundMessage, Quoted
from nanoclaw_app.core.router import Router
from nanoclaw_app.db import agents, drops, messaging, users
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.messaging import WiringSpec
from nanoclaw_app.db.rows import MessagingGroup, Session, Wiring
from tests.fakes.channel import FakeChannel
from tests.fakes.waker import RecordingWaker


@dataclass
class Hooks:
    """Records what the router asks of the approval flows."""

    consume: bool = False
    intercepted: list[str] = field(default_factory=list)
    sender_requests: list[tuple[str, str, str]] = field(default_factory=list)
    channel_requests: list[str] = field(default_factory=list)

    async def intercept(self, msg: InboundMessage) -> bool:
        self.intercepted.append(msg.message_id)
        return self.consume

    async def request_sender_approval(
        self, msg: InboundMessage, chat: MessagingGroup, wiring: Wiring, user_id: str
    ) -> None:
        self.sender_requests.append((chat.id, wiring.agent_group_id, user_id))

    async def request_channel_registration(self, msg: InboundMessage, chat: MessagingGroup) -> None:
        self.channel_requests.append(chat.id)


_counter = iter(range(1, 1_000_000))


def inbound(
    text: str = "hello",
    *,
    chat: str = "chat-1",
    sender: str = "alice",
    group: bool = False,
    mention: bool = False,
    thread: str | None = None,
    message_id: str | None = None,
    **extra: Any,
) -> InboundMessage:
    return InboundMessage(
        channel_type="test", platform_id=chat, message_id=message_id or f"m{next(_counter)}", sender_id=sender,
        text=text, sender_name=sender.title(), thread_id=thread, is_group=group, is_mention=mention, **extra,
    )


@pytest.fixture
def hooks() -> Hooks:
    return Hooks()


@pytest.fixture
def router(ctx: CoreContext, hooks: Hooks) -> Router:
    return Router(ctx, hooks)


async def agent(ctx: CoreContext, name: str = "Alpha") -> str:
    return (await agents.create(ctx.db, name)).id


async def chat_with(
    ctx: CoreContext, agent_ids: list[str], *, platform_id: str = "chat-1", group: bool = False,
    policy: str = "strict", **spec: Any,
) -> MessagingGroup:
    mg = await messaging.create(ctx.db, "test", platform_id, name=platform_id, is_group=group,
                                unknown_sender_policy=policy)
    for agent_id in agent_ids:
        await messaging.wire(ctx.db, mg.id, agent_id, WiringSpec(**spec))
    return mg


async def member(ctx: CoreContext, handle: str, *agent_ids: str) -> str:
    uid = f"test:{handle}"
    await users.upsert(ctx.db, uid, "test", handle.title())
    for agent_id in agent_ids:
        await users.add_member(ctx.db, uid, agent_id)
    return uid


async def rows_of(ctx: CoreContext, session_id: str) -> list[sqlite3.Row]:
    session = await sessions_db.get(ctx.db, session_id)
    assert session is not None
    folder = ctx.store.dir(session.agent_group_id, session.id)
    return await ctx.store.read(folder, lambda c: c.execute("SELECT * FROM messages_in ORDER BY seq").fetchall(),
                                with_outbound=False)


async def drop_reasons(ctx: CoreContext) -> dict[tuple[str, str | None], int]:
    return {(d.reason, d.agent_group_id): d.message_count for d in await drops.list_recent(ctx.db)}


async def sessions_of(ctx: CoreContext, agent_id: str) -> list[Session]:
    return await sessions_db.list_for_agent(ctx.db, agent_id)


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


# ---------------------------------------------------------------------------------------------- accumulate vs drop


async def test_accumulate_stores_context_without_waking_while_drop_discards(
    ctx: CoreContext, router: Router, waker: RecordingWaker
) -> None:
    keeper, dropper = await agent(ctx, "Keeper"), await agent(ctx, "Dropper")
    chat = await messaging.create(ctx.db, "test", "grp", is_group=True)
    await messaging.wire(ctx.db, chat.id, keeper, WiringSpec("mention", ignored_message_policy="accumulate"))
    await messaging.wire(ctx.db, chat.id, dropper, WiringSpec("mention", ignored_message_policy="drop"))
    await member(ctx, "alice", keeper, dropper)

    result = await router.route(inbound("side remark", chat="grp", group=True))
    kept = result.for_agent(keeper)
    assert kept is not None
    assert kept.outcome == "accumulated"
    assert result.for_agent(dropper) == result.dropped[0]
    assert result.dropped[0].reason == "not_engaged"
    [row] = await rows_of(ctx, kept.session_id or "")
    assert row["trigger"] == 0
    assert waker.woken == []
    assert await sessions_of(ctx, dropper) == []
    assert await drops.list_recent(ctx.db) == []


async def test_a_refused_sender_is_never_accumulated(ctx: CoreContext, router: Router, hooks: Hooks) -> None:
    a = await agent(ctx)
    await chat_with(ctx, [a], platform_id="grp", group=True, policy="request_approval", engage_mode="mention",
                    ignored_message_policy="accumulate")
    result = await router.route(inbound("sneaky context", chat="grp", group=True, sender="mallory"))
    assert result.dropped[0].reason == "unknown_sender_request_approval"
    assert result.drop_reason == "no_agent_engaged"
    assert await sessions_of(ctx, a) == []
    # Not addressed: no approval card for a stranger who did not speak to the agent.
    assert hooks.sender_requests == []
    assert set(await drop_reasons(ctx)) == {("unknown_sender_request_approval", a)}


async def test_no_agent_engaged_is_recorded_when_nobody_engages(ctx: CoreContext, router: Router) -> None:
    a = await agent(ctx)
    await chat_with(ctx, [a], platform_id="grp", group=True, engage_mode="mention")
    await member(ctx, "alice", a)
    result = await router.route(inbound("not for the bot", chat="grp", group=True))
    assert result.drop_reason == "no_agent_engaged"
    [d] = await drops.list_recent(ctx.db)
    assert (d.reason, d.user_id, d.last_text) == ("no_agent_engaged", "test:alice", "not for the bot")


# ---------------------------------------------------------------------------------------------- session scopes


async def test_shared_session_ignores_threads(ctx: CoreContext, router: Router) -> None:
    a = await agent(ctx)
    await chat_with(ctx, [a], engage_mode="pattern", engage_pattern=".", session_mode="shared")
    await member(ctx, "alice", a)
    r1 = await router.route(inbound("one"))
    r2 = await router.route(inbound("two"))
    assert r1.delivered[0].session_id == r2.delivered[0].session_id
    [session] = await sessions_of(ctx, a)
    assert (session.session_mode, session.thread_id) == ("shared", None)


async def test_group_on_threaded_adapter_gets_one_session_per_thread(
    ctx: CoreContext, router: Router, channel: FakeChannel
) -> None:
    channel.supports_threads = True
    a = await agent(ctx)
    await chat_with(ctx, [a], platform_id="grp", group=True, engage_mode="mention", session_mode="shared")
    await member(ctx, "alice", a)
    r1 = await router.route(inbound("@a", chat="grp", group=True, mention=True, thread="t-1"))
    r2 = await router.route(inbound("@a", chat="grp", group=True, mention=True, thread="t-2"))
    r3 = await router.route(inbound("@a", chat="grp", group=True, mention=True, thread="t-1"))
    assert r1.delivered[0].session_id != r2.delivered[0].session_id
    assert r1.delivered[0].session_id == r3.delivered[0].session_id
    modes = {(s.session_mode, s.thread_id) for s in await sessions_of(ctx, a)}
    assert modes == {("per-thread", "t-1"), ("per-thread", "t-2")}


async def test_dms_never_split_by_thread(ctx: CoreContext, router: Router, channel: FakeChannel) -> None:
    channel.supports_threads = True
    a = await agent(ctx)
    await chat_with(ctx, [a], engage_mode="pattern", engage_pattern=".", session_mode="per-thread")
    await member(ctx, "alice", a)
    r1 = await router.route(inbound("one", thread="t-1"))
    r2 = await router.route(inbound("two", thread="t-2"))
    assert r1.delivered[0].session_id == r2.delivered[0].session_id


async def test_agent_shared_session_spans_chats(ctx: CoreContext, router: Router, channel: FakeChannel) -> None:
    channel.supports_threads = True
    a = await agent(ctx)
    await chat_with(ctx, [a], platform_id="c1", engage_mode="pattern", engage_pattern=".", session_mode="agent-shared")
    await chat_with(ctx, [a], platform_id="c2", group=True, engage_mode="pattern", engage_pattern=".",
                    session_mode="agent-shared")
    await member(ctx, "alice", a)
    r1 = await router.route(inbound("from dm", chat="c1"))
    r2 = await router.route(inbound("from group", chat="c2", group=True, thread="t-1"))
    assert r1.delivered[0].session_id == r2.delivered[0].session_id
    [session] = await sessions_of(ctx, a)
    assert session.messaging_group_id is None
    rows = await rows_of(ctx, session.id)
    # Each row keeps its own reply address, so answers go back where each message came from.
    assert [(r["platform_id"], r["thread_id"]) for r in rows] == [("c1", None), ("c2", "t-1")]


async def test_fan_out_never_lands_in_a_sibling_agents_session(ctx: CoreContext, router: Router) -> None:
    a, b = await agent(ctx, "Alpha"), await agent(ctx, "Beta")
    await chat_with(ctx, [a, b], engage_mode="pattern", engage_pattern=".", session_mode="agent-shared")
    await member(ctx, "alice", a, b)
    result = await router.route(inbound())
    sessions = {o.agent_group_id: o.session_id for o in result.delivered}
    assert len(set(sessions.values())) == 2
    for agent_id, session_id in sessions.items():
        session = await sessions_db.get(ctx.db, session_id or "")
        assert session is not None
        assert session.agent_group_id == agent_id


async def test_new_session_gets_its_folder_and_both_databases(ctx: CoreContext, router: Router) -> None:
    a = await agent(ctx)
    await chat_with(ctx, [a], engage_mode="pattern", engage_pattern=".")
    await member(ctx, "alice", a)
    result = await router.route(inbound())
    folder = ctx.store.dir(a, result.delivered[0].session_id or "")
    assert {p.name for p in folder.iterdir()} >= {"inbound.db", "outbound.db", "inbox", "outbox"}


async def test_missing_session_folder_is_recreated_and_the_message_kept(
    ctx: CoreContext, router: Router, caplog: pytest.LogCaptureFixture
) -> None:
    a = await agent(ctx)
    chat = await chat_with(ctx, [a], engage_mode="pattern", engage_pattern=".")
    await member(ctx, "alice", a)
    session, _ = await sessions_db.find_or_create(ctx.db, a, "shared", chat.id, None)  # row without a folder
    with caplog.at_level(logging.WARNING):
        result = await router.route(inbound())
    assert result.delivered[0].session_id == session.id
    assert len(await rows_of(ctx, session.id)) == 1
    assert "had no folder" in caplog.text


# ---------------------------------------------------------------------------------------------- mention-sticky


async def test_mention_sticky_follow_ups_reach_the_agent_without_a_mention(
    ctx: CoreContext, router: Router
) -> None:
    a = await agent(ctx)
    await chat_with(ctx, [a], platform_id="grp", group=True, engage_mode="mention-sticky")
    await member(ctx, "alice", a)
    before = await router.route(inbound("anyone?", chat="grp", group=True))
    assert before.drop_reason == "no_agent_engaged"
    first = await router.route(inbound("@bot help", chat="grp", group=True, mention=True))
    follow = await router.route(inbound("and also this", chat="grp", group=True))
    assert first.delivered
    assert follow.delivered
    assert first.delivered[0].session_id == follow.delivered[0].session_id


async def test_mention_sticky_sticks_per_thread_on_threaded_adapters(
    ctx: CoreContext, router: Router, channel: FakeChannel
) -> None:
    channel.supports_threads = True
    a = await agent(ctx)
    await chat_with(ctx, [a], platform_id="grp", group=True, engage_mode="mention-sticky")
    await member(ctx, "alice", a)
    await router.route(inbound("@bot", chat="grp", group=True, mention=True, thread="t-1"))
    same_thread = await router.route(inbound("more", chat="grp", group=True, thread="t-1"))
    other_thread = await router.route(inbound("unrelated", chat="grp", group=True, thread="t-2"))
    assert same_thread.delivered
    assert other_thread.drop_reason == "no_agent_engaged"
    # the mention made the bot follow that thread, once, so the platform sends follow-ups without a mention
    assert channel.subscriptions == [("grp", "t-1")]


async def test_mention_mode_treats_a_dm_as_a_mention(ctx: CoreContext, router: Router) -> None:
    a = await agent(ctx)
    await chat_with(ctx, [a], engage_mode="mention")
    await member(ctx, "alice", a)
    assert (await router.route(inbound("no @ needed in a DM"))).delivered


# ---------------------------------------------------------------------------------------------- engage patterns


async def test_pattern_wiring_engages_only_on_a_match(ctx: CoreContext, router: Router) -> None:
    a = await agent(ctx)
    await chat_with(ctx, [a], platform_id="grp", group=True, engage_mode="pattern", engage_pattern=r"(?i)\bclaw\b")
    await member(ctx, "alice", a)
    assert (await router.route(inbound("hey Claw, hi", chat="grp", group=True))).delivered
    assert not (await router.route(inbound("clawing", chat="grp", group=True))).delivered


async def test_dot_pattern_engages_even_an_attachment_only_message(ctx: CoreContext, router: Router) -> None:
    a = await agent(ctx)
    await chat_with(ctx, [a], engage_mode="pattern", engage_pattern=".")
    await member(ctx, "alice", a)
    assert (await router.route(inbound(""))).delivered


async def test_invalid_stored_pattern_fails_closed_and_is_reported(
    ctx: CoreContext, router: Router, caplog: pytest.LogCaptureFixture
) -> None:
    a = await agent(ctx)
    chat = await chat_with(ctx, [a], engage_mode="pattern", engage_pattern="ok")
    await member(ctx, "alice", a)
    await ctx.db.execute("UPDATE messaging_group_agents SET engage_pattern = '([unclosed' WHERE messaging_group_id = ?",
                         (chat.id,))
    with caplog.at_level(logging.ERROR):
        result = await router.route(inbound("([unclosed"))
    assert result.dropped[0].reason == "invalid_engage_pattern"
    assert await sessions_of(ctx, a) == []
    assert "not a valid regex" in caplog.text
    assert set(await drop_reasons(ctx)) == {("invalid_engage_pattern", a)}


# ---------------------------------------------------------------------------------------------- access gate


async def test_strict_chat_drops_unknown_sender_without_a_card(ctx: CoreContext, router: Router, hooks: Hooks) -> None:
    a = await agent(ctx)
    await chat_with(ctx, [a], policy="strict", engage_mode="pattern", engage_pattern=".")
    result = await router.route(inbound("let me in", sender="mallory"))
    assert result.dropped[0].reason == "unknown_sender_strict"
    assert hooks.sender_requests == []
    assert await sessions_of(ctx, a) == []


async def test_request_approval_asks_once_even_with_several_agents(
    ctx: CoreContext, router: Router, hooks: Hooks
) -> None:
    a, b = await agent(ctx, "Alpha"), await agent(ctx, "Beta")
    chat = await chat_with(ctx, [a, b], policy="request_approval", engage_mode="pattern", engage_pattern=".")
    result = await router.route(inbound("hello?", sender="newbie"))
    assert [o.reason for o in result.dropped] == ["unknown_sender_request_approval"] * 2
    assert len(hooks.sender_requests) == 1
    assert hooks.sender_requests[0][0] == chat.id
    assert hooks.sender_requests[0][2] == "test:newbie"
    assert await drop_reasons(ctx) == {
        ("unknown_sender_request_approval", a): 1, ("unknown_sender_request_approval", b): 1,
    }


async def test_admin_without_membership_passes_the_gate(ctx: CoreContext, router: Router) -> None:
    a = await agent(ctx)
    await chat_with(ctx, [a], policy="strict", engage_mode="pattern", engage_pattern=".")
    await users.upsert(ctx.db, "test:boss", "test", "Boss")
    await users.grant(ctx.db, "test:boss", "admin", a)
    assert (await router.route(inbound(sender="boss"))).delivered


async def test_public_chat_lets_anyone_in(ctx: CoreContext, router: Router) -> None:
    a = await agent(ctx)
    await chat_with(ctx, [a], policy="public", engage_mode="pattern", engage_pattern=".")
    assert (await router.route(inbound(sender="stranger"))).delivered


async def test_known_sender_scope_applies_even_in_public_chats(ctx: CoreContext, router: Router, hooks: Hooks) -> None:
    a = await agent(ctx)
    await chat_with(ctx, [a], policy="public", engage_mode="pattern", engage_pattern=".", sender_scope="known")
    await member(ctx, "alice", a)
    refused = await router.route(inbound(sender="stranger"))
    assert refused.dropped[0].reason == "sender_scope_known"
    assert hooks.sender_requests == []
    assert (await router.route(inbound(sender="alice"))).delivered


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
