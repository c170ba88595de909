"""Who may talk to which agent: owner → global admin → scoped admin → member, else refused.

Privilege lives on users, not chats. Each check is one read (all the facts in one query), because the router asks
for every message of a non-public chat.
"""

from __future__ import annotations

from dataclasses import dataclass

from nanoclaw_app.db import users as users_db
from nanoclaw_app.db.database import Database


@dataclass(frozen=True, slots=True)
class AccessDecision:
    """Whether a user may reach an agent, and the rule that decided it (shown in logs and the drop audit)."""

    allowed: bool
    reason: str
    """``owner``, ``global_admin``, ``scoped_admin``, ``member``, ``unknown_user`` or ``not_member``."""


async def can_access(db: Database, user_id: str, agent_group_id: str) -> AccessDecision:
    """Decide access in the original's order: unknown user → denied; owner, admins and members → allowed."""
    facts = await users_db.access_facts(db, user_id, agent_group_id)
    if not facts.known:
        return AccessDecision(False, "unknown_user")
    for reason, holds in (("owner", facts.owner), ("global_admin", facts.global_admin),
                          ("scoped_admin", facts.scoped_admin), ("member", facts.member)):
        if holds:
            return AccessDecision(True, reason)
    return AccessDecision(False, "not_member")


async def is_admin_of(db: Database, user_id: str, agent_group_id: str | None) -> bool:
    """Owner, global admin, or admin scoped to this agent; with no agent, only owner or global admin count."""
    return await users_db.is_admin(db, user_id, agent_group_id)
