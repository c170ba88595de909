"""Chats and their wiring: which agent answers in which chat, when it speaks up, and who may talk to it.

The router reads chats and wirings from the database for every message, so a change here takes effect with the next
message, in the running host and from the CLI alike; only the agents' view of their destinations is re-projected.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from dataclasses import dataclass, field

from nanoclaw_app.core.approvals.channel import wiring_defaults
from nanoclaw_app.core.projection import reproject_agent
from nanoclaw_app.db import agents as agents_db
from nanoclaw_app.db import approvals as approvals_db
from nanoclaw_app.db import messaging
from nanoclaw_app.db.database import Database
from nanoclaw_app.db.messaging import (
    ENGAGE_MODES,
    IGNORED_POLICIES,
    SENDER_POLICIES,
    SENDER_SCOPES,
    SESSION_MODES,
    WiringSpec,
)
from nanoclaw_app.db.rows import MessagingGroup, Wiring
from nanoclaw_app.errors import NotFound, UserError
from nanoclaw_app.services.agents.lookup import agent_by_ref
from nanoclaw_app.services.context import AppServices

log = logging.getLogger(__name__)

MAX_PRIORITY = 1000
MAX_PATTERN = 500


@dataclass
class AgentRef:
    """An agent as a choice in a list."""

    id: str
    name: str


@dataclass
class WiringView:
    """One agent wired to a chat, with the agent's name for display."""

    id: str
    agent_group_id: str
    agent_name: str
    engage_mode: str
    engage_pattern: str | None
    sender_scope: str
    ignored_message_policy: str
    session_mode: str
    priority: int


@dataclass
class ChatView:
    """A chat as the chats page and ``nanoclaw chats list`` show it."""

    id: str
    channel_type: str
    platform_id: str
    name: str | None
    title: str
    is_group: bool
    unknown_sender_policy: str
    denied_at: str | None
    created_at: str
    wirings: list[WiringView] = field(default_factory=list)
    pending_registration: str | None = None
    """The id of the pending "connect an agent?" request, while one waits on the approvals page."""


@dataclass
class WiringChanges:
    """What to change in a wiring; None leaves a value as it is (an empty pattern clears it)."""

    engage_mode: str | None = None
    engage_pattern: str | None = None
    sender_scope: str | None = None
    ignored_message_policy: str | None = None
    session_mode: str | None = None
    priority: int | None = None


# --------------------------------------------------------------------------------------------- lookups


async def chat_by_ref(db: Database, ref: str) -> MessagingGroup:
    """A chat by id, by ``<channel>:<platform id>`` or by its name (case-insensitive, must be unique)."""
    ref = ref.strip()
    chat = await messaging.get(db, ref)
    if chat is not None:
        return chat
    channel, _, platform_id = ref.partition(":")
    if platform_id:
        chat = await messaging.find(db, channel, platform_id)
        if chat is not None:
            return chat
    matches = [c for c in await messaging.list_all(db) if (c.name or "").casefold() == ref.casefold()]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UserError(f"several chats are called {ref!r}; use the id ({', '.join(c.id for c in matches)})")
    raise NotFound(f"no chat {ref!r}; `nanoclaw chats list` shows the chats and their ids")


async def list_agents(services: AppServices) -> list[AgentRef]:
    """Every agent, for the pickers on the chats and people pages."""
    return [AgentRef(a.id, a.name) for a in await agents_db.list_all(services.ctx.db)]


# --------------------------------------------------------------------------------------------- reading


def _view(chat: MessagingGroup, wirings: list[Wiring], names: dict[str, str], pending: str | None) -> ChatView:
    return ChatView(
        id=chat.id,
        channel_type=chat.channel_type,
        platform_id=chat.platform_id,
        name=chat.name,
        title=chat.name or chat.platform_id,
        is_group=bool(chat.is_group),
        unknown_sender_policy=chat.unknown_sender_policy,
        denied_at=chat.denied_at,
        created_at=chat.created_at,
        wirings=[
            WiringView(
                id=w.id, agent_group_id=w.agent_group_id, agent_name=names.get(w.agent_group_id, w.agent_group_id),
                engage_mode=w.engage_mode, engage_pattern=w.engage_pattern, sender_scope=w.sender_scope,
                ignored_message_policy=w.ignored_message_policy, session_mode=w.session_mode, priority=w.priority,
            )
            for w in wirings
        ],
        pending_registration=pending,
    )


