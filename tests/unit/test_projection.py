"""Projection: what a session's container sees of the central destinations and its reply address."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.projection import project, reproject_agent
from nanoclaw_app.db import agents, destinations, messaging
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.messaging import WiringSpec
from nanoclaw_app.db.rows import Session


async def projected(ctx: CoreContext, session: Session) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    folder = ctx.store.dir(session.agent_group_id, session.id)

    def run(conn: sqlite3.Connection) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        dests = [dict(r) for r in conn.execute("SELECT * FROM destinations ORDER BY name")]
        routing = conn.execute("SELECT channel_type, platform_id, thread_id FROM session_routing").fetchone()
        return dests, None if routing is None else dict(routing)

    result: tuple[list[dict[str, Any]], dict[str, Any] | None] = await ctx.store.read(folder, run,
                                                                                       with_outbound=False)
    return result


@pytest.fixture
async def setup(ctx):
    agent = await agents.create(ctx.db, "Helper")
    family = await messaging.create(ctx.db, "test", "chat-family", name="Family")
    await messaging.wire(ctx.db, family.id, agent.id, WiringSpec(session_mode="per-thread"))
    unnamed = await messaging.create(ctx.db, "test", "chat-unnamed")
    await destinations.add(ctx.db, agent.id, "boss", "channel", unnamed.id)
    peer = await agents.create(ctx.db, "Researcher")
    await destinations.add(ctx.db, agent.id, "research", "agent", peer.id)
    session, _ = await sessions_db.find_or_create(ctx.db, agent.id, "per-thread", family.id, "thread-7")
    await ctx.store.create(agent.id, session.id)
    return agent, peer, session


async def test_projection_lists_chats_and_agents_by_name_with_the_sessions_reply_address(ctx, setup):
    _, peer, session = setup
    await project(ctx, session)
    dests, routing = await projected(ctx, session)
    assert dests == [
        {"name": "boss", "display_name": "boss", "type": "channel", "channel_type": "test",
         "platform_id": "chat-unnamed", "agent_group_id": None},
        {"name": "family", "display_name": "Family", "type": "channel", "channel_type": "test",
         "platform_id": "chat-family", "agent_group_id": None},
        {"name": "research", "display_name": "Researcher", "type": "agent", "channel_type": None,
         "platform_id": None, "agent_group_id": peer.id},
    ]
    assert routing == {"channel_type": "test", "platform_id": "chat-family", "thread_id": "thread-7"}


async def test_an_agent_shared_session_has_no_reply_address(ctx, setup):
    agent, _, _ = setup
    shared, _ = await sessions_db.find_or_create(ctx.db, agent.id, "agent-shared", None, None)
    await ctx.store.create(agent.id, shared.id)
    await project(ctx, shared)
    dests, routing = await projected(ctx, shared)
    assert routing == {"channel_type": None, "platform_id": None, "thread_id": None}
    assert [d["name"] for d in dests] == ["boss", "family", "research"]


async def test_reprojecting_rewrites_every_active_session_wholesale(ctx, setup):
    agent, _, session = setup
    shared, _ = await sessions_db.find_or_create(ctx.db, agent.id, "agent-shared", None, None)
    await ctx.store.create(agent.id, shared.id)
    await reproject_agent(ctx, agent.id)
    await destinations.remove(ctx.db, agent.id, "boss")
    await reproject_agent(ctx, agent.id)
    for s in (session, shared):
        dests, _ = await projected(ctx, s)
        assert [d["name"] for d in dests] == ["family", "research"]


async def test_a_session_without_a_folder_does_not_stop_reprojection(ctx, setup):
    agent, _, session = setup
    await sessions_db.find_or_create(ctx.db, agent.id, "agent-shared", None, None)  # no folder created
    await reproject_agent(ctx, agent.id)
    dests, _ = await projected(ctx, session)
    assert len(dests) == 3


async def test_a_destination_whose_target_is_gone_is_left_out(ctx, setup):
    agent, _, session = setup
    await destinations.add(ctx.db, agent.id, "ghost", "agent", "ag-deleted")
    await project(ctx, session)
    dests, _ = await projected(ctx, session)
    assert "ghost" not in [d["name"] for d in dests]
