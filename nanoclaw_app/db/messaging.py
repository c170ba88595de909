"""Queries for ``messaging_groups`` (chats) and ``messaging_group_agents`` (wirings)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import aiosqlite

from nanoclaw_app.db import destinations
from nanoclaw_app.db.database import Database
from nanoclaw_app.db.rows import MessagingGroup, Wiring, from_row, maybe
from nanoclaw_app.errors import UserError
from nanoclaw_app.ids import new_id
from nanoclaw_app.timeutil import now_iso

ENGAGE_MODES = ("pattern", "mention", "mention-sticky")
SENDER_SCOPES = ("all", "known")
IGNORED_POLICIES = ("drop", "accumulate")
SESSION_MODES = ("shared", "per-thread", "agent-shared")
SENDER_POLICIES = ("strict", "request_approval", "public")


async def get(db: Database, messaging_group_id: str) -> MessagingGroup | None:
    """One chat by id."""
    row = await db.fetchone("SELECT * FROM messaging_groups WHERE id = ?", (messaging_group_id,))
    return maybe(MessagingGroup, row)


async def find(db: Database, channel_type: str, platform_id: str) -> MessagingGroup | None:
    """One chat by its platform address."""
    row = await db.fetchone(
        "SELECT * FROM messaging_groups WHERE channel_type = ? AND platform_id = ?", (channel_type, platform_id)
    )
    return maybe(MessagingGroup, row)


async def list_all(db: Database) -> list[MessagingGroup]:
    """Every chat."""
    rows = await db.fetchall("SELECT * FROM messaging_groups ORDER BY created_at, id")
    return [from_row(MessagingGroup, r) for r in rows]


async def create(
    db: Database,
    channel_type: str,
    platform_id: str,
    *,
    name: str | None = None,
    is_group: bool = False,
    unknown_sender_policy: str = "strict",
) -> MessagingGroup:
    """Create a chat, or return the existing one for the same platform address."""
    if unknown_sender_policy not in SENDER_POLICIES:
        raise UserError(f"unknown_sender_policy must be one of {SENDER_POLICIES}")
    now = now_iso()
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO messaging_groups (id, channel_type, platform_id, name, is_group, unknown_sender_policy,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (channel_type, platform_id) DO NOTHING",
            (new_id("mg"), channel_type, platform_id, name, int(is_group), unknown_sender_policy, now),
        )
    found = await find(db, channel_type, platform_id)
    assert found is not None
    return found


async def update(db: Database, messaging_group_id: str, **changes: object) -> None:
    """Update name, is_group, unknown_sender_policy or denied_at."""
    allowed = {"name", "is_group", "unknown_sender_policy", "denied_at"}
    if set(changes) - allowed:
        raise UserError(f"cannot change {sorted(set(changes) - allowed)} of a chat")
    if "unknown_sender_policy" in changes and changes["unknown_sender_policy"] not in SENDER_POLICIES:
        raise UserError(f"unknown_sender_policy must be one of {SENDER_POLICIES}")
    if not changes:
        return
    assignments = ", ".join(f"{col} = ?" for col in changes)
    await db.execute(
        f"UPDATE messaging_groups SET {assignments} WHERE id = ?", (*changes.values(), messaging_group_id)
    )


@dataclass(frozen=True, slots=True)
class WiringSpec:
    """How an agent answers in a chat (defaults follow the original's conservative choices)."""

    engage_mode: str = "mention"
    engage_pattern: str | None = None
    sender_scope: str = "all"
    ignored_message_policy: str = "drop"
    session_mode: str = "shared"
    priority: int = 0

    def check(self) -> None:
        """Refuse values outside the allowed sets."""
        for value, allowed, label in (
            (self.engage_mode, ENGAGE_MODES, "engage_mode"),
            (self.sender_scope, SENDER_SCOPES, "sender_scope"),
            (self.ignored_message_policy, IGNORED_POLICIES, "ignored_message_policy"),
            (self.session_mode, SESSION_MODES, "session_mode"),
        ):
            if value not in allowed:
                raise UserError(f"{label} must be one of {allowed}, got {value!r}")
        if self.engage_mode == "pattern" and not self.engage_pattern:
            raise UserError("engage_mode 'pattern' needs an engage_pattern ('.' means always)")
        if self.engage_pattern:
            try:
                re.compile(self.engage_pattern)
            except re.error as err:
                raise UserError(f"engage_pattern {self.engage_pattern!r} is not a valid regex: {err}") from err


async def wire(
    db: Database, messaging_group_id: str, agent_group_id: str, spec: WiringSpec | None = None
) -> Wiring:
    """Wire an agent to a chat and give the agent a destination name for it (suffixed on collision)."""
    spec = spec or WiringSpec()
    spec.check()
    chat = await get(db, messaging_group_id)
    if chat is None:
        raise UserError(f"no chat {messaging_group_id}")
    wiring_id, now = new_id("mga"), now_iso()
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO messaging_group_agents (id, messaging_group_id, agent_group_id, engage_mode, engage_pattern,"
            " sender_scope, ignored_message_policy, session_mode, priority, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (wiring_id, messaging_group_id, agent_group_id, spec.engage_mode, spec.engage_pattern,
             spec.sender_scope, spec.ignored_message_policy, spec.session_mode, spec.priority, now),
        )
        await _ensure_channel_destination(conn, agent_group_id, chat)
    row = await db.fetchone("SELECT * FROM messaging_group_agents WHERE id = ?", (wiring_id,))
    assert row is not None
    return from_row(Wiring, row)


