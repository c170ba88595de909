"""Routing: shared, per-thread and agent-shared sessions, and threads on threaded adapters."""


from __future__ import annotations

import logging

import pytest

from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.router import Router
from nanoclaw_app.db import sessions as sessions_db
from tests.fakes.channel import FakeChannel
from tests.unit.routing.helpers import agent, chat_with, inbound, member, rows_of, sessions_of

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
    assert "had no files" in caplog.text
