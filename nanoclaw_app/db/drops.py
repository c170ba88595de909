"""Queries for ``dropped_messages``: the audit of every inbound message that reached no agent, and why.

Rows are aggregated (one per chat, sender, reason and agent) so a chatty group cannot grow the table without bound,
while the count, the last time and the last text still show the user what is being refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from nanoclaw_app.db.database import Database
from nanoclaw_app.db.rows import from_row
from nanoclaw_app.timeutil import now_iso

MAX_TEXT = 200
"""Characters of the last dropped text kept for the activity page (enough to recognise it, not a message archive)."""


@dataclass(frozen=True, slots=True)
class DroppedMessage:
    """One aggregated ``dropped_messages`` row."""

    id: int
    channel_type: str
    platform_id: str
    user_id: str | None
    sender_name: str | None
    reason: str
    detail: str | None
    messaging_group_id: str | None
    agent_group_id: str | None
    last_text: str | None
    message_count: int
    first_seen: str
    last_seen: str


@dataclass(frozen=True, slots=True)
class ReasonTotal:
    """How many messages were dropped for one reason over the whole history, and from how many aggregates."""

    reason: str
    messages: int
    senders: int
    """Aggregate rows with this reason: distinct chat, sender and agent combinations."""


async def record(
    db: Database,
    *,
    channel_type: str,
    platform_id: str,
    reason: str,
    user_id: str | None = None,
    sender_name: str | None = None,
    messaging_group_id: str | None = None,
    agent_group_id: str | None = None,
    text: str | None = None,
    detail: str | None = None,
) -> None:
    """Count one dropped message: insert its aggregate row, or bump the count and refresh the last-seen facts."""
    now = now_iso()
    last_text = None if text is None else text[:MAX_TEXT]
    await db.execute(
        "INSERT INTO dropped_messages (channel_type, platform_id, user_id, sender_name, reason, detail,"
        " messaging_group_id, agent_group_id, last_text, message_count, first_seen, last_seen)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)"
        " ON CONFLICT (channel_type, platform_id, COALESCE(user_id, ''), reason, COALESCE(agent_group_id, ''))"
        " DO UPDATE SET message_count = message_count + 1, last_seen = excluded.last_seen,"
        " last_text = excluded.last_text,"
        " sender_name = COALESCE(excluded.sender_name, sender_name),"
        " detail = COALESCE(excluded.detail, detail),"
        " messaging_group_id = COALESCE(excluded.messaging_group_id, messaging_group_id)",
        (channel_type, platform_id, user_id, sender_name or None, reason, detail, messaging_group_id,
         agent_group_id, last_text, now, now),
    )


async def list_recent(db: Database, limit: int = 200) -> list[DroppedMessage]:
    """The most recently seen aggregates first."""
    rows = await db.fetchall(
        "SELECT * FROM dropped_messages ORDER BY last_seen DESC, id DESC LIMIT ?", (max(0, int(limit)),)
    )
    return [from_row(DroppedMessage, r) for r in rows]


async def reason_totals(db: Database) -> list[ReasonTotal]:
    """Dropped messages per reason, the most frequent reason first."""
    rows = await db.fetchall(
        "SELECT reason, SUM(message_count), COUNT(*) FROM dropped_messages GROUP BY reason"
        " ORDER BY SUM(message_count) DESC, reason"
    )
    return [ReasonTotal(reason=str(r[0]), messages=int(r[1]), senders=int(r[2])) for r in rows]
