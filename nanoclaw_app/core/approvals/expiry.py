"""Expiry of unanswered cards: an approval nobody answers is a "no", and a stale card is edited to say so.

Called by the sweep (``expire_due``) and once at start (``sweep_stale_on_start``) for what expired while the host
was down. Each row is claimed before it is acted on, so a click racing the sweep decides it exactly once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from nanoclaw_app.core.approvals.channel import expire_channel_approval
from nanoclaw_app.core.approvals.requests import expire_approval
from nanoclaw_app.core.approvals.sender import expire_sender_approval
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.db import approvals as approvals_db
from nanoclaw_app.db import denials
from nanoclaw_app.timeutil import now_iso

log = logging.getLogger(__name__)

NO_RESPONSE = "Expired (no response)"

R = TypeVar("R")


async def expire_due(ctx: CoreContext, *, card_text: str = NO_RESPONSE) -> int:
    """Expire every card past its ``expires_at``; returns how many were expired."""
    now = now_iso()
    count = await _each(ctx, await approvals_db.due_approvals(ctx.db, now), expire_approval, card_text)
    count += await _each(ctx, await approvals_db.due_sender_approvals(ctx.db, now), expire_sender_approval,
                         card_text)
    count += await _each(ctx, await approvals_db.due_channel_approvals(ctx.db, now), expire_channel_approval,
                         card_text)
    purged = await denials.purge_expired(ctx.db)
    if count or purged:
        log.info("expired %d unanswered approval card(s), forgot %d old sender denial(s)", count, purged)
    return count


async def sweep_stale_on_start(ctx: CoreContext, *, live_actions: frozenset[str] = frozenset()) -> int:
    """At start, expire what ran out while the host was down (the agents are told, the cards edited).

    Requests of ``live_actions`` were waited for by the process that ended, so they expire whatever their time.
    """
    count = await expire_due(ctx)
    if live_actions:
        held = await approvals_db.pending_of_actions(ctx.db, sorted(live_actions))
        count += await _each(ctx, held, expire_approval, NO_RESPONSE)
    if count:
        ctx.events.publish("approval.swept_on_start", count=count)
    return count


async def _each(
    ctx: CoreContext,
    rows: Sequence[R],
    expire: Callable[[CoreContext, R, str], Awaitable[bool]],
    card_text: str,
) -> int:
    count = 0
    for row in rows:
        try:
            count += await expire(ctx, row, card_text)
        except Exception:  # one broken row must not keep the others pending forever
            log.exception("expiring %r failed", row)
    return count
