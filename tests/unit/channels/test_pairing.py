"""Pairing codes: the digits sent from a chat bind it to the owner and the agent; a wrong guess burns every code."""

from __future__ import annotations

import pytest

from nanoclaw_app.core import pairing
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.messages import InboundMessage
from nanoclaw_app.db import agents, messaging, users
from nanoclaw_app.errors import NotFound, UserError
from tests.fakes.channel import FakeChannel


def msg(text: str, *, sender: str = "4242", chat: str = "4242", group: bool = False) -> InboundMessage:
    return InboundMessage(channel_type="test", platform_id=chat, message_id=f"m-{text}", sender_id=sender,
                          sender_name="Ada", text=text, is_group=group, is_mention=not group,
                          chat_name="Family" if group else None)


async def test_the_right_code_makes_the_sender_owner_and_wires_their_dm(ctx: CoreContext, channel: FakeChannel) -> None:
    await channel.setup(None)  # type: ignore[arg-type]
    agent = await agents.create(ctx.db, "Nano")
    code = await pairing.create_code(ctx.db, "test")
    assert len(code.code) == 4
    assert code.code.isdigit()

    assert await pairing.intercept(ctx, msg(code.code))

    assert "test:4242" in await users.owners(ctx.db)
    chat = await messaging.find(ctx.db, "test", "4242")
    assert chat is not None
    assert chat.unknown_sender_policy == "strict"
    wirings = await messaging.wirings_for(ctx.db, chat.id)
    assert [(w.agent_group_id, w.engage_mode) for w in wirings] == [(agent.id, "pattern")]
    assert await users.cached_dm(ctx.db, "test:4242", "test") == chat.id
    assert channel.texts() == ["Paired! This chat is now connected to NanoClaw. Say hello to Nano."]
    assert await pairing.pending(ctx.db, "test") == []
    # Used up: the same digits later are an ordinary message.
    assert not await pairing.intercept(ctx, msg(code.code))


async def test_a_wrong_guess_invalidates_every_pending_code(ctx: CoreContext, channel: FakeChannel) -> None:
    first = await pairing.create_code(ctx.db, "test")
    second = await pairing.create_code(ctx.db, "test", "wire:" + (await agents.create(ctx.db, "Nano")).id)
    wrong = next(c for c in (f"{n:04d}" for n in range(10_000)) if c not in (first.code, second.code))

    async with ctx.events.subscribe() as events:
        assert await pairing.intercept(ctx, msg(wrong, sender="666", chat="666"))
        kinds = [events.get_nowait().kind for _ in range(events.qsize())]
    assert "pairing.invalidated" in kinds

    assert await pairing.pending(ctx.db, "test") == []
    assert await users.owners(ctx.db) == []
    assert channel.texts() == ["That code is not right. Ask for a new code in the NanoClaw app."]
    assert not await pairing.intercept(ctx, msg(first.code))  # burnt with the rest


async def test_at_bot_code_in_a_group_wires_the_group_on_mention(ctx: CoreContext) -> None:
    agent = await agents.create(ctx.db, "Nano")
    code = await pairing.create_code(ctx.db, "test", f"wire:{agent.id}")

    assert await pairing.intercept(ctx, msg(f"@nano_bot {code.code}", chat="-100", group=True))

    chat = await messaging.find(ctx.db, "test", "-100")
    assert chat is not None
    assert chat.is_group
    assert chat.name == "Family"
    assert [w.engage_mode for w in await messaging.wirings_for(ctx.db, chat.id)] == ["mention"]
    assert await users.owners(ctx.db) == []  # a wiring code does not hand out ownership


async def test_messages_pass_through_when_no_code_is_pending(ctx: CoreContext, channel: FakeChannel) -> None:
    assert not await pairing.intercept(ctx, msg("1234"))
    assert not await pairing.intercept(ctx, msg("hello"))
    await pairing.create_code(ctx.db, "other-channel")
    assert not await pairing.intercept(ctx, msg("1234"))  # codes are per channel
    assert channel.sent == []


async def test_a_new_code_supersedes_the_old_one_for_the_same_intent(ctx: CoreContext) -> None:
    old = await pairing.create_code(ctx.db, "test")
    new = await pairing.create_code(ctx.db, "test")
    assert [c.code for c in await pairing.pending(ctx.db, "test")] == [new.code]
    assert old.created_at <= new.created_at


async def test_bad_intents_are_refused(ctx: CoreContext) -> None:
    with pytest.raises(UserError, match="intent"):
        await pairing.create_code(ctx.db, "test", "admin")
    with pytest.raises(NotFound):
        await pairing.create_code(ctx.db, "test", "wire:ag-missing")


@pytest.mark.parametrize(("text", "code"), [
    ("1234", "1234"), (" 0420 ", "0420"), ("@nano_bot 9876", "9876"),
    ("12345", None), ("123", None), ("my pin is 1234", None), ("@nano_bot hi 1234", None),
])
def test_what_counts_as_a_pairing_attempt(text: str, code: str | None) -> None:
    assert pairing.attempted_code(msg(text)) == code
