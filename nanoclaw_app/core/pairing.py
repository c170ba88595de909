"""Pairing codes: the person at the app proves which phone chat is theirs by sending 4 digits from it.

The app shows a code (``create_code``); the person sends exactly those digits to the bot (or ``@bot 1234`` in a group,
where Telegram's privacy mode only lets mentions through). The host looks at every inbound message first
(:func:`intercept`): a match binds the chat — the sender becomes the owner for an ``owner`` code (only someone who can
see the app got the code), the chat is created with a strict sender policy, and it is wired to the agent. A wrong
4-digit guess invalidates every pending code of that channel, so guessing is useless; the app then offers a fresh one.
Codes never leave this machine and are kept only until used.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass

from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.messages import InboundMessage, OutboundMessage
from nanoclaw_app.core.projection import reproject_agent
from nanoclaw_app.db import agents as agents_db
from nanoclaw_app.db import messaging, pairing_codes
from nanoclaw_app.db import users as users_db
from nanoclaw_app.db.database import Database
from nanoclaw_app.db.pairing_codes import PairingCode
from nanoclaw_app.errors import NotFound, UserError
from nanoclaw_app.ids import short_code
from nanoclaw_app.timeutil import now_iso

log = logging.getLogger(__name__)

OWNER_INTENT = "owner"
WIRE_PREFIX = "wire:"
_BARE = re.compile(r"^\s*(\d{4})\s*$")
_MENTIONED = re.compile(r"^\s*@\S+\s+(\d{4})\s*$")


@dataclass(frozen=True, slots=True)
class Paired:
    """The outcome of a matching code."""

    channel_type: str
    user_id: str
    platform_id: str
    messaging_group_id: str
    agent_group_id: str | None
    owner: bool


async def create_code(db: Database, channel_type: str, intent: str = OWNER_INTENT) -> PairingCode:
    """A fresh 4-digit code for ``intent`` (``owner`` or ``wire:<agent id>``); an older pending one is superseded."""
    if intent != OWNER_INTENT and not intent.startswith(WIRE_PREFIX):
        raise UserError(f"unknown pairing intent {intent!r}")
    if intent.startswith(WIRE_PREFIX) and await agents_db.get(db, intent[len(WIRE_PREFIX):]) is None:
        raise NotFound(f"there is no agent {intent[len(WIRE_PREFIX):]}")
    taken = {c.code for c in await pending(db, channel_type)}
    code = f"{secrets.randbelow(10_000):04d}"
    while code in taken:
        code = f"{secrets.randbelow(10_000):04d}"
    now = now_iso()
    await pairing_codes.replace_pending(db, code, channel_type, intent, now)
    return PairingCode(code, channel_type, intent, now)


async def pending(db: Database, channel_type: str) -> list[PairingCode]:
    """Codes of a channel still waiting to be sent."""
    return await pairing_codes.pending(db, channel_type)


async def cancel(db: Database, channel_type: str) -> None:
    """Withdraw every pending code of a channel (the user closed the pairing screen)."""
    await pairing_codes.invalidate_pending(db, channel_type)


def attempted_code(message: InboundMessage) -> str | None:
    """The 4 digits a message is trying, if it looks like a pairing attempt (bare in any chat, ``@bot 1234`` too)."""
    match = _BARE.match(message.text) or _MENTIONED.match(message.text)
    return match.group(1) if match else None


async def intercept(ctx: CoreContext, message: InboundMessage) -> bool:
    """Consume a pairing attempt before routing; True when the message was one (matched or not).

    Messages are only looked at while the channel has pending codes, so ordinary 4-digit messages (a PIN the agent
    asked for) pass through once pairing is over.
    """
    code = attempted_code(message)
    if code is None:
        return False
    codes = await pending(ctx.db, message.channel_type)
    if not codes:
        return False
    match = next((c for c in codes if secrets.compare_digest(c.code, code)), None)
    if match is None:
        await cancel(ctx.db, message.channel_type)
        log.warning("wrong pairing code tried on %s from %s; pending codes invalidated", message.channel_type,
                    message.sender_id)
        ctx.events.publish("pairing.invalidated", channel_type=message.channel_type,
                           reason="a wrong code was sent; get a new code in the app")
        await _reply(ctx, message, "That code is not right. Ask for a new code in the NanoClaw app.")
        return True
    paired = await _bind(ctx, message, match)
    ctx.events.publish("channel.paired", channel_type=paired.channel_type, user_id=paired.user_id,
                       platform_id=paired.platform_id, messaging_group_id=paired.messaging_group_id,
                       agent_group_id=paired.agent_group_id, owner=paired.owner,
                       chat_name=message.chat_name or message.sender_name or paired.platform_id)
    agent = await agents_db.get(ctx.db, paired.agent_group_id) if paired.agent_group_id else None
    text = "Paired! This chat is now connected to NanoClaw."
    if agent is not None:
        text += f" Say hello to {agent.name}."
    await _reply(ctx, message, text)
    return True


async def main_agent(db: Database) -> str | None:
    """The agent a newly paired owner chat talks to: the one answering the in-app chat, else the first agent."""
    in_app = await messaging.first_agent_on(db, "webchat")
    if in_app is not None:
        return in_app
    agents = await agents_db.list_all(db)
    return agents[0].id if agents else None


async def _bind(ctx: CoreContext, message: InboundMessage, code: PairingCode) -> Paired:
    user_id = users_db.namespaced(message.channel_type, message.sender_id)
    spent = await pairing_codes.mark_used(ctx.db, code, user_id, message.platform_id)
    if not spent:  # pragma: no cover - two messages with the same code at the same instant
        raise UserError("this pairing code was already used")
    agent_id = code.intent[len(WIRE_PREFIX):] if code.intent.startswith(WIRE_PREFIX) else None
    return await bind_chat(
        ctx, message.channel_type, message.platform_id, message.sender_id,
        sender_name=message.sender_name, chat_name=message.chat_name, is_group=message.is_group,
        owner=code.intent == OWNER_INTENT, agent_id=agent_id,
    )


async def bind_chat(
    ctx: CoreContext,
    channel_type: str,
    platform_id: str,
    sender_handle: str,
    *,
    sender_name: str = "",
    chat_name: str | None = None,
    is_group: bool = False,
    owner: bool = False,
    agent_id: str | None = None,
) -> Paired:
    """Make a chat the person's (owner when ``owner``) and wire it to ``agent_id`` or the main agent (idempotent)."""
    db = ctx.db
    user_id = users_db.namespaced(channel_type, sender_handle)
    if await users_db.get(db, user_id) is None:
        await users_db.upsert(db, user_id, channel_type, sender_name or None)
    if owner and user_id not in await users_db.owners(db):
        await users_db.grant(db, user_id, "owner")
    chat = await messaging.create(db, channel_type, platform_id, name=chat_name or sender_name or None,
                                  is_group=is_group, unknown_sender_policy="strict")
    agent_id = agent_id or await main_agent(db)
    if agent_id is not None and not await messaging.wirings_for(db, chat.id):
        spec = (messaging.WiringSpec(engage_mode="mention") if is_group
                else messaging.WiringSpec(engage_mode="pattern", engage_pattern="."))
        await messaging.wire(db, chat.id, agent_id, spec)
        await reproject_agent(ctx, agent_id)
    if not is_group:
        await users_db.cache_dm(db, user_id, channel_type, chat.id)
        if agent_id is not None and not owner:
            await users_db.add_member(db, user_id, agent_id)
    log.info("bound %s chat %s (user %s, owner=%s, agent %s)", channel_type, platform_id, user_id, owner, agent_id)
    return Paired(channel_type, user_id, platform_id, chat.id, agent_id, owner)


async def _reply(ctx: CoreContext, message: InboundMessage, text: str) -> None:
    adapter = ctx.channels.get(message.channel_type)
    if adapter is None:
        return
    out = OutboundMessage(kind="text", delivery_id=f"pairing:{short_code()}", text=text)
    try:
        await adapter.deliver(message.platform_id, message.thread_id, out)
    except Exception:
        log.warning("could not confirm pairing in %s chat %s", message.channel_type, message.platform_id,
                    exc_info=True)
