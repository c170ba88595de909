"""Queries for ``users``, ``user_roles``, ``agent_group_members`` and the ``user_dms`` cache."""

from __future__ import annotations

from nanoclaw_app.db.database import Database
from nanoclaw_app.db.rows import Role, User, from_row, maybe
from nanoclaw_app.errors import UserError
from nanoclaw_app.timeutil import now_iso


def namespaced(channel_type: str, raw_id: str) -> str:
    """``<channel>:<handle>``, unless the id already carries a namespace."""
    return raw_id if ":" in raw_id else f"{channel_type}:{raw_id}"


async def upsert(db: Database, user_id: str, kind: str, display_name: str | None = None) -> None:
    """Create the user, or refresh the display name when a new one is known (no write when nothing changed)."""
    row = await db.fetchone("SELECT display_name FROM users WHERE id = ?", (user_id,))
    if row is not None and (not display_name or row["display_name"] == display_name):
        return
    await db.execute(
        "INSERT INTO users (id, kind, display_name, created_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET display_name = COALESCE(excluded.display_name, users.display_name)",
        (user_id, kind, display_name, now_iso()),
    )


async def get(db: Database, user_id: str) -> User | None:
    """One user."""
    return maybe(User, await db.fetchone("SELECT * FROM users WHERE id = ?", (user_id,)))


async def list_all(db: Database) -> list[User]:
    """Every user."""
    return [from_row(User, r) for r in await db.fetchall("SELECT * FROM users ORDER BY created_at, id")]


async def grant(
    db: Database, user_id: str, role: str, agent_group_id: str | None = None, granted_by: str | None = None
) -> None:
    """Grant a role. Owners are global only; admins may be global or scoped to one agent."""
    if role not in ("owner", "admin"):
        raise UserError(f"unknown role {role!r}")
    if role == "owner" and agent_group_id is not None:
        raise UserError("the owner role is global; it cannot be scoped to one agent")
    await db.execute(
        "INSERT INTO user_roles (user_id, role, agent_group_id, granted_by, granted_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        (user_id, role, agent_group_id, granted_by, now_iso()),
    )


async def revoke(db: Database, user_id: str, role: str, agent_group_id: str | None = None) -> None:
    """Revoke a role grant."""
    await db.execute(
        "DELETE FROM user_roles WHERE user_id = ? AND role = ? AND COALESCE(agent_group_id, '') = ?",
        (user_id, role, agent_group_id or ""),
    )


async def roles_of(db: Database, user_id: str) -> list[Role]:
    """All grants of one user."""
    rows = await db.fetchall("SELECT * FROM user_roles WHERE user_id = ?", (user_id,))
    return [from_row(Role, r) for r in rows]


async def owners(db: Database) -> list[str]:
    """User ids of all owners, oldest grant first."""
    rows = await db.fetchall("SELECT user_id FROM user_roles WHERE role = 'owner' ORDER BY granted_at, user_id")
    return [r["user_id"] for r in rows]


async def global_admins(db: Database) -> list[str]:
    """User ids of global admins."""
    rows = await db.fetchall(
        "SELECT user_id FROM user_roles WHERE role = 'admin' AND agent_group_id IS NULL ORDER BY granted_at, user_id"
    )
    return [r["user_id"] for r in rows]


async def scoped_admins(db: Database, agent_group_id: str) -> list[str]:
    """User ids of admins scoped to one agent."""
    rows = await db.fetchall(
        "SELECT user_id FROM user_roles WHERE role = 'admin' AND agent_group_id = ? ORDER BY granted_at, user_id",
        (agent_group_id,),
    )
    return [r["user_id"] for r in rows]


async def add_member(db: Database, user_id: str, agent_group_id: str, added_by: str | None = None) -> None:
    """Make a user a member of an agent (idempotent)."""
    await db.execute(
        "INSERT INTO agent_group_members (user_id, agent_group_id, added_by, added_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        (user_id, agent_group_id, added_by, now_iso()),
    )


async def remove_member(db: Database, user_id: str, agent_group_id: str) -> None:
    """Remove a membership."""
    await db.execute(
        "DELETE FROM agent_group_members WHERE user_id = ? AND agent_group_id = ?", (user_id, agent_group_id)
    )


async def is_member(db: Database, user_id: str, agent_group_id: str) -> bool:
    """True when the user is an explicit member."""
    row = await db.fetchone(
        "SELECT 1 FROM agent_group_members WHERE user_id = ? AND agent_group_id = ?", (user_id, agent_group_id)
    )
    return row is not None


async def members_of(db: Database, agent_group_id: str) -> list[str]:
    """User ids of an agent's members."""
    rows = await db.fetchall(
        "SELECT user_id FROM agent_group_members WHERE agent_group_id = ? ORDER BY added_at", (agent_group_id,)
    )
    return [r["user_id"] for r in rows]


async def cached_dm(db: Database, user_id: str, channel_type: str) -> str | None:
    """Messaging-group id of the cached DM with this user on this channel."""
    row = await db.fetchone(
        "SELECT messaging_group_id FROM user_dms WHERE user_id = ? AND channel_type = ?", (user_id, channel_type)
    )
    return None if row is None else str(row["messaging_group_id"])


async def cache_dm(db: Database, user_id: str, channel_type: str, messaging_group_id: str) -> None:
    """Remember the DM chat of a user."""
    await db.execute(
        "INSERT INTO user_dms (user_id, channel_type, messaging_group_id, resolved_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (user_id, channel_type) DO UPDATE SET messaging_group_id = excluded.messaging_group_id,"
        " resolved_at = excluded.resolved_at",
        (user_id, channel_type, messaging_group_id, now_iso()),
    )
