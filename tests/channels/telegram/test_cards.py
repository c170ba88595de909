"""Cards on Telegram are inline keyboards: a tap answers the agent's question or an approval, and the card then shows
the choice instead of the buttons.
"""

from __future__ import annotations

import json
from typing import Any

from agent_runner.protocol import AskQuestionOut, QuestionOption
from nanoclaw_app.channels.telegram.keyboards import MAX_CALLBACK_BYTES
from nanoclaw_app.core import pairing
from nanoclaw_app.core.access import can_access
from nanoclaw_app.core.messages import OutboundMessage
from nanoclaw_app.db import approvals as approvals_db
from nanoclaw_app.db import messaging, questions
from nanoclaw_app.host import Host
from tests.channels.telegram.conftest import dm_session, pair, say
from tests.fakes.container import write_out
from tests.fakes.telegram_api import ANN, BOT_USERNAME, SAM, FakeBotApi


def buttons(message: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, callback data) of a message's inline keyboard, top to bottom."""
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [(b["text"], b.get("callback_data") or b.get("url", "")) for row in rows for b in row]


async def card_in(api: FakeBotApi, chat_id: int, title: str) -> dict[str, Any]:
    """Wait for the bot's card with ``title`` in a chat."""
    found: dict[str, Any] = await api.wait_for(lambda: next(
        (m for m in api.bot_messages(chat_id) if m.get("text", "").startswith(title) and m.get("reply_markup")),
        None))
    return found


async def answers(api: FakeBotApi, query_id: str) -> dict[str, Any]:
    """How the bot acknowledged a tap."""
    found: dict[str, Any] = await api.wait_for(lambda: next(
        (p for p in api.sent("answerCallbackQuery") if p["callback_query_id"] == query_id), None))
    return found


async def test_tapping_an_option_answers_the_agents_question_and_the_card_shows_the_choice(
    telegram: Host, api: FakeBotApi, agent_id: str
) -> None:
    await pair(telegram, api)
    await say(api, "plan lunch")
    _, folder = await dm_session(telegram, agent_id)
    question = AskQuestionOut(question_id="q-lunch", title="Lunch", question="Pizza or soup today?",
                              options=[{"label": "Pizza", "value": "pizza"},
                                       {"label": "Soup", "value": "soup", "selected_label": "Soup it is"}])
    write_out(folder, question.to_json(), channel_type="telegram", platform_id=str(ANN.id))

    card = await card_in(api, ANN.id, "Lunch")
    assert card["text"] == "Lunch\n\nPizza or soup today?"
    keyboard = buttons(card)
    assert [label for label, _ in keyboard] == ["Pizza", "Soup"]
    assert all(len(data.encode()) <= MAX_CALLBACK_BYTES for _, data in keyboard)

    tap = api.push_callback(card, keyboard[1][1])
    assert (await answers(api, tap)).get("text") is None  # a plain acknowledgement stops the spinner
    shown = api.messages[(ANN.id, card["message_id"])]
    assert shown["text"] == "Lunch\n\n✓ Soup it is"
    assert "reply_markup" not in shown  # the buttons are gone
    stored = await questions.get(telegram.db, "q-lunch")
    assert stored is not None
    assert stored.answered_at is not None
    answer = await telegram.store.read(
        folder, lambda conn: conn.execute("SELECT content FROM messages_in WHERE id = 'q-lunch:answer'").fetchone(),
        with_outbound=False)
    assert json.loads(answer[0])["selected_option"] == "soup"
    assert json.loads(answer[0])["user_id"] == f"telegram:{ANN.id}"

    again = api.push_callback(card, keyboard[0][1])  # a second tap (an old client still shows the buttons)
    assert (await answers(api, again))["text"] == "Already answered"
    assert api.messages[(ANN.id, card["message_id"])]["text"] == "Lunch\n\n✓ Soup it is"


async def test_taps_on_cards_we_do_not_know_or_from_another_chat_do_nothing(
    telegram: Host, api: FakeBotApi, agent_id: str
) -> None:
    await pair(telegram, api)
    adapter = telegram.channels.get("telegram")
    assert adapter is not None
    await adapter.deliver(str(ANN.id), None, OutboundMessage(
        kind="question", delivery_id="q1", question_id="q-x", title="Pick", text="Which?",
        options=(QuestionOption("A", "a"), QuestionOption("B", "b"))))
    card = await card_in(api, ANN.id, "Pick")
    unknown = api.push_callback(card, "c:999999:0")
    assert (await answers(api, unknown))["text"] == "This card is no longer active"
    garbage = api.push_callback(card, "something else")
    assert (await answers(api, garbage))["text"] == "This card is no longer active"
    sams_chat = api.push_message("hi", user=SAM)
    forged = api.push_callback(sams_chat, buttons(card)[0][1], user=SAM)  # Ann's card id, tapped from Sam's chat
    assert (await answers(api, forged))["text"] == "This card is no longer active"
    assert api.messages[(ANN.id, card["message_id"])].get("reply_markup")  # still open for Ann


