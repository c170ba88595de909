"""Sent cards are remembered so a number or a button answers the right question, once."""

from __future__ import annotations

from agent_runner.protocol import QuestionOption
from nanoclaw_app.core import cards
from nanoclaw_app.db.database import Database

OPTIONS = [QuestionOption("Allow", "approve"), QuestionOption("Deny", "reject")]


async def test_the_newest_open_card_in_a_chat_is_the_one_a_number_answers(db: Database) -> None:
    first = await cards.record(db, "whatsapp", "chat-1", "q-1", "First", OPTIONS)
    second = await cards.record(db, "whatsapp", "chat-1", "q-2", "Second", OPTIONS)
    await cards.record(db, "whatsapp", "chat-2", "q-3", "Elsewhere", OPTIONS)

    open_card = await cards.open_in_chat(db, "whatsapp", "chat-1")
    assert open_card is not None
    assert open_card.question_id == "q-2"
    assert await cards.mark_answered(db, second.id, "approve")
    assert not await cards.mark_answered(db, second.id, "reject")  # a second answer changes nothing
    again = await cards.open_in_chat(db, "whatsapp", "chat-1")
    assert again is not None
    assert again.id == first.id


async def test_recording_again_reuses_the_card_and_ids_stay_short(db: Database) -> None:
    card = await cards.record(db, "telegram", "42", "q-" + "x" * 80, "Long id", OPTIONS)
    same = await cards.record(db, "telegram", "42", "q-" + "x" * 80, "Long id", OPTIONS)
    assert same.id == card.id
    assert len(f"c:{card.id}:{len(OPTIONS) - 1}".encode()) <= 64
    await cards.set_message(db, card.id, "777")
    stored = await cards.get(db, card.id)
    assert stored is not None
    assert stored.platform_message_id == "777"
    assert [o.label for o in stored.options] == ["Allow", "Deny"]


async def test_a_question_answered_elsewhere_stops_taking_numbers(db: Database) -> None:
    await cards.record(db, "whatsapp", "chat-1", "q-1", "Card", OPTIONS)
    await cards.close_question(db, "q-1", "approve")
    assert await cards.open_in_chat(db, "whatsapp", "chat-1") is None
    closed = await cards.by_question(db, "whatsapp", "q-1")
    assert closed is not None
    assert closed.answer == "approve"
