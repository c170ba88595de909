"""The approval queue: agents' requests, strangers waiting to be let in, and chats waiting for an agent.

Deciding from the app or the CLI is a click on the same card: it goes through ``ApprovalService.on_action`` as an
owner, so everything a click in WhatsApp or Telegram does happens here too (the held message is replayed, the agent is
told, the card in the chat is edited, the decision is claimed exactly once).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from nanoclaw_app.channels.webchat.adapter import CHANNEL as WEBCHAT
from nanoclaw_app.channels.webchat.adapter import OWNER_HANDLE
from nanoclaw_app.core.approvals import channel as channel_cards
from nanoclaw_app.core.approvals import sender as sender_cards
from nanoclaw_app.core.approvals.cards import APPROVE, REJECT, stored_options
from nanoclaw_app.core.messages import InboundMessage
from nanoclaw_app.db import agents as agents_db
from nanoclaw_app.db import approvals as approvals_db
from nanoclaw_app.db import messaging
from nanoclaw_app.db import users as users_db
from nanoclaw_app.db.approvals import PendingApproval, PendingChannelApproval, PendingSenderApproval
from nanoclaw_app.db.database import Database
from nanoclaw_app.errors import NotFound, UserError
from nanoclaw_app.services.agents.lookup import agent_by_ref
from nanoclaw_app.services.chats import AgentRef, list_agents
from nanoclaw_app.services.context import AppServices

log = logging.getLogger(__name__)

AGENT = "agent"
SENDER = "sender"
CHANNEL = "channel"

APP_USER = f"{WEBCHAT}:{OWNER_HANDLE}"
"""The person using the app window (the in-app chat's user)."""

CHANGED = "approvals.changed"
"""Published after every decision made here, with the new ``count`` (for the menu badge)."""

EVENT_KINDS = (
    "approval.requested", "sender.approval_requested", "channel.registration_requested",
    "approval.decided", "approval.expired", "approval.swept_on_start", "sender.allowed", "sender.denied",
    "channel.connected", "channel.rejected", "channel.registration_cancelled", "agent.deleted", CHANGED,
)
"""Every event after which the queue may look different: open pages reload it when one arrives."""

MAX_TEXT = 500

_NEEDS_HOST = ("{what} passes their message on to the agent, which needs NanoClaw running with its chat channels: "
               "start it (`nanoclaw` or `nanoclaw serve`) and decide again, or use the Approvals page")


@dataclass
class PendingItem:
    """One request waiting for a decision: what is asked, who asks, when, and until when."""

    id: str
    kind: str
    """``agent`` (an agent's request), ``sender`` (a stranger wants in) or ``channel`` (a chat wants an agent)."""
    title: str
    summary: str
    """One line in English for the CLI; the page builds its own text from the fields below."""
    who: str
    who_id: str | None
    action: str | None
    details: str | None
    message: str | None
    """The held message, for sender and channel requests."""
    agent_group_id: str | None
    agent_name: str | None
    messaging_group_id: str | None
    chat_name: str | None
    channel_type: str | None
    approver: str | None
    card_sent: bool
    stage: str | None
    created_at: str
    expires_at: str


@dataclass
class ApprovalQueue:
    """The queue, its size, and the agents a chat may be connected to."""

    items: list[PendingItem] = field(default_factory=list)
    count: int = 0
    agents: list[AgentRef] = field(default_factory=list)


@dataclass
class Decision:
    """What a decision did."""

    id: str
    kind: str
    outcome: str
    """``approved``, ``rejected``, ``allowed``, ``denied``, ``connected`` or ``cancelled``."""
    message: str
    count: int


# --------------------------------------------------------------------------------------------- reading


async def count(services: AppServices) -> int:
    """How many requests wait (the number on the menu badge)."""
    db = services.ctx.db
    return (len(await approvals_db.list_pending_approvals(db)) + len(await approvals_db.list_sender_approvals(db))
            + len(await approvals_db.list_channel_approvals(db)))


async def pending(services: AppServices, kind: str | None = None) -> ApprovalQueue:
    """Every waiting request, oldest first; ``kind`` keeps one sort (the people page shows only senders)."""
    if kind not in (None, AGENT, SENDER, CHANNEL):
        raise UserError(f"kind {kind!r} is not one of {AGENT}, {SENDER}, {CHANNEL}")
    db = services.ctx.db
    names = _Names(db)
    items: list[PendingItem] = []
    for row in await approvals_db.list_pending_approvals(db):
        items.append(await _agent_item(names, row))
    for srow in await approvals_db.list_sender_approvals(db):
        items.append(await _sender_item(names, srow))
    for crow in await approvals_db.list_channel_approvals(db):
        items.append(await _channel_item(names, crow))
    total = len(items)
    items.sort(key=lambda i: (i.created_at, i.id))
    if kind is not None:
        items = [i for i in items if i.kind == kind]
    return ApprovalQueue(items=items, count=total, agents=await list_agents(services))


class _Names:
    """Agent, chat and person names for display, each read once per listing."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._cache: dict[tuple[str, str], str | None] = {}

    async def agent(self, agent_id: str | None) -> str | None:
        if agent_id is None:
            return None
        key = ("agent", agent_id)
        if key not in self._cache:
            found = await agents_db.get(self.db, agent_id)
            self._cache[key] = found.name if found else agent_id
        return self._cache[key]

    async def chat(self, chat_id: str | None) -> str | None:
        if chat_id is None:
            return None
        key = ("chat", chat_id)
        if key not in self._cache:
            found = await messaging.get(self.db, chat_id)
            self._cache[key] = (found.name or found.platform_id) if found else chat_id
        return self._cache[key]

    async def person(self, user_id: str | None) -> str | None:
        if user_id is None:
            return None
        key = ("person", user_id)
        if key not in self._cache:
            found = await users_db.get(self.db, user_id)
            self._cache[key] = (found.display_name or user_id) if found else user_id
        return self._cache[key]


async def _agent_item(names: _Names, row: PendingApproval) -> PendingItem:
    agent = await names.agent(row.agent_group_id)
    details = describe_request(row.action, _payload(row))
    return PendingItem(
        id=row.approval_id, kind=AGENT, title=row.title,
        summary=f"agent {agent or '?'} asks: {row.action}" + (f" ({details})" if details else ""),
        who=agent or "?", who_id=row.agent_group_id, action=row.action, details=details, message=None,
        agent_group_id=row.agent_group_id, agent_name=agent, messaging_group_id=None, chat_name=None,
        channel_type=None, approver=await names.person(row.approver_user_id),
        card_sent=row.platform_message_id is not None, stage=None, created_at=row.created_at,
        expires_at=row.expires_at,
    )


async def _sender_item(names: _Names, row: PendingSenderApproval) -> PendingItem:
    agent = await names.agent(row.agent_group_id)
    chat = await names.chat(row.messaging_group_id)
    who = row.sender_name or row.sender_identity
    held = _held(row.original_message)
    return PendingItem(
        id=row.id, kind=SENDER, title=row.title,
        summary=f"{who} wants to talk to {agent} in {chat}" + (f": “{_short(held.text)}”" if held else ""),
        who=who, who_id=row.sender_identity, action=None, details=None,
        message=_short(held.text, MAX_TEXT) if held else None, agent_group_id=row.agent_group_id,
        agent_name=agent, messaging_group_id=row.messaging_group_id, chat_name=chat,
        channel_type=held.channel_type if held else row.channel_type,
        approver=await names.person(row.approver_user_id), card_sent=row.platform_message_id is not None,
        stage=None, created_at=row.created_at, expires_at=row.expires_at,
    )


async def _channel_item(names: _Names, row: PendingChannelApproval) -> PendingItem:
    chat = await names.chat(row.messaging_group_id)
    held = _held(row.original_message)
    who = (held.sender_name or held.sender_id) if held else "?"
    return PendingItem(
        id=row.id, kind=CHANNEL, title=row.title,
        summary=f"{who} addressed the bot in {chat}, where no agent answers yet",
        who=who, who_id=users_db.namespaced(held.channel_type, held.sender_id) if held else None, action=None,
        details=None, message=_short(held.text, MAX_TEXT) if held else None, agent_group_id=row.agent_group_id,
        agent_name=await names.agent(row.agent_group_id), messaging_group_id=row.messaging_group_id,
        chat_name=chat, channel_type=held.channel_type if held else None,
        approver=await names.person(row.approver_user_id), card_sent=row.platform_message_id is not None,
        stage=row.stage, created_at=row.created_at, expires_at=row.expires_at,
    )


def describe_request(action: str, payload: dict[str, Any]) -> str:
    """What an agent asks for, in a line; environment values of MCP servers are never shown (they may be keys)."""
    if action == "install_packages":
        parts = [f"{k}: {', '.join(map(str, payload[k]))}" for k in ("apt", "pip") if payload.get(k)]
        if payload.get("reason"):
            parts.append(f"reason: {payload['reason']}")
        return "; ".join(parts)
    if action == "resume_session":  # the turn budget paused the agent; the reason is already in plain words
        return f"paused because {payload.get('reason', 'it took too many turns')}"
    if action == "egress_request" and isinstance(payload.get("what"), str):  # names no value, only the credential
        return str(payload["what"])
    if action == "add_mcp_server":
        shown = " ".join([str(payload.get("command", "")), *map(str, payload.get("args") or [])]).strip()
        env = payload.get("env") if isinstance(payload.get("env"), dict) else {}
        text = f"{payload.get('name', '?')}: {shown}"
        return text + (f" (environment: {', '.join(sorted(env))})" if env else "")
    return "; ".join(f"{k}: {_short(str(v), 80)}" for k, v in payload.items() if not isinstance(v, dict | list))


def _payload(row: PendingApproval) -> dict[str, Any]:
    try:
        return row.payload_dict
    except ValueError:
        log.warning("approval %s has an unreadable payload", row.approval_id)
        return {}


def _held(raw: str) -> InboundMessage | None:
    try:
        return InboundMessage.from_json(raw)
    except (ValueError, KeyError, TypeError):
        log.warning("a held message could not be read back: %.80r", raw)
        return None


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------------------------- deciding


async def decide(
    services: AppServices, approval_id: str, *, approve: bool, agent_ref: str | None = None
) -> Decision:
    """Approve or reject one request as the owner; ``agent_ref`` picks the agent for a chat waiting for one."""
    db = services.ctx.db
    approval_id = approval_id.strip()
    agent_row = await approvals_db.get_approval(db, approval_id)
    if agent_row is not None:
        decision = await _decide_agent(services, agent_row, approve)
    elif (sender_row := await approvals_db.get_sender_approval(db, approval_id)) is not None:
        decision = await _decide_sender(services, sender_row, approve)
    elif (channel_row := await approvals_db.get_channel_approval(db, approval_id)) is not None:
        decision = await _decide_channel(services, channel_row, approve, agent_ref)
    else:
        raise NotFound(f"no request {approval_id} is waiting; it was decided or expired already")
    decision.count = await count(services)
    log.info("approval %s (%s) %s from the app", decision.id, decision.kind, decision.outcome)
    services.ctx.events.publish(CHANGED, approval_id=decision.id, card=decision.kind, outcome=decision.outcome,
                                count=decision.count)
    return decision


async def acting_owner(db: Database, approver: str | None) -> str:
    """Whom the app clicks as: its own user, else the card's approver, else the first owner (owners only).

    Whoever holds the app or this machine's command line holds the owner's keys anyway.
    """
    owners = await users_db.owners(db)
    if not owners:
        raise UserError("nobody is owner yet, so nobody may decide requests: finish setup, or make yourself owner "
                        "with `nanoclaw people grant <your id> owner`")
    for candidate in (APP_USER, approver):
        if candidate in owners:
            return candidate
    return owners[0]


async def _click(services: AppServices, question_id: str, value: str, approver: str | None) -> None:
    actor = await acting_owner(services.ctx.db, approver)
    if not await services.approvals.on_action(question_id, value, actor):
        raise NotFound(f"no request {question_id} is waiting; it was decided or expired meanwhile")


async def _decide_agent(services: AppServices, row: PendingApproval, approve: bool) -> Decision:
    if row.status != "pending":
        raise UserError(f"this request was already {row.status}")
    await _click(services, row.approval_id, APPROVE if approve else REJECT, row.approver_user_id)
    after = await approvals_db.get_approval(services.ctx.db, row.approval_id)
    if after is None or after.status == "pending":
        raise UserError("NanoClaw could not decide the request; the log says why")
    verb = "approved" if after.status == "approved" else after.status
    return Decision(row.approval_id, AGENT, after.status, f"{row.title} {verb}; the agent has been told", 0)


async def _decide_sender(services: AppServices, row: PendingSenderApproval, approve: bool) -> Decision:
    who = row.sender_name or row.sender_identity
    if approve and not services.live:
        raise UserError(_NEEDS_HOST.format(what=f"Letting {who} in"))
    await _click(services, row.id, sender_cards.ALLOW if approve else sender_cards.DENY, row.approver_user_id)
    if await approvals_db.get_sender_approval(services.ctx.db, row.id) is not None:
        raise UserError("NanoClaw could not decide the request; the log says why")
    agent = await agents_db.get(services.ctx.db, row.agent_group_id)
    name = agent.name if agent else row.agent_group_id
    if approve:
        return Decision(row.id, SENDER, "allowed", f"{who} may now talk to {name}; their message was passed on", 0)
    days = round(services.settings.sender_denial_seconds / 86400)
    return Decision(row.id, SENDER, "denied", f"{who} was turned away; NanoClaw ignores them there for {days} days",
                    0)


async def _decide_channel(
    services: AppServices, row: PendingChannelApproval, approve: bool, agent_ref: str | None
) -> Decision:
    db = services.ctx.db
    chat = await messaging.get(db, row.messaging_group_id)
    where = (chat.name or chat.platform_id) if chat else row.messaging_group_id
    if not approve:
        value = channel_cards.CANCEL if row.stage == "choose_agent" else channel_cards.REJECT
        await _click(services, row.id, value, row.approver_user_id)
        await _still_waiting(db, row)
        if value == channel_cards.CANCEL:  # the card flow has no reject once the agent list is out
            return Decision(row.id, CHANNEL, "cancelled", f"{where} stays unconnected until the bot is addressed "
                            "there again", 0)
        return Decision(row.id, CHANNEL, "rejected", f"{where} was rejected; NanoClaw ignores it from now on", 0)
    if not services.live:
        raise UserError(_NEEDS_HOST.format(what=f"Connecting {where}"))
    agent_id = await _chosen_agent(db, row, agent_ref)
    current = row
    if current.stage != "choose_agent":
        if current.stage == "ask" and current.agent_group_id == agent_id:
            await _click(services, current.id, channel_cards.CONNECT, current.approver_user_id)
            return await _connected(services, row, agent_id, where)
        # The card offers a list of agents; open it the way a click on "Choose existing agent" does.
        await _click(services, current.id, channel_cards.CHOOSE, current.approver_user_id)
        following = await approvals_db.channel_approval_for_chat(db, row.messaging_group_id)
        if following is None or following.stage != "choose_agent":
            raise UserError("NanoClaw could not offer the list of agents for this chat; the log says why")
        current = following
    option = next((o.get("value") for o in stored_options(current.options_json)
                   if o.get("agent_group_id") == agent_id), None)
    if option is None:
        raise UserError("that agent is newer than this request; reject it and address the bot in the chat again")
    await _click(services, current.id, option, current.approver_user_id)
    return await _connected(services, row, agent_id, where)


async def _chosen_agent(db: Database, row: PendingChannelApproval, agent_ref: str | None) -> str:
    if agent_ref:
        return (await agent_by_ref(db, agent_ref)).id
    if row.agent_group_id is not None and await agents_db.get(db, row.agent_group_id) is not None:
        return row.agent_group_id
    agents = await agents_db.list_all(db)
    if len(agents) == 1:
        return agents[0].id
    if not agents:
        raise UserError("there is no agent to connect yet; create one on the Agents page first")
    raise UserError("choose which agent should answer in this chat")


async def _connected(services: AppServices, row: PendingChannelApproval, agent_id: str, where: str) -> Decision:
    db = services.ctx.db
    await _still_waiting(db, row)
    if await messaging.wiring(db, row.messaging_group_id, agent_id) is None:
        raise UserError("NanoClaw could not connect the chat; the log says why")
    agent = await agents_db.get(db, agent_id)
    name = agent.name if agent else agent_id
    return Decision(row.id, CHANNEL, "connected", f"{name} now answers in {where}; the message was passed on", 0)


async def _still_waiting(db: Database, row: PendingChannelApproval) -> None:
    if await approvals_db.channel_approval_for_chat(db, row.messaging_group_id) is not None:
        raise UserError("NanoClaw could not decide the request; the log says why")
