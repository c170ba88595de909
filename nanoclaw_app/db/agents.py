"""Queries for ``agent_groups`` and ``container_configs``."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Sequence

from nanoclaw_app.db.database import Database
from nanoclaw_app.db.rows import AgentGroup, ContainerConfig, from_row, maybe
from nanoclaw_app.errors import UserError
from nanoclaw_app.ids import new_id
from nanoclaw_app.timeutil import now_iso

_FOLDER_OK = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def slugify(name: str) -> str:
    """Folder-safe slug of an agent name (lowercase letters, digits, dashes)."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:48]
    return slug or "agent"


def check_folder(folder: str) -> str:
    """Refuse folder names that could escape ``<home>/agents`` or collide with special names."""
    if not _FOLDER_OK.match(folder):
        raise UserError(f"invalid agent folder {folder!r}: use lowercase letters, digits and dashes")
    return folder


async def create(db: Database, name: str, folder: str | None = None, *, created_by: str | None = None) -> AgentGroup:
    """Create an agent group and its container config; the folder gets a numeric suffix on collision.

    ``created_by`` is the agent that asked for this one (agent-made agents are capped).
    """
    base = check_folder(folder or slugify(name))
    now = now_iso()
    agent_id = new_id("ag")
    async with db.transaction() as conn:
        candidate, n = base, 1
        while True:
            cursor = await conn.execute("SELECT 1 FROM agent_groups WHERE folder = ?", (candidate,))
            if await cursor.fetchone() is None:
                break
            n += 1
            candidate = f"{base}-{n}"
        await conn.execute(
            "INSERT INTO agent_groups (id, name, folder, created_at, created_by) VALUES (?, ?, ?, ?, ?)",
            (agent_id, name, candidate, now, created_by),
        )
        await conn.execute(
            "INSERT INTO container_configs (agent_group_id, updated_at) VALUES (?, ?)", (agent_id, now)
        )
    return AgentGroup(id=agent_id, name=name, folder=candidate, created_at=now)


async def count_made_by_agents(db: Database) -> int:
    """How many existing agents were made at an agent's request (deleted ones no longer count)."""
    return int(await db.fetchval("SELECT COUNT(*) FROM agent_groups WHERE created_by IS NOT NULL") or 0)


async def get(db: Database, agent_group_id: str) -> AgentGroup | None:
    """One agent group by id."""
    return maybe(AgentGroup, await db.fetchone("SELECT * FROM agent_groups WHERE id = ?", (agent_group_id,)))


async def list_all(db: Database) -> list[AgentGroup]:
    """Every agent group, oldest first."""
    rows = await db.fetchall("SELECT * FROM agent_groups ORDER BY created_at, id")
    return [from_row(AgentGroup, r) for r in rows]


async def get_config(db: Database, agent_group_id: str) -> ContainerConfig | None:
    """The container config of an agent."""
    row = await db.fetchone("SELECT * FROM container_configs WHERE agent_group_id = ?", (agent_group_id,))
    return maybe(ContainerConfig, row)


async def list_configs(db: Database) -> dict[str, ContainerConfig]:
    """Every agent's container config by agent id."""
    rows = await db.fetchall("SELECT * FROM container_configs")
    return {r["agent_group_id"]: from_row(ContainerConfig, r) for r in rows}


_CONFIG_COLUMNS = frozenset(
    {"provider", "model", "effort", "image_tag", "assistant_name", "max_messages_per_prompt", "skills",
     "mcp_servers", "packages_apt", "packages_pip", "packages_npm", "additional_mounts"}
)


async def update_config(db: Database, agent_group_id: str, **changes: object) -> None:
    """Update container-config columns (JSON columns take already-encoded text)."""
    unknown = set(changes) - _CONFIG_COLUMNS
    if unknown:
        raise UserError(f"unknown container config fields: {sorted(unknown)}")
    if not changes:
        return
    assignments = ", ".join(f"{col} = ?" for col in changes)
    await db.execute(
        f"UPDATE container_configs SET {assignments}, updated_at = ? WHERE agent_group_id = ?",
        (*changes.values(), now_iso(), agent_group_id),
    )


async def rename(db: Database, agent_group_id: str, name: str) -> None:
    """Rename an agent; its folder (and so its workspace) keeps its old name."""
    await db.execute("UPDATE agent_groups SET name = ? WHERE id = ?", (name, agent_group_id))


async def set_egress(db: Database, agent_group_id: str, mode: str, sites: Sequence[str]) -> bool:
    """Store an agent's internet access (``open`` or ``sites``, with already-checked sites); False for no agent."""
    changed = await db.execute(
        "UPDATE agent_groups SET egress_mode = ?, egress_sites_json = ? WHERE id = ?",
        (mode, json.dumps(list(sites)), agent_group_id),
    )
    return changed == 1


async def delete(db: Database, agent_group_id: str) -> list[str]:
    """Delete an agent with everything that cascades from it; returns the agents that had it as a destination."""
    rows = await db.fetchall(
        "SELECT DISTINCT agent_group_id FROM agent_destinations WHERE target_type = 'agent' AND target_id = ?",
        (agent_group_id,),
    )
    async with db.transaction() as conn:
        await conn.execute(
            "DELETE FROM agent_destinations WHERE target_type = 'agent' AND target_id = ?", (agent_group_id,)
        )
        await conn.execute("DELETE FROM agent_groups WHERE id = ?", (agent_group_id,))
    return [r["agent_group_id"] for r in rows]


async def session_counts(db: Database) -> dict[str, tuple[int, int]]:
    """Per agent: active sessions, and how many of them have a container that is not stopped."""
    rows = await db.fetchall(
        "SELECT agent_group_id, COUNT(*) AS sessions, SUM(container_status != 'stopped') AS running"
        " FROM sessions WHERE status = 'active' GROUP BY agent_group_id"
    )
    return {r["agent_group_id"]: (int(r["sessions"]), int(r["running"] or 0)) for r in rows}


async def wired_chats(db: Database, agent_group_id: str | None = None) -> list[sqlite3.Row]:
    """The chats each agent (or one agent) answers in, highest priority first, with the chat's name."""
    return await db.fetchall(
        "SELECT w.agent_group_id, w.messaging_group_id, w.engage_mode, m.channel_type, m.platform_id, m.name"
        " FROM messaging_group_agents w JOIN messaging_groups m ON m.id = w.messaging_group_id"
        " WHERE ? IS NULL OR w.agent_group_id = ? ORDER BY w.priority DESC, m.name, m.platform_id",
        (agent_group_id, agent_group_id),
    )