async def list_chats(services: AppServices) -> list[ChatView]:
    """Every chat with its wired agents (highest priority first) and any pending registration request."""
    db = services.ctx.db
    names = {a.id: a.name for a in await agents_db.list_all(db)}
    pending = {p.messaging_group_id: p.id for p in await approvals_db.list_channel_approvals(db)}
    by_chat: dict[str, list[Wiring]] = {}
    for wiring in await messaging.all_wirings(db):
        by_chat.setdefault(wiring.messaging_group_id, []).append(wiring)
    return [_view(c, by_chat.get(c.id, []), names, pending.get(c.id)) for c in await messaging.list_all(db)]


async def get_chat(services: AppServices, chat_ref: str) -> ChatView:
    """One chat by id, ``<channel>:<platform id>`` or name."""
    db = services.ctx.db
    chat = await chat_by_ref(db, chat_ref)
    names = {a.id: a.name for a in await agents_db.list_all(db)}
    pending = await approvals_db.channel_approval_for_chat(db, chat.id)
    return _view(chat, await messaging.wirings_for(db, chat.id), names, pending.id if pending else None)


# --------------------------------------------------------------------------------------------- changing


async def set_policy(services: AppServices, chat_ref: str, policy: str) -> ChatView:
    """Decide what happens when someone who is not yet allowed writes in the chat."""
    if policy not in SENDER_POLICIES:
        raise UserError(
            f"unknown-sender policy {policy!r} is not one of {', '.join(SENDER_POLICIES)}: strict ignores strangers, "
            "request_approval asks you first, public lets anyone in"
        )
    chat = await chat_by_ref(services.ctx.db, chat_ref)
    await messaging.update(services.ctx.db, chat.id, unknown_sender_policy=policy)
    log.info("chat %s: unknown-sender policy %s -> %s", chat.id, chat.unknown_sender_policy, policy)
    services.ctx.events.publish("chats.changed", messaging_group_id=chat.id, change="policy", policy=policy)
    return await get_chat(services, chat.id)


async def wire(
    services: AppServices, chat_ref: str, agent_ref: str, changes: WiringChanges | None = None
) -> ChatView:
    """Let an agent answer in a chat; unset options get the conservative defaults a new chat gets from approval."""
    db = services.ctx.db
    chat = await chat_by_ref(db, chat_ref)
    agent = await agent_by_ref(db, agent_ref)
    if await messaging.wiring(db, chat.id, agent.id) is not None:
        raise UserError(f"{agent.name} already answers in {chat.name or chat.platform_id}; change its settings "
                        "instead of wiring it again")
    spec = _merge(wiring_defaults(chat), changes or WiringChanges())
    try:
        await messaging.wire(db, chat.id, agent.id, spec)
    except sqlite3.IntegrityError as err:  # wired concurrently (another tab or the CLI)
        raise UserError(f"{agent.name} already answers in {chat.name or chat.platform_id}") from err
    await _reproject(services, agent.id)
    log.info("wired agent %s to chat %s (%s)", agent.id, chat.id, spec)
    services.ctx.events.publish("chats.changed", messaging_group_id=chat.id, change="wired",
                                agent_group_id=agent.id)
    return await get_chat(services, chat.id)


async def update_wiring(services: AppServices, wiring_id: str, changes: WiringChanges) -> ChatView:
    """Change how an agent engages in a chat; the whole result is validated before anything is written."""
    db = services.ctx.db
    current = await _wiring(db, wiring_id)
    spec = _merge(WiringSpec(engage_mode=current.engage_mode, engage_pattern=current.engage_pattern,
                             sender_scope=current.sender_scope,
                             ignored_message_policy=current.ignored_message_policy,
                             session_mode=current.session_mode, priority=current.priority), changes)
    await messaging.update_wiring(
        db, wiring_id, engage_mode=spec.engage_mode, engage_pattern=spec.engage_pattern,
        sender_scope=spec.sender_scope, ignored_message_policy=spec.ignored_message_policy,
        session_mode=spec.session_mode, priority=spec.priority,
    )
    log.info("wiring %s changed to %s", wiring_id, spec)
    services.ctx.events.publish("chats.changed", messaging_group_id=current.messaging_group_id, change="wiring",
                                wiring_id=wiring_id)
    return await get_chat(services, current.messaging_group_id)


