"""Pairing over Telegram: the 4-digit code from the app, sent to the bot, binds the chat (the host does the binding;
the adapter has to deliver the text faithfully, with the right chat kind and mention flag).
"""

from __future__ import annotations

from nanoclaw_app.core import pairing
from nanoclaw_app.db import messaging, users
from nanoclaw_app.host import Host
from tests.channels.telegram.conftest import HANDLED, about, next_event, pair, say
from tests.fakes.telegram_api import ANN, BOT_USERNAME, SAM, FakeBotApi


async def test_the_first_person_to_send_the_code_becomes_owner_and_their_dm_talks_to_the_agent(
    telegram: Host, api: FakeBotApi, agent_id: str
) -> None:
    code = await pairing.create_code(telegram.db, "telegram")
    api.push_message(code.code, user=ANN)
    await api.wait_for(lambda: any(t.startswith("Paired!") for t in api.texts(ANN.id)))

    assert "Say hello to Nano" in api.texts(ANN.id)[0]
    assert await users.owners(telegram.db) == [f"telegram:{ANN.id}"]
    user = await users.get(telegram.db, f"telegram:{ANN.id}")
    assert user is not None
    assert user.display_name == "Ann Koch"
    chat = await messaging.find(telegram.db, "telegram", str(ANN.id))
    assert chat is not None
    assert not chat.is_group
    assert [w.agent_group_id for w in await messaging.wirings_for(telegram.db, chat.id)] == [agent_id]
    assert await pairing.pending(telegram.db, "telegram") == []

    await say(api, "hello Nano")  # the DM now reaches the agent
    typing = api.sent("sendChatAction")
    assert typing
    assert typing[0]["action"] == "typing"
    assert typing[0]["chat_id"] == ANN.id


async def test_a_wrong_guess_invalidates_the_code(telegram: Host, api: FakeBotApi) -> None:
    code = await pairing.create_code(telegram.db, "telegram")
    wrong = f"{(int(code.code) + 1) % 10000:04d}"
    api.push_message(wrong, user=SAM)
    await api.wait_for(lambda: any("not right" in t for t in api.texts(SAM.id)))
    assert await pairing.pending(telegram.db, "telegram") == []

    async with telegram.events.subscribe() as events:
        late = api.push_message(code.code, user=SAM)  # the right code, too late: it was invalidated
        await next_event(events, HANDLED, about(late))
    fresh = await pairing.create_code(telegram.db, "telegram")
    api.push_message(fresh.code, user=ANN)
    await api.wait_for(lambda: any(t.startswith("Paired!") for t in api.texts(ANN.id)))
    assert await users.owners(telegram.db) == [f"telegram:{ANN.id}"]
    assert not any(t.startswith("Paired!") for t in api.texts(SAM.id))


async def test_a_group_is_paired_with_a_mention_and_the_code(telegram: Host, api: FakeBotApi, agent_id: str) -> None:
    await pair(telegram, api)  # Ann owns NanoClaw already
    code = await pairing.create_code(telegram.db, "telegram", intent=f"wire:{agent_id}")
    group = api.group_chat(-1001234, "Family")
    api.push_message(f"@{BOT_USERNAME} {code.code}", user=ANN, chat=group)
    await api.wait_for(lambda: any(t.startswith("Paired!") for t in api.texts(-1001234)))

    chat = await messaging.find(telegram.db, "telegram", "-1001234")
    assert chat is not None
    assert chat.is_group
    assert chat.name == "Family"
    wiring = await messaging.wiring(telegram.db, chat.id, agent_id)
    assert wiring is not None
    assert wiring.engage_mode == "mention"

    api.push_message("just chatting among ourselves", user=ANN, chat=group)
    await say(api, f"@{BOT_USERNAME} what is the plan?", chat=group)
    assert "echo: just chatting among ourselves" not in api.texts(-1001234)
