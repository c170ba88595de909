"""Dropped messages: every inbound message that reached no agent, and why.

``db/drops.py`` keeps one aggregate row per chat, sender, reason and agent; this view labels them and adds the totals
per reason, so the user sees at a glance what is being refused most.
"""

from __future__ import annotations

from dataclasses import dataclass

from nanoclaw_app.db import drops as drops_db
from nanoclaw_app.services.activity.shared import check_limit, load_directory, local_time
from nanoclaw_app.services.context import AppServices


@dataclass
class DroppedView:
    """Messages from one sender in one chat refused for one reason (aggregated)."""

    id: int
    channel_type: str
    platform_id: str
    chat: str | None
    sender: str | None
    user_id: str | None
    reason: str
    detail: str | None
    agent_group_id: str | None
    agent_name: str
    last_text: str | None
    count: int
    first_seen: str | None
    last_seen: str | None


@dataclass
class ReasonCount:
    """How many messages were dropped for one reason, over the whole history."""

    reason: str
    messages: int
    senders: int


@dataclass
class DroppedList:
    """Dropped messages, most recently seen first, and the totals per reason."""

    timezone: str
    total_messages: int
    reasons: list[ReasonCount]
    dropped: list[DroppedView]


async def list_dropped(services: AppServices, *, limit: int = 200) -> DroppedList:
    """Every message that reached no agent, and why (``db/drops.py`` keeps one row per chat, sender and reason)."""
    limit = check_limit(limit)
    ctx = services.ctx
    tz = services.settings.tz
    directory = await load_directory(ctx.db)
    reasons = [ReasonCount(r.reason, r.messages, r.senders) for r in await drops_db.reason_totals(ctx.db)]
    views = [
        DroppedView(
            id=d.id, channel_type=d.channel_type, platform_id=d.platform_id,
            chat=directory.chat(d.messaging_group_id) or directory.address(d.channel_type, d.platform_id),
            sender=d.sender_name or d.user_id, user_id=d.user_id, reason=d.reason, detail=d.detail,
            agent_group_id=d.agent_group_id, agent_name=directory.agent(d.agent_group_id), last_text=d.last_text,
            count=d.message_count, first_seen=local_time(d.first_seen, tz), last_seen=local_time(d.last_seen, tz),
        )
        for d in await drops_db.list_recent(ctx.db, limit)
    ]
    return DroppedList(timezone=services.settings.timezone, total_messages=sum(r.messages for r in reasons),
                       reasons=reasons, dropped=views)
