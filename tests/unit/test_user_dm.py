"""Reaching a person by DM before they ever wrote to the bot (reference §4.7 "Cold DMs"), and owner notices."""

from __future__ import annotations

from dataclasses import dataclass, field

from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.notify import notify_owner
from nanoclaw_app.core.user_dm import ensure_user_dm
from nanoclaw_app.db import messaging, users
from tests.fakes.channel import FakeChannel


@dataclass
class CountingChannel(FakeChannel):
    """Counts ``open_dm`` calls; ``refuse`` makes the platform raise instead."""

    opened: list[str] = field(default_factory=list)
    refuse: bool = False

    async def open_dm(self, user_handle: str) -> str | None:
        self.opened.append(user_handle)
        if self.refuse:
            raise RuntimeError("platform refused to open a DM")
        return await super().open_dm(user_handle)


async def test_a_direct_addressable_user_gets_a_strict_dm_chat_at_their_handle(ctx: CoreContext) -> None:
    await users.upsert(ctx.db, "test:alice", "test", "Alice")

    chat = await ensure_user_dm(ctx, "test:alice")

    assert chat is not None
    assert (chat.channel_type, chat.platform_id, chat.is_group) == ("test", "alice", 0)
    assert chat.unknown_sender_policy == "strict"
    assert await users.cached_dm(ctx.db, "test:alice", "test") == chat.id


async def test_a_platform_that_opens_dms_gives_its_own_chat_id(ctx: CoreContext) -> None:
    slack = CountingChannel(channel_type="slack", dm_prefix="D-")
    ctx.channels.add(slack)

    chat = await ensure_user_dm(ctx, "slack:U123")

    assert chat is not None
    assert chat.platform_id == "D-U123"
    assert slack.opened == ["U123"]


async def test_a_second_lookup_uses_the_cache_without_asking_the_platform(ctx: CoreContext) -> None:
    slack = CountingChannel(channel_type="slack", dm_prefix="D-")
    ctx.channels.add(slack)

    first = await ensure_user_dm(ctx, "slack:U123")
    second = await ensure_user_dm(ctx, "slack:U123")

    assert first is not None
    assert second is not None
    assert second.id == first.id
    assert slack.opened == ["U123"]


async def test_a_platform_failure_leaves_the_user_unreachable_and_nothing_cached(ctx: CoreContext) -> None:
    slack = CountingChannel(channel_type="slack", dm_prefix="D-", refuse=True)
    ctx.channels.add(slack)

    assert await ensure_user_dm(ctx, "slack:U123") is None
    assert await users.cached_dm(ctx.db, "slack:U123", "slack") is None
    assert await messaging.list_all(ctx.db) == []


async def test_a_user_on_a_channel_that_is_not_running_is_unreachable(ctx: CoreContext) -> None:
    await users.upsert(ctx.db, "whatsapp:+4915", "whatsapp", "Bob")

    assert await ensure_user_dm(ctx, "whatsapp:+4915") is None


async def test_an_existing_dm_chat_is_reused_instead_of_duplicated(ctx: CoreContext) -> None:
    existing = await messaging.create(ctx.db, "test", "alice", name="Alice", is_group=False)

    chat = await ensure_user_dm(ctx, "test:alice")

    assert chat is not None
    assert chat.id == existing.id
    assert len(await messaging.list_all(ctx.db)) == 1


async def test_an_id_whose_prefix_is_no_channel_is_addressed_through_the_users_kind(ctx: CoreContext) -> None:
    teams = CountingChannel(channel_type="teams", dm_prefix="conv-")
    ctx.channels.add(teams)
    await users.upsert(ctx.db, "29:abc", "teams", "Tina")

    chat = await ensure_user_dm(ctx, "29:abc")

    assert chat is not None
    assert chat.channel_type == "teams"
    assert teams.opened == ["29:abc"]


async def test_notify_owner_sends_a_text_to_the_owners_dm(ctx: CoreContext, channel: FakeChannel) -> None:
    await users.upsert(ctx.db, "test:owner", "test", "Olivia")
    await users.grant(ctx.db, "test:owner", "owner")

    async with ctx.events.subscribe() as events:
        assert await notify_owner(ctx, "The Helper container keeps crashing.")
        kinds = [events.get_nowait().kind for _ in range(events.qsize())]

    assert [(s.platform_id, s.message.kind, s.message.text) for s in channel.sent] == [
        ("owner", "text", "The Helper container keeps crashing.")
    ]
    assert "owner.notified" in kinds


async def test_notify_owner_prefers_the_named_channel(ctx: CoreContext, channel: FakeChannel) -> None:
    tg = FakeChannel(channel_type="tg")
    ctx.channels.add(tg)
    for user_id in ("test:owner", "tg:owner"):
        await users.upsert(ctx.db, user_id, user_id.split(":")[0], "Olivia")
        await users.grant(ctx.db, user_id, "owner")

    assert await notify_owner(ctx, "hello", prefer_channel="tg")

    assert channel.sent == []
    assert [s.message.text for s in tg.sent] == ["hello"]


async def test_notify_owner_reports_false_when_nobody_can_be_reached(ctx: CoreContext, channel: FakeChannel) -> None:
    assert not await notify_owner(ctx, "nobody hears this")

    await users.upsert(ctx.db, "test:owner", "test", "Olivia")
    await users.grant(ctx.db, "test:owner", "owner")
    channel.fail_always = True
    assert not await notify_owner(ctx, "the send fails")
    assert channel.sent == []
