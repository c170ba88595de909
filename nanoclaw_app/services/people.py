"""People: the platform identities NanoClaw has seen, their roles, and which agents they may talk to.

Privilege lives on users, not chats (reference §4.2): an owner runs everything, an admin runs everything or one agent,
a member may talk to one agent. The last owner can never be removed, because approvals and alerts go to owners.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from nanoclaw_app.db import agents as agents_db
from nanoclaw_app.db import users as users_db
from nanoclaw_app.db.database import Database
from nanoclaw_app.db.rows import User
from nanoclaw_app.errors import NotFound, UserError
from nanoclaw_app.services.agents.lookup import agent_by_ref
from nanoclaw_app.services.context import AppServices
from nanoclaw_app.text_safety import clean_text

log = logging.getLogger(__name__)

ROLES = ("owner", "admin")
MAX_NAME = 80
_USER_ID = re.compile(r"^[a-z][a-z0-9_-]{0,31}:\S{1,200}$")


@dataclass
class RoleView:
    """One grant: owner (global), admin of everything, or admin of one agent."""

    role: str
    agent_group_id: str | None
    agent_name: str | None
    granted_by: str | None
    granted_at: str


@dataclass
class MembershipView:
    """One agent a person may talk to."""

    agent_group_id: str
    agent_name: str
    added_by: str | None
    added_at: str


@dataclass
class PersonView:
    """A person as the people page and ``nanoclaw people list`` show them."""

    id: str
    kind: str
    display_name: str | None
    name: str
    created_at: str
    roles: list[RoleView] = field(default_factory=list)
    memberships: list[MembershipView] = field(default_factory=list)


# --------------------------------------------------------------------------------------------- reading


async def user_by_ref(db: Database, ref: str) -> User:
    """A user by id (``telegram:123``) or by display name (case-insensitive, must be unique)."""
    ref = ref.strip()
    user = await users_db.get(db, ref)
    if user is not None:
        return user
    matches = [u for u in await users_db.list_all(db) if (u.display_name or "").casefold() == ref.casefold()]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UserError(f"several people are called {ref!r}; use the id ({', '.join(u.id for u in matches)})")
    raise NotFound(f"nobody called {ref!r}; `nanoclaw people list` shows everyone NanoClaw knows")


async def list_people(services: AppServices) -> list[PersonView]:
    """Everyone with their roles and memberships (owners first, then admins, then by name)."""
    db = services.ctx.db
    names = {a.id: a.name for a in await agents_db.list_all(db)}
    roles: dict[str, list[RoleView]] = {}
    for g in await users_db.all_roles(db):
        agent = g.agent_group_id
        roles.setdefault(g.user_id, []).append(
            RoleView(g.role, agent, names.get(agent, agent) if agent else None, g.granted_by, g.granted_at)
        )
    members: dict[str, list[MembershipView]] = {}
    for m in await users_db.all_memberships(db):
        members.setdefault(m.user_id, []).append(
            MembershipView(m.agent_group_id, names.get(m.agent_group_id, m.agent_group_id), m.added_by, m.added_at)
        )
    people = [_view(u, roles.get(u.id, []), members.get(u.id, [])) for u in await users_db.list_all(db)]
    return sorted(people, key=_rank)


async def get_person(services: AppServices, user_ref: str) -> PersonView:
    """One person by id or display name."""
    user = await user_by_ref(services.ctx.db, user_ref)
    for person in await list_people(services):
        if person.id == user.id:
            return person
    raise NotFound(f"nobody called {user_ref!r}")  # pragma: no cover - removed between the two reads


def _view(user: User, roles: list[RoleView], members: list[MembershipView]) -> PersonView:
    return PersonView(id=user.id, kind=user.kind, display_name=user.display_name, name=user.display_name or user.id,
                      created_at=user.created_at, roles=roles, memberships=members)


def _rank(person: PersonView) -> tuple[int, str]:
    kinds = {r.role for r in person.roles}
    return (0 if "owner" in kinds else 1 if "admin" in kinds else 2, person.name.casefold())


# --------------------------------------------------------------------------------------------- roles


async def grant(
    services: AppServices, user_ref: str, role: str, agent_ref: str | None = None, *, by: str = "app"
) -> PersonView:
    """Make someone owner (always global) or admin (of everything, or of one agent)."""
    db = services.ctx.db
    _check_role(role)
    user = await user_by_ref(db, user_ref)
    agent_id = None
    if agent_ref:
        if role == "owner":
            raise UserError("the owner role covers every agent; to let someone run one agent, make them its admin")
        agent_id = (await agent_by_ref(db, agent_ref)).id
    await users_db.grant(db, user.id, role, agent_id, granted_by=by)
    log.info("granted %s%s to %s (by %s)", role, f" of {agent_id}" if agent_id else "", user.id, by)
    services.ctx.events.publish("people.changed", user_id=user.id, change="granted", role=role,
                                agent_group_id=agent_id)
    return await get_person(services, user.id)


async def revoke(services: AppServices, user_ref: str, role: str, agent_ref: str | None = None) -> PersonView:
    """Take a role away; refused for the last owner, who must hand over first."""
    db = services.ctx.db
    _check_role(role)
    user = await user_by_ref(db, user_ref)
    agent_id = (await agent_by_ref(db, agent_ref)).id if agent_ref else None
    outcome = await users_db.revoke_unless_last_owner(db, user.id, role, agent_id)
    if outcome == "not_granted":
        scope = " of that agent" if agent_id else (" of every agent" if role == "admin" else "")
        raise NotFound(f"{user.display_name or user.id} is not {role}{scope}")
    if outcome == "last_owner":
        raise UserError(f"{user.display_name or user.id} is the only owner; make someone else owner first, "
                        "so approvals and alerts still reach somebody")
    log.info("revoked %s%s from %s", role, f" of {agent_id}" if agent_id else "", user.id)
    services.ctx.events.publish("people.changed", user_id=user.id, change="revoked", role=role,
                                agent_group_id=agent_id)
    return await get_person(services, user.id)


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise UserError(f"role {role!r} is not one of {', '.join(ROLES)}")


# --------------------------------------------------------------------------------------------- members


async def add_member(services: AppServices, user_ref: str, agent_ref: str, *, by: str = "app") -> PersonView:
    """Let someone talk to an agent. An unknown ``<channel>:<handle>`` is added too, so they are let in at once."""
    db = services.ctx.db
    agent = await agent_by_ref(db, agent_ref)
    user_id = await _known_or_new(db, user_ref)
    await users_db.add_member(db, user_id, agent.id, added_by=by)
    log.info("%s may now talk to agent %s (added by %s)", user_id, agent.id, by)
    services.ctx.events.publish("people.changed", user_id=user_id, change="member_added", agent_group_id=agent.id)
    return await get_person(services, user_id)


async def remove_member(services: AppServices, user_ref: str, agent_ref: str) -> PersonView:
    """Stop someone talking to an agent (an owner or admin still can, by their role)."""
    db = services.ctx.db
    user = await user_by_ref(db, user_ref)
    agent = await agent_by_ref(db, agent_ref)
    if not await users_db.is_member(db, user.id, agent.id):
        raise NotFound(f"{user.display_name or user.id} is not a member of {agent.name}")
    await users_db.remove_member(db, user.id, agent.id)
    log.info("%s removed from agent %s", user.id, agent.id)
    services.ctx.events.publish("people.changed", user_id=user.id, change="member_removed", agent_group_id=agent.id)
    return await get_person(services, user.id)


async def _known_or_new(db: Database, user_ref: str) -> str:
    try:
        return (await user_by_ref(db, user_ref)).id
    except NotFound:
        ref = user_ref.strip()
        if not _USER_ID.match(ref):
            raise NotFound(
                f"nobody called {ref!r}; to let in someone who has not written yet, give their id as "
                "<channel>:<handle>, e.g. telegram:123456789 or whatsapp:491701234567@s.whatsapp.net"
            ) from None
        channel = ref.split(":", 1)[0]
        await users_db.upsert(db, ref, channel)
        return ref


# --------------------------------------------------------------------------------------------- names


async def rename(services: AppServices, user_ref: str, display_name: str) -> PersonView:
    """Give someone a name that cards and pages show instead of their platform id."""
    name = clean_text(display_name)
    if not name:
        raise UserError("the name is empty; type the name to show for this person")
    if len(name) > MAX_NAME:
        raise UserError(f"the name is longer than {MAX_NAME} characters; shorten it")
    db = services.ctx.db
    user = await user_by_ref(db, user_ref)
    await users_db.upsert(db, user.id, user.kind, name)
    log.info("user %s renamed %r -> %r", user.id, user.display_name, name)
    services.ctx.events.publish("people.changed", user_id=user.id, change="renamed")
    return await get_person(services, user.id)
