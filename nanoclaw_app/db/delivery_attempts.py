"""Queries for ``delivery_attempts``: persisted send attempts per outbound row.

The original kept attempt counts in memory, so a restart reset them and a crash mid-send could resend blindly. Here the
attempt is recorded as ``sending`` *before* the adapter is called; a row still in ``sending`` at startup is a send whose
outcome nobody knows, and delivery decides what to do with it (``Delivery.recover_uncertain``).
"""

from __future__ import annotations

from dataclasses import dataclass

from nanoclaw_app.db.database import Database
from nanoclaw_app.db.rows import from_row, maybe
from nanoclaw_app.timeutil import now_iso

SENDING = "sending"
RETRY = "retry"
DELIVERED = "delivered"
FAILED = "failed"
STATES = (SENDING, RETRY, DELIVERED, FAILED)
"""Every state a row can be in, in the order a send goes through them."""


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    """How often an outbound row was tried, and where it stands."""

    session_id: str
    message_out_id: str
    attempts: int
    state: str
    last_error: str | None
    next_attempt_at: str | None
    updated_at: str
    waiting_channel: str | None = None


async def begin(db: Database, session_id: str, message_out_id: str) -> int:
    """Record that a send starts now (state ``sending``); returns the attempt number, 1 for the first."""
    now = now_iso()
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO delivery_attempts (session_id, message_out_id, attempts, state, updated_at)"
            " VALUES (?, ?, 1, 'sending', ?)"
            " ON CONFLICT (session_id, message_out_id) DO UPDATE SET attempts = attempts + 1, state = 'sending',"
            " next_attempt_at = NULL, waiting_channel = NULL, updated_at = excluded.updated_at",
            (session_id, message_out_id, now),
        )
        cursor = await conn.execute(
            "SELECT attempts FROM delivery_attempts WHERE session_id = ? AND message_out_id = ?",
            (session_id, message_out_id),
        )
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def succeeded(db: Database, session_id: str, message_out_id: str) -> None:
    """The send landed (the platform id is already in the session's ``delivered`` table)."""
    await _set(db, session_id, message_out_id, DELIVERED, None, None)


async def retry_later(db: Database, session_id: str, message_out_id: str, error: str, next_attempt_at: str) -> None:
    """The send failed but may work later; delivery skips the row until ``next_attempt_at``."""
    await _set(db, session_id, message_out_id, RETRY, error, next_attempt_at)


async def wait_for_channel(
    db: Database, session_id: str, message_out_id: str, channel_type: str, error: str, next_attempt_at: str
) -> None:
    """The channel is down: the row waits for it (state ``retry``) and this attempt is not counted.

    ``next_attempt_at`` is only a safety net; :func:`resume_channel` makes the rows due as soon as the link is back.
    """
    await db.execute(
        "UPDATE delivery_attempts SET state = 'retry', attempts = MAX(attempts - 1, 0), last_error = ?,"
        " next_attempt_at = ?, waiting_channel = ?, updated_at = ? WHERE session_id = ? AND message_out_id = ?",
        (error, next_attempt_at, channel_type, now_iso(), session_id, message_out_id),
    )


async def resume_channel(db: Database, channel_type: str) -> set[str]:
    """The channel is up again: its waiting rows are due now; returns their sessions."""
    rows = await db.fetchall(
        "SELECT DISTINCT session_id FROM delivery_attempts WHERE state = 'retry' AND waiting_channel = ?",
        (channel_type,),
    )
    await db.execute(
        "UPDATE delivery_attempts SET next_attempt_at = NULL, waiting_channel = NULL, updated_at = ?"
        " WHERE state = 'retry' AND waiting_channel = ?",
        (now_iso(), channel_type),
    )
    return {str(r[0]) for r in rows}


async def waiting_counts(db: Database) -> dict[str, int]:
    """How many sends wait for each channel to come back."""
    rows = await db.fetchall(
        "SELECT waiting_channel, COUNT(*) FROM delivery_attempts WHERE state = 'retry' AND waiting_channel IS NOT NULL"
        " GROUP BY waiting_channel"
    )
    return {str(r[0]): int(r[1]) for r in rows}


async def failed(db: Database, session_id: str, message_out_id: str, error: str) -> None:
    """The send is given up for good (the user is told by the caller)."""
    await _set(db, session_id, message_out_id, FAILED, error, None)


async def uncertain(db: Database) -> list[DeliveryAttempt]:
    """Rows left in ``sending``: the process stopped between starting a send and recording its outcome."""
    rows = await db.fetchall(
        "SELECT * FROM delivery_attempts WHERE state = 'sending' ORDER BY updated_at, session_id, message_out_id"
    )
    return [from_row(DeliveryAttempt, r) for r in rows]


async def retrying_sessions(db: Database) -> set[str]:
    """Sessions with a send waiting for its backoff to pass."""
    rows = await db.fetchall("SELECT DISTINCT session_id FROM delivery_attempts WHERE state = 'retry'")
    return {str(r[0]) for r in rows}


async def recent(db: Database, state: str | None = None, limit: int = 100) -> list[DeliveryAttempt]:
    """The most recently updated rows first, optionally only those in one state (for the activity page)."""
    rows = await db.fetchall(
        "SELECT * FROM delivery_attempts WHERE ? IS NULL OR state = ? ORDER BY updated_at DESC, message_out_id"
        " LIMIT ?",
        (state, state, max(0, int(limit))),
    )
    return [from_row(DeliveryAttempt, r) for r in rows]


async def state_counts(db: Database) -> dict[str, int]:
    """How many rows are in each state over the whole table; every state is present, zero when it has none."""
    counts = dict.fromkeys(STATES, 0)
    for row in await db.fetchall("SELECT state, COUNT(*) FROM delivery_attempts GROUP BY state"):
        counts[str(row[0])] = int(row[1])
    return counts


async def get(db: Database, session_id: str, message_out_id: str) -> DeliveryAttempt | None:
    """The attempt record of one outbound row, if it was ever tried."""
    row = await db.fetchone(
        "SELECT * FROM delivery_attempts WHERE session_id = ? AND message_out_id = ?", (session_id, message_out_id)
    )
    return maybe(DeliveryAttempt, row)


async def _set(
    db: Database, session_id: str, message_out_id: str, state: str, error: str | None, next_attempt_at: str | None
) -> None:
    # An upsert, so outcomes decided before any send (a refused ACL) are recorded too.
    await db.execute(
        "INSERT INTO delivery_attempts (session_id, message_out_id, attempts, state, last_error, next_attempt_at,"
        " updated_at) VALUES (?, ?, 0, ?, ?, ?, ?)"
        " ON CONFLICT (session_id, message_out_id) DO UPDATE SET state = excluded.state,"
        " last_error = COALESCE(excluded.last_error, last_error), next_attempt_at = excluded.next_attempt_at,"
        " updated_at = excluded.updated_at",
        (session_id, message_out_id, state, error, next_attempt_at, now_iso()),
    )
