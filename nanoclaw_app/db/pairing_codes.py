"""Queries for ``pairing_codes``: the 4-digit codes the app shows to bind a phone chat."""

from __future__ import annotations

from dataclasses import dataclass

from nanoclaw_app.db.database import Database


@dataclass(frozen=True, slots=True)
class PairingCode:
    """A code the app shows, and what sending it does."""

    code: str
    channel_type: str
    intent: str
    created_at: str


async def replace_pending(db: Database, code: str, channel_type: str, intent: str, created_at: str) -> None:
    """Store a new pending code and invalidate the older pending one of the same intent, atomically."""
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE pairing_codes SET state = 'invalidated'"
            " WHERE channel_type = ? AND intent = ? AND state = 'pending'",
            (channel_type, intent),
        )
        await conn.execute(
            "INSERT INTO pairing_codes (code, channel_type, intent, state, created_at) VALUES (?, ?, ?, 'pending', ?)",
            (code, channel_type, intent, created_at),
        )


async def pending(db: Database, channel_type: str) -> list[PairingCode]:
    """Codes of a channel still waiting to be sent, oldest first."""
    rows = await db.fetchall(
        "SELECT code, channel_type, intent, created_at FROM pairing_codes WHERE channel_type = ? AND state = 'pending'"
        " ORDER BY created_at",
        (channel_type,),
    )
    return [PairingCode(str(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows]


async def invalidate_pending(db: Database, channel_type: str) -> None:
    """Invalidate every pending code of a channel."""
    await db.execute(
        "UPDATE pairing_codes SET state = 'invalidated' WHERE channel_type = ? AND state = 'pending'", (channel_type,)
    )


async def mark_used(db: Database, code: PairingCode, used_by: str, platform_id: str) -> bool:
    """Spend a pending code; False when it is no longer pending (someone else spent it first)."""
    changed = await db.execute(
        "UPDATE pairing_codes SET state = 'used', used_by = ?, platform_id = ? WHERE channel_type = ? AND code = ?"
        " AND created_at = ? AND state = 'pending'",
        (used_by, platform_id, code.channel_type, code.code, code.created_at),
    )
    return changed > 0
