"""Chats that wrote to this number first (``channel_contacts``): the reply-only guardrail lets replies go only there.

Messaging strangers first ("cold" messages) is the surest way to get a WhatsApp number banned, so by default NanoClaw
only writes to chats that wrote to it. The table lives in the central database, so it survives restarts.
"""

from __future__ import annotations

from nanoclaw_app.db import channel_contacts
from nanoclaw_app.db.database import Database

CHANNEL = "whatsapp"


async def record(db: Database, platform_id: str) -> None:
    """Remember that a chat wrote to us (idempotent)."""
    await channel_contacts.record(db, CHANNEL, platform_id)


async def wrote_first(db: Database, platform_id: str) -> bool:
    """Whether a chat ever wrote to us."""
    return await channel_contacts.wrote_first(db, CHANNEL, platform_id)
