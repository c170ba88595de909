"""What adapters call on the host: inbound messages, chat metadata and card clicks.

Each is guarded so every failure is logged and published with the message's address.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from nanoclaw_app.core import pairing
from nanoclaw_app.core.adapter_contract import ChannelStatus
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.messages import InboundMessage
from nanoclaw_app.core.notify import notify_owner
from nanoclaw_app.db import messaging

if TYPE_CHECKING:
    from nanoclaw_app.core.approvals.service import ApprovalService
    from nanoclaw_app.core.router import Router

log = logging.getLogger(__name__)


class HostEvents:
    """Implements ``core.adapter_contract.HostCallbacks`` over the router and the approval service."""

    def __init__(
        self,
        ctx: CoreContext,
        router: Router,
        approvals: ApprovalService,
        *,
        on_channel_up: Callable[[str], Awaitable[object]] | None = None,
        on_component: Callable[[str, str], None] | None = None,
    ) -> None:
        self._ctx = ctx
        self._router = router
        self._approvals = approvals
        self._on_channel_up = on_channel_up
        self._on_component = on_component
        self.statuses: dict[str, ChannelStatus] = {}
        """The last status each channel reported (the app's channel page reads it)."""

    async def on_inbound(self, message: InboundMessage) -> None:
        """Route a message; errors are logged and re-raised for a retry."""
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

    async def on_status(self, channel_type: str, status: ChannelStatus) -> None:
        """Show the link's state; when it is up, send what waited; an ``alert`` goes to the owner elsewhere."""
        previous = self.statuses.get(channel_type)
        self.statuses[channel_type] = status
        if previous is None or previous.state != status.state or previous.detail != status.detail:
            log.info("channel %s: %s%s", channel_type, status.state, f" ({status.detail})" if status.detail else "")
        self._ctx.events.publish("channel.status", channel_type=channel_type, **status.to_dict())
        if self._on_component is not None:
            self._on_component(f"channel:{channel_type}", status.state)
        owner_chat, owner_handle = status.extra.get("owner_chat"), status.extra.get("owner_handle")
        if status.up and owner_chat and owner_handle:
            # The account is the owner's own (WhatsApp "Message yourself"): their self chat is the owner's DM.
            try:
                await pairing.bind_chat(self._ctx, channel_type, owner_chat, owner_handle, owner=True,
                                        sender_name=status.account or "")
            except Exception:
                log.exception("could not make the %s self chat the owner's", channel_type)
        if status.up and self._on_channel_up is not None and (previous is None or not previous.up):
            try:
                await self._on_channel_up(channel_type)
            except Exception:
                log.exception("sending what waited for %s failed; the delivery poll retries", channel_type)
        if status.alert:
            await notify_owner(self._ctx, status.alert, avoid_channel=channel_type)
