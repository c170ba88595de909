"""Queries for ``pending_questions``: open ``ask_user_question`` cards waiting for a click."""

from __future__ import annotations

from dataclasses import dataclass

from nanoclaw_app.db.database import Database
from nanoclaw_app.db.rows import maybe
from nanoclaw_app.timeutil import now_iso


@dataclass(frozen=True, slots=True)
class PendingQuestion:
    """A question card sent to a chat, and where its answer must go."""

    question_id: str
    session_id: str
    message_out_id: str
    platform_id: str | None
    channel_type: str | None
    thread_id: str | None
    title: str
    options_json: str
    platform_message_id: str | None
    answered_at: str | None
    created_at: str


async def create(
    db: Database,
    *,
    question_id: str,
    session_id: str,
    message_out_id: str,
    platform_id: str | None,
    channel_type: str | None,
    thread_id: str | None,
    title: str,
    options_json: str,
) -> None:
    """Record a question card before it is sent (idempotent for retried deliveries)."""
    await db.execute(
        "INSERT INTO pending_questions (question_id, session_id, message_out_id, platform_id, channel_type,"
        " thread_id, title, options_json, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (question_id) DO NOTHING",
        (question_id, session_id, message_out_id, platform_id, channel_type, thread_id, title, options_json,
         now_iso()),
    )


async def set_platform_message(db: Database, question_id: str, platform_message_id: str | None) -> None:
    """Remember the card's platform message id so it can be edited to show the choice."""
    await db.execute(
        "UPDATE pending_questions SET platform_message_id = ? WHERE question_id = ?",
        (platform_message_id, question_id),
    )


async def get(db: Database, question_id: str) -> PendingQuestion | None:
    """One pending question."""
    row = await db.fetchone("SELECT * FROM pending_questions WHERE question_id = ?", (question_id,))
    return maybe(PendingQuestion, row)


async def mark_answered(db: Database, question_id: str) -> bool:
    """Mark answered once; False when it was already answered (a double click)."""
    changed = await db.execute(
        "UPDATE pending_questions SET answered_at = ? WHERE question_id = ? AND answered_at IS NULL",
        (now_iso(), question_id),
    )
    return changed == 1
