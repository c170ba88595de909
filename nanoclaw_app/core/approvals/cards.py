"""Approval cards: sent straight to an approver's DM through the adapter, edited in place after the decision.

Cards bypass delivery (they belong to no session). A failed send is logged and published but never deletes the
pending row, so the request stays visible in the app and still expires normally.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable

from agent_runner.protocol import QuestionOption
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.messages import OutboundMessage
from nanoclaw_app.db import users as users_db
from nanoclaw_app.db.database import Database
from nanoclaw_app.ids import short_code

log = logging.getLogger(__name__)

APPROVE = "approve"
REJECT = "reject"

APPROVE_REJECT = (
    QuestionOption("Approve", APPROVE, "✅ Approved"),
    QuestionOption("Reject", REJECT, "❌ Rejected"),
)


def options_json(options: Iterable[QuestionOption], extra: dict[str, dict[str, str]] | None = None) -> str:
    """Options as stored in ``options_json``; ``extra`` adds private keys per value (e.g. an agent id)."""
    extra = extra or {}
    return json.dumps([opt.to_dict() | extra.get(opt.value, {}) for opt in options], ensure_ascii=False)


def stored_options(raw: str) -> list[dict[str, str]]:
    """Decode ``options_json`` leniently (a broken column means no options, not a crash)."""
    try:
        data = json.loads(raw)
    except (TypeError, ValueError):
        log.warning("unreadable options_json %r", raw)
        return []
    return [o for o in data if isinstance(o, dict)] if isinstance(data, list) else []


async def display_name(db: Database, user_id: str) -> str:
    """How a person is named on a card: their display name, else their id."""
    user = await users_db.get(db, user_id)
    return user.display_name if user is not None and user.display_name else user_id


async def send_card(
    ctx: CoreContext,
    *,
    channel_type: str,
    platform_id: str,
    question_id: str,
    title: str,
    question: str,
    options: Iterable[QuestionOption],
) -> tuple[bool, str | None]:
    """Send a question card; returns (sent, platform message id). Failures are logged and published, not raised."""
    message = OutboundMessage(
        kind="question",
        delivery_id=f"{question_id}:card",
        text=question,
        question_id=question_id,
        title=title,
        options=tuple(options),
    )
    return await _send(ctx, channel_type, platform_id, message, question_id=question_id)


async def send_text(ctx: CoreContext, channel_type: str, platform_id: str, text: str, *, delivery_id: str) -> bool:
    """Send a plain text to a DM (prompts and confirmations around a card); ``delivery_id`` names what it is for."""
    message = OutboundMessage(kind="text", delivery_id=f"{delivery_id}:{short_code()}", text=text)
    sent, _ = await _send(ctx, channel_type, platform_id, message, question_id=delivery_id)
    return sent


async def edit_card(
    ctx: CoreContext,
    channel_type: str | None,
    platform_id: str | None,
    platform_message_id: str | None,
    text: str,
    *,
    question_id: str,
) -> None:
    """Best effort: replace the card's text (and buttons) with the outcome; a failure only costs a stale card."""
    if channel_type is None or platform_id is None or platform_message_id is None:
        log.info("card %s was never sent (or its id is unknown); nothing to edit", question_id)
        return
    adapter = ctx.channels.get(channel_type)
    if adapter is None:
        log.warning("cannot edit card %s: channel %s is not running", question_id, channel_type)
        return
    message = OutboundMessage(
        kind="edit", delivery_id=f"{question_id}:edit:{short_code()}", text=text, target_message_id=platform_message_id
    )
    try:
        await adapter.deliver(platform_id, None, message)
    except Exception:
        log.warning("editing card %s on %s failed", question_id, channel_type, exc_info=True)


async def _send(
    ctx: CoreContext, channel_type: str, platform_id: str, message: OutboundMessage, *, question_id: str
) -> tuple[bool, str | None]:
    adapter = ctx.channels.get(channel_type)
    if adapter is None:
        log.error("cannot send %s %s: channel %s is not running", message.kind, question_id, channel_type)
        ctx.events.publish("approval.card_failed", question_id=question_id, channel_type=channel_type,
                           error="channel not running")
        return False, None
    try:
        platform_message_id = await adapter.deliver(platform_id, None, message)
    except Exception as err:
        log.exception("sending %s %s to %s:%s failed", message.kind, question_id, channel_type, platform_id)
        ctx.events.publish("approval.card_failed", question_id=question_id, channel_type=channel_type,
                           error=str(err))
        return False, None
    return True, platform_message_id
