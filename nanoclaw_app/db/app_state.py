"""Small named values the app keeps between runs (wizard progress, the LAN password hash, the CSRF secret)."""

from __future__ import annotations

from nanoclaw_app.db.database import Database
from nanoclaw_app.timeutil import now_iso


async def get(db: Database, key: str) -> str | None:
    """The stored value, or None."""
    value = await db.fetchval("SELECT value FROM app_state WHERE key = ?", (key,))
    return None if value is None else str(value)


async def put(db: Database, key: str, value: str) -> None:
    """Store or replace a value."""
    await db.execute(
        "INSERT INTO app_state (key, value, updated_at) VALUES (?, ?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        (key, value, now_iso()),
    )


async def delete(db: Database, key: str) -> None:
    """Forget a value (no error when absent)."""
    await db.execute("DELETE FROM app_state WHERE key = ?", (key,))
