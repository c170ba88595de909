"""Queries for the three approval tables: agent requests, unknown senders and unregistered chats.

Every decision is a *claim*: an ``UPDATE``/``DELETE`` guarded by the current state, so a double click or two
approvers clicking at once act exactly once (the loser sees a row count of 0).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from nanoclaw_app.db.database import Database
from nanoclaw_app.db.rows import from_row, maybe
from nanoclaw_app.timeutil import now_iso

# --------------------------------------------------------------------------------------------- agent requests


@dataclass(frozen=True, slots=True)
class PendingApproval:
    """An agent's request that needs an admin's yes (``install_packages``, ``add_mcp_server``, ...)."""

    approval_id: str
    session_id: str | None
    request_id: str | None
    action: str
    payload: str
    agent_group_id: str | None
    approver_user_id: str | None
    channel_type: str | None
    platform_id: str | None
    platform_message_id: str | None
    title: str
    options_json: str
    status: str
    decided_by: str | None
    decided_at: str | None
    expires_at: str
    created_at: str

    @property
    def payload_dict(self) -> dict[str, Any]:
        """The decoded payload (an empty dict when it is not a JSON object)."""
        data = json.loads(self.payload)
        return data if isinstance(data, dict) else {}


async def create_approval(
    db: Database,
    *,
    approval_id: str,
    session_id: str | None,
    action: str,
    payload: dict[str, Any],
    agent_group_id: str | None,
    approver_user_id: str,
    channel_type: str,
    platform_id: str,
    title: str,
    options_json: str,
    expires_at: str,
    request_id: str | None = None,
) -> None:
    """Record a request before its card is sent, so a failed send still leaves it visible."""
    await db.execute(
        "INSERT INTO pending_approvals (approval_id, session_id, request_id, action, payload, agent_group_id,"
        " approver_user_id, channel_type, platform_id, title, options_json, status, expires_at, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
        (approval_id, session_id, request_id, action, json.dumps(payload, ensure_ascii=False), agent_group_id,
         approver_user_id, channel_type, platform_id, title, options_json, expires_at, now_iso()),
    )


async def get_approval(db: Database, approval_id: str) -> PendingApproval | None:
    """One request by id (any status)."""
    row = await db.fetchone("SELECT * FROM pending_approvals WHERE approval_id = ?", (approval_id,))
    return maybe(PendingApproval, row)


async def list_pending_approvals(db: Database) -> list[PendingApproval]:
    """Requests still waiting for a decision, oldest first."""
    rows = await db.fetchall("SELECT * FROM pending_approvals WHERE status = 'pending' ORDER BY created_at")
    return [from_row(PendingApproval, r) for r in rows]


async def set_approval_message(db: Database, approval_id: str, platform_message_id: str | None) -> None:
    """Remember the card's platform message id so the card can be edited after the decision."""
    await db.execute(
        "UPDATE pending_approvals SET platform_message_id = ? WHERE approval_id = ?",
        (platform_message_id, approval_id),
    )


async def decide_approval(db: Database, approval_id: str, status: str, decided_by: str | None) -> bool:
    """Move a pending request to approved/rejected/expired; False when it was already decided."""
    changed = await db.execute(
        "UPDATE pending_approvals SET status = ?, decided_by = ?, decided_at = ?"
        " WHERE approval_id = ? AND status = 'pending'",
        (status, decided_by, now_iso(), approval_id),
    )
    return changed == 1


async def due_approvals(db: Database, now: str) -> list[PendingApproval]:
    """Pending requests whose expiry has passed."""
    rows = await db.fetchall(
        "SELECT * FROM pending_approvals WHERE status = 'pending' AND expires_at <= ? ORDER BY expires_at", (now,)
    )
    return [from_row(PendingApproval, r) for r in rows]


async def pending_of_actions(db: Database, actions: list[str]) -> list[PendingApproval]:
    """Pending requests of these actions, whatever their expiry."""
    marks = ",".join("?" * len(actions))
    rows = await db.fetchall(
        f"SELECT * FROM pending_approvals WHERE status = 'pending' AND action IN ({marks}) ORDER BY created_at",
        tuple(actions),
    )
    return [from_row(PendingApproval, r) for r in rows]


# --------------------------------------------------------------------------------------------- unknown senders