async def unwire(services: AppServices, wiring_id: str) -> ChatView:
    """Stop an agent answering in a chat (it keeps the chat as a destination it may still write to)."""
    db = services.ctx.db
    current = await _wiring(db, wiring_id)
    await messaging.unwire(db, wiring_id)
    log.info("unwired agent %s from chat %s", current.agent_group_id, current.messaging_group_id)
    services.ctx.events.publish("chats.changed", messaging_group_id=current.messaging_group_id, change="unwired",
                                agent_group_id=current.agent_group_id)
    return await get_chat(services, current.messaging_group_id)


async def wiring_between(services: AppServices, chat_ref: str, agent_ref: str) -> Wiring:
    """The wiring of an agent in a chat (the CLI names both instead of a wiring id)."""
    db = services.ctx.db
    chat = await chat_by_ref(db, chat_ref)
    agent = await agent_by_ref(db, agent_ref)
    found = await messaging.wiring(db, chat.id, agent.id)
    if found is None:
        raise NotFound(f"{agent.name} is not wired to {chat.name or chat.platform_id}")
    return found


async def wiring_of_chat(services: AppServices, chat_id: str, wiring_id: str) -> Wiring:
    """A wiring that must belong to the named chat (so a stale page cannot change another chat by accident)."""
    found = await _wiring(services.ctx.db, wiring_id)
    if found.messaging_group_id != chat_id:
        raise NotFound(f"chat {chat_id} has no wiring {wiring_id}; reload the page")
    return found


# --------------------------------------------------------------------------------------------- helpers


async def _wiring(db: Database, wiring_id: str) -> Wiring:
    found = await messaging.wiring_by_id(db, wiring_id)
    if found is None:
        raise NotFound(f"no wiring {wiring_id}; it may have been removed meanwhile")
    return found


def _merge(base: WiringSpec, changes: WiringChanges) -> WiringSpec:
    """Apply changes and validate with messages that say how to fix the value."""
    mode = changes.engage_mode if changes.engage_mode is not None else base.engage_mode
    pattern = base.engage_pattern if changes.engage_pattern is None else (changes.engage_pattern.strip() or None)
    if mode != "pattern":
        pattern = None  # only pattern mode reads it; a leftover would surprise when switching back
    spec = WiringSpec(
        engage_mode=mode,
        engage_pattern=pattern,
        sender_scope=changes.sender_scope if changes.sender_scope is not None else base.sender_scope,
        ignored_message_policy=(changes.ignored_message_policy if changes.ignored_message_policy is not None
                                else base.ignored_message_policy),
        session_mode=changes.session_mode if changes.session_mode is not None else base.session_mode,
        priority=changes.priority if changes.priority is not None else base.priority,
    )
    _check(spec)
    return spec


def _check(spec: WiringSpec) -> None:
    for value, allowed, label in (
        (spec.engage_mode, ENGAGE_MODES, "engage mode"),
        (spec.sender_scope, SENDER_SCOPES, "sender scope"),
        (spec.ignored_message_policy, IGNORED_POLICIES, "ignored-message policy"),
        (spec.session_mode, SESSION_MODES, "session mode"),
    ):
        if value not in allowed:
            raise UserError(f"{label} {value!r} is not one of {', '.join(allowed)}")
    if spec.engage_mode == "pattern":
        if not spec.engage_pattern:
            raise UserError("the pattern engage mode needs a pattern; use . to answer every message")
        if len(spec.engage_pattern) > MAX_PATTERN:
            raise UserError(f"the pattern is longer than {MAX_PATTERN} characters; shorten it")
        try:
            re.compile(spec.engage_pattern)
        except re.error as err:
            raise UserError(f"the pattern {spec.engage_pattern!r} is not a valid regular expression ({err}); "
                            "fix it, or use . to answer every message") from err
    if not isinstance(spec.priority, int) or isinstance(spec.priority, bool) or abs(spec.priority) > MAX_PRIORITY:
        raise UserError(f"priority must be a whole number between -{MAX_PRIORITY} and {MAX_PRIORITY}")
    spec.check()


async def _reproject(services: AppServices, agent_group_id: str) -> None:
    """Wiring adds the chat to the agent's destinations: running sessions must see it without a restart."""
    try:
        await reproject_agent(services.ctx, agent_group_id)
    except Exception:
        log.exception("re-projecting destinations of agent %s failed; its next wake does it", agent_group_id)
        services.ctx.events.publish("projection.failed", agent_group_id=agent_group_id)
