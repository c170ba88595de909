"""Unknown-channel registration: the bot was addressed in a chat no agent answers; an admin connects or rejects it.

Connecting wires the chat with conservative defaults, makes the person who addressed the bot a member (so the replay
is not bounced into a sender approval) and replays their message. "Connect new agent" asks the approver for a name
in their DM; :func:`intercept_agent_name` captures the reply before the router sees it.
"""

from __future__ import annotations

import logging
import sqlite3

from agent_runner.protocol import QuestionOption
from nanoclaw_app.core.approvals.cards import (
    display_name,
    edit_card,
    options_json,
    send_card,
    send_text,
    stored_options,
)
from nanoclaw_app.core.approvals.dispatch import may_decide, replay_held
from nanoclaw_app.core.approvals.picks import pick_approval_delivery, pick_approver
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.messages import InboundMessage
from nanoclaw_app.core.projection import reproject_agent
from nanoclaw_app.core.user_dm import ensure_user_dm
from nanoclaw_app.db import agents as agents_db
from nanoclaw_app.db import approvals as approvals_db
from nanoclaw_app.db import messaging
from nanoclaw_app.db import users as users_db
from nanoclaw_app.db.approvals import PendingChannelApproval
from nanoclaw_app.db.messaging import WiringSpec
from nanoclaw_app.db.rows import AgentGroup, MessagingGroup
from nanoclaw_app.errors import UserError
from nanoclaw_app.ids import new_id
from nanoclaw_app.text_safety import clean_name, clean_text
from nanoclaw_app.timeutil import later_iso, now_iso

log = logging.getLogger(__name__)

GROUP_TITLE = "📣 Bot mentioned in new channel"
DM_TITLE = "💬 New direct message"
CHOOSE_TITLE = "Choose an agent"

CONNECT = "connect"
CHOOSE = "choose"
NEW = "new"
REJECT = "reject"
CANCEL = "cancel"
_AGENT_PREFIX = "a"  # follow-up options are a0, a1, ...: short enough for Telegram's 64-byte callback data

_NAME_PROMPT = "Reply with a name for the new agent that will answer in {where} (or “cancel”)."
_MAX_NAME = 64


def wiring_defaults(chat: MessagingGroup) -> WiringSpec:
    """Conservative wiring: groups answer on mention (and follow the thread), DMs answer everything; known senders."""
    mode, pattern = ("mention-sticky", None) if chat.is_group else ("pattern", ".")
    return WiringSpec(
        engage_mode=mode,
        engage_pattern=pattern,
        sender_scope="known",
        ignored_message_policy="accumulate",
        session_mode="shared",
    )


def _where(chat: MessagingGroup | None, msg: InboundMessage | None = None) -> str:
    if chat is None:
        return "the chat"
    return chat.name or (msg.chat_name if msg is not None else None) or f"{chat.channel_type} {chat.platform_id}"


