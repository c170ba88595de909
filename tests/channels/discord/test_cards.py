"""Cards on Discord are buttons: a click answers the agent's question or an approval, and the card then shows the
choice instead of the buttons.
"""

from __future__ import annotations

import json
from typing import Any

from agent_runner.protocol import AskQuestionOut, QuestionOption
from nanoclaw_app.channels.discord.components import MAX_CUSTOM_ID
from nanoclaw_app.core import pairing
from nanoclaw_app.core.access import can_access
from nanoclaw_app.core.messages import OutboundMessage
from nanoclaw_app.db import approvals as approvals_db
from nanoclaw_app.db import messaging, questions
from nanoclaw_app.host import Host
from tests.channels.discord.conftest import dm_id, dm_session, pair, say_dm
from tests.fakes.container import write_out
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.discord_model import BOT, GENERAL_ID, OWNER, STRANGER


def buttons(message: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, custom id or url) of a message's buttons, in order."""
    return [(b["label"], b.get("custom_id") or b.get("url", "")) for row in message.get("components") or []
            for b in row["components"]]


async def card_in(fake: FakeDiscord, channel_id: int, title: str) -> dict[str, Any]:
    """Wait for the bot's card with ``title`` (with buttons) in a channel."""
    found: dict[str, Any] = await fake.wait_for(lambda: next(
        (m for m in fake.sent_messages(channel_id) if title in m["content"] and m["components"]), None))
    return found


