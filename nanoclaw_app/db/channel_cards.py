"""Queries for ``channel_cards``: question cards a phone channel sent, kept so a later answer finds its card."""

from __future__ import annotations

from dataclasses import dataclass

from nanoclaw_app.db.database import Database
from nanoclaw_app.db.rows import maybe
from nanoclaw_app.timeutil import now_iso


@dataclass(frozen=True, slots=True)
class ChannelCard:
    """One stored card; ``options_json`` stays text here, the channel layer reads it into options."""

    id: int
    channel_type: str
    platform_id: str
    question_id: str
    title: str
    options_json: str
    platform_message_id: str | None
    answer: str | None


async def insert(
    db: Database, channel_type: str, platform_id: str, question_id: str, title: str, options_json: str
) -> None:
    """Store a card; a second card for the same question on the same channel is ignored (a resend)."""
    await db.execute(
        "INSERT INTO channel_cards (channel_type, platform_id, question_id, title, options_json, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (channel_type, question_id) DO NOTHING",
        (channel_type, platform_id, question_id, title, options_json, now_iso()),
    )


async def set_message(db: Database, card_id: int, platform_message_id: str | None) -> None:
    """Remember the platform's id of the sent card, so it can be edited once answered."""
    await db.execute("UPDATE channel_cards SET platform_message_id = ? WHERE id = ?", (platform_message_id, card_id))


async def get(db: Database, card_id: int) -> ChannelCard | None:
    """A card by its short id."""
    return maybe(ChannelCard, await db.fetchone("SELECT * FROM channel_cards WHERE id = ?", (card_id,)))


async def by_question(db: Database, channel_type: str, question_id: str) -> ChannelCard | None:
    """The card sent for a question on a channel."""
    row = await db.fetchone(
        "SELECT * FROM channel_cards WHERE channel_type = ? AND question_id = ?", (channel_type, question_id)
    )
    return maybe(ChannelCard, row)


async def newest_open(db: Database, channel_type: str, platform_id: str) -> ChannelCard | None:
    """The newest unanswered card in a chat."""
    row = await db.fetchone(
        "SELECT * FROM channel_cards WHERE channel_type = ? AND platform_id = ? AND answer IS NULL"
        " ORDER BY id DESC LIMIT 1",
        (channel_type, platform_id),
    )
    return maybe(ChannelCard, row)


async def answer(db: Database, card_id: int, value: str) -> bool:
    """Set the answer unless one is already there; False when it was (only the first answer counts)."""
    changed = await db.execute("UPDATE channel_cards SET answer = ? WHERE id = ? AND answer IS NULL", (value, card_id))
    return changed > 0


async def answer_question(db: Database, question_id: str, value: str) -> None:
    """Answer every still-open card of a question, on every channel."""
    await db.execute(
        "UPDATE channel_cards SET answer = ? WHERE question_id = ? AND answer IS NULL", (value, question_id)
    )
