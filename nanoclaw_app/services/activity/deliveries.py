"""Recent deliveries: each outbound message, where it went, and how sending it went.

The attempt rows are central (``db/delivery_attempts.py``); the message text lives in its session's ``outbound.db``,
so previews are read per session and a session whose folder is gone still lists its deliveries, without a preview.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass

from agent_runner.protocol import (
    ContractError,
    MessageKind,
    OutboundRow,
    SystemAction,
    decode_outbound,
    row_from_mapping,
)
from nanoclaw_app.core.outbound import preview
from nanoclaw_app.db import delivery_attempts as attempts_db
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.rows import Session
from nanoclaw_app.errors import SessionDamaged, UserError
from nanoclaw_app.services.activity.shared import check_limit, load_directory, local_time
from nanoclaw_app.services.context import AppServices

log = logging.getLogger(__name__)

DELIVERY_STATES = attempts_db.STATES


@dataclass
class DeliveryView:
    """One outbound message and how sending it went."""

    session_id: str
    message_out_id: str
    agent_group_id: str
    agent_name: str
    destination: str | None
    preview: str | None
    """A short gist of the message; None when its session folder is gone."""
    state: str
    attempts: int
    last_error: str | None
    next_attempt_at: str | None
    updated_at: str | None


@dataclass
class DeliveryList:
    """Recent deliveries, newest first, with how many rows are in each state overall."""

    timezone: str
    counts: dict[str, int]
    deliveries: list[DeliveryView]


async def list_deliveries(services: AppServices, *, state: str | None = None, limit: int = 100) -> DeliveryList:
    """The most recently updated deliveries (optionally of one state), with a preview of each message."""
    if state is not None and state not in DELIVERY_STATES:
        raise UserError(f"unknown delivery state {state!r}: use one of {', '.join(DELIVERY_STATES)}")
    limit = check_limit(limit)
    ctx = services.ctx
    attempts = await attempts_db.recent(ctx.db, state, limit)
    counts = await attempts_db.state_counts(ctx.db)
    directory = await load_directory(ctx.db)
    outbound: dict[str, OutboundRow] = {}
    sessions: dict[str, Session | None] = {}
    for session_id in dict.fromkeys(a.session_id for a in attempts):
        session = sessions[session_id] = await sessions_db.get(ctx.db, session_id)
        if session is not None:
            ids = [a.message_out_id for a in attempts if a.session_id == session_id]
            outbound.update(await _outbound_rows(services, session, ids))
    tz = services.settings.tz
    views = []
    for a in attempts:
        session = sessions.get(a.session_id)
        out = outbound.get(a.message_out_id)
        views.append(DeliveryView(
            session_id=a.session_id, message_out_id=a.message_out_id,
            agent_group_id="" if session is None else session.agent_group_id,
            agent_name="" if session is None else directory.agent(session.agent_group_id),
            destination=None if out is None else directory.address(out.channel_type, out.platform_id),
            preview=None if out is None else _gist(out),
            state=a.state, attempts=a.attempts, last_error=a.last_error,
            next_attempt_at=local_time(a.next_attempt_at, tz), updated_at=local_time(a.updated_at, tz),
        ))
    return DeliveryList(timezone=services.settings.timezone, counts=counts, deliveries=views)


async def _outbound_rows(services: AppServices, session: Session, ids: list[str]) -> dict[str, OutboundRow]:
    store = services.ctx.store
    marks = ", ".join("?" for _ in ids)

    def run(conn: sqlite3.Connection) -> dict[str, OutboundRow]:
        found = conn.execute(f"SELECT * FROM messages_out WHERE id IN ({marks})", ids).fetchall()
        return {r["id"]: row_from_mapping(OutboundRow, r) for r in found}

    try:
        folder = store.dir(session.agent_group_id, session.id)
        return await store.read_outbound(folder, run)
    except (FileNotFoundError, sqlite3.Error, SessionDamaged, UserError) as err:
        log.warning("activity: cannot read the messages of session %s for previews: %s", session.id, err)
        return {}


def _gist(row: OutboundRow) -> str:
    try:
        content = decode_outbound(row.kind, row.content)
    except (ContractError, ValueError):
        return "(unreadable message)"
    if row.kind == MessageKind.SYSTEM and isinstance(content, SystemAction):
        return f"(action {content.action})"
    return preview(content) or "(empty)"
