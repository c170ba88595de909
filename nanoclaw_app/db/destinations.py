"""Queries for ``agent_destinations``: both the outbound ACL and the agent's name map."""

from __future__ import annotations

import re

import aiosqlite

from nanoclaw_app.db.database import Database
from nanoclaw_app.db.rows import AgentDestination, from_row, maybe
from nanoclaw_app.errors import UserError
from nanoclaw_app.timeutil import now_iso


def normalize_name(text: str) -> str:
    """Destination names are lowercase words joined by dashes (what the agent writes in ``to="..."``)."""
    name = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40]
    return name or "chat"


async def free_name(conn: aiosqlite.Connection, agent_group_id: str, base: str) -> str:
    """``base``, or ``base-2``, ``base-3``, ... whichever is not yet taken for this agent."""
    candidate, n = base, 1
    while True:
        cursor = await conn.execute(
            "SELECT 1 FROM agent_destinations WHERE agent_group_id = ? AND local_name = ?", (agent_group_id, candidate)
        )
        if await cursor.fetchone() is None:
            return candidate
        n += 1
        candidate = f"{base}-{n}"


async def add(db: Database, agent_group_id: str, local_name: str, target_type: str, target_id: str) -> str:
    """Add a destination; the name gets a suffix on collision. Returns the name used."""
    if target_type not in ("channel", "agent"):
        raise UserError("target_type must be 'channel' or 'agent'")
    async with db.transaction() as conn:
        name = await free_name(conn, agent_group_id, normalize_name(local_name))
        await conn.execute(
            "INSERT INTO agent_destinations (agent_group_id, local_name, target_type, target_id, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (agent_group_id, name, target_type, target_id, now_iso()),
        )
    return name


async def remove(db: Database, agent_group_id: str, local_name: str) -> None:
    """Remove one destination."""
    await db.execute(
        "DELETE FROM agent_destinations WHERE agent_group_id = ? AND local_name = ?", (agent_group_id, local_name)
    )


async def list_for(db: Database, agent_group_id: str) -> list[AgentDestination]:
    """All destinations of an agent, by name."""
    rows = await db.fetchall(
        "SELECT * FROM agent_destinations WHERE agent_group_id = ? ORDER BY local_name", (agent_group_id,)
    )
    return [from_row(AgentDestination, r) for r in rows]


async def find_target(
    db: Database, agent_group_id: str, target_type: str, target_id: str
) -> AgentDestination | None:
    """The destination an agent has for a target, if any (the ACL check)."""
    row = await db.fetchone(
        "SELECT * FROM agent_destinations WHERE agent_group_id = ? AND target_type = ? AND target_id = ?",
        (agent_group_id, target_type, target_id),
    )
    return maybe(AgentDestination, row)
