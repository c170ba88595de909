"""Question and approval cards on WhatsApp: numbered options, answered by replying with the number."""

from __future__ import annotations

import json

from agent_runner.protocol import AskQuestionOut
from nanoclaw_app.db import agents, messaging, questions, users
from tests.channels.whatsapp.conftest import WhatsApp
from tests.fakes.container import write_out
from tests.fakes.neonize_client import text_dm
from tests.waiting import until

BOB = "4930111222333"
BOB_CHAT = f"{BOB}@s.whatsapp.net"


async def test_a_question_card_is_answered_by_replying_with_a_number(linked: WhatsApp) -> None:
    chat = await linked.pair_owner()
    fake = linked.fake
    assert await fake.emit_message(text_dm("plan lunch"))
    await linked.reply_to("plan lunch")
    folder = await linked.session_folder()
    card = AskQuestionOut(question_id="q-lunch", title="Lunch", question="Pizza or soup today?",
                          options=[{"label": "Pizza", "value": "pizza"},
                                   {"label": "Soup", "value": "soup", "selected_label": "🍲 Soup it is"}])
    write_out(folder, card.to_json(), channel_type="whatsapp", platform_id=chat)
    await until(lambda: any("1. Pizza" in t for t in fake.texts()))
    sent = next(s for s in fake.sent if "1. Pizza" in s.text)
    assert sent.chat == chat
    assert sent.text == "*Lunch*\nPizza or soup today?\n\n1. Pizza\n2. Soup\n\nReply with the number of your choice."

    assert await fake.emit_message(text_dm("7"))  # not an option: an ordinary message for the agent
    await linked.reply_to("7")
    assert await fake.emit_message(text_dm(" 2. "))
    await until(lambda: "✓ 🍲 Soup it is" in fake.texts())
    stored = await questions.get(linked.host.db, "q-lunch")
    assert stored is not None
    assert stored.answered_at is not None
    answer = await linked.host.store.read(
        folder, lambda conn: conn.execute("SELECT content FROM messages_in WHERE id = 'q-lunch:answer'").fetchone(),
        with_outbound=False,
    )
    assert json.loads(answer[0])["selected_option"] == "soup"
    assert "echo:  2. " not in fake.texts()  # the number answered the card and went nowhere else


async def test_a_sender_approval_is_granted_from_whatsapp_by_replying_1(linked: WhatsApp) -> None:
    owner_chat = await linked.pair_owner()
    fake, db = linked.fake, linked.host.db
    agent = (await agents.list_all(db))[0]
    bobs = await messaging.create(db, "whatsapp", BOB_CHAT, name="Bob", unknown_sender_policy="request_approval")
    await messaging.wire(db, bobs.id, agent.id, messaging.WiringSpec(engage_mode="pattern", engage_pattern="."))

    assert await fake.emit_message(text_dm("hi, it's Bob", sender=BOB, push_name="Bob"))
    await until(lambda: any("1. Allow" in t for t in fake.texts(owner_chat)))
    card = next(t for t in fake.texts(owner_chat) if "1. Allow" in t)
    assert "Bob wants to talk to your agent" in card
    assert "2. Deny" in card
    assert "echo: hi, it's Bob" not in fake.texts()

    assert await fake.emit_message(text_dm("1"))  # the owner answers on their phone
    await until(lambda: "echo: hi, it's Bob" in fake.texts(BOB_CHAT))  # the held message was replayed
    owner_texts = fake.texts(owner_chat)
    assert "✓ ✅ Allowed" in owner_texts
    assert any(t.startswith("✏️ ") and "allowed by Olivia" in t for t in owner_texts)  # the card's outcome
    assert await users.is_member(db, f"whatsapp:{BOB_CHAT}", agent.id)
