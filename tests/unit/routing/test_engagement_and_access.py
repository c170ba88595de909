"""Routing: accumulate vs drop, mention-sticky, engage patterns and the access gate."""


from __future__ import annotations

import logging

import pytest

from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.router import Router
from nanoclaw_app.db import denials, drops, messaging, users
from nanoclaw_app.db.messaging import WiringSpec
from nanoclaw_app.timeutil import later_iso
from tests.fakes.channel import FakeChannel
from tests.fakes.waker import RecordingWaker
from tests.unit.routing.helpers import Hooks, agent, chat_with, drop_reasons, inbound, member, rows_of, sessions_of

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


async def test_a_sender_the_owner_denied_is_dropped_as_denied_not_as_waiting(
    ctx: CoreContext, router: Router, hooks: Hooks
) -> None:
    a = await agent(ctx)
    chat = await chat_with(ctx, [a], policy="request_approval", engage_mode="pattern", engage_pattern=".")
    await router.route(inbound("hello?", sender="mallory"))
    await users.upsert(ctx.db, "test:sam", "test", "Sam")
    await denials.remember(ctx.db, chat.id, "test:mallory", agent_group_id=a, denied_by="test:owner",
                           expires_at=later_iso(3600))

    result = await router.route(inbound("let me in!", sender="mallory"))
    waiting = await router.route(inbound("hi", sender="sam"))

    assert result.dropped[0].reason == "unknown_sender_denied"
    assert waiting.dropped[0].reason == "unknown_sender_request_approval"
    assert [r[2] for r in hooks.sender_requests] == ["test:mallory", "test:sam"]  # no new card for the denied one
    audit = {(d.user_id, d.reason): d.message_count for d in await drops.list_recent(ctx.db)}
    assert audit == {("test:mallory", "unknown_sender_request_approval"): 1,
                     ("test:mallory", "unknown_sender_denied"): 1, ("test:sam", "unknown_sender_request_approval"): 1}


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
