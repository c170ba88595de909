"""Where a card click goes, whether the person who clicked may decide it, and replaying what was held.

Unlike the original, every approval kind checks the clicker: a card forwarded to a group chat, or a platform that
lets others press buttons on a message, must not let a stranger approve a package install.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from nanoclaw_app.core.access import is_admin_of
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.messages import InboundMessage

log = logging.getLogger(__name__)

ClickHandler = Callable[[str, str, str], Awaitable[bool]]
"""``(question_id, value, user_id) -> claimed``: True when the click was this handler's card (decided or not)."""


async def may_decide(
    ctx: CoreContext, *, kind: str, question_id: str, clicker: str, approver: str | None, agent_group_id: str | None
) -> bool:
    """The designated approver, or any admin of the agent (owners and global admins included), may decide.

    A refusal is logged and published; the caller changes nothing.
    """
    if approver is not None and clicker == approver:
        return True
    if await is_admin_of(ctx.db, clicker, agent_group_id):
        return True
    log.warning("refused %s click on %s by %s (approver %s)", kind, question_id, clicker, approver)
    ctx.events.publish("approval.refused_clicker", card=kind, question_id=question_id, user_id=clicker,
                       approver=approver, agent_group_id=agent_group_id)
    return False


async def dispatch(
    ctx: CoreContext, handlers: Sequence[ClickHandler], question_id: str, value: str, user_id: str
) -> bool:
    """Offer the click to each handler in order; the first that claims it wins. Unknown ids are logged."""
    for handler in handlers:
        if await handler(question_id, value, user_id):
            return True
    log.warning("click on unknown or finished card %s (value %r) by %s", question_id, value, user_id)
    ctx.events.publish("approval.unknown_click", question_id=question_id, value=value, user_id=user_id)
    return False


async def replay_held(ctx: CoreContext, message: InboundMessage, *, reason: str) -> None:
    """Route a held message again; a failure is logged and published (the decision itself stands)."""
    try:
        await ctx.replay(message)
    except Exception as err:
        log.exception("replaying message %s after %s failed", message.message_id, reason)
        ctx.events.publish("approval.replay_failed", message_id=message.message_id, reason=reason, error=str(err))