@dataclass(frozen=True, slots=True)
class PendingSenderApproval:
    """An unknown sender waiting to be let into a chat's agent; ``original_message`` is replayed on allow."""

    id: str
    messaging_group_id: str
    agent_group_id: str
    sender_identity: str
    sender_name: str | None
    original_message: str
    approver_user_id: str
    channel_type: str | None
    platform_id: str | None
    platform_message_id: str | None
    title: str
    options_json: str
    expires_at: str
    created_at: str


async def create_sender_approval(
    db: Database,
    *,
    approval_id: str,
    messaging_group_id: str,
    agent_group_id: str,
    sender_identity: str,
    sender_name: str | None,
    original_message: str,
    approver_user_id: str,
    channel_type: str,
    platform_id: str,
    title: str,
    options_json: str,
    expires_at: str,
) -> bool:
    """Record a sender request; False when one is already pending for this sender in this chat."""
    changed = await db.execute(
        "INSERT INTO pending_sender_approvals (id, messaging_group_id, agent_group_id, sender_identity, sender_name,"
        " original_message, approver_user_id, channel_type, platform_id, title, options_json, expires_at, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (messaging_group_id, sender_identity) DO NOTHING",
        (approval_id, messaging_group_id, agent_group_id, sender_identity, sender_name, original_message,
         approver_user_id, channel_type, platform_id, title, options_json, expires_at, now_iso()),
    )
    return changed == 1


async def get_sender_approval(db: Database, approval_id: str) -> PendingSenderApproval | None:
    """One sender request by its card id."""
    row = await db.fetchone("SELECT * FROM pending_sender_approvals WHERE id = ?", (approval_id,))
    return maybe(PendingSenderApproval, row)


async def find_sender_approval(
    db: Database, messaging_group_id: str, sender_identity: str
) -> PendingSenderApproval | None:
    """The pending request of one sender in one chat."""
    row = await db.fetchone(
        "SELECT * FROM pending_sender_approvals WHERE messaging_group_id = ? AND sender_identity = ?",
        (messaging_group_id, sender_identity),
    )
    return maybe(PendingSenderApproval, row)


async def list_sender_approvals(db: Database) -> list[PendingSenderApproval]:
    """Every pending sender request, oldest first."""
    rows = await db.fetchall("SELECT * FROM pending_sender_approvals ORDER BY created_at")
    return [from_row(PendingSenderApproval, r) for r in rows]


async def set_sender_message(db: Database, approval_id: str, platform_message_id: str | None) -> None:
    """Remember the card's platform message id."""
    await db.execute(
        "UPDATE pending_sender_approvals SET platform_message_id = ? WHERE id = ?", (platform_message_id, approval_id)
    )


async def delete_sender_approval(db: Database, approval_id: str) -> bool:
    """Claim a sender request by deleting it; False when someone else already did."""
    return await db.execute("DELETE FROM pending_sender_approvals WHERE id = ?", (approval_id,)) == 1


async def due_sender_approvals(db: Database, now: str) -> list[PendingSenderApproval]:
    """Sender requests whose expiry has passed."""
    rows = await db.fetchall(
        "SELECT * FROM pending_sender_approvals WHERE expires_at <= ? ORDER BY expires_at", (now,)
    )
    return [from_row(PendingSenderApproval, r) for r in rows]


# --------------------------------------------------------------------------------------------- unregistered chats


@dataclass(frozen=True, slots=True)
class PendingChannelApproval:
    """A chat that addressed the bot with no agent wired. ``stage``: ask | choose_agent | name_agent."""

    messaging_group_id: str
    id: str
    agent_group_id: str | None
    original_message: str
    approver_user_id: str
    channel_type: str | None
    platform_id: str | None
    platform_message_id: str | None
    title: str
    options_json: str
    stage: str
    expires_at: str
    created_at: str


