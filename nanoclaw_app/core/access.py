"""Who may talk to which agent: owner → global admin → scoped admin → member, else refused.

Privilege lives on users, not chats. Each check is one read (all the facts in one query), because the router asks
for every message of a non-public chat.
"""

from __future__ import annotations

from dataclasses import dataclass

from nanoclaw_app.db.database import Database

_FACTS = (
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


@dataclass(frozen=True, slots=True)
class AccessDecision:
    """Whether a user may reach an agent, and the rule that decided it (shown in logs and the drop audit)."""

    allowed: bool
    reason: str
    """``owner``, ``global_admin``, ``scoped_admin``, ``member``, ``unknown_user`` or ``not_member``."""


async def can_access(db: Database, user_id: str, agent_group_id: str) -> AccessDecision:
    """Decide access in the original's order: unknown user → denied; owner, admins and members → allowed."""
    row = await db.fetchone(_FACTS, {"u": user_id, "a": agent_group_id})
    assert row is not None
    if not row["known"]:
        return AccessDecision(False, "unknown_user")
    for reason in ("owner", "global_admin", "scoped_admin", "member"):
        if row[reason]:
            return AccessDecision(True, reason)
    return AccessDecision(False, "not_member")


async def is_admin_of(db: Database, user_id: str, agent_group_id: str | None) -> bool:
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
