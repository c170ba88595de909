"""The slash-command gate: filtered commands never reach an agent, admin commands only from admins."""

from __future__ import annotations

import sqlite3

import pytest

from nanoclaw_app.core import command_gate
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.messages import InboundMessage
from nanoclaw_app.core.router import NoApprovals, Router
from nanoclaw_app.db import agents, drops, messaging, users
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.messaging import WiringSpec
from tests.fakes.channel import FakeChannel
from tests.fakes.waker import RecordingWaker


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/help", "filtered"),
        ("/login now", "filtered"),
        ("/logout", "filtered"),
        ("/doctor", "filtered"),
        ("/config", "filtered"),
        ("/remote-control", "filtered"),
        ("/clear", "admin"),
        ("/compact please", "admin"),
        ("/context", "admin"),
        ("/cost", "admin"),
        ("/files", "admin"),
        ("/CLEAR", "admin"),
        ("/clear@my_bot", "admin"),
        ("  /help", "filtered"),
        ("/summarize this", "passthrough"),
        ("/", None),
        ("hello /clear", None),
        ("", None),
        ("plain text", None),
    ],
)
def test_classify(text: str, expected: str | None) -> None:
    assert command_gate.classify(text) == expected


def test_denial_names_the_command() -> None:
    assert command_gate.denial_text("/clear@my_bot now") == "Permission denied: /clear requires admin access."


@pytest.fixture
async def setup(ctx: CoreContext) -> tuple[Router, str]:
    agent = await agents.create(ctx.db, "Alpha")
    chat = await messaging.create(ctx.db, "test", "chat-1")
    await messaging.wire(ctx.db, chat.id, agent.id, WiringSpec("pattern", "."))
    await users.upsert(ctx.db, "test:alice", "test", "Alice")
    await users.add_member(ctx.db, "test:alice", agent.id)
    return Router(ctx, NoApprovals()), agent.id


def msg(text: str, sender: str = "alice") -> InboundMessage:
    return InboundMessage(channel_type="test", platform_id="chat-1", message_id=f"id-{text}-{sender}",
                          sender_id=sender, text=text)


async def stored_texts(ctx: CoreContext, agent_id: str) -> list[str]:
    sessions = await sessions_db.list_for_agent(ctx.db, agent_id)
    texts: list[str] = []
    for s in sessions:
        rows: list[sqlite3.Row] = await ctx.store.read(
            ctx.store.dir(agent_id, s.id), lambda c: c.execute("SELECT content FROM messages_in").fetchall(),
            with_outbound=False)
        texts += [r["content"] for r in rows]
    return texts


async def test_filtered_command_is_dropped_silently_but_recorded(
    ctx: CoreContext, setup: tuple[Router, str], channel: FakeChannel, waker: RecordingWaker
) -> None:
    router, agent_id = setup
    result = await router.route(msg("/login"))
    assert result.dropped[0].reason == "filtered_command"
    assert channel.sent == []
    assert waker.woken == []
    assert await stored_texts(ctx, agent_id) == []
    [d] = await drops.list_recent(ctx.db)
    assert (d.reason, d.detail, d.agent_group_id) == ("filtered_command", "/login", agent_id)


async def test_admin_command_from_member_is_refused_with_a_reply_and_nothing_stored(
    ctx: CoreContext, setup: tuple[Router, str], channel: FakeChannel, waker: RecordingWaker
) -> None:
    router, agent_id = setup
    result = await router.route(msg("/clear"))
    assert result.dropped[0].reason == "permission_denied"
    assert channel.texts() == ["Permission denied: /clear requires admin access."]
    assert channel.sent[0].platform_id == "chat-1"
    assert channel.sent[0].message.kind == "text"
    assert channel.sent[0].message.delivery_id.startswith("out-")
    assert waker.woken == []
    assert await sessions_db.list_for_agent(ctx.db, agent_id) == []
    assert [d.reason for d in await drops.list_recent(ctx.db)] == ["permission_denied"]


async def test_admin_command_denial_is_sent_once_with_several_agents(
    ctx: CoreContext, setup: tuple[Router, str], channel: FakeChannel
) -> None:
    router, _first = setup
    second = await agents.create(ctx.db, "Beta")
    chat = await messaging.find(ctx.db, "test", "chat-1")
    assert chat is not None
    await messaging.wire(ctx.db, chat.id, second.id, WiringSpec("pattern", "."))
    await users.add_member(ctx.db, "test:alice", second.id)
    result = await router.route(msg("/cost"))
    assert [o.reason for o in result.dropped] == ["permission_denied", "permission_denied"]
    assert len(channel.sent) == 1


@pytest.mark.parametrize("role", ["owner", "global_admin", "scoped_admin"])
async def test_admin_command_from_an_admin_reaches_the_agent(
    ctx: CoreContext, setup: tuple[Router, str], waker: RecordingWaker, channel: FakeChannel, role: str
) -> None:
    router, agent_id = setup
    await users.upsert(ctx.db, "test:boss", "test", "Boss")
    if role == "owner":
        await users.grant(ctx.db, "test:boss", "owner")
    elif role == "global_admin":
        await users.grant(ctx.db, "test:boss", "admin")
    else:
        await users.grant(ctx.db, "test:boss", "admin", agent_id)
    result = await router.route(msg("/compact", sender="boss"))
    assert result.delivered
    assert len(waker.woken) == 1
    assert channel.sent == []


async def test_admin_of_another_agent_is_refused(
    ctx: CoreContext, setup: tuple[Router, str], channel: FakeChannel
) -> None:
    router, _agent_id = setup
    other = await agents.create(ctx.db, "Other")
    await users.grant(ctx.db, "test:alice", "admin", other.id)
    result = await router.route(msg("/clear"))
    assert result.dropped[0].reason == "permission_denied"
    assert channel.texts() == ["Permission denied: /clear requires admin access."]


async def test_passthrough_command_reaches_the_agent(
    ctx: CoreContext, setup: tuple[Router, str], waker: RecordingWaker
) -> None:
    router, _agent_id = setup
    result = await router.route(msg("/summarize the week"))
    assert result.delivered
    assert waker.woken == [result.delivered[0].session_id]


async def test_admin_command_is_not_accumulated_from_a_non_admin(ctx: CoreContext, channel: FakeChannel) -> None:
    agent = await agents.create(ctx.db, "Alpha")
    chat = await messaging.create(ctx.db, "test", "grp", is_group=True)
    await messaging.wire(ctx.db, chat.id, agent.id, WiringSpec("mention", ignored_message_policy="accumulate"))
    await users.upsert(ctx.db, "test:alice", "test", "Alice")
    await users.add_member(ctx.db, "test:alice", agent.id)
    router = Router(ctx, NoApprovals())
    # Stored as context, a /clear would be run by the agent on its next wake: it must not be stored at all.
    result = await router.route(InboundMessage(channel_type="test", platform_id="grp", message_id="c1",
                                               sender_id="alice", text="/clear", is_group=True))
    assert result.dropped[0].reason == "permission_denied"
    assert await sessions_db.list_for_agent(ctx.db, agent.id) == []
    assert channel.sent == []  # not addressed to the agent, so no reply either