async def request_channel_registration(ctx: CoreContext, msg: InboundMessage, chat: MessagingGroup) -> None:
    """Ask an owner (or global admin) which agent should answer in a chat that has none; once per chat."""
    if chat.denied_at is not None:
        log.debug("chat %s was rejected before; no registration card", chat.id)
        return
    if await approvals_db.channel_approval_for_chat(ctx.db, chat.id) is not None:
        log.debug("chat %s already awaits registration", chat.id)
        return
    approvers = await pick_approver(ctx.db, None)
    if not approvers:
        log.warning("bot addressed in unwired chat %s (%s) but there is no owner to ask; run setup to claim "
                    "ownership", chat.id, chat.channel_type)
        ctx.events.publish("approval.no_approver", card="channel", messaging_group_id=chat.id)
        return
    delivery = await pick_approval_delivery(ctx, approvers, chat.channel_type)
    if delivery is None:
        log.warning("bot addressed in unwired chat %s but no owner or admin is reachable by DM", chat.id)
        ctx.events.publish("approval.no_approver", card="channel", messaging_group_id=chat.id, unreachable=True)
        return
    approver, dm = delivery

    agents = await agents_db.list_all(ctx.db)
    options: list[QuestionOption] = []
    if len(agents) == 1:
        options.append(QuestionOption(f"Connect to {agents[0].name}", CONNECT, "✅ Connected"))
    elif agents:
        options.append(QuestionOption("Choose existing agent", CHOOSE))
    options += [QuestionOption("Connect new agent", NEW), QuestionOption("Reject", REJECT, "❌ Rejected")]

    sender = msg.sender_name or msg.sender_id
    if chat.is_group:
        title = GROUP_TITLE
        question = f"{sender} mentioned the bot in {_where(chat, msg)} ({chat.channel_type}). Connect an agent?"
    else:
        title = DM_TITLE
        preview = msg.text if len(msg.text) <= 200 else msg.text[:199] + "…"
        question = f"{sender} sent a direct message on {chat.channel_type}: “{preview}”. Connect an agent?"

    approval_id = new_id("nca")
    created = await approvals_db.create_channel_approval(
        ctx.db,
        approval_id=approval_id,
        messaging_group_id=chat.id,
        agent_group_id=agents[0].id if len(agents) == 1 else None,
        original_message=msg.to_json(),
        approver_user_id=approver,
        channel_type=dm.channel_type,
        platform_id=dm.platform_id,
        title=title,
        options_json=options_json(options),
        expires_at=later_iso(ctx.settings.approval_ttl_seconds),
    )
    if not created:  # a concurrent mention in the same chat won the insert
        return
    sent, message_id = await send_card(ctx, channel_type=dm.channel_type, platform_id=dm.platform_id,
                                       question_id=approval_id, title=title, question=question, options=options)
    if sent:
        await approvals_db.set_channel_message(ctx.db, approval_id, message_id)
    ctx.events.publish("channel.registration_requested", approval_id=approval_id, messaging_group_id=chat.id,
                       approver=approver, card_sent=sent)


async def on_channel_click(ctx: CoreContext, question_id: str, value: str, user_id: str) -> bool:
    """Act on a registration card (first card or the agent list); only the approver or an owner/global admin."""
    row = await approvals_db.get_channel_approval(ctx.db, question_id)
    if row is None:
        return False
    if not await may_decide(ctx, kind="channel", question_id=question_id, clicker=user_id,
                            approver=row.approver_user_id, agent_group_id=None):
        return True
    if row.stage == "choose_agent":
        await _on_choice(ctx, row, value, user_id)
    elif value == CONNECT:
        await _connect_existing(ctx, row, row.agent_group_id, user_id)
    elif value == CHOOSE:
        await _offer_agents(ctx, row, user_id)
    elif value == NEW:
        await _ask_for_name(ctx, row, user_id)
    elif value == REJECT:
        await _reject(ctx, row, user_id)
    else:
        log.warning("channel approval %s got unknown option %r from %s", question_id, value, user_id)
    return True


async def intercept_agent_name(ctx: CoreContext, msg: InboundMessage) -> bool:
    """Consume an approver's DM reply that names a new agent; True when the message was used up here."""
    if msg.is_group:
        return False
    user_id = users_db.namespaced(msg.channel_type, msg.sender_id)
    row = await approvals_db.naming_request(ctx.db, user_id, msg.channel_type, msg.platform_id)
    if row is None:
        return False
    text = msg.text.strip().splitlines()[0].strip() if msg.text.strip() else ""
    reply_id = f"{row.id}:{msg.message_id}"
    if text.lower() in ("cancel", "/cancel"):
        if await approvals_db.delete_channel_approval(ctx.db, row.id):
            await edit_card(ctx, row.channel_type, row.platform_id, row.platform_message_id,
                            f"{row.title}\n\nCancelled", question_id=row.id)
            await send_text(ctx, msg.channel_type, msg.platform_id,
                            "Cancelled. The chat stays unconnected until the bot is addressed there again.",
                            delivery_id=reply_id)
        return True
    if not text or text.startswith("/"):
        chat = await messaging.get(ctx.db, row.messaging_group_id)
        await send_text(ctx, msg.channel_type, msg.platform_id,
                        _NAME_PROMPT.format(where=_where(chat)), delivery_id=reply_id)
        return True
    if not await approvals_db.delete_channel_approval(ctx.db, row.id):
        return True  # decided concurrently (e.g. a Reject click); the text was still meant for us
    try:
        agent = await agents_db.create(ctx.db, clean_name(clean_text(text)[:_MAX_NAME], "the agent name", _MAX_NAME))
    except UserError as err:
        log.warning("creating agent %r for chat %s failed: %s", text, row.messaging_group_id, err)
        ctx.events.publish("channel.connect_failed", messaging_group_id=row.messaging_group_id, error=str(err))
        await send_text(ctx, msg.channel_type, msg.platform_id, f"Could not create the agent: {err}",
                        delivery_id=reply_id)
        return True
    log.info("created agent %s (%s) for chat %s", agent.name, agent.id, row.messaging_group_id)
    ctx.events.publish("agent.created", agent_group_id=agent.id, name=agent.name, created_by=user_id)
    chat = await _wire_and_replay(ctx, row, agent, user_id)
    if chat is not None:
        await send_text(ctx, msg.channel_type, msg.platform_id,
                        f"Created agent {agent.name} and connected it to {_where(chat)}.", delivery_id=reply_id)
    return True