async def test_callback_data_fits_telegrams_64_bytes_whatever_the_question(telegram: Host, api: FakeBotApi) -> None:
    adapter = telegram.channels.get("telegram")
    assert adapter is not None
    options = tuple(QuestionOption(f"Option {i} " + "é" * 40, "value-" + "v" * 200 + str(i)) for i in range(12))
    await adapter.deliver(str(ANN.id), None, OutboundMessage(
        kind="question", delivery_id="q-long", question_id="q-" + "x" * 300, title="Many choices", text="Pick one",
        options=options))
    card = await card_in(api, ANN.id, "Many choices")
    data = [d for _, d in buttons(card)]
    assert len(data) == 12
    assert len(set(data)) == 12
    assert max(len(d.encode()) for d in data) <= MAX_CALLBACK_BYTES


async def test_a_display_card_has_link_buttons(telegram: Host, api: FakeBotApi) -> None:
    adapter = telegram.channels.get("telegram")
    assert adapter is not None
    await adapter.deliver(str(ANN.id), None, OutboundMessage(
        kind="card", delivery_id="card-1", title="Flight LH 123", text="Departs **08:40** from gate A12",
        links=({"label": "Check in", "url": "https://example.com/checkin"},)))
    card = await card_in(api, ANN.id, "Flight LH 123")
    assert card["text"] == "Flight LH 123\n\nDeparts 08:40 from gate A12"
    assert buttons(card) == [("Check in", "https://example.com/checkin")]


async def test_a_stranger_is_allowed_from_the_owners_telegram_and_their_held_message_is_answered(
    telegram: Host, api: FakeBotApi, agent_id: str
) -> None:
    await pair(telegram, api)  # Ann is the owner; her DM is where approvals go
    code = await pairing.create_code(telegram.db, "telegram", intent=f"wire:{agent_id}")
    group = api.group_chat(-100555, "Family")
    api.push_message(f"@{BOT_USERNAME} {code.code}", user=ANN, chat=group)
    await api.wait_for(lambda: any(t.startswith("Paired!") for t in api.texts(-100555)))
    chat = await messaging.find(telegram.db, "telegram", "-100555")
    assert chat is not None
    await messaging.update(telegram.db, chat.id, unknown_sender_policy="request_approval")

    api.push_message(f"@{BOT_USERNAME} can you help with my homework?", user=SAM, chat=group)
    card = await card_in(api, ANN.id, "👤 New sender")
    assert "Sam" in card["text"]
    assert "Family" in card["text"]
    assert [label for label, _ in buttons(card)] == ["Allow", "Deny"]
    assert "echo" not in " ".join(api.texts(-100555))  # held until Ann decides

    tap = api.push_callback(card, buttons(card)[0][1])
    await answers(api, tap)
    await api.wait_for(lambda: f"echo: @{BOT_USERNAME} can you help with my homework?" in api.texts(-100555))
    shown = api.messages[(ANN.id, card["message_id"])]
    assert shown["text"] == "👤 New sender\n\n✅ Sam allowed by Ann Koch"  # the host's outcome, not overwritten
    assert "reply_markup" not in shown
    assert (await can_access(telegram.db, f"telegram:{SAM.id}", agent_id)).reason == "member"
    assert await approvals_db.list_sender_approvals(telegram.db) == []


async def test_an_agents_approval_request_is_approved_from_telegram(
    telegram: Host, api: FakeBotApi, agent_id: str
) -> None:
    await pair(telegram, api)
    await say(api, "add my notes server")
    session, _ = await dm_session(telegram, agent_id)
    approval_id = await telegram.approvals.request_approval(
        session=session, action="add_mcp_server", payload={"name": "notes", "command": "notes-mcp"},
        title="Add an MCP server", question="Nano wants to add the MCP server “notes” (notes-mcp). Allow it?",
    )
    assert approval_id is not None
    card = await card_in(api, ANN.id, "Add an MCP server")
    assert [label for label, _ in buttons(card)] == ["Approve", "Reject"]
    await answers(api, api.push_callback(card, buttons(card)[0][1]))
    await api.wait_for(lambda: "Approved" in api.messages[(ANN.id, card["message_id"])]["text"])
    from nanoclaw_app.db import agents

    config = await agents.get_config(telegram.db, agent_id)
    assert config is not None
    assert "notes" in json.loads(config.mcp_servers)
