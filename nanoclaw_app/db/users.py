"""Queries for ``users``, ``user_roles``, ``agent_group_members`` and the ``user_dms`` cache."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from nanoclaw_app.db.database import Database
from nanoclaw_app.db.rows import Membership, Role, User, from_row, maybe
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


async def revoke_unless_last_owner(
    db: Database, user_id: str, role: str, agent_group_id: str | None = None
) -> Literal["revoked", "not_granted", "last_owner"]:
    """Revoke a grant, but never the last owner's: approvals and alerts go to owners.

    Check and delete are one transaction, so two tabs revoking at once cannot remove the last two owners.
    """
    key = (user_id, role, agent_group_id or "")
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "SELECT 1 FROM user_roles WHERE user_id = ? AND role = ? AND COALESCE(agent_group_id, '') = ?", key
        )
        if await cursor.fetchone() is None:
            return "not_granted"
        if role == "owner":
            cursor = await conn.execute("SELECT COUNT(*) FROM user_roles WHERE role = 'owner'")
            row = await cursor.fetchone()
            if row is not None and row[0] <= 1:
                return "last_owner"
        await conn.execute(
            "DELETE FROM user_roles WHERE user_id = ? AND role = ? AND COALESCE(agent_group_id, '') = ?", key
        )
    return "revoked"


async def roles_of(db: Database, user_id: str) -> list[Role]:
    """All grants of one user."""
    rows = await db.fetchall("SELECT * FROM user_roles WHERE user_id = ?", (user_id,))
    return [from_row(Role, r) for r in rows]


async def all_roles(db: Database) -> list[Role]:
    """Every grant of everyone, oldest first (one read for the people page)."""
    return [from_row(Role, r) for r in await db.fetchall("SELECT * FROM user_roles ORDER BY granted_at")]


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


async def all_memberships(db: Database) -> list[Membership]:
    """Every membership of everyone, oldest first (one read for the people page)."""
    rows = await db.fetchall("SELECT * FROM agent_group_members ORDER BY added_at")
    return [from_row(Membership, r) for r in rows]


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


@dataclass(frozen=True, slots=True)
class AccessFacts:
    """Everything an access check needs about one user and one agent, read at once."""

    known: bool
    owner: bool
    global_admin: bool
    scoped_admin: bool
    member: bool


_ACCESS_FACTS = (
    "SELECT"
    " EXISTS (SELECT 1 FROM users WHERE id = :u) AS known,"
    # Owners are global only (the schema enforces it too); a scoped owner row would never count.
    " EXISTS (SELECT 1 FROM user_roles WHERE user_id = :u AND role = 'owner' AND agent_group_id IS NULL) AS owner,"
    " EXISTS (SELECT 1 FROM user_roles WHERE user_id = :u AND role = 'admin' AND agent_group_id IS NULL)"
    " AS global_admin,"
    " EXISTS (SELECT 1 FROM user_roles WHERE user_id = :u AND role = 'admin' AND agent_group_id = :a)"
    " AS scoped_admin,"
    " EXISTS (SELECT 1 FROM agent_group_members WHERE user_id = :u AND agent_group_id = :a) AS member"
)


async def access_facts(db: Database, user_id: str, agent_group_id: str) -> AccessFacts:
    """One read for the router's per-message access check (it runs for every message of a non-public chat)."""
    row = await db.fetchone(_ACCESS_FACTS, {"u": user_id, "a": agent_group_id})
    assert row is not None
    return AccessFacts(
        known=bool(row["known"]), owner=bool(row["owner"]), global_admin=bool(row["global_admin"]),
        scoped_admin=bool(row["scoped_admin"]), member=bool(row["member"]),
    )


async def is_admin(db: Database, user_id: str, agent_group_id: str | None) -> bool:
    """Owner, global admin, or admin scoped to this agent; with no agent, only owner or global admin count."""
    if agent_group_id is None:
        value = await db.fetchval(
            "SELECT 1 FROM user_roles WHERE user_id = ? AND agent_group_id IS NULL AND role IN ('owner', 'admin')"
            " LIMIT 1",
            (user_id,),
        )
        return value is not None
    value = await db.fetchval(
        "SELECT 1 FROM user_roles WHERE user_id = ? AND ("
        " (agent_group_id IS NULL AND role IN ('owner', 'admin')) OR (role = 'admin' AND agent_group_id = ?)"
        ") LIMIT 1",
        (user_id, agent_group_id),
    )
    return value is not None
