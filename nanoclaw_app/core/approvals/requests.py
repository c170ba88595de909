"""Cards an agent caused: approval requests (``install_packages``, ``add_mcp_server``, ...) and question answers.

Approvals go to an admin's DM and their outcome comes back to the agent as a system note. Question cards are sent
by delivery into the agent's own chat; a click becomes a ``QuestionResponse`` row the blocked tool is waiting for.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from agent_runner.protocol import MessageKind, QuestionResponse
from nanoclaw_app.core.approvals.cards import (
    APPROVE,
    APPROVE_REJECT,
    REJECT,
    display_name,
    edit_card,
    options_json,
    send_card,
    stored_options,
)
from nanoclaw_app.core.approvals.dispatch import may_decide
from nanoclaw_app.core.approvals.picks import pick_approval_delivery, pick_approver
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.notes import write_refusal_note, write_system_note
from nanoclaw_app.db import approvals as approvals_db
from nanoclaw_app.db import messaging
from nanoclaw_app.db import questions as questions_db
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.approvals import PendingApproval
from nanoclaw_app.db.rows import Session
from nanoclaw_app.ids import new_id
from nanoclaw_app.sessions.store import NewInbound
from nanoclaw_app.timeutil import later_iso, now_iso

log = logging.getLogger(__name__)

ApprovalHandler = Callable[[CoreContext, PendingApproval], Awaitable[str]]
"""Applies an approved request; the returned text is told to the agent. Long work should be owned elsewhere."""


async def request_approval(
    ctx: CoreContext, *, session: Session, action: str, payload: dict[str, Any], title: str, question: str,
    ttl_seconds: float | None = None,
) -> str | None:
    """Ask the closest reachable admin; returns the approval id, or None (the agent is told) when nobody can.

    ``payload["what"]``, when given, names the request in what the agent is told ("request to use the GitHub
    credential for GET ..."); ``ttl_seconds`` overrides the approval setting (a held web request waits minutes).
    """
    approvers = await pick_approver(ctx.db, session.agent_group_id)
    origin = None
    if session.messaging_group_id is not None:
        chat = await messaging.get(ctx.db, session.messaging_group_id)
        origin = chat.channel_type if chat is not None else None
    delivery = await pick_approval_delivery(ctx, approvers, origin) if approvers else None
    if delivery is None:
        log.warning("no reachable approver for %s from session %s (approvers: %s)", action, session.id, approvers)
        ctx.events.publish("approval.no_approver", action=action, session_id=session.id,
                           agent_group_id=session.agent_group_id)
        await write_refusal_note(
            ctx, session.id,
            f"Your {payload.get('what') or action + ' request'} could not be sent for approval: no owner or admin"
            " can be reached right now.",
        )
        return None
    approver, dm = delivery
    approval_id = new_id("appr")
    await approvals_db.create_approval(
        ctx.db,
        approval_id=approval_id,
        session_id=session.id,
        action=action,
        payload=payload,
        agent_group_id=session.agent_group_id,
        approver_user_id=approver,
        channel_type=dm.channel_type,
        platform_id=dm.platform_id,
        title=title,
        options_json=options_json(APPROVE_REJECT),
        expires_at=later_iso(ctx.settings.approval_ttl_seconds if ttl_seconds is None else ttl_seconds),
    )
    sent, message_id = await send_card(
        ctx, channel_type=dm.channel_type, platform_id=dm.platform_id, question_id=approval_id, title=title,
        question=question, options=APPROVE_REJECT,
    )
    if sent:
        await approvals_db.set_approval_message(ctx.db, approval_id, message_id)
    ctx.events.publish("approval.requested", approval_id=approval_id, action=action, approver=approver,
                       session_id=session.id, card_sent=sent)
    return approval_id


async def on_approval_click(
    ctx: CoreContext, handlers: Mapping[str, ApprovalHandler], question_id: str, value: str, user_id: str
) -> bool:
    """Decide a pending request: approve runs the action's handler, reject tells the agent who said no."""
    row = await approvals_db.get_approval(ctx.db, question_id)
    if row is None:
        return False
    if row.status != "pending":
        log.info("approval %s is already %s; click by %s ignored", question_id, row.status, user_id)
        return True
    if value not in (APPROVE, REJECT):
        log.warning("approval %s got unknown option %r from %s", question_id, value, user_id)
        return True
    if not await may_decide(ctx, kind="approval", question_id=question_id, clicker=user_id,
                            approver=row.approver_user_id, agent_group_id=row.agent_group_id):
        return True
    status = "approved" if value == APPROVE else "rejected"
    if not await approvals_db.decide_approval(ctx.db, question_id, status, user_id):
        log.info("approval %s was decided concurrently; click by %s ignored", question_id, user_id)
        return True
    name = await display_name(ctx.db, user_id)
    mark = "✅ Approved" if status == "approved" else "❌ Rejected"
    await edit_card(ctx, row.channel_type, row.platform_id, row.platform_message_id,
                    f"{row.title}\n\n{mark} by {name}", question_id=question_id)
    ctx.events.publish("approval.decided", approval_id=question_id, action=row.action, status=status,
                       decided_by=user_id)
    if status == "approved":
        decided = dataclasses.replace(row, status=status, decided_by=user_id)
        note = await _apply(ctx, handlers, decided, name)
    else:
        note = f"Your {what(row)} was rejected by {name}."
    await _tell_agent(ctx, row, note)
    return True


def what(row: PendingApproval) -> str:
    """How the agent is told which request an outcome is about."""
    named = row.payload_dict.get("what")
    return named if isinstance(named, str) and named else f"{row.action} request"


async def _apply(ctx: CoreContext, handlers: Mapping[str, ApprovalHandler], row: PendingApproval, name: str) -> str:
    handler = handlers.get(row.action)
    if handler is None:
        log.error("approval %s approved, but no handler is registered for %s", row.approval_id, row.action)
        ctx.events.publish("approval.no_handler", approval_id=row.approval_id, action=row.action)
        return f"Your {row.action} request was approved by {name}, but this host cannot apply {row.action}."
    try:
        return await handler(ctx, row)
    except Exception as err:
        log.exception("applying approved %s (%s) failed", row.action, row.approval_id)
        ctx.events.publish("approval.apply_failed", approval_id=row.approval_id, action=row.action, error=str(err))
        return f"Your {row.action} request was approved by {name}, but applying it failed: {err}"


async def _tell_agent(ctx: CoreContext, row: PendingApproval, text: str) -> None:
    if row.session_id is None:
        log.info("approval %s has no session to tell: %s", row.approval_id, text)
        return
    if await write_system_note(ctx, row.session_id, text) is None:
        log.warning("session %s of approval %s is gone; note not delivered: %s", row.session_id, row.approval_id,
                    text)


async def expire_approval(ctx: CoreContext, row: PendingApproval, card_text: str) -> bool:
    """Expire one pending request (treated as deny); False when it was decided meanwhile."""
    if not await approvals_db.decide_approval(ctx.db, row.approval_id, "expired", None):
        return False
    await edit_card(ctx, row.channel_type, row.platform_id, row.platform_message_id,
                    f"{row.title}\n\n⌛ {card_text}", question_id=row.approval_id)
    ctx.events.publish("approval.expired", approval_id=row.approval_id, action=row.action)
    await _tell_agent(ctx, row, f"Your {what(row)} expired without a response, so it was not applied.")
    return True


# --------------------------------------------------------------------------------------------- question answers


async def on_question_click(ctx: CoreContext, question_id: str, value: str, user_id: str) -> bool:
    """Hand the chosen option to the waiting agent once, show the choice on the card, and wake the session.

    Anyone in the chat may answer (the card was posted there); the clicker is recorded with the answer.
    """
    question = await questions_db.get(ctx.db, question_id)
    if question is None:
        return False
    if question.answered_at is not None:
        log.info("question %s was already answered; click by %s ignored", question_id, user_id)
        return True
    options = stored_options(question.options_json)
    chosen = next((o for o in options if o.get("value") == value), None)
    if options and chosen is None:
        log.warning("question %s got unknown option %r from %s", question_id, value, user_id)
        return True
    session = await sessions_db.get(ctx.db, question.session_id)
    if session is None:
        log.warning("question %s belongs to a deleted session %s", question_id, question.session_id)
        return True
    answer = QuestionResponse(question_id=question_id, selected_option=value, user_id=user_id)
    row = NewInbound(
        id=f"{question_id}:answer",  # stable id: a racing second click re-inserts nothing
        kind=MessageKind.SYSTEM,
        content=answer.to_json(),
        timestamp=now_iso(),
        trigger=0,
        platform_id=question.platform_id,
        channel_type=question.channel_type,
        thread_id=question.thread_id,
    )
    try:
        await ctx.store.write_inbound(ctx.store.dir(session.agent_group_id, session.id), row)
    except Exception as err:
        log.exception("writing the answer to question %s into session %s failed", question_id, session.id)
        ctx.events.publish("question.answer_failed", question_id=question_id, session_id=session.id,
                           error=str(err))
        return True
    if not await questions_db.mark_answered(ctx.db, question_id):
        return True
    label = (chosen or {}).get("selected_label") or f"✅ {(chosen or {}).get('label', value)}"
    await edit_card(ctx, question.channel_type, question.platform_id, question.platform_message_id,
                    f"{question.title}\n\n{label}", question_id=question_id)
    ctx.events.publish("question.answered", question_id=question_id, session_id=session.id, value=value,
                       user_id=user_id)
    await ctx.waker.wake(session)
    return True
