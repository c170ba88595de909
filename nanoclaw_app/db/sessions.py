"""Queries for ``sessions``: lifecycle metadata only (the messages live in the session's own DBs)."""

from __future__ import annotations

import sqlite3

from nanoclaw_app.db.database import Database
from nanoclaw_app.db.rows import Session, from_row, maybe
from nanoclaw_app.ids import new_id
from nanoclaw_app.timeutil import now_iso


def _scope(session_mode: str, messaging_group_id: str | None, thread_id: str | None) -> tuple[str | None, str | None]:
    """What a mode keys on: agent-shared ignores the chat, shared ignores the thread."""
    if session_mode == "agent-shared":
        return None, None
    if session_mode == "shared":
        return messaging_group_id, None
    return messaging_group_id, thread_id


async def find(
    db: Database, agent_group_id: str, session_mode: str, messaging_group_id: str | None, thread_id: str | None
) -> Session | None:
    """The active session for this scope, always scoped by agent so fan-out never lands in a sibling's session."""
    mg, thread = _scope(session_mode, messaging_group_id, thread_id)
    row = await db.fetchone(
        "SELECT * FROM sessions WHERE agent_group_id = ? AND session_mode = ? AND status = 'active'"
        " AND COALESCE(messaging_group_id, '') = ? AND COALESCE(thread_id, '') = ?",
        (agent_group_id, session_mode, mg or "", thread or ""),
    )
    return maybe(Session, row)


async def find_or_create(
    db: Database, agent_group_id: str, session_mode: str, messaging_group_id: str | None, thread_id: str | None
) -> tuple[Session, bool]:
    """Return the scope's active session, creating it if needed; the flag says whether it is new."""
    found = await find(db, agent_group_id, session_mode, messaging_group_id, thread_id)
    if found is not None:
        return found, False
    mg, thread = _scope(session_mode, messaging_group_id, thread_id)
    now = now_iso()
    session_id = new_id("sess")
    try:
        await db.execute(
            "INSERT INTO sessions (id, agent_group_id, messaging_group_id, thread_id, session_mode, status,"
            " container_status, last_active, created_at) VALUES (?, ?, ?, ?, ?, 'active', 'stopped', ?, ?)",
            (session_id, agent_group_id, mg, thread, session_mode, now, now),
        )
    except sqlite3.IntegrityError:
        # Lost a race with a concurrent creator of the same scope: the unique index kept one.
        again = await find(db, agent_group_id, session_mode, messaging_group_id, thread_id)
        assert again is not None
        return again, False
    created = await get(db, session_id)
    assert created is not None
    return created, True


async def get(db: Database, session_id: str) -> Session | None:
    """One session."""
    return maybe(Session, await db.fetchone("SELECT * FROM sessions WHERE id = ?", (session_id,)))


async def list_active(db: Database) -> list[Session]:
    """Every active session."""
    rows = await db.fetchall("SELECT * FROM sessions WHERE status = 'active' ORDER BY created_at")
    return [from_row(Session, r) for r in rows]


async def list_recently_active(db: Database, since: str, limit: int) -> list[Session]:
    """Active sessions with activity at or after ``since`` (ISO), most recent first."""
    rows = await db.fetchall(
        "SELECT * FROM sessions WHERE status = 'active' AND last_active >= ? ORDER BY last_active DESC LIMIT ?",
        (since, limit),
    )
    return [from_row(Session, r) for r in rows]


async def list_for_agent(db: Database, agent_group_id: str) -> list[Session]:
    """Active sessions of one agent."""
    rows = await db.fetchall(
        "SELECT * FROM sessions WHERE agent_group_id = ? AND status = 'active' ORDER BY created_at", (agent_group_id,)
    )
    return [from_row(Session, r) for r in rows]


async def set_container_status(db: Database, session_id: str, status: str) -> None:
    """Record whether the session's container is stopped, starting, running or idle."""
    await db.execute("UPDATE sessions SET container_status = ? WHERE id = ?", (status, session_id))


async def touch(db: Database, session_id: str) -> None:
    """Record activity now."""
    await db.execute("UPDATE sessions SET last_active = ? WHERE id = ?", (now_iso(), session_id))


async def close(db: Database, session_id: str) -> None:
    """Close a session; a new message in the same scope opens a fresh one."""
    await db.execute("UPDATE sessions SET status = 'closed', container_status = 'stopped' WHERE id = ?", (session_id,))


async def ids_for_agent(db: Database, agent_group_id: str) -> set[str]:
    """Every session id of one agent, active or not."""
    rows = await db.fetchall("SELECT id FROM sessions WHERE agent_group_id = ?", (agent_group_id,))
    return {str(row["id"]) for row in rows}

