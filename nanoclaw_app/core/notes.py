"""System notes to an agent: approval results, task misses, create-agent results arrive as inbound rows."""

from __future__ import annotations

import logging
import sqlite3
from datetime import timedelta

from agent_runner.protocol import AGENT_CHANNEL, ChatContent, MessageKind
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.ids import new_id
from nanoclaw_app.sessions.store import NewInbound
from nanoclaw_app.timeutil import iso, now_iso, utcnow

log = logging.getLogger(__name__)

SYSTEM_SENDER = "system"
REFUSAL_ID = "refusal-"
"""Id prefix of refusal notes, so the next refusal can find the ones before it."""
MAX_REFUSAL_NOTES = 20
"""Refusal notes one session gets per ``turn_window_seconds``; later refusals are only recorded and logged."""


async def write_system_note(
    ctx: CoreContext, session_id: str, text: str, *, on_wake: bool = False, wake: bool = True,
    trigger: bool = True, note_id: str | None = None,
) -> int | None:
    """Write a note from ``system`` into a session and wake it; returns the seq, or None if the session is gone.

    ``trigger=False`` makes it context the agent reads with its next turn, without starting one.
    """
    session = await sessions_db.get(ctx.db, session_id)
    if session is None:
        return None
    folder = ctx.store.dir(session.agent_group_id, session.id)
    content = ChatContent(text=text, sender_id=SYSTEM_SENDER, sender_name=SYSTEM_SENDER)
    row = NewInbound(
        id=note_id or new_id("msg"),
        kind=MessageKind.CHAT,
        content=content.to_json(),
        timestamp=now_iso(),
        trigger=int(trigger),
        channel_type=AGENT_CHANNEL,
        platform_id=session.agent_group_id,
        on_wake=int(on_wake),
    )
    seq, _ = await ctx.store.write_inbound(folder, row)
    if wake and trigger:
        await ctx.waker.wake(session)
    return seq


async def write_refusal_note(ctx: CoreContext, session_id: str, text: str) -> int | None:
    """Tell the agent a request of its was refused, without letting refusals feed a loop.

    A refusal that woke the agent each time let an agent retry a refused message 756 times in three minutes. So per
    ``turn_window_seconds`` only the first refusal wakes the agent; later ones are context for its next turn, the
    same text is never repeated, and past ``MAX_REFUSAL_NOTES`` they are only logged (delivery records every refused
    row anyway). Returns the seq, or None when nothing was written.
    """
    session = await sessions_db.get(ctx.db, session_id)
    if session is None:
        return None
    folder = ctx.store.dir(session.agent_group_id, session.id)
    since = iso(utcnow() - timedelta(seconds=ctx.settings.turn_window_seconds))
    content = ChatContent(text=text, sender_id=SYSTEM_SENDER, sender_name=SYSTEM_SENDER).to_json()

    def recent(conn: sqlite3.Connection) -> list[str]:
        return [r[0] for r in conn.execute(
            "SELECT content FROM messages_in WHERE id LIKE ? AND timestamp >= ?", (REFUSAL_ID + "%", since))]

    earlier = await ctx.store.read(folder, recent, with_outbound=False)
    if content in earlier or len(earlier) >= MAX_REFUSAL_NOTES:
        log.info("session %s: refusal not repeated to the agent (%d already this window): %s", session_id,
                 len(earlier), text)
        return None
    first = not earlier
    return await write_system_note(ctx, session_id, text, trigger=first, note_id=REFUSAL_ID + new_id("msg"))