async def expire_channel_approval(ctx: CoreContext, row: PendingChannelApproval, card_text: str) -> bool:
    """Drop an unanswered registration request (the chat is not rejected: a later mention asks again)."""
    if not await approvals_db.delete_channel_approval(ctx.db, row.id):
        return False
    await edit_card(ctx, row.channel_type, row.platform_id, row.platform_message_id,
                    f"{row.title}\n\n⌛ {card_text}", question_id=row.id)
    ctx.events.publish("approval.expired", card="channel", approval_id=row.id,
                       messaging_group_id=row.messaging_group_id)
    return True


# --------------------------------------------------------------------------------------------- steps


async def _connect_existing(
    ctx: CoreContext, row: PendingChannelApproval, agent_group_id: str | None, clicker: str
) -> None:
    agent = await agents_db.get(ctx.db, agent_group_id) if agent_group_id else None
    if agent is None:
        log.warning("channel approval %s: agent %s no longer exists", row.id, agent_group_id)
        ctx.events.publish("channel.connect_failed", messaging_group_id=row.messaging_group_id,
                           error="agent no longer exists")
        await _offer_agents(ctx, row, clicker)
        return
    if not await approvals_db.delete_channel_approval(ctx.db, row.id):
        log.info("channel approval %s was decided concurrently", row.id)
        return
    await _wire_and_replay(ctx, row, agent, clicker)


async def _wire_and_replay(
    ctx: CoreContext, row: PendingChannelApproval, agent: AgentGroup, clicker: str
) -> MessagingGroup | None:
    """Wire the (already claimed) chat to ``agent``, admit the sender who triggered it, replay their message."""
    chat = await messaging.get(ctx.db, row.messaging_group_id)
    if chat is None:
        log.warning("chat %s of channel approval %s is gone", row.messaging_group_id, row.id)
        return None
    try:
        await messaging.wire(ctx.db, chat.id, agent.id, wiring_defaults(chat))
    except sqlite3.IntegrityError:
        log.info("chat %s is already wired to agent %s", chat.id, agent.id)
    await reproject_agent(ctx, agent.id)  # running sessions of the agent may now reach the new chat
    original = InboundMessage.from_json(row.original_message)
    sender = users_db.namespaced(original.channel_type, original.sender_id)
    await users_db.upsert(ctx.db, sender, original.channel_type, original.sender_name or None)
    await users_db.add_member(ctx.db, sender, agent.id, added_by=clicker)
    name = await display_name(ctx.db, clicker)
    await edit_card(ctx, row.channel_type, row.platform_id, row.platform_message_id,
                    f"{row.title}\n\n✅ Connected to {agent.name} by {name}", question_id=row.id)
    ctx.events.publish("channel.connected", messaging_group_id=chat.id, agent_group_id=agent.id,
                       decided_by=clicker)
    await replay_held(ctx, original, reason=f"channel approval {row.id}")
    return chat


