"""The bot is addressed in a chat no agent answers (reference §4.5, channel-approval.test)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from nanoclaw_app.core.approvals.service import ApprovalService
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.events import Event
from nanoclaw_app.core.messages import InboundMessage
from nanoclaw_app.db import agents, messaging, users
from nanoclaw_app.db import approvals as approvals_db
from nanoclaw_app.db.rows import AgentGroup, MessagingGroup
from tests.fakes.channel import FakeChannel, Sent

OWNER = "test:owner"


@dataclass
class Scene:
    ctx: CoreContext
    service: ApprovalService
    channel: FakeChannel
    replayed: list[InboundMessage]

    async def mention(
        self, platform_id: str = "grp-1", message_id: str = "m1"
    ) -> tuple[InboundMessage, MessagingGroup]:
        msg = InboundMessage(channel_type="test", platform_id=platform_id, message_id=message_id, sender_id="carol",
                             sender_name="Carol", text="@bot hello", is_group=True, is_mention=True,
                             chat_name="Book club")
        return msg, await self._register(msg)

    async def dm(self, message_id: str = "d1") -> tuple[InboundMessage, MessagingGroup]:
        msg = InboundMessage(channel_type="test", platform_id="dave", message_id=message_id, sender_id="dave",
                             sender_name="Dave", text="hey, are you there?")
        return msg, await self._register(msg)

    async def _register(self, msg: InboundMessage) -> MessagingGroup:
        # What the router does first: create the chat on the addressed message and upsert the sender.
        chat = await messaging.create(self.ctx.db, msg.channel_type, msg.platform_id, name=msg.chat_name,
                                      is_group=msg.is_group, unknown_sender_policy="request_approval")
        await users.upsert(self.ctx.db, users.namespaced(msg.channel_type, msg.sender_id), msg.channel_type,
                           msg.sender_name)
        await self.service.request_channel_registration(msg, chat)
        return chat

    def cards(self) -> list[Sent]:
        return [s for s in self.channel.sent if s.message.kind == "question"]

    def last_card_id(self) -> str:
        question_id = self.cards()[-1].message.question_id
        assert question_id is not None
        return question_id

    def owner_texts(self) -> list[str]:
        return [s.message.text for s in self.channel.sent if s.message.kind == "text" and s.platform_id == "owner"]


@pytest.fixture
async def scene(ctx: CoreContext, channel: FakeChannel) -> Scene:
    await users.upsert(ctx.db, OWNER, "test", "Olivia")
    await users.grant(ctx.db, OWNER, "owner")
    replayed: list[InboundMessage] = []

    async def record(msg: InboundMessage) -> None:
        replayed.append(msg)

    ctx.route = record
    return Scene(ctx, ApprovalService(ctx), channel, replayed)


@pytest.fixture
async def helper(ctx: CoreContext) -> AgentGroup:
    return await agents.create(ctx.db, "Helper")


def _labels(sent: Sent) -> list[str]:
    return [o.label for o in sent.message.options]


def _drain(events: asyncio.Queue[Event]) -> list[Event]:
    return [events.get_nowait() for _ in range(events.qsize())]


async def test_a_mention_in_a_new_group_sends_a_card_to_the_owner(scene: Scene, helper: AgentGroup) -> None:
    await scene.mention()

    [card] = scene.cards()
    assert card.platform_id == "owner"
    assert card.message.title == "📣 Bot mentioned in new channel"
    assert "Book club" in card.message.text
    assert _labels(card) == ["Connect to Helper", "Connect new agent", "Reject"]


async def test_a_new_direct_message_sends_a_dm_card(scene: Scene, helper: AgentGroup) -> None:
    await scene.dm()

    [card] = scene.cards()
    assert card.message.title == "💬 New direct message"
    assert "hey, are you there?" in card.message.text


async def test_with_several_agents_the_card_offers_a_choice(scene: Scene, ctx: CoreContext) -> None:
    await agents.create(ctx.db, "Helper")
    await agents.create(ctx.db, "Coder")

    await scene.mention()

    assert _labels(scene.cards()[0]) == ["Choose existing agent", "Connect new agent", "Reject"]


async def test_a_second_mention_while_pending_sends_nothing(scene: Scene, helper: AgentGroup) -> None:
    await scene.mention(message_id="m1")
    await scene.mention(message_id="m2")

    assert len(scene.cards()) == 1


async def test_connect_wires_the_group_conservatively_admits_the_sender_and_replays(
    scene: Scene, helper: AgentGroup, ctx: CoreContext
) -> None:
    msg, chat = await scene.mention()

    assert await scene.service.on_action(scene.last_card_id(), "connect", OWNER)

    wiring = await messaging.wiring(ctx.db, chat.id, helper.id)
    assert wiring is not None
    assert (wiring.engage_mode, wiring.sender_scope, wiring.ignored_message_policy, wiring.session_mode) == (
        "mention-sticky", "known", "accumulate", "shared")
    assert await users.is_member(ctx.db, "test:carol", helper.id)
    assert scene.replayed == [msg]
    assert await approvals_db.channel_approval_for_chat(ctx.db, chat.id) is None
    assert "Connected to Helper by Olivia" in scene.channel.sent[-1].message.text


async def test_connecting_a_dm_answers_every_message(scene: Scene, helper: AgentGroup, ctx: CoreContext) -> None:
    msg, chat = await scene.dm()

    await scene.service.on_action(scene.last_card_id(), "connect", OWNER)

    wiring = await messaging.wiring(ctx.db, chat.id, helper.id)
    assert wiring is not None
    assert (wiring.engage_mode, wiring.engage_pattern, wiring.sender_scope) == ("pattern", ".", "known")
    assert scene.replayed == [msg]


async def test_reject_marks_the_chat_denied_and_later_mentions_ask_nothing(
    scene: Scene, helper: AgentGroup, ctx: CoreContext
) -> None:
    _, chat = await scene.mention(message_id="m1")

    await scene.service.on_action(scene.last_card_id(), "reject", OWNER)

    denied = await messaging.get(ctx.db, chat.id)
    assert denied is not None
    assert denied.denied_at is not None
    assert await messaging.wirings_for(ctx.db, chat.id) == []
    assert scene.replayed == []
    await scene.mention(message_id="m2")
    assert len(scene.cards()) == 1


async def test_choose_existing_agent_offers_a_list_and_connects_the_chosen_one(scene: Scene, ctx: CoreContext) -> None:
    await agents.create(ctx.db, "Helper")
    coder = await agents.create(ctx.db, "Coder")
    msg, chat = await scene.mention()

    await scene.service.on_action(scene.last_card_id(), "choose", OWNER)

    follow_up = scene.cards()[-1]
    assert sorted(_labels(follow_up)[:2]) == ["Connect to Coder", "Connect to Helper"]
    assert _labels(follow_up)[2] == "Cancel"
    coder_value = next(o.value for o in follow_up.message.options if o.label == "Connect to Coder")
    assert len(coder_value) <= 4
    await scene.service.on_action(scene.last_card_id(), coder_value, OWNER)

    assert [w.agent_group_id for w in await messaging.wirings_for(ctx.db, chat.id)] == [coder.id]
    assert scene.replayed == [msg]


async def test_cancel_on_the_agent_list_leaves_the_chat_unwired_but_not_denied(scene: Scene, ctx: CoreContext) -> None:
    await agents.create(ctx.db, "Helper")
    await agents.create(ctx.db, "Coder")
    _, chat = await scene.mention()
    await scene.service.on_action(scene.last_card_id(), "choose", OWNER)

    await scene.service.on_action(scene.last_card_id(), "cancel", OWNER)

    after = await messaging.get(ctx.db, chat.id)
    assert after is not None
    assert after.denied_at is None
    assert await approvals_db.channel_approval_for_chat(ctx.db, chat.id) is None


async def test_connect_new_agent_asks_for_a_name_and_the_reply_creates_and_connects_it(
    scene: Scene, helper: AgentGroup, ctx: CoreContext
) -> None:
    msg, chat = await scene.mention()
    await scene.service.on_action(scene.last_card_id(), "new", OWNER)
    assert any("Reply with a name" in t for t in scene.owner_texts())

    other = InboundMessage(channel_type="test", platform_id="carol", message_id="x1", sender_id="carol",
                           text="Research Bot")
    assert not await scene.service.intercept(other)  # only the approver's DM reply counts

    reply = InboundMessage(channel_type="test", platform_id="owner", message_id="r1", sender_id="owner",
                           text="  Research Bot \n")
    assert await scene.service.intercept(reply)

    created = [a for a in await agents.list_all(ctx.db) if a.name == "Research Bot"]
    assert len(created) == 1
    assert created[0].folder == "research-bot"
    assert [w.agent_group_id for w in await messaging.wirings_for(ctx.db, chat.id)] == [created[0].id]
    assert await users.is_member(ctx.db, "test:carol", created[0].id)
    assert scene.replayed == [msg]
    assert any("Created agent Research Bot" in t for t in scene.owner_texts())
    assert not await scene.service.intercept(reply)  # the next DM is routed normally again


async def test_the_naming_prompt_can_be_cancelled(scene: Scene, helper: AgentGroup, ctx: CoreContext) -> None:
    _, chat = await scene.mention()
    await scene.service.on_action(scene.last_card_id(), "new", OWNER)

    cancel = InboundMessage(channel_type="test", platform_id="owner", message_id="r1", sender_id="owner",
                            text="cancel")
    assert await scene.service.intercept(cancel)

    assert len(await agents.list_all(ctx.db)) == 1
    assert await approvals_db.channel_approval_for_chat(ctx.db, chat.id) is None


async def test_a_click_by_someone_without_authority_changes_nothing(scene: Scene, helper: AgentGroup,
                                                                   ctx: CoreContext) -> None:
    _, chat = await scene.mention()
    await users.upsert(ctx.db, "test:scoped", "test", "Sid")
    await users.grant(ctx.db, "test:scoped", "admin", helper.id)  # scoped admins cannot register chats

    async with ctx.events.subscribe() as events:
        assert await scene.service.on_action(scene.last_card_id(), "connect", "test:scoped")
        kinds = [e.kind for e in _drain(events)]

    assert "approval.refused_clicker" in kinds
    assert await messaging.wirings_for(ctx.db, chat.id) == []
    assert await approvals_db.channel_approval_for_chat(ctx.db, chat.id) is not None
    assert scene.replayed == []


async def test_with_no_owner_nothing_is_sent(ctx: CoreContext, channel: FakeChannel) -> None:
    await agents.create(ctx.db, "Helper")
    service = ApprovalService(ctx)
    chat = await messaging.create(ctx.db, "test", "grp-1", is_group=True)
    msg = InboundMessage(channel_type="test", platform_id="grp-1", message_id="m1", sender_id="carol",
                         text="@bot hi", is_group=True, is_mention=True)

    await service.request_channel_registration(msg, chat)

    assert channel.sent == []
    assert await approvals_db.list_channel_approvals(ctx.db) == []


async def test_with_no_agents_the_card_offers_only_a_new_agent_or_reject(scene: Scene) -> None:
    await scene.mention()

    assert _labels(scene.cards()[0]) == ["Connect new agent", "Reject"]


async def test_the_name_prompt_goes_to_the_admin_who_chose_a_new_agent(scene: Scene, helper: AgentGroup,
                                                                      ctx: CoreContext) -> None:
    tg = FakeChannel(channel_type="tg")
    ctx.channels.add(tg)
    await users.upsert(ctx.db, "tg:gail", "tg", "Gail")
    await users.grant(ctx.db, "tg:gail", "admin")
    _, chat = await scene.mention()

    await scene.service.on_action(scene.last_card_id(), "new", "tg:gail")

    assert [s.platform_id for s in tg.sent if "Reply with a name" in s.message.text] == ["gail"]
    owner_reply = InboundMessage(channel_type="test", platform_id="owner", message_id="r0", sender_id="owner",
                                 text="Not me")
    assert not await scene.service.intercept(owner_reply)
    reply = InboundMessage(channel_type="tg", platform_id="gail", message_id="r1", sender_id="gail", text="Scout")
    assert await scene.service.intercept(reply)
    [wiring] = await messaging.wirings_for(ctx.db, chat.id)
    scout = await agents.get(ctx.db, wiring.agent_group_id)
    assert scout is not None
    assert scout.name == "Scout"
    assert [s.message.kind for s in tg.sent] == ["text", "text"]  # prompt and confirmation, no stray card edit
