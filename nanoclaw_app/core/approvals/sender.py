"""Unknown-sender approval: a stranger writes in a ``request_approval`` chat; an admin allows or denies them.

Allow makes them a member and replays the held message, so nothing they said is lost. Deny is remembered for
``settings.sender_denial_seconds`` (the original forgot it, so every further message produced a fresh card).
"""

from __future__ import annotations

import logging

from agent_runner.protocol import QuestionOption
from nanoclaw_app.core.approvals.cards import display_name, edit_card, options_json, send_card
from nanoclaw_app.core.approvals.dispatch import may_decide, replay_held
from nanoclaw_app.core.approvals.picks import pick_approval_delivery, pick_approver
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.messages import InboundMessage
from nanoclaw_app.db import approvals as approvals_db
from nanoclaw_app.db import denials
from nanoclaw_app.db import users as users_db
from nanoclaw_app.db.approvals import PendingSenderApproval
from nanoclaw_app.db.rows import MessagingGroup, Wiring
from nanoclaw_app.ids import new_id
from nanoclaw_app.timeutil import later_iso

log = logging.getLogger(__name__)

TITLE = "👤 New sender"
ALLOW = "allow"
DENY = "deny"
OPTIONS = (
    QuestionOption("Allow", ALLOW, "✅ Allowed"),
    QuestionOption("Deny", DENY, "❌ Denied"),
)


async def request_sender_approval(
    ctx: CoreContext, msg: InboundMessage, chat: MessagingGroup, wiring: Wiring, user_id: str
) -> None:
    """Send one "New sender" card per sender and chat; repeats while pending or after a denial send nothing."""
    if await denials.is_denied(ctx.db, chat.id, user_id):
        log.info("sender %s was denied in chat %s recently; no new card", user_id, chat.id)
        ctx.events.publish("sender.denial_remembered", messaging_group_id=chat.id, user_id=user_id)
        return
    if await approvals_db.find_sender_approval(ctx.db, chat.id, user_id) is not None:
        log.debug("sender %s already awaits approval in chat %s", user_id, chat.id)
        return
    approvers = await pick_approver(ctx.db, wiring.agent_group_id)
    delivery = await pick_approval_delivery(ctx, approvers, chat.channel_type) if approvers else None
    if delivery is None:
        log.warning("unknown sender %s in chat %s: no %s, message dropped", user_id, chat.id,
                    "reachable approver" if approvers else "owner or admin")
        ctx.events.publish("approval.no_approver", card="sender", messaging_group_id=chat.id, user_id=user_id)
        return
    approver, dm = delivery
    name = msg.sender_name or await display_name(ctx.db, user_id)
    where = chat.name or msg.chat_name or chat.platform_id
    question = f"{name} wants to talk to your agent in {where}. Allow?"
    approval_id = new_id("nsa")
    created = await approvals_db.create_sender_approval(
        ctx.db,
        approval_id=approval_id,
        messaging_group_id=chat.id,
        agent_group_id=wiring.agent_group_id,
        sender_identity=user_id,
        sender_name=name,
        original_message=msg.to_json(),
        approver_user_id=approver,
        channel_type=dm.channel_type,
        platform_id=dm.platform_id,
        title=TITLE,
        options_json=options_json(OPTIONS),
        expires_at=later_iso(ctx.settings.approval_ttl_seconds),
    )
    if not created:  # a concurrent message from the same sender won the insert
        return
    sent, message_id = await send_card(ctx, channel_type=dm.channel_type, platform_id=dm.platform_id,
                                       question_id=approval_id, title=TITLE, question=question, options=OPTIONS)
    if sent:
        await approvals_db.set_sender_message(ctx.db, approval_id, message_id)
    ctx.events.publish("sender.approval_requested", approval_id=approval_id, messaging_group_id=chat.id,
                       user_id=user_id, approver=approver, card_sent=sent)


async def on_sender_click(ctx: CoreContext, question_id: str, value: str, user_id: str) -> bool:
    """Allow (member + replay) or deny (remembered) a pending sender; only the approver or an admin may."""
    row = await approvals_db.get_sender_approval(ctx.db, question_id)
    if row is None:
        return False
    if value not in (ALLOW, DENY):
        log.warning("sender approval %s got unknown option %r from %s", question_id, value, user_id)
        return True
    if not await may_decide(ctx, kind="sender", question_id=question_id, clicker=user_id,
                            approver=row.approver_user_id, agent_group_id=row.agent_group_id):
        return True
    if not await approvals_db.delete_sender_approval(ctx.db, question_id):
        log.info("sender approval %s was decided concurrently; click by %s ignored", question_id, user_id)
        return True
    name = await display_name(ctx.db, user_id)
    if value == ALLOW:
        await _allow(ctx, row, user_id, name)
    else:
        await denials.remember(ctx.db, row.messaging_group_id, row.sender_identity,
                               agent_group_id=row.agent_group_id, denied_by=user_id,
                               expires_at=later_iso(ctx.settings.sender_denial_seconds))
        await edit_card(ctx, row.channel_type, row.platform_id, row.platform_message_id,
                        f"{row.title}\n\n❌ {row.sender_name or row.sender_identity} denied by {name}",
                        question_id=question_id)
        ctx.events.publish("sender.denied", messaging_group_id=row.messaging_group_id,
                           user_id=row.sender_identity, decided_by=user_id)
    return True


async def _allow(ctx: CoreContext, row: PendingSenderApproval, clicker: str, clicker_name: str) -> None:
    original = InboundMessage.from_json(row.original_message)
    # The router upserts senders before asking, but a user row may have been removed since; membership needs it.
    await users_db.upsert(ctx.db, row.sender_identity, original.channel_type, row.sender_name or None)
    await users_db.add_member(ctx.db, row.sender_identity, row.agent_group_id, added_by=clicker)
    await denials.forget(ctx.db, row.messaging_group_id, row.sender_identity)
    await edit_card(ctx, row.channel_type, row.platform_id, row.platform_message_id,
                    f"{row.title}\n\n✅ {row.sender_name or row.sender_identity} allowed by {clicker_name}",
                    question_id=row.id)
    ctx.events.publish("sender.allowed", messaging_group_id=row.messaging_group_id, user_id=row.sender_identity,
                       agent_group_id=row.agent_group_id, decided_by=clicker)
    await replay_held(ctx, original, reason=f"sender approval {row.id}")


async def expire_sender_approval(ctx: CoreContext, row: PendingSenderApproval, card_text: str) -> bool:
    """Drop an unanswered sender request (no denial is remembered: nobody decided)."""
    if not await approvals_db.delete_sender_approval(ctx.db, row.id):
        return False
    await edit_card(ctx, row.channel_type, row.platform_id, row.platform_message_id,
                    f"{row.title}\n\n⌛ {card_text}", question_id=row.id)
    ctx.events.publish("approval.expired", card="sender", approval_id=row.id,
                       messaging_group_id=row.messaging_group_id, user_id=row.sender_identity)
    return True
