"""Question and approval cards a phone channel sent, so an answer can be matched to them later.

WhatsApp answers by replying with a number (the newest open card in that chat is the one answered); Telegram's button
carries ``c:<card id>:<option index>``, which fits its 64-byte callback limit whatever the question id is. Both
survive a restart because the cards live in the central database.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from agent_runner.protocol import QuestionOption
from nanoclaw_app.db.database import Database
from nanoclaw_app.timeutil import now_iso


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
    await db.execute(
        "INSERT INTO channel_cards (channel_type, platform_id, question_id, title, options_json, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (channel_type, question_id) DO NOTHING",
        (channel_type, platform_id, question_id, title, options_json, now_iso()),
    )
    card = await by_question(db, channel_type, question_id)
    assert card is not None
    return card


async def set_message(db: Database, card_id: int, platform_message_id: str | None) -> None:
    """The platform's id of the sent card (to edit it once answered)."""
    await db.execute("UPDATE channel_cards SET platform_message_id = ? WHERE id = ?", (platform_message_id, card_id))


async def get(db: Database, card_id: int) -> SentCard | None:
    """A card by its short id."""
    row = await db.fetchone("SELECT * FROM channel_cards WHERE id = ?", (card_id,))
    return None if row is None else _card(row)


async def by_question(db: Database, channel_type: str, question_id: str) -> SentCard | None:
    """The card sent for a question on a channel."""
    row = await db.fetchone(
        "SELECT * FROM channel_cards WHERE channel_type = ? AND question_id = ?", (channel_type, question_id)
    )
    return None if row is None else _card(row)


async def open_in_chat(db: Database, channel_type: str, platform_id: str) -> SentCard | None:
    """The newest unanswered card in a chat: a bare number sent there answers it."""
    row = await db.fetchone(
        "SELECT * FROM channel_cards WHERE channel_type = ? AND platform_id = ? AND answer IS NULL"
        " ORDER BY id DESC LIMIT 1",
        (channel_type, platform_id),
    )
    return None if row is None else _card(row)


async def mark_answered(db: Database, card_id: int, value: str) -> bool:
    """Record the answer; False when the card was already answered (a double tap, two people at once)."""
    changed = await db.execute("UPDATE channel_cards SET answer = ? WHERE id = ? AND answer IS NULL", (value, card_id))
    return changed > 0


async def close_question(db: Database, question_id: str, value: str) -> None:
    """The question was answered elsewhere (the app, another channel): numbers sent later must not answer it."""
    await db.execute("UPDATE channel_cards SET answer = ? WHERE question_id = ? AND answer IS NULL",
                     (value, question_id))


def _card(row: sqlite3.Row) -> SentCard:
    data = dict(row)
    options = tuple(QuestionOption.from_dict(o) for o in json.loads(data["options_json"]))
    return SentCard(
        id=int(data["id"]), channel_type=str(data["channel_type"]), platform_id=str(data["platform_id"]),
        question_id=str(data["question_id"]), title=str(data["title"]), options=options,
        platform_message_id=data["platform_message_id"], answer=data["answer"],
    )