async def _ensure_channel_destination(
    conn: aiosqlite.Connection, agent_group_id: str, chat: MessagingGroup
) -> None:
    cursor = await conn.execute(
        "SELECT 1 FROM agent_destinations WHERE agent_group_id = ? AND target_type = 'channel' AND target_id = ?",
        (agent_group_id, chat.id),
    )
    if await cursor.fetchone() is not None:
        return
    base = destinations.normalize_name(chat.name or f"{chat.channel_type}-{chat.platform_id}")
    name = await destinations.free_name(conn, agent_group_id, base)
    await conn.execute(
        "INSERT INTO agent_destinations (agent_group_id, local_name, target_type, target_id, created_at)"
        " VALUES (?, ?, 'channel', ?, ?)",
        (agent_group_id, name, chat.id, now_iso()),
    )


async def wirings_for(db: Database, messaging_group_id: str) -> list[Wiring]:
    """A chat's wirings, highest priority first."""
    rows = await db.fetchall(
        "SELECT * FROM messaging_group_agents WHERE messaging_group_id = ? ORDER BY priority DESC, created_at",
        (messaging_group_id,),
    )
    return [from_row(Wiring, r) for r in rows]


async def wiring(db: Database, messaging_group_id: str, agent_group_id: str) -> Wiring | None:
    """The wiring of one agent in one chat."""
    row = await db.fetchone(
        "SELECT * FROM messaging_group_agents WHERE messaging_group_id = ? AND agent_group_id = ?",
        (messaging_group_id, agent_group_id),
    )
    return maybe(Wiring, row)


async def update_wiring(db: Database, wiring_id: str, **changes: object) -> None:
    """Change engage mode, pattern, scope, policy, session mode or priority of a wiring."""
    allowed = {"engage_mode", "engage_pattern", "sender_scope", "ignored_message_policy", "session_mode", "priority"}
    if set(changes) - allowed:
        raise UserError(f"cannot change {sorted(set(changes) - allowed)} of a wiring")
    current = await db.fetchone("SELECT * FROM messaging_group_agents WHERE id = ?", (wiring_id,))
    if current is None:
        raise UserError(f"no wiring {wiring_id}")
    merged = {k: current[k] for k in allowed} | changes
    WiringSpec(**merged).check()
    if not changes:
        return
    assignments = ", ".join(f"{col} = ?" for col in changes)
    await db.execute(f"UPDATE messaging_group_agents SET {assignments} WHERE id = ?", (*changes.values(), wiring_id))


async def unwire(db: Database, wiring_id: str) -> None:
    """Remove a wiring (its destination stays, so the agent can still be told about the chat)."""
    await db.execute("DELETE FROM messaging_group_agents WHERE id = ?", (wiring_id,))


async def first_agent_on(db: Database, channel_type: str) -> str | None:
    """The agent of the oldest wiring in any chat of a channel (for ``webchat``: the one the in-app chat talks to)."""
    value = await db.fetchval(
        "SELECT mga.agent_group_id FROM messaging_group_agents mga JOIN messaging_groups mg"
        " ON mg.id = mga.messaging_group_id WHERE mg.channel_type = ? ORDER BY mga.created_at LIMIT 1",
        (channel_type,),
    )
    return None if value is None else str(value)


async def all_wirings(db: Database) -> list[Wiring]:
    """Every wiring, highest priority first (the Chats page groups them by chat)."""
    rows = await db.fetchall("SELECT * FROM messaging_group_agents ORDER BY priority DESC, created_at")
    return [from_row(Wiring, r) for r in rows]


async def wiring_by_id(db: Database, wiring_id: str) -> Wiring | None:
    """One wiring by its id."""
    return maybe(Wiring, await db.fetchone("SELECT * FROM messaging_group_agents WHERE id = ?", (wiring_id,)))


async def unwired_paired_chats(db: Database, channel_types: tuple[str, ...]) -> list[str]:
    """Phone chats bound before any agent existed and wired to none: paired by a code, or the owner's own DM."""
    if not channel_types:
        return []
    marks = ",".join("?" * len(channel_types))
    rows = await db.fetchall(
        f"SELECT mg.id FROM messaging_groups mg WHERE mg.channel_type IN ({marks})"
        " AND NOT EXISTS (SELECT 1 FROM messaging_group_agents mga WHERE mga.messaging_group_id = mg.id)"
        " AND (EXISTS (SELECT 1 FROM pairing_codes pc WHERE pc.state = 'used' AND pc.channel_type = mg.channel_type"
        "              AND pc.platform_id = mg.platform_id)"
        "      OR mg.id IN (SELECT ud.messaging_group_id FROM user_dms ud JOIN user_roles ur ON ur.user_id = ud.user_id"
        "                   WHERE ur.role = 'owner'))"
        " ORDER BY mg.created_at",
        channel_types,
    )
    return [str(row["id"]) for row in rows]

