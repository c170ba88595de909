"""A stranger writes in a chat that asks before letting people in (reference §4.4, sender-approval.test)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from nanoclaw_app.core.approvals.service import ApprovalService
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.events import Event
from nanoclaw_app.core.messages import InboundMessage, IncomingAttachment
from nanoclaw_app.db import agents, messaging, users
from nanoclaw_app.db import approvals as approvals_db
from nanoclaw_app.db.rows import MessagingGroup, Wiring
from tests.fakes.channel import FakeChannel

STRANGER = "test:stranger"


@dataclass
class Scene:
    service: ApprovalService
    chat: MessagingGroup
    wiring: Wiring
    replayed: list[InboundMessage]

    def message(self, message_id: str = "m1", text: str = "hi there") -> InboundMessage:
        return InboundMessage(channel_type="test", platform_id="grp-1", message_id=message_id, sender_id="stranger",
                              sender_name="Sam", text=text, is_group=True, is_mention=True, chat_name="Family",
                              attachments=(IncomingAttachment("a.txt", b"\x00bytes", "text/plain"),))

    async def ask(self, message_id: str = "m1") -> None:
        await self.service.request_sender_approval(self.message(message_id), self.chat, self.wiring, STRANGER)


@pytest.fixture
async def scene(ctx: CoreContext) -> Scene:
    await users.upsert(ctx.db, "test:owner", "test", "Olivia")
    await users.grant(ctx.db, "test:owner", "owner")
    await users.upsert(ctx.db, STRANGER, "test", "Sam")  # the router upserts senders before asking
    agent = await agents.create(ctx.db, "Helper")
    chat = await messaging.create(ctx.db, "test", "grp-1", name="Family", is_group=True,
                                  unknown_sender_policy="request_approval")
    wiring = await messaging.wire(ctx.db, chat.id, agent.id)
    replayed: list[InboundMessage] = []

    async def record(msg: InboundMessage) -> None:
        replayed.append(msg)

    ctx.route = record
    return Scene(ApprovalService(ctx), chat, wiring, replayed)


def _cards(channel: FakeChannel) -> list[tuple[str, str | None, str]]:
    return [(s.platform_id, s.message.title, s.message.text) for s in channel.sent if s.message.kind == "question"]


def _drain(events: asyncio.Queue[Event]) -> list[Event]:
    return [events.get_nowait() for _ in range(events.qsize())]


async def test_an_unknown_sender_sends_an_allow_deny_card_to_the_owners_dm(scene: Scene, channel: FakeChannel,
                                                                          ctx: CoreContext) -> None:
    await scene.ask()

    assert _cards(channel) == [("owner", "👤 New sender", "Sam wants to talk to your agent in Family. Allow?")]
    card = channel.sent[0].message
    assert [(o.label, o.value) for o in card.options] == [("Allow", "allow"), ("Deny", "deny")]
    assert card.question_id is not None
    assert len(card.question_id.encode()) <= 40
    row = await approvals_db.find_sender_approval(ctx.db, scene.chat.id, STRANGER)
    assert row is not None
    assert row.platform_message_id == channel.sent[0].platform_message_id


async def test_a_second_message_while_pending_sends_no_second_card(scene: Scene, channel: FakeChannel) -> None:
    await scene.ask("m1")
    await scene.ask("m2")

    assert len(_cards(channel)) == 1


async def test_allow_makes_the_sender_a_member_and_replays_the_held_message(scene: Scene, channel: FakeChannel,
                                                                          ctx: CoreContext) -> None:
    await scene.ask()
    card = channel.sent[0]
    assert card.message.question_id is not None

    assert await scene.service.on_action(card.message.question_id, "allow", "test:owner")

    assert await users.is_member(ctx.db, STRANGER, scene.wiring.agent_group_id)
    assert scene.replayed == [scene.message()]
    assert scene.replayed[0].attachments[0].data == b"\x00bytes"
    assert await approvals_db.find_sender_approval(ctx.db, scene.chat.id, STRANGER) is None
    edit = channel.sent[-1].message
    assert edit.kind == "edit"
    assert edit.target_message_id == card.platform_message_id
    assert "allowed by Olivia" in edit.text


async def test_deny_removes_the_request_without_letting_the_sender_in(scene: Scene, channel: FakeChannel,
                                                                    ctx: CoreContext) -> None:
    await scene.ask()
    question_id = channel.sent[0].message.question_id
    assert question_id is not None

    assert await scene.service.on_action(question_id, "deny", "test:owner")

    assert not await users.is_member(ctx.db, STRANGER, scene.wiring.agent_group_id)
    assert scene.replayed == []
    assert await approvals_db.find_sender_approval(ctx.db, scene.chat.id, STRANGER) is None
    assert "denied by Olivia" in channel.sent[-1].message.text


async def test_a_denied_sender_writing_again_sends_no_new_card_until_the_denial_expires(
    scene: Scene, channel: FakeChannel, ctx: CoreContext
) -> None:
    await scene.ask("m1")
    question_id = channel.sent[0].message.question_id
    assert question_id is not None
    await scene.service.on_action(question_id, "deny", "test:owner")

    await scene.ask("m2")
    assert len(_cards(channel)) == 1

    await ctx.db.execute("UPDATE denied_senders SET expires_at = '2000-01-01T00:00:00.000Z'")
    await scene.ask("m3")
    assert len(_cards(channel)) == 2


async def test_a_click_by_someone_without_authority_changes_nothing(scene: Scene, channel: FakeChannel,
                                                                   ctx: CoreContext) -> None:
    await users.upsert(ctx.db, "test:rando", "test", "Rando")
    await scene.ask()
    question_id = channel.sent[0].message.question_id
    assert question_id is not None

    async with ctx.events.subscribe() as events:
        assert await scene.service.on_action(question_id, "allow", "test:rando")
        kinds = [e.kind for e in _drain(events)]

    assert "approval.refused_clicker" in kinds
    assert not await users.is_member(ctx.db, STRANGER, scene.wiring.agent_group_id)
    assert scene.replayed == []
    assert await approvals_db.find_sender_approval(ctx.db, scene.chat.id, STRANGER) is not None


async def test_an_admin_of_another_agent_may_not_decide(scene: Scene, channel: FakeChannel, ctx: CoreContext) -> None:
    other = await agents.create(ctx.db, "Other")
    await users.upsert(ctx.db, "test:otheradmin", "test", "Otto")
    await users.grant(ctx.db, "test:otheradmin", "admin", other.id)
    await scene.ask()
    question_id = channel.sent[0].message.question_id
    assert question_id is not None

    await scene.service.on_action(question_id, "allow", "test:otheradmin")

    assert scene.replayed == []


async def test_a_global_admin_who_is_not_the_designated_approver_may_decide(
    scene: Scene, channel: FakeChannel, ctx: CoreContext
) -> None:
    await scene.ask()
    question_id = channel.sent[0].message.question_id
    assert question_id is not None
    await users.upsert(ctx.db, "test:ga", "test", "Gail")
    await users.grant(ctx.db, "test:ga", "admin")

    assert await scene.service.on_action(question_id, "allow", "test:ga")

    assert await users.is_member(ctx.db, STRANGER, scene.wiring.agent_group_id)
    assert len(scene.replayed) == 1


async def test_a_double_click_decides_once(scene: Scene, channel: FakeChannel) -> None:
    await scene.ask()
    question_id = channel.sent[0].message.question_id
    assert question_id is not None

    await scene.service.on_action(question_id, "allow", "test:owner")
    claimed_again = await scene.service.on_action(question_id, "allow", "test:owner")

    assert not claimed_again  # the card is gone; the click is logged as unknown
    assert len(scene.replayed) == 1


async def test_with_no_owner_or_admin_no_card_and_no_request_is_left(ctx: CoreContext, channel: FakeChannel) -> None:
    await users.upsert(ctx.db, STRANGER, "test", "Sam")
    agent = await agents.create(ctx.db, "Helper")
    chat = await messaging.create(ctx.db, "test", "grp-1", is_group=True, unknown_sender_policy="request_approval")
    wiring = await messaging.wire(ctx.db, chat.id, agent.id)
    service = ApprovalService(ctx)

    msg = InboundMessage(channel_type="test", platform_id="grp-1", message_id="m1", sender_id="stranger", text="hi")
    await service.request_sender_approval(msg, chat, wiring, STRANGER)

    assert channel.sent == []
    assert await approvals_db.list_sender_approvals(ctx.db) == []


async def test_a_card_that_cannot_be_sent_keeps_the_request_visible(scene: Scene, channel: FakeChannel,
                                                                   ctx: CoreContext) -> None:
    channel.fail_next = 1
    async with ctx.events.subscribe() as events:
        await scene.ask()
        kinds = [e.kind for e in _drain(events)]

    assert "approval.card_failed" in kinds
    pending = await approvals_db.list_sender_approvals(ctx.db)
    assert [p.sender_identity for p in pending] == [STRANGER]
    assert pending[0].platform_message_id is None
