"""System notes to an agent: approval results, task misses, create-agent results arrive as inbound rows."""

from __future__ import annotations

from agent_runner.protocol import AGENT_CHANNEL, ChatContent, MessageKind
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.ids import new_id
from nanoclaw_app.sessions.store import NewInbound
from nanoclaw_app.timeutil import now_iso

SYSTEM_SENDER = "system"


async def write_system_note(
    ctx: CoreContext, session_id: str, text: str, *, on_wake: bool = False, wake: bool = True
) -> int | None:
    """Write a note from ``system`` into a session and wake it; returns the seq, or None if the session is gone."""
    session = await sessions_db.get(ctx.db, session_id)
    if session is None:
        return None
    folder = ctx.store.dir(session.agent_group_id, session.id)
    content = ChatContent(text=text, sender_id=SYSTEM_SENDER, sender_name=SYSTEM_SENDER)
    row = NewInbound(
        id=new_id("msg"),
        kind=MessageKind.CHAT,
        content=content.to_json(),
        timestamp=now_iso(),
        channel_type=AGENT_CHANNEL,
        platform_id=session.agent_group_id,
        on_wake=int(on_wake),
    )
    seq, _ = await ctx.store.write_inbound(folder, row)
    if wake:
        await ctx.waker.wake(session)
    return seq