async def _offer_agents(ctx: CoreContext, row: PendingChannelApproval, clicker: str) -> None:
    agents = await agents_db.list_all(ctx.db)
    if not agents:
        await _ask_for_name(ctx, row, clicker)
        return
    options = [QuestionOption(f"Connect to {a.name}", f"{_AGENT_PREFIX}{i}", "✅ Connected")
               for i, a in enumerate(agents)]
    options.append(QuestionOption("Cancel", CANCEL, "Cancelled"))
    private = {f"{_AGENT_PREFIX}{i}": {"agent_group_id": a.id} for i, a in enumerate(agents)}
    follow_up = new_id("nca")
    if not await approvals_db.advance_channel_approval(
        ctx.db, row.id, from_stage=row.stage, to_stage="choose_agent", new_id=follow_up, title=CHOOSE_TITLE,
        options_json=options_json(options, private),
    ):
        log.info("channel approval %s moved on concurrently", row.id)
        return
    await edit_card(ctx, row.channel_type, row.platform_id, row.platform_message_id,
                    f"{row.title}\n\nChoosing an agent…", question_id=row.id)
    chat = await messaging.get(ctx.db, row.messaging_group_id)
    if row.channel_type is None or row.platform_id is None:  # pragma: no cover - always set at creation
        return
    sent, message_id = await send_card(
        ctx, channel_type=row.channel_type, platform_id=row.platform_id, question_id=follow_up, title=CHOOSE_TITLE,
        question=f"Which agent should answer in {_where(chat)}?", options=options,
    )
    if sent:
        await approvals_db.set_channel_message(ctx.db, follow_up, message_id)


async def _on_choice(ctx: CoreContext, row: PendingChannelApproval, value: str, clicker: str) -> None:
    if value == CANCEL:
        if await approvals_db.delete_channel_approval(ctx.db, row.id):
            name = await display_name(ctx.db, clicker)
            await edit_card(ctx, row.channel_type, row.platform_id, row.platform_message_id,
                            f"{row.title}\n\nCancelled by {name}", question_id=row.id)
            ctx.events.publish("channel.registration_cancelled", messaging_group_id=row.messaging_group_id,
                               decided_by=clicker)
        return
    chosen = next((o for o in stored_options(row.options_json) if o.get("value") == value), None)
    if chosen is None or not chosen.get("agent_group_id"):
        log.warning("channel approval %s got unknown choice %r from %s", row.id, value, clicker)
        return
    await _connect_existing(ctx, row, chosen["agent_group_id"], clicker)


async def _ask_for_name(ctx: CoreContext, row: PendingChannelApproval, clicker: str) -> None:
    # The prompt goes to whoever chose "new" (an admin other than the designated approver may have clicked).
    target = (row.approver_user_id, row.channel_type, row.platform_id)
    if clicker != row.approver_user_id:
        dm = await ensure_user_dm(ctx, clicker)
        if dm is not None:
            target = (clicker, dm.channel_type, dm.platform_id)
    user, channel_type, platform_id = target
    if channel_type is None or platform_id is None:  # pragma: no cover - always set at creation
        return
    if not await approvals_db.advance_channel_approval(ctx.db, row.id, from_stage=row.stage, to_stage="name_agent",
                                                       approver=(user, channel_type, platform_id)):
        log.info("channel approval %s moved on concurrently", row.id)
        return
    chat = await messaging.get(ctx.db, row.messaging_group_id)
    await edit_card(ctx, row.channel_type, row.platform_id, row.platform_message_id,
                    f"{row.title}\n\n✏️ Waiting for the new agent's name…", question_id=row.id)
    await send_text(ctx, channel_type, platform_id, _NAME_PROMPT.format(where=_where(chat)),
                    delivery_id=f"{row.id}:name")


async def _reject(ctx: CoreContext, row: PendingChannelApproval, clicker: str) -> None:
    if not await approvals_db.delete_channel_approval(ctx.db, row.id):
        log.info("channel approval %s was decided concurrently", row.id)
        return
    await messaging.update(ctx.db, row.messaging_group_id, denied_at=now_iso())
    name = await display_name(ctx.db, clicker)
    await edit_card(ctx, row.channel_type, row.platform_id, row.platform_message_id,
                    f"{row.title}\n\n❌ Rejected by {name}", question_id=row.id)
    ctx.events.publish("channel.rejected", messaging_group_id=row.messaging_group_id, decided_by=clicker)
