"""Question and approval cards a phone channel sent, so an answer can be matched to them later.

WhatsApp answers by replying with a number (the newest open card in that chat is the one answered); Telegram's button
carries ``c:<card id>:<option index>``, which fits its 64-byte callback limit whatever the question id is. Both
survive a restart because the cards live in the central database.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from agent_runner.protocol import QuestionOption
from nanoclaw_app.db import channel_cards
from nanoclaw_app.db.database import Database


@dataclass(frozen=True, slots=True)
class SentCard:
    """A card as sent: its options in order and, once answered, the chosen value."""

    id: int
    channel_type: str
    platform_id: str
    question_id: str
    title: str
    options: tuple[QuestionOption, ...]
    platform_message_id: str | None
    answer: str | None


async def record(
    db: Database, channel_type: str, platform_id: str, question_id: str, title: str,
    options: Sequence[QuestionOption],
) -> SentCard:
    """Remember a card before it is sent (idempotent per question: a resend reuses the same row)."""
    options_json = json.dumps([o.to_dict() for o in options], ensure_ascii=False)
    await channel_cards.insert(db, channel_type, platform_id, question_id, title, options_json)
    card = await by_question(db, channel_type, question_id)
    assert card is not None
    return card


async def set_message(db: Database, card_id: int, platform_message_id: str | None) -> None:
    """The platform's id of the sent card (to edit it once answered)."""
    await channel_cards.set_message(db, card_id, platform_message_id)


async def get(db: Database, card_id: int) -> SentCard | None:
    """A card by its short id."""
    return _card(await channel_cards.get(db, card_id))


async def by_question(db: Database, channel_type: str, question_id: str) -> SentCard | None:
    """The card sent for a question on a channel."""
    return _card(await channel_cards.by_question(db, channel_type, question_id))


async def open_in_chat(db: Database, channel_type: str, platform_id: str) -> SentCard | None:
    """The newest unanswered card in a chat: a bare number sent there answers it."""
    return _card(await channel_cards.newest_open(db, channel_type, platform_id))


async def mark_answered(db: Database, card_id: int, value: str) -> bool:
    """Record the answer; False when the card was already answered (a double tap, two people at once)."""
    return await channel_cards.answer(db, card_id, value)


async def close_question(db: Database, question_id: str, value: str) -> None:
    """The question was answered elsewhere (the app, another channel): numbers sent later must not answer it."""
    await channel_cards.answer_question(db, question_id, value)


def _card(row: channel_cards.ChannelCard | None) -> SentCard | None:
    if row is None:
        return None
    options = tuple(QuestionOption.from_dict(o) for o in json.loads(row.options_json))
    return SentCard(
        id=row.id, channel_type=row.channel_type, platform_id=row.platform_id, question_id=row.question_id,
        title=row.title, options=options,
        platform_message_id=row.platform_message_id, answer=row.answer,
    )
