"""Queries for ``channel_contacts``: the chats that wrote to a channel's account first."""

from __future__ import annotations

from nanoclaw_app.db.database import Database
from nanoclaw_app.timeutil import now_iso


async def record(db: Database, channel_type: str, platform_id: str) -> None:
    """Remember that a chat wrote to us (idempotent)."""
    await db.execute(
        "INSERT INTO channel_contacts (channel_type, platform_id, first_seen_at) VALUES (?, ?, ?)"
        " ON CONFLICT (channel_type, platform_id) DO NOTHING",
        (channel_type, platform_id, now_iso()),
    )


async def wrote_first(db: Database, channel_type: str, platform_id: str) -> bool:
    """Whether a chat ever wrote to us."""
    row = await db.fetchone(
        "SELECT 1 FROM channel_contacts WHERE channel_type = ? AND platform_id = ?", (channel_type, platform_id)
    )
    return row is not None
