"""Seed a fresh home with an owner, one agent and a wired DM and group chat on the test channel."""

from __future__ import annotations

from dataclasses import dataclass

from nanoclaw_app.db import agents, messaging, users
from nanoclaw_app.db.database import Database
from nanoclaw_app.db.messaging import WiringSpec


@dataclass(frozen=True)
class Seeded:
    """Ids of what was created."""

    agent_id: str
    dm_id: str
    group_id: str
    owner_id: str


async def seed(db: Database, *, channel_type: str = "test") -> Seeded:
    """Owner ``test:owner`` with a DM answered always; a group answered on mention; idempotent."""
    existing = await agents.list_all(db)
    owner = f"{channel_type}:owner"
    if existing:
        dm = await messaging.find(db, channel_type, "owner")
        group = await messaging.find(db, channel_type, "group-1")
        assert dm is not None
        assert group is not None
        return Seeded(existing[0].id, dm.id, group.id, owner)
    agent = await agents.create(db, "Nano")
    await users.upsert(db, owner, channel_type, "Owner")
    await users.grant(db, owner, "owner")
    dm = await messaging.create(db, channel_type, "owner", name="Owner DM", is_group=False)
    await messaging.wire(db, dm.id, agent.id, WiringSpec(engage_mode="pattern", engage_pattern="."))
    group = await messaging.create(db, channel_type, "group-1", name="Family", is_group=True,
                                   unknown_sender_policy="strict")
    await messaging.wire(db, group.id, agent.id, WiringSpec(engage_mode="mention"))
    return Seeded(agent.id, dm.id, group.id, owner)
