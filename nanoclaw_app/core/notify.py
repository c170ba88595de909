"""Tell the owner something in their DM (a failed delivery, a dead container): the channel of last resort."""

from __future__ import annotations

import logging

from nanoclaw_app.core.approvals.picks import pick_approval_delivery
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.messages import OutboundMessage
from nanoclaw_app.db import users as users_db
from nanoclaw_app.ids import short_code

log = logging.getLogger(__name__)


async def notify_owner(
    ctx: CoreContext, text: str, *, prefer_channel: str | None = None, avoid_channel: str | None = None
) -> bool:
    """Send ``text`` to the first reachable owner DM (on ``prefer_channel`` when possible); False when nobody got it.

    ``avoid_channel`` is a channel that just went down: the notice goes anywhere else (phone channels before the
    in-app chat). Never raises: a notice that cannot be sent is logged (with its text) so it still shows in the log.
    """
    owners = await users_db.owners(ctx.db)
    delivery = await pick_approval_delivery(ctx, owners, prefer_channel, avoid_channel=avoid_channel) \
        if owners else None
    if delivery is None:
        log.warning("cannot notify the owner (%s): %s", "no owner reachable" if owners else "no owner", text)
        ctx.events.publish("owner.notify_failed", text=text, reason="unreachable" if owners else "no owner")
        return False
    owner, chat = delivery
    adapter = ctx.channels.get(chat.channel_type)
    if adapter is None:  # pragma: no cover - pick_approval_delivery only returns running channels
        return False
    message = OutboundMessage(kind="text", delivery_id=f"notice:{short_code()}", text=text)
    try:
        await adapter.deliver(chat.platform_id, None, message)
    except Exception as err:
        log.exception("notifying owner %s on %s failed: %s", owner, chat.channel_type, text)
        ctx.events.publish("owner.notify_failed", text=text, reason=str(err), user_id=owner)
        return False
    ctx.events.publish("owner.notified", user_id=owner, channel_type=chat.channel_type, text=text)
    return True