async def create_channel_approval(
    db: Database,
    *,
    approval_id: str,
    messaging_group_id: str,
    agent_group_id: str | None,
    original_message: str,
    approver_user_id: str,
    channel_type: str,
    platform_id: str,
    title: str,
    options_json: str,
    expires_at: str,
) -> bool:
    """Record a registration request; False when one is already pending for the chat."""
    changed = await db.execute(
        "INSERT INTO pending_channel_approvals (messaging_group_id, id, agent_group_id, original_message,"
        " approver_user_id, channel_type, platform_id, title, options_json, stage, expires_at, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'ask', ?, ?) ON CONFLICT (messaging_group_id) DO NOTHING",
        (messaging_group_id, approval_id, agent_group_id, original_message, approver_user_id, channel_type,
         platform_id, title, options_json, expires_at, now_iso()),
    )
    return changed == 1


async def get_channel_approval(db: Database, approval_id: str) -> PendingChannelApproval | None:
    """One registration request by its current card id."""
    row = await db.fetchone("SELECT * FROM pending_channel_approvals WHERE id = ?", (approval_id,))
    return maybe(PendingChannelApproval, row)


async def channel_approval_for_chat(db: Database, messaging_group_id: str) -> PendingChannelApproval | None:
    """The pending registration request of one chat."""
    row = await db.fetchone(
        "SELECT * FROM pending_channel_approvals WHERE messaging_group_id = ?", (messaging_group_id,)
    )
    return maybe(PendingChannelApproval, row)


async def list_channel_approvals(db: Database) -> list[PendingChannelApproval]:
    """Every pending registration request, oldest first."""
    rows = await db.fetchall("SELECT * FROM pending_channel_approvals ORDER BY created_at")
    return [from_row(PendingChannelApproval, r) for r in rows]


async def naming_request(
    db: Database, approver_user_id: str, channel_type: str, platform_id: str
) -> PendingChannelApproval | None:
    """The request (if any) waiting for this approver to type a new agent's name in this DM, oldest first."""
    row = await db.fetchone(
        "SELECT * FROM pending_channel_approvals WHERE stage = 'name_agent' AND approver_user_id = ?"
        " AND channel_type = ? AND platform_id = ? ORDER BY created_at LIMIT 1",
        (approver_user_id, channel_type, platform_id),
    )
    return maybe(PendingChannelApproval, row)


async def advance_channel_approval(
    db: Database,
    approval_id: str,
    *,
    from_stage: str,
    to_stage: str,
    new_id: str | None = None,
    title: str | None = None,
    options_json: str | None = None,
    approver: tuple[str, str, str] | None = None,
) -> bool:
    """Claim a stage change; False when the row moved on already.

    A follow-up card gets a fresh id; ``approver`` = (user id, channel type, DM platform id) moves the request to
    whoever clicked, so the name prompt goes to the person who chose "Connect new agent".
    """
    user, channel_type, platform_id = approver or (None, None, None)
    changed = await db.execute(
        "UPDATE pending_channel_approvals SET stage = ?, id = COALESCE(?, id), title = COALESCE(?, title),"
        " options_json = COALESCE(?, options_json), approver_user_id = COALESCE(?, approver_user_id),"
        " channel_type = COALESCE(?, channel_type), platform_id = COALESCE(?, platform_id),"
        # A card id belongs to the chat it was sent to: once the request moves to another DM, forget it.
        " platform_message_id = CASE WHEN COALESCE(?, channel_type) = channel_type"
        " AND COALESCE(?, platform_id) = platform_id THEN platform_message_id END"
        " WHERE id = ? AND stage = ?",
        (to_stage, new_id, title, options_json, user, channel_type, platform_id, channel_type, platform_id,
         approval_id, from_stage),
    )
    return changed == 1


async def set_channel_message(db: Database, approval_id: str, platform_message_id: str | None) -> None:
    """Remember the current card's platform message id."""
    await db.execute(
        "UPDATE pending_channel_approvals SET platform_message_id = ? WHERE id = ?", (platform_message_id, approval_id)
    )


async def delete_channel_approval(db: Database, approval_id: str) -> bool:
    """Claim a registration request by deleting it; False when someone else already did."""
    return await db.execute("DELETE FROM pending_channel_approvals WHERE id = ?", (approval_id,)) == 1


async def due_channel_approvals(db: Database, now: str) -> list[PendingChannelApproval]:
    """Registration requests whose expiry has passed."""
    rows = await db.fetchall(
        "SELECT * FROM pending_channel_approvals WHERE expires_at <= ? ORDER BY expires_at", (now,)
    )
    return [from_row(PendingChannelApproval, r) for r in rows]
