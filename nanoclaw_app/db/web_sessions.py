"""Queries for ``web_sessions`` and ``login_tokens``: browser sign-ins and the one-time links that start them.

Only hashes are passed in and stored (hashing stays in ``services/auth.py``); times are ISO strings from the caller,
so a check and the write it decides on use the same moment.
"""

from __future__ import annotations

from nanoclaw_app.db.database import Database


async def add_login_token(db: Database, token_hash: str, created_at: str, expires_at: str) -> None:
    """Store a one-time login link token until ``expires_at``."""
    await db.execute(
        "INSERT INTO login_tokens (token_hash, created_at, expires_at) VALUES (?, ?, ?)",
        (token_hash, created_at, expires_at),
    )


async def take_login_token(db: Database, token_hash: str, now: str) -> bool:
    """Use up a live login token (False when unknown, used or expired); expired tokens are pruned in passing."""
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "DELETE FROM login_tokens WHERE token_hash = ? AND expires_at > ?", (token_hash, now)
        )
        taken = cursor.rowcount == 1
        await conn.execute("DELETE FROM login_tokens WHERE expires_at <= ?", (now,))
    return taken


async def start(db: Database, token_hash: str, origin: str, now: str, expires_at: str) -> None:
    """Record a new session (``origin``: link, window or password); expired sessions are pruned in passing."""
    async with db.transaction() as conn:
        await conn.execute("DELETE FROM web_sessions WHERE expires_at <= ?", (now,))
        await conn.execute(
            "INSERT INTO web_sessions (token_hash, origin, created_at, last_seen_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (token_hash, origin, now, now, expires_at),
        )


async def last_seen(db: Database, token_hash: str, now: str) -> str | None:
    """When a live session was last seen; None when there is no such session or it has expired."""
    value = await db.fetchval(
        "SELECT last_seen_at FROM web_sessions WHERE token_hash = ? AND expires_at > ?", (token_hash, now)
    )
    return None if value is None else str(value)


async def touch(db: Database, token_hash: str, now: str) -> None:
    """Note that a session was seen ``now``."""
    await db.execute("UPDATE web_sessions SET last_seen_at = ? WHERE token_hash = ?", (now, token_hash))


async def count_others(db: Database, token_hash: str, now: str) -> int:
    """How many live sessions there are besides this one."""
    count = await db.fetchval(
        "SELECT COUNT(*) FROM web_sessions WHERE token_hash != ? AND expires_at > ?", (token_hash, now)
    )
    return int(count or 0)


async def end(db: Database, token_hash: str) -> None:
    """End one session (no error when it is already gone)."""
    await db.execute("DELETE FROM web_sessions WHERE token_hash = ?", (token_hash,))


async def end_others(db: Database, token_hash: str) -> int:
    """End every session but this one; returns how many ended."""
    return await db.execute("DELETE FROM web_sessions WHERE token_hash != ?", (token_hash,))


async def end_by_origin(db: Database, origin: str) -> None:
    """End every session that was started the same way (e.g. all ``password`` sessions)."""
    await db.execute("DELETE FROM web_sessions WHERE origin = ?", (origin,))
