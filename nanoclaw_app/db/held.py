"""Queries for ``held_messages``: messages a session database refused for a moment, kept until it takes them.

A row lives from the failed write until the message is in the session's ``inbound.db`` (or is given up and recorded
as a drop); while it exists, the in-app chat shows the message as waiting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nanoclaw_app.db.database import Database
from nanoclaw_app.db.rows import from_row
from nanoclaw_app.timeutil import now_iso


@dataclass(frozen=True, slots=True)
class HeldMessage:
    """One ``held_messages`` row (``message`` is ``InboundMessage.to_json()``)."""

    id: int
    session_id: str
    agent_group_id: str
    channel_type: str
    platform_id: str
    message_id: str
    user_id: str | None
    trigger: int
    message: str
    attempts: int
    last_error: str | None
    next_attempt_at: str
    created_at: str


async def hold(
    db: Database,
    *,
    session_id: str,
    agent_group_id: str,
    channel_type: str,
    platform_id: str,
    message_id: str,
    user_id: str | None,
    trigger: bool,
    message: str,
    error: str | None,
    next_attempt_at: str,
) -> bool:
    """Keep a message for a session; False when it is held for that session already (a repeated delivery)."""
    count = await db.execute(
        "INSERT INTO held_messages (session_id, agent_group_id, channel_type, platform_id, message_id, user_id,"
        " trigger, message, attempts, last_error, next_attempt_at, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?) ON CONFLICT (session_id, message_id) DO NOTHING",
        (session_id, agent_group_id, channel_type, platform_id, message_id, user_id, int(trigger), message, error,
         next_attempt_at, now_iso()),
    )
    return count > 0


_HEADS = "WITH heads AS (SELECT MIN(id) AS id FROM held_messages GROUP BY session_id) "
"""The oldest held message of each session: only its time counts, the later ones wait behind it."""


async def due(db: Database, now: str) -> list[HeldMessage]:
    """Every held message of the sessions whose oldest one is due, in arrival order.

    A session's later messages come along: they are tried right after the oldest (never before it), so the session
    gets them in the order they arrived.
    """
    rows = await db.fetchall(
        _HEADS + "SELECT * FROM held_messages WHERE session_id IN"
        " (SELECT h.session_id FROM held_messages h JOIN heads USING (id) WHERE h.next_attempt_at <= ?) ORDER BY id",
        (now,),
    )
    return [from_row(HeldMessage, r) for r in rows]


async def next_due(db: Database) -> str | None:
    """When the next session's oldest held message is due (None when nothing is held)."""
    value = await db.fetchval(_HEADS + "SELECT MIN(h.next_attempt_at) FROM held_messages h JOIN heads USING (id)")
    return None if value is None else str(value)


async def counts(db: Database) -> dict[str, int]:
    """How many messages wait for each session that has any."""
    rows = await db.fetchall("SELECT session_id, COUNT(*) FROM held_messages GROUP BY session_id")
    return {str(r[0]): int(r[1]) for r in rows}


async def retry_later(db: Database, held_id: int, *, attempts: int, error: str, next_attempt_at: str) -> None:
    """Count a failed attempt and set the next one."""
    await db.execute(
        "UPDATE held_messages SET attempts = ?, last_error = ?, next_attempt_at = ? WHERE id = ?",
        (attempts, error, next_attempt_at, held_id),
    )


async def release(db: Database, held_id: int) -> None:
    """The message reached its session (or was given up): stop holding it."""
    await db.execute("DELETE FROM held_messages WHERE id = ?", (held_id,))


async def waiting(db: Database, channel_type: str, platform_id: str, message_ids: Sequence[str]) -> set[str]:
    """Which of a chat's messages are still held for at least one of its agents."""
    if not message_ids:
        return set()
    marks = ", ".join("?" for _ in message_ids)
    rows = await db.fetchall(
        f"SELECT DISTINCT message_id FROM held_messages WHERE channel_type = ? AND platform_id = ?"
        f" AND message_id IN ({marks})",
        (channel_type, platform_id, *message_ids),
    )
    return {str(r[0]) for r in rows}
