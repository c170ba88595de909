"""Chats that wrote to this number first (``channel_contacts``): the reply-only guardrail lets replies go only there.

Messaging strangers first ("cold" messages) is the surest way to get a WhatsApp number banned, so by default NanoClaw
only writes to chats that wrote to it. The table lives in the central database, so it survives restarts.
"""

from __future__ import annotations

from nanoclaw_app.db.database import Database
from nanoclaw_app.timeutil import now_iso

CHANNEL = "whatsapp"


async def record(db: Database, platform_id: str) -> None:
    """Remember that a chat wrote to us (idempotent)."""
    await db.execute(
        "INSERT INTO channel_contacts (channel_type, platform_id, first_seen_at) VALUES (?, ?, ?)"
        " ON CONFLICT (channel_type, platform_id) DO NOTHING",
        (CHANNEL, platform_id, now_iso()),
    )


async def wrote_first(db: Database, platform_id: str) -> bool:
    """Whether a chat ever wrote to us."""
    row = await db.fetchone(
        "SELECT 1 FROM channel_contacts WHERE channel_type = ? AND platform_id = ?", (CHANNEL, platform_id)
    )
    return row is not None
