"""What adapters call on the host: inbound messages, chat metadata and card clicks.

Each is guarded so every failure is logged and published with the message's address.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.messages import InboundMessage
from nanoclaw_app.db import messaging

if TYPE_CHECKING:
    from nanoclaw_app.core.approvals.service import ApprovalService
    from nanoclaw_app.core.router import Router

log = logging.getLogger(__name__)


class HostEvents:
    """Implements ``channels.base.HostCallbacks`` over the router and the approval service."""

    def __init__(self, ctx: CoreContext, router: Router, approvals: ApprovalService) -> None:
        self._ctx = ctx
        self._router = router
        self._approvals = approvals

    async def on_inbound(self, message: InboundMessage) -> None:
        """Route a message; an unexpected error is logged and re-raised so a redelivering adapter retries it."""
        try:
            await self._router.route(message)
        except Exception:
            log.exception(
                "routing failed for %s message %s in %s", message.channel_type, message.message_id, message.platform_id
            )
            self._ctx.events.publish(
                "message.route_failed", channel_type=message.channel_type, platform_id=message.platform_id,
                message_id=message.message_id,
            )
            raise

    async def on_metadata(self, channel_type: str, platform_id: str, name: str | None, is_group: bool) -> None:
        """Keep a known chat's name and kind current (unknown chats are created only when the bot is addressed)."""
        chat = await messaging.find(self._ctx.db, channel_type, platform_id)
        if chat is None:
            return
        changes: dict[str, object] = {}
        if name and name != chat.name:
            changes["name"] = name
        if int(is_group) != chat.is_group:
            changes["is_group"] = int(is_group)
        if changes:
            await messaging.update(self._ctx.db, chat.id, **changes)

    async def on_action(self, question_id: str, value: str, user_id: str) -> None:
        """A card click; unclaimed clicks are logged by the approval service."""
        try:
            await self._approvals.on_action(question_id, value, user_id)
        except Exception:
            log.exception("handling the click on %s by %s failed", question_id, user_id)
            self._ctx.events.publish("action.failed", question_id=question_id, user_id=user_id)
            raise