async def answered(fake: FakeDiscord, interaction_id: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = await fake.wait_for(lambda: fake.interaction_responses.get(interaction_id))
    return found


async def test_clicking_an_option_answers_the_agents_question_and_the_card_shows_the_choice(
    discord_host: Host, fake: FakeDiscord, agent_id: str
) -> None:
    await pair(discord_host, fake)
    await say_dm(fake, "plan lunch")
    _, folder = await dm_session(discord_host, fake, agent_id)
    question = AskQuestionOut(question_id="q-lunch", title="Lunch", question="Pizza or soup today?",
                              options=[{"label": "Pizza", "value": "pizza"},
                                       {"label": "Soup", "value": "soup", "selected_label": "Soup it is"}])
    write_out(folder, question.to_json(), channel_type="discord", platform_id=str(dm_id(fake)))

    card = await card_in(fake, dm_id(fake), "Lunch")
    assert card["content"] == "**Lunch**\nPizza or soup today?"
    keyboard = buttons(card)
    assert [label for label, _ in keyboard] == ["Pizza", "Soup"]

    click = fake.push_component_click(int(card["id"]), keyboard[1][1], OWNER)
    assert (await answered(fake, click))[0]["type"] == 6  # acknowledged at once, the card is edited after
    await fake.wait_for(lambda: "✓" in fake.messages[int(card["id"])]["content"])
    shown = fake.messages[int(card["id"])]
    assert shown["content"] == "**Lunch**\n✓ Soup it is"
    assert shown["components"] == []  # the buttons are gone
    stored = await questions.get(discord_host.db, "q-lunch")
    assert stored is not None
    assert stored.answered_at is not None
    answer = await discord_host.store.read(
        folder, lambda conn: conn.execute("SELECT content FROM messages_in WHERE id = 'q-lunch:answer'").fetchone(),
        with_outbound=False)
    assert json.loads(answer[0])["selected_option"] == "soup"
    assert json.loads(answer[0])["user_id"] == f"discord:{OWNER.id}"

    again = fake.push_component_click(int(card["id"]), keyboard[0][1], OWNER)  # a stale client still shows them
    [reply] = await answered(fake, again)
    assert (reply["type"], reply["data"]["content"], reply["data"]["flags"]) == (4, "Already answered.", 64)


async def test_clicks_on_cards_we_do_not_know_or_from_another_channel_do_nothing(
    discord_host: Host, fake: FakeDiscord
) -> None:
    adapter = discord_host.channels.get("discord")
    assert adapter is not None
    await adapter.deliver(str(GENERAL_ID), None, OutboundMessage(
        kind="question", delivery_id="q1", question_id="q-x", title="Pick", text="Which?",
        options=(QuestionOption("A", "a"), QuestionOption("B", "b"))))
    card = await card_in(fake, GENERAL_ID, "Pick")
    forged_home = fake.push_dm(OWNER, "a message in another channel")
    for message_id, custom in ((int(card["id"]), "c:999999:0"), (int(card["id"]), "something else"),
                               (int(forged_home["id"]), buttons(card)[0][1])):
        click = fake.push_component_click(message_id, custom, STRANGER)
        [reply] = await answered(fake, click)
        assert reply["data"]["content"] == "This card is no longer active."
    assert fake.messages[int(card["id"])]["components"]  # still open


async def test_custom_ids_stay_short_whatever_the_question(discord_host: Host, fake: FakeDiscord) -> None:
    adapter = discord_host.channels.get("discord")
    assert adapter is not None
    options = tuple(QuestionOption(f"Option {i} " + "é" * 100, "value-" + "v" * 200 + str(i)) for i in range(12))
    await adapter.deliver(str(GENERAL_ID), None, OutboundMessage(
        kind="question", delivery_id="q-long", question_id="q-" + "x" * 300, title="Many choices", text="Pick one",
        options=options))
    card = await card_in(fake, GENERAL_ID, "Many choices")
    data = [d for _, d in buttons(card)]
    assert len(set(data)) == 12
    assert max(len(d) for d in data) <= MAX_CUSTOM_ID
    assert all(len(label) <= 80 for label, _ in buttons(card))


async def test_a_display_card_has_link_buttons(discord_host: Host, fake: FakeDiscord) -> None:
    adapter = discord_host.channels.get("discord")
    assert adapter is not None
    await adapter.deliver(str(GENERAL_ID), None, OutboundMessage(
        kind="card", delivery_id="card-1", title="Flight LH 123", text="Departs **08:40** from gate A12",
        links=({"label": "Check in", "url": "https://example.com/checkin"},)))
    [card] = fake.sent_messages(GENERAL_ID)
    assert card["embeds"][0]["title"] == "Flight LH 123"
    assert card["embeds"][0]["description"] == "Departs **08:40** from gate A12"
    assert buttons(card) == [("Check in", "https://example.com/checkin")]


async def test_a_stranger_is_allowed_by_a_button_in_the_owners_dm_opened_cold(
    discord_host: Host, fake: FakeDiscord, agent_id: str
) -> None:
    # The owner pairs in the server channel, so the bot has never had a DM with them: approvals open one.
    code = await pairing.create_code(discord_host.db, "discord")
    fake.push_message(GENERAL_ID, OWNER, f"{BOT.mention} {code.code}")
    await fake.wait_for(lambda: any(t.startswith("Paired!") for t in fake.texts(GENERAL_ID)))
    chat = await messaging.find(discord_host.db, "discord", str(GENERAL_ID))
    assert chat is not None
    await messaging.update(discord_host.db, chat.id, unknown_sender_policy="request_approval")
    assert not fake.sent("POST /users/@me/channels")

    fake.push_message(GENERAL_ID, STRANGER, f"{BOT.mention} can you help with my homework?")
    card = await card_in(fake, dm_id(fake), "New sender")
    assert fake.sent("POST /users/@me/channels")  # the DM was opened for the approval
    assert "Sam" in card["content"]
    assert [label for label, _ in buttons(card)] == ["Allow", "Deny"]
    assert not any("homework" in t for t in fake.texts(GENERAL_ID))  # held until the owner decides

    fake.push_component_click(int(card["id"]), buttons(card)[0][1], OWNER)
    await fake.wait_for(lambda: "echo: can you help with my homework?" in fake.texts(GENERAL_ID))
    shown = await fake.wait_for(lambda: (m := fake.messages[int(card["id"])]) and not m["components"] and m)
    assert "allowed" in shown["content"]
    assert (await can_access(discord_host.db, f"discord:{STRANGER.id}", agent_id)).reason == "member"
    assert await approvals_db.list_sender_approvals(discord_host.db) == []
