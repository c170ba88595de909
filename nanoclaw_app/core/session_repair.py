"""A damaged session is set aside and started afresh, and the owner is told: nothing waits on it forever.

A session's files live in a folder its container can write, so a hostile (or crashed) agent can leave ``inbound.db``
as a link, a folder or garbage, or ``outbound.db`` unreadable. The store refuses such files (``SessionDamaged``); this
module is what the core does next: stop the container (it still has the old folder mounted), move the damaged folder
or file to ``<home>/set-aside/`` (kept for a look, never deleted, never read again by the host), recreate it, and say
so in plain words. Messages keep flowing: the caller retries its write on the fresh files.
"""

from __future__ import annotations

import logging

from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.messages import OutboundMessage
from nanoclaw_app.core.notify import notify_owner
from nanoclaw_app.db import messaging
from nanoclaw_app.db.rows import Session
from nanoclaw_app.errors import SessionDamaged
from nanoclaw_app.ids import short_code
from nanoclaw_app.sessions.store import INBOUND

log = logging.getLogger(__name__)

async def repair_session(ctx: CoreContext, session: Session, damage: SessionDamaged) -> None:
    """Set the damaged part of ``session`` aside, recreate it and tell the owner (once per repair)."""
    async with ctx.store.repair_lock(session.id):
        folder = ctx.store.dir(session.agent_group_id, session.id)
        try:
            await ctx.store.read(folder, lambda conn: None, with_outbound=damage.file != INBOUND)
        except SessionDamaged:
            pass
        else:
            return  # another caller repaired it while we waited for the lock
        await ctx.waker.stop(session.id, reason="its session files were damaged")
        whole = damage.file == INBOUND
        moved = await ctx.store.set_aside(folder, None if whole else damage.file)
        log.warning("session %s: %s; %s set aside to %s and started afresh", session.id, damage,
                    "its folder" if whole else damage.file, moved)
        ctx.events.publish("session.repaired", session_id=session.id, agent_group_id=session.agent_group_id,
                           file=damage.file, reason=damage.reason, set_aside=str(moved))
        if whole:
            text = ("An agent's conversation files were tampered with (a file was replaced by something NanoClaw "
                    "does not trust), so that conversation was started afresh. The agent may have lost the thread "
                    "of that chat; messages still reach it. The old files were kept in the set-aside folder.")
        else:
            text = ("An agent's outgoing-message file was damaged, so NanoClaw set it aside and gave the agent a "
                    "new one. Replies the agent had not sent yet may be missing; new messages work again. The old "
                    "file was kept in the set-aside folder.")
        await notify_owner(ctx, text)
        if not whole:
            await _tell_chat(ctx, session, "Some of my replies may not have reached you because of a technical "
                                          "problem on my side. It is fixed now; please ask again if you miss one.")


async def _tell_chat(ctx: CoreContext, session: Session, text: str) -> None:
    """Say ``text`` in the session's own chat (never raises: the owner was told already)."""
    chat = await messaging.get(ctx.db, session.messaging_group_id) if session.messaging_group_id else None
    adapter = ctx.channels.get(chat.channel_type) if chat is not None else None
    if chat is None or adapter is None:
        return
    try:
        await adapter.deliver(chat.platform_id, session.thread_id,
                              OutboundMessage(kind="text", delivery_id=f"repair:{short_code()}", text=text))
    except Exception:
        log.exception("could not tell chat %s that session %s was repaired", chat.id, session.id)
