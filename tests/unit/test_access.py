"""Access hierarchy (original permissions.test ``canAccessAgentGroup``): owner, global admin, scoped admin, member."""

from __future__ import annotations

import sqlite3

import pytest

from nanoclaw_app.core.access import AccessDecision, can_access, is_admin_of
from nanoclaw_app.db import agents, users
from nanoclaw_app.db.database import Database
from nanoclaw_app.errors import UserError


@pytest.fixture
async def two_agents(db: Database) -> tuple[str, str]:
    a = await agents.create(db, "Alpha")
    b = await agents.create(db, "Beta")
    return a.id, b.id


async def _user(db: Database, user_id: str) -> str:
    await users.upsert(db, user_id, user_id.split(":", 1)[0], user_id)
    return user_id


async def test_unknown_user_is_refused(db: Database, two_agents: tuple[str, str]) -> None:
    assert await can_access(db, "test:ghost", two_agents[0]) == AccessDecision(False, "unknown_user")


async def test_known_user_without_membership_is_refused(db: Database, two_agents: tuple[str, str]) -> None:
    uid = await _user(db, "test:stranger")
    assert await can_access(db, uid, two_agents[0]) == AccessDecision(False, "not_member")


async def test_member_reaches_only_the_agent_they_belong_to(db: Database, two_agents: tuple[str, str]) -> None:
    alpha, beta = two_agents
    uid = await _user(db, "test:member")
    await users.add_member(db, uid, alpha)
    assert await can_access(db, uid, alpha) == AccessDecision(True, "member")
    assert await can_access(db, uid, beta) == AccessDecision(False, "not_member")


async def test_scoped_admin_reaches_their_agent_without_membership(db: Database, two_agents: tuple[str, str]) -> None:
    alpha, beta = two_agents
    uid = await _user(db, "test:scoped")
    await users.grant(db, uid, "admin", alpha)
    assert await can_access(db, uid, alpha) == AccessDecision(True, "scoped_admin")
    assert (await can_access(db, uid, beta)).allowed is False


async def test_global_admin_reaches_every_agent(db: Database, two_agents: tuple[str, str]) -> None:
    uid = await _user(db, "test:gadmin")
    await users.grant(db, uid, "admin")
    for agent in two_agents:
        assert await can_access(db, uid, agent) == AccessDecision(True, "global_admin")


async def test_owner_reaches_every_agent_and_outranks_other_grants(db: Database, two_agents: tuple[str, str]) -> None:
    alpha, beta = two_agents
    uid = await _user(db, "test:owner")
    await users.add_member(db, uid, alpha)
    await users.grant(db, uid, "admin", alpha)
    await users.grant(db, uid, "owner")
    assert await can_access(db, uid, alpha) == AccessDecision(True, "owner")
    assert await can_access(db, uid, beta) == AccessDecision(True, "owner")


async def test_owner_must_be_global(db: Database, two_agents: tuple[str, str]) -> None:
    alpha, beta = two_agents
    uid = await _user(db, "test:would-be-owner")
    with pytest.raises(UserError, match="global"):
        await users.grant(db, uid, "owner", alpha)
    # Even a row written around the query module is refused by the schema.
    with pytest.raises(sqlite3.IntegrityError):
        await db.execute(
            "INSERT INTO user_roles (user_id, role, agent_group_id, granted_at) VALUES (?, 'owner', ?, 'now')",
            (uid, alpha),
        )
    assert await can_access(db, uid, beta) == AccessDecision(False, "not_member")
    assert await is_admin_of(db, uid, None) is False


async def test_revoked_membership_refuses_again(db: Database, two_agents: tuple[str, str]) -> None:
    alpha, _ = two_agents
    uid = await _user(db, "test:leaver")
    await users.add_member(db, uid, alpha)
    await users.remove_member(db, uid, alpha)
    assert await can_access(db, uid, alpha) == AccessDecision(False, "not_member")


async def test_is_admin_of_owner_and_global_admin_everywhere(db: Database, two_agents: tuple[str, str]) -> None:
    owner = await _user(db, "test:owner")
    gadmin = await _user(db, "test:gadmin")
    await users.grant(db, owner, "owner")
    await users.grant(db, gadmin, "admin")
    for uid in (owner, gadmin):
        assert await is_admin_of(db, uid, None) is True
        for agent in two_agents:
            assert await is_admin_of(db, uid, agent) is True


async def test_is_admin_of_scoped_admin_only_for_their_agent(db: Database, two_agents: tuple[str, str]) -> None:
    alpha, beta = two_agents
    uid = await _user(db, "test:scoped")
    await users.grant(db, uid, "admin", alpha)
    assert await is_admin_of(db, uid, alpha) is True
    assert await is_admin_of(db, uid, beta) is False
    assert await is_admin_of(db, uid, None) is False


async def test_members_and_strangers_are_not_admins(db: Database, two_agents: tuple[str, str]) -> None:
    alpha, _ = two_agents
    member = await _user(db, "test:member")
    await users.add_member(db, member, alpha)
    assert await is_admin_of(db, member, alpha) is False
    assert await is_admin_of(db, "test:nobody", alpha) is False
    assert await is_admin_of(db, "test:nobody", None) is False
