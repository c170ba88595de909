"""Queries for ``denied_senders``: remembered "Deny" decisions, so a refused sender does not re-ask on every message.

The original forgot a denial at once, so a persistent stranger produced a fresh card per message; we remember it
for ``settings.sender_denial_seconds``.
"""

from __future__ import annotations

from dataclasses import dataclass

from nanoclaw_app.db.database import Database
from nanoclaw_app.db.rows import from_row
from nanoclaw_app.timeutil import now_iso


@dataclass(frozen=True, slots=True)
class DeniedSender:
    """One remembered denial."""

    messaging_group_id: str
    sender_identity: str
    agent_group_id: str | None
    denied_by: str | None
    denied_at: str
    expires_at: str


async def remember(
    db: Database,
    messaging_group_id: str,
    sender_identity: str,
    *,
    agent_group_id: str | None,
    denied_by: str | None,
    expires_at: str,
) -> None:
    """Remember (or refresh) a denial until ``expires_at``."""
    await db.execute(
        "INSERT INTO denied_senders (messaging_group_id, sender_identity, agent_group_id, denied_by, denied_at,"
        " expires_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (messaging_group_id, sender_identity) DO UPDATE SET"
        " agent_group_id = excluded.agent_group_id, denied_by = excluded.denied_by,"
        " denied_at = excluded.denied_at, expires_at = excluded.expires_at",
        (messaging_group_id, sender_identity, agent_group_id, denied_by, now_iso(), expires_at),
    )


async def is_denied(db: Database, messaging_group_id: str, sender_identity: str) -> bool:
    """True while a denial of this sender in this chat is remembered."""
    row = await db.fetchone(
        "SELECT 1 FROM denied_senders WHERE messaging_group_id = ? AND sender_identity = ? AND expires_at > ?",
        (messaging_group_id, sender_identity, now_iso()),
    )
    return row is not None


async def forget(db: Database, messaging_group_id: str, sender_identity: str) -> bool:
    """Drop a denial (an admin changed their mind); False when none was remembered."""
    changed = await db.execute(
        "DELETE FROM denied_senders WHERE messaging_group_id = ? AND sender_identity = ?",
        (messaging_group_id, sender_identity),
    )
    return changed == 1


async def list_active(db: Database) -> list[DeniedSender]:
    """Denials still in force, newest first."""
    rows = await db.fetchall(
        "SELECT * FROM denied_senders WHERE expires_at > ? ORDER BY denied_at DESC", (now_iso(),)
    )
    return [from_row(DeniedSender, r) for r in rows]


async def purge_expired(db: Database) -> int:
    """Delete denials past their expiry; returns how many."""
    return await db.execute("DELETE FROM denied_senders WHERE expires_at <= ?", (now_iso(),))
