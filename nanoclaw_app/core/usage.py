"""Copy the token usage a runner wrote into its ``outbound.db`` into the central ``usage`` table."""

from __future__ import annotations

import logging
import sqlite3

from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.db import usage as usage_db
from nanoclaw_app.db.rows import Session

log = logging.getLogger(__name__)


def _read(conn: sqlite3.Connection, after: int) -> list[usage_db.UsageRow]:
    rows = conn.execute(
        "SELECT id, provider, model, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, created_at"
        " FROM usage_out WHERE id > ? ORDER BY id",
        (after,),
    ).fetchall()
    return [
        usage_db.UsageRow(source_id=r["id"], provider=r["provider"], model=r["model"], input_tokens=r["input_tokens"],
                          output_tokens=r["output_tokens"], cache_read_tokens=r["cache_read_tokens"],
                          cache_write_tokens=r["cache_write_tokens"], created_at=r["created_at"])
        for r in rows
    ]


async def ingest(ctx: CoreContext, session: Session) -> int:
    """Copy new usage rows of one session; returns how many were added."""
    after = await usage_db.last_source_id(ctx.db, session.id)
    folder = ctx.store.dir(session.agent_group_id, session.id)
    rows = await ctx.store.read_outbound(folder, lambda conn: _read(conn, after))
    if not rows:
        return 0
    added = await usage_db.add_from_session(ctx.db, session.agent_group_id, session.id, rows)
    if added:
        ctx.events.publish("usage.recorded", session_id=session.id, calls=added,
                           output_tokens=sum(r.output_tokens for r in rows))
    return added
