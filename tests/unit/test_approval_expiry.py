"""Cards nobody answers: an expired approval is a "no", and its card says so."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field

import pytest

from nanoclaw_app.core.approvals.service import ApprovalService
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.messages import InboundMessage
from nanoclaw_app.db import agents, messaging, users
from nanoclaw_app.db import approvals as approvals_db
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.approvals import PendingApproval
from nanoclaw_app.db.rows import Session, Wiring
from tests.fakes.channel import FakeChannel

OWNER = "test:owner"
PAST = "2000-01-01T00:00:00.000Z"


@dataclass
class Scene:
    ctx: CoreContext
    service: ApprovalService
    session: Session
    wiring: Wiring
    applied: list[str] = field(default_factory=list)

    async def ask_agent_approval(self) -> str:
        approval_id = await self.service.request_approval(
            session=self.session, action="install_packages", payload={"apt": ["jq"]}, title="📦 Install packages",
            question="Install jq?")
        assert approval_id is not None
        return approval_id

    async def ask_sender_approval(self) -> None:
        await users.upsert(self.ctx.db, "test:stranger", "test", "Sam")
        chat = await messaging.get(self.ctx.db, self.wiring.messaging_group_id)
        assert chat is not None
        msg = InboundMessage(channel_type="test", platform_id="grp-1", message_id="s1", sender_id="stranger",
                             sender_name="Sam", text="let me in", is_group=True, is_mention=True)
        await self.service.request_sender_approval(msg, chat, self.wiring, "test:stranger")

    async def ask_channel_registration(self) -> None:
        chat = await messaging.create(self.ctx.db, "test", "grp-2", name="New group", is_group=True)
        msg = InboundMessage(channel_type="test", platform_id="grp-2", message_id="c1", sender_id="carol",
                             text="@bot hi", is_group=True, is_mention=True)
        await self.service.request_channel_registration(msg, chat)

    async def notes(self) -> list[str]:
        folder = self.ctx.store.dir(self.session.agent_group_id, self.session.id)

        def run(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute("SELECT content FROM messages_in WHERE channel_type = 'agent' ORDER BY seq")
            return [json.loads(r["content"])["text"] for r in rows]

        return await self.ctx.store.read(folder, run, with_outbound=False)

    async def backdate(self) -> None:
        for table in ("pending_approvals", "pending_sender_approvals", "pending_channel_approvals"):
            await self.ctx.db.execute(f"UPDATE {table} SET expires_at = ?", (PAST,))


@pytest.fixture
async def scene(ctx: CoreContext) -> Scene:
    await users.upsert(ctx.db, OWNER, "test", "Olivia")
    await users.grant(ctx.db, OWNER, "owner")
    agent = await agents.create(ctx.db, "Helper")
    chat = await messaging.create(ctx.db, "test", "grp-1", name="Family", is_group=True,
                                  unknown_sender_policy="request_approval")
    wiring = await messaging.wire(ctx.db, chat.id, agent.id)
    session, _ = await sessions_db.find_or_create(ctx.db, agent.id, "shared", chat.id, None)
    await ctx.store.create(agent.id, session.id)
    service = ApprovalService(ctx)
    scene = Scene(ctx, service, session, wiring)

    async def install(ctx: CoreContext, approval: PendingApproval) -> str:
        scene.applied.append(approval.approval_id)
        return "installed"

    service.register_handler("install_packages", install)
    return scene


async def test_an_unanswered_approval_expires_as_a_no_and_the_agent_is_told(scene: Scene, channel: FakeChannel) -> None:
    approval_id = await scene.ask_agent_approval()
    card = channel.sent[0]
    await scene.backdate()

    assert await scene.service.expire_due() == 1

    row = await approvals_db.get_approval(scene.ctx.db, approval_id)
    assert row is not None
    assert row.status == "expired"
    [note] = await scene.notes()
    assert "install_packages request expired" in note
    edit = channel.sent[-1].message
    assert edit.kind == "edit"
    assert edit.target_message_id == card.platform_message_id
    assert "Expired (no response)" in edit.text


async def test_a_click_after_expiry_applies_nothing(scene: Scene) -> None:
    approval_id = await scene.ask_agent_approval()
    await scene.backdate()
    await scene.service.expire_due()

    assert await scene.service.on_action(approval_id, "approve", OWNER)

    assert scene.applied == []
    assert len(await scene.notes()) == 1


async def test_cards_not_yet_due_are_left_alone(scene: Scene) -> None:
    approval_id = await scene.ask_agent_approval()
    await scene.ask_sender_approval()

    assert await scene.service.expire_due() == 0

    row = await approvals_db.get_approval(scene.ctx.db, approval_id)
    assert row is not None
    assert row.status == "pending"
    assert len(await approvals_db.list_sender_approvals(scene.ctx.db)) == 1


async def test_expired_sender_and_channel_requests_are_removed_and_their_cards_edited(
    scene: Scene, channel: FakeChannel
) -> None:
    await scene.ask_sender_approval()
    await scene.ask_channel_registration()
    await scene.backdate()

    assert await scene.service.expire_due() == 2

    assert await approvals_db.list_sender_approvals(scene.ctx.db) == []
    assert await approvals_db.list_channel_approvals(scene.ctx.db) == []
    edits = [s.message.text for s in channel.sent if s.message.kind == "edit"]
    assert len(edits) == 2
    assert all("Expired (no response)" in e for e in edits)
    # Nobody decided, so nothing is remembered: the next message asks again.
    await scene.ask_sender_approval()
    assert len(await approvals_db.list_sender_approvals(scene.ctx.db)) == 1


async def test_the_start_sweep_expires_everything_that_ran_out_while_the_host_was_down(scene: Scene) -> None:
    await scene.ask_agent_approval()
    await scene.ask_sender_approval()
    await scene.ask_channel_registration()
    await scene.backdate()

    assert await scene.service.sweep_stale_on_start() == 3
    assert await scene.service.sweep_stale_on_start() == 0
