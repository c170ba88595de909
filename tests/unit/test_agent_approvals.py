"""An agent asks for something only an admin may allow (reference §4.3: install_packages, add_mcp_server)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from dataclasses import dataclass, field

import pytest

from nanoclaw_app.core.approvals.service import ApprovalService
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.events import Event
from nanoclaw_app.db import agents, messaging, users
from nanoclaw_app.db import approvals as approvals_db
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.approvals import PendingApproval
from nanoclaw_app.db.rows import Session
from tests.fakes.channel import FakeChannel
from tests.fakes.waker import RecordingWaker

OWNER = "test:owner"


@dataclass
class Scene:
    ctx: CoreContext
    service: ApprovalService
    session: Session
    applied: list[PendingApproval] = field(default_factory=list)

    async def ask(self) -> str | None:
        return await self.service.request_approval(
            session=self.session, action="install_packages", payload={"apt": ["ffmpeg"]},
            title="📦 Install packages", question="Helper wants to install: ffmpeg. Allow?",
        )

    async def notes(self) -> list[str]:
        folder = self.ctx.store.dir(self.session.agent_group_id, self.session.id)

        def run(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute("SELECT content FROM messages_in WHERE channel_type = 'agent' ORDER BY seq")
            return [json.loads(r["content"])["text"] for r in rows]

        return await self.ctx.store.read(folder, run, with_outbound=False)


@pytest.fixture
async def scene(ctx: CoreContext) -> Scene:
    await users.upsert(ctx.db, OWNER, "test", "Olivia")
    await users.grant(ctx.db, OWNER, "owner")
    agent = await agents.create(ctx.db, "Helper")
    chat = await messaging.create(ctx.db, "test", "grp-1", name="Family", is_group=True)
    await messaging.wire(ctx.db, chat.id, agent.id)
    session, _ = await sessions_db.find_or_create(ctx.db, agent.id, "shared", chat.id, None)
    await ctx.store.create(agent.id, session.id)
    service = ApprovalService(ctx)
    scene = Scene(ctx, service, session)

    async def install(ctx: CoreContext, approval: PendingApproval) -> str:
        scene.applied.append(approval)
        return f"Installed {', '.join(approval.payload_dict['apt'])}."

    service.register_handler("install_packages", install)
    return scene


def _drain(events: asyncio.Queue[Event]) -> list[Event]:
    return [events.get_nowait() for _ in range(events.qsize())]


async def test_a_request_sends_an_approve_reject_card_to_the_owners_dm(scene: Scene, channel: FakeChannel) -> None:
    approval_id = await scene.ask()

    assert approval_id is not None
    [card] = channel.sent
    assert card.platform_id == "owner"
    assert card.message.question_id == approval_id
    assert card.message.title == "📦 Install packages"
    assert [(o.label, o.value, o.selected_label) for o in card.message.options] == [
        ("Approve", "approve", "✅ Approved"), ("Reject", "reject", "❌ Rejected")]
    row = await approvals_db.get_approval(scene.ctx.db, approval_id)
    assert row is not None
    assert (row.status, row.approver_user_id, row.platform_message_id) == ("pending", OWNER, card.platform_message_id)


async def test_approve_runs_the_handler_and_tells_the_agent_the_result(
    scene: Scene, channel: FakeChannel, waker: RecordingWaker
) -> None:
    approval_id = await scene.ask()
    assert approval_id is not None

    assert await scene.service.on_action(approval_id, "approve", OWNER)

    assert [a.payload_dict for a in scene.applied] == [{"apt": ["ffmpeg"]}]
    assert await scene.notes() == ["Installed ffmpeg."]
    assert scene.session.id in waker.woken
    row = await approvals_db.get_approval(scene.ctx.db, approval_id)
    assert row is not None
    assert (row.status, row.decided_by) == ("approved", OWNER)
    edit = channel.sent[-1].message
    assert edit.kind == "edit"
    assert edit.text == "📦 Install packages\n\n✅ Approved by Olivia"


async def test_reject_tells_the_agent_who_said_no_and_runs_nothing(scene: Scene, channel: FakeChannel) -> None:
    approval_id = await scene.ask()
    assert approval_id is not None

    await scene.service.on_action(approval_id, "reject", OWNER)

    assert scene.applied == []
    assert await scene.notes() == ["Your install_packages request was rejected by Olivia."]
    assert "❌ Rejected by Olivia" in channel.sent[-1].message.text


async def test_a_click_by_someone_without_authority_is_refused(scene: Scene, ctx: CoreContext) -> None:
    await users.upsert(ctx.db, "test:member", "test", "Mia")
    approval_id = await scene.ask()
    assert approval_id is not None

    async with ctx.events.subscribe() as events:
        assert await scene.service.on_action(approval_id, "approve", "test:member")
        kinds = [e.kind for e in _drain(events)]

    assert "approval.refused_clicker" in kinds
    assert scene.applied == []
    row = await approvals_db.get_approval(ctx.db, approval_id)
    assert row is not None
    assert row.status == "pending"


async def test_a_scoped_admin_is_asked_before_the_owner_and_may_decide(scene: Scene, channel: FakeChannel,
                                                                      ctx: CoreContext) -> None:
    await users.upsert(ctx.db, "test:sid", "test", "Sid")
    await users.grant(ctx.db, "test:sid", "admin", scene.session.agent_group_id)

    approval_id = await scene.ask()
    assert approval_id is not None

    assert channel.sent[0].platform_id == "sid"
    await scene.service.on_action(approval_id, "approve", "test:sid")
    assert len(scene.applied) == 1


async def test_a_double_click_applies_once(scene: Scene) -> None:
    approval_id = await scene.ask()
    assert approval_id is not None

    await scene.service.on_action(approval_id, "approve", OWNER)
    await scene.service.on_action(approval_id, "approve", OWNER)

    assert len(scene.applied) == 1
    assert await scene.notes() == ["Installed ffmpeg."]


async def test_a_failing_handler_is_reported_to_the_agent(scene: Scene) -> None:
    async def broken(ctx: CoreContext, approval: PendingApproval) -> str:
        raise RuntimeError("image build failed")

    scene.service.register_handler("add_mcp_server", broken)
    approval_id = await scene.service.request_approval(
        session=scene.session, action="add_mcp_server", payload={"name": "x"}, title="Add MCP", question="Add x?")
    assert approval_id is not None

    await scene.service.on_action(approval_id, "approve", OWNER)

    [note] = await scene.notes()
    assert "applying it failed: image build failed" in note


async def test_when_nobody_can_approve_the_agent_is_told_and_no_card_is_sent(
    scene: Scene, channel: FakeChannel, ctx: CoreContext
) -> None:
    await users.revoke(ctx.db, OWNER, "owner")

    assert await scene.ask() is None

    assert channel.sent == []
    assert await approvals_db.list_pending_approvals(ctx.db) == []
    [note] = await scene.notes()
    assert "could not be sent for approval" in note


async def test_a_card_that_cannot_be_sent_keeps_the_request_pending(scene: Scene, channel: FakeChannel) -> None:
    channel.fail_next = 1

    approval_id = await scene.ask()

    assert approval_id is not None
    pending = await approvals_db.list_pending_approvals(scene.ctx.db)
    assert [p.approval_id for p in pending] == [approval_id]


def test_registering_two_handlers_for_one_action_is_refused(scene: Scene) -> None:
    async def again(ctx: CoreContext, approval: PendingApproval) -> str:
        return ""

    with pytest.raises(ValueError):
        scene.service.register_handler("install_packages", again)
