"""Queries for ``session_pauses``: sessions the turn budget stopped waking until a time or the owner's word.

The pause lives in the central DB, not in memory, so it survives a restart and the CLI can lift it too.
"""

from __future__ import annotations

from dataclasses import dataclass

from nanoclaw_app.db.database import Database
from nanoclaw_app.db.rows import maybe
from nanoclaw_app.timeutil import now_iso


@dataclass(frozen=True, slots=True)
class SessionPause:
    """One paused session."""

    session_id: str
    reason: str
    paused_at: str
    resume_at: str
    approval_id: str | None


async def pause(db: Database, session_id: str, reason: str, resume_at: str) -> bool:
    """Pause a session; False when it already was (so only the first trip tells the owner)."""
    changed = await db.execute(
        "INSERT INTO session_pauses (session_id, reason, paused_at, resume_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (session_id) DO NOTHING",
        (session_id, reason, now_iso(), resume_at),
    )
    return changed == 1


async def get(db: Database, session_id: str) -> SessionPause | None:
    """The session's pause, if it has one (ended or not)."""
    return maybe(SessionPause, await db.fetchone("SELECT * FROM session_pauses WHERE session_id = ?", (session_id,)))


async def set_approval(db: Database, session_id: str, approval_id: str) -> None:
    """Remember the card that lets the owner end the pause early."""
    await db.execute("UPDATE session_pauses SET approval_id = ? WHERE session_id = ?", (approval_id, session_id))


async def lift(db: Database, session_id: str) -> bool:
    """End a pause; False when there was none (lifted already, by the clock or the owner)."""
    return await db.execute("DELETE FROM session_pauses WHERE session_id = ?", (session_id,)) == 1
