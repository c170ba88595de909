"""Queries for ``agent_groups`` and ``container_configs``."""

from __future__ import annotations

import re

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


async def create(db: Database, name: str, folder: str | None = None) -> AgentGroup:
    """Create an agent group and its container config; the folder gets a numeric suffix on collision."""
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
            "INSERT INTO agent_groups (id, name, folder, created_at) VALUES (?, ?, ?, ?)",
            (agent_id, name, candidate, now),
        )
        await conn.execute(
            "INSERT INTO container_configs (agent_group_id, updated_at) VALUES (?, ?)", (agent_id, now)
        )
    return AgentGroup(id=agent_id, name=name, folder=candidate, created_at=now)


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
