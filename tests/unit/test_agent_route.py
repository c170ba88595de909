"""Agent-to-agent routing: ACL, return-path tiers, hop cap, file forwarding and its safety (reference §4.7, §8.1)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent_runner.protocol import ChatContent, OutboundRow, TextOut
from nanoclaw_app.core.agent_route import RouteRefused, route_to_agent
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.db import agents, destinations, messaging
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.rows import Session
from nanoclaw_app.errors import UnsafePath
from nanoclaw_app.timeutil import now_iso

_counter = iter(range(1, 10_000))


def out(target: str, text: str, *, files: list[str] | None = None, in_reply_to: str | None = None,
        row_id: str | None = None) -> OutboundRow:
    n = next(_counter)
    return OutboundRow(id=row_id or f"out-{n}", seq=2 * n + 1, kind="chat", timestamp=now_iso(),
                       content=TextOut(text=text, files=files or []).to_json(), channel_type="agent",
                       platform_id=target, in_reply_to=in_reply_to)


async def inbound(ctx: CoreContext, session: Session) -> list[dict[str, Any]]:
    folder = ctx.store.dir(session.agent_group_id, session.id)
    rows: list[dict[str, Any]] = await ctx.store.read(
        folder, lambda c: [dict(r) for r in c.execute("SELECT * FROM messages_in ORDER BY seq")], with_outbound=False)
    for row in rows:
        row["chat"] = ChatContent.from_dict(json.loads(row["content"]))
    return rows


def from_agents(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["chat"].sender_id != "system"]


def system_notes(rows: list[dict[str, Any]]) -> list[str]:
    return [r["chat"].text for r in rows if r["chat"].sender_id == "system"]


class World:
    """Agent A with an older session S1 and a newer S2; agent B with its agent-shared session SB."""

    def __init__(self, ctx: CoreContext) -> None:
        self.ctx = ctx

    async def build(self) -> World:
        ctx = self.ctx
        self.a = await agents.create(ctx.db, "Alice Bot")
        self.b = await agents.create(ctx.db, "Bob Bot")
        sessions = []
        for platform_id in ("chat-a1", "chat-a2"):
            chat = await messaging.create(ctx.db, "test", platform_id)
            await messaging.wire(ctx.db, chat.id, self.a.id)
            session, _ = await sessions_db.find_or_create(ctx.db, self.a.id, "shared", chat.id, None)
            await ctx.store.create(self.a.id, session.id)
            sessions.append(session)
        self.s1, self.s2 = sessions
        self.sb, _ = await sessions_db.find_or_create(ctx.db, self.b.id, "agent-shared", None, None)
        await ctx.store.create(self.b.id, self.sb.id)
        await destinations.add(ctx.db, self.a.id, "bob", "agent", self.b.id)
        await destinations.add(ctx.db, self.b.id, "alice", "agent", self.a.id)
        return self


@pytest.fixture
async def world(ctx: CoreContext) -> World:
    return await World(ctx).build()


# --------------------------------------------------------------------------------------------- forward direction


async def test_a_message_lands_with_its_return_address_and_wakes_the_target(ctx, world, waker):
    async with ctx.events.subscribe() as events:
        await route_to_agent(ctx, world.s1, out(world.b.id, "hello Bob"))
        assert events.get_nowait().kind == "agent.message"
    (row,) = await inbound(ctx, world.sb)
    assert (row["channel_type"], row["platform_id"], row["source_session_id"]) == ("agent", world.a.id, world.s1.id)
    assert (row["kind"], row["hops"], row["status"]) == ("chat", 1, "pending")
    assert row["chat"].text == "hello Bob"
    assert (row["chat"].sender_id, row["chat"].sender_name) == (f"agent:{world.a.id}", "Alice Bot")
    assert row["id"].startswith("a2a-")
    assert waker.woken == [world.sb.id]


async def test_without_a_destination_the_message_is_refused_and_the_sender_told(ctx, world):
    carol = await agents.create(ctx.db, "Carol Bot")
    with pytest.raises(RouteRefused, match="no destination"):
        await route_to_agent(ctx, world.s1, out(carol.id, "psst"))
    assert await sessions_db.list_for_agent(ctx.db, carol.id) == []
    (note,) = system_notes(await inbound(ctx, world.s1))
    assert "Carol Bot" in note


async def test_a_message_to_a_missing_agent_is_refused(ctx, world):
    with pytest.raises(RouteRefused, match="no agent"):
        await route_to_agent(ctx, world.s1, out("ag-nope", "anyone?"))


async def test_an_agent_may_message_itself_without_a_destination(ctx, world):
    await route_to_agent(ctx, world.s1, out(world.a.id, "note to self"))
    shared, _ = await sessions_db.find_or_create(ctx.db, world.a.id, "agent-shared", None, None)
    (row,) = await inbound(ctx, shared)
    assert row["chat"].text == "note to self"
    assert row["source_session_id"] == world.s1.id


# --------------------------------------------------------------------------------------------- return-path tiers


async def test_tier_1_a_reply_goes_back_to_the_originating_session_not_the_newest(ctx, world):
    await route_to_agent(ctx, world.s1, out(world.b.id, "ping"))
    (received,) = await inbound(ctx, world.sb)
    await route_to_agent(ctx, world.sb, out(world.a.id, "pong", in_reply_to=received["id"]))
    assert [r["chat"].text for r in await inbound(ctx, world.s1)] == ["pong"]
    assert await inbound(ctx, world.s2) == []


async def test_tier_1_accepts_the_seq_the_agent_saw(ctx, world):
    await route_to_agent(ctx, world.s1, out(world.b.id, "ping"))
    (received,) = await inbound(ctx, world.sb)
    await route_to_agent(ctx, world.sb, out(world.a.id, "pong", in_reply_to=str(received["seq"])))
    assert [r["chat"].text for r in await inbound(ctx, world.s1)] == ["pong"]


async def test_tier_2_without_in_reply_to_the_peers_last_session_wins(ctx, world):
    await route_to_agent(ctx, world.s1, out(world.b.id, "context"))
    await route_to_agent(ctx, world.sb, out(world.a.id, "standing by"))
    assert [r["chat"].text for r in await inbound(ctx, world.s1)] == ["standing by"]
    assert await inbound(ctx, world.s2) == []


async def test_tier_3_an_unsolicited_message_goes_to_the_agent_shared_session(ctx, world):
    await route_to_agent(ctx, world.sb, out(world.a.id, "unsolicited"))
    assert await inbound(ctx, world.s1) == []
    assert await inbound(ctx, world.s2) == []
    shared, created = await sessions_db.find_or_create(ctx.db, world.a.id, "agent-shared", None, None)
    assert not created
    assert [r["chat"].text for r in await inbound(ctx, shared)] == ["unsolicited"]


async def test_a_closed_origin_session_falls_through(ctx, world):
    await route_to_agent(ctx, world.s1, out(world.b.id, "hello"))
    (received,) = await inbound(ctx, world.sb)
    await sessions_db.close(ctx.db, world.s1.id)
    await route_to_agent(ctx, world.sb, out(world.a.id, "reply", in_reply_to=received["id"]))
    assert await inbound(ctx, world.s1) == []
    shared, _ = await sessions_db.find_or_create(ctx.db, world.a.id, "agent-shared", None, None)
    assert [r["chat"].text for r in await inbound(ctx, shared)] == ["reply"]


async def test_a_return_address_of_another_agent_is_never_used(ctx, world):
    carol = await agents.create(ctx.db, "Carol Bot")
    carol_session, _ = await sessions_db.find_or_create(ctx.db, carol.id, "agent-shared", None, None)
    await ctx.store.create(carol.id, carol_session.id)
    await destinations.add(ctx.db, carol.id, "bob", "agent", world.b.id)
    await route_to_agent(ctx, carol_session, out(world.b.id, "from Carol"))
    (from_carol,) = await inbound(ctx, world.sb)
    await route_to_agent(ctx, world.sb, out(world.a.id, "misdirected", in_reply_to=from_carol["id"]))
    assert await inbound(ctx, carol_session) == []
    shared, _ = await sessions_db.find_or_create(ctx.db, world.a.id, "agent-shared", None, None)
    assert [r["chat"].text for r in await inbound(ctx, shared)] == ["misdirected"]


# --------------------------------------------------------------------------------------------- hop cap


async def test_the_hop_cap_stops_agents_playing_ping_pong(ctx, world):
    cap = ctx.settings.agent_hop_cap
    sender, receiver, reply_to = world.s1, world.sb, None
    refused = None
    for _ in range(cap + 5):
        target = receiver.agent_group_id
        try:
            await route_to_agent(ctx, sender, out(target, "again", in_reply_to=reply_to))
        except RouteRefused as err:
            refused = err
            break
        reply_to = from_agents(await inbound(ctx, receiver))[-1]["id"]
        sender, receiver = receiver, sender
    assert refused is not None
    assert "back and forth" in str(refused)
    rows = from_agents(await inbound(ctx, world.s1)) + from_agents(await inbound(ctx, world.sb))
    hops = sorted(r["hops"] for r in rows)
    assert hops == list(range(1, cap + 1))
    assert any("back and forth" in n for n in system_notes(await inbound(ctx, sender)))


async def test_a_fresh_message_starts_a_new_hop_count(ctx, world):
    await route_to_agent(ctx, world.s1, out(world.b.id, "one"))
    await route_to_agent(ctx, world.s1, out(world.b.id, "two"))
    assert [r["hops"] for r in await inbound(ctx, world.sb)] == [1, 1]


# --------------------------------------------------------------------------------------------- files


def outbox(ctx: CoreContext, session: Session, row_id: str) -> Path:
    folder: Path = ctx.store.dir(session.agent_group_id, session.id) / "outbox" / row_id
    folder.mkdir(parents=True)
    return folder


async def test_files_are_copied_into_the_targets_inbox(ctx, world):
    (outbox(ctx, world.s1, "out-file") / "report.pdf").write_bytes(b"fake-pdf-bytes")
    await route_to_agent(ctx, world.s1, out(world.b.id, "see attached", files=["report.pdf"], row_id="out-file"))
    (row,) = await inbound(ctx, world.sb)
    (attachment,) = row["chat"].attachment_list
    assert (attachment.name, attachment.mime_type, attachment.size) == ("report.pdf", "application/pdf", 14)
    assert attachment.local_path == f"inbox/{row['id']}/report.pdf"
    target = ctx.store.dir(world.b.id, world.sb.id) / attachment.local_path
    assert target.read_bytes() == b"fake-pdf-bytes"
    assert (ctx.store.dir(world.a.id, world.s1.id) / "outbox" / "out-file" / "report.pdf").exists()  # a copy


@pytest.mark.parametrize("name", ["../evil.png", "/etc/passwd", "nested/file.txt", "windows\\path.exe",
                                  "clean\x00.png", "..", ".", ""])
async def test_unsafe_attachment_names_are_refused(ctx, world, name):
    outbox(ctx, world.s1, "out-bad")
    with pytest.raises(UnsafePath):
        await route_to_agent(ctx, world.s1, out(world.b.id, "x", files=[name], row_id="out-bad"))
    assert await inbound(ctx, world.sb) == []


async def test_a_symlinked_target_inbox_cannot_be_used_to_plant_files(ctx, world, tmp_path):
    (outbox(ctx, world.s1, "out-skill") / "SKILL.md").write_text("# planted skill")
    skills = tmp_path / "skills"
    skills.mkdir()
    inbox_root = ctx.store.dir(world.b.id, world.sb.id) / "inbox"
    inbox_root.rmdir()
    inbox_root.symlink_to(skills, target_is_directory=True)
    with pytest.raises(UnsafePath):
        await route_to_agent(ctx, world.s1, out(world.b.id, "x", files=["SKILL.md"], row_id="out-skill"))
    assert list(skills.rglob("*")) == []
    assert await inbound(ctx, world.sb) == []


async def test_a_symlinked_outbox_file_is_not_forwarded(ctx, world, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("host secret")
    (outbox(ctx, world.s1, "out-link") / "note.txt").symlink_to(secret)
    with pytest.raises(UnsafePath):
        await route_to_agent(ctx, world.s1, out(world.b.id, "x", files=["note.txt"], row_id="out-link"))
    assert await inbound(ctx, world.sb) == []
