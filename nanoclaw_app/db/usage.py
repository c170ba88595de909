"""Queries for ``usage``: one row per model call the gateway forwarded, with its tokens and cost in USD.

The model gateway is the one writer: it sees every call a container makes (including the Claude CLI's own internal
ones), so these rows are the bill. ``created_at`` is the stored UTC form (``timeutil.iso``), which sorts as text.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from nanoclaw_app.db.database import Database
from nanoclaw_app.timeutil import now_iso

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CallUsage:
    """One forwarded model call: who made it, against which API and model, and what it cost.

    ``input_tokens`` counts only uncached input; cached reads and cache writes are counted apart because they are
    priced apart (for OpenAI, whose ``prompt_tokens`` include the cached ones, the gateway subtracts them).
    """

    agent_group_id: str | None
    session_id: str | None
    provider: str
    """The API the call went to: ``anthropic`` or ``openai``."""
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    created_at: str = ""
    """Stored UTC time; empty means now."""


@dataclass(frozen=True, slots=True)
class UsageBucket:
    """The calls of one agent in one UTC quarter hour, summed."""

    agent_group_id: str
    """Empty for calls that no agent made."""
    start: datetime
    """The quarter hour's start, in UTC."""
    calls: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost_usd: float


_INSERT = (
    "INSERT INTO usage (agent_group_id, session_id, provider, model, input_tokens, output_tokens,"
    " cache_read_tokens, cache_write_tokens, cost_usd, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _values(call: CallUsage) -> tuple[object, ...]:
    return (call.agent_group_id, call.session_id, call.provider, call.model, call.input_tokens, call.output_tokens,
            call.cache_read_tokens, call.cache_write_tokens, call.cost_usd, call.created_at or now_iso())


async def record_call(db: Database, call: CallUsage) -> int:
    """Insert one call; returns its row id."""
    async with db.transaction() as conn:
        cursor = await conn.execute(_INSERT, _values(call))
        return int(cursor.lastrowid or 0)


async def record_calls(db: Database, calls: Sequence[CallUsage]) -> None:
    """Insert many calls in one transaction (the gateway writes its calls in batches)."""
    if calls:
        await db.executemany(_INSERT, [_values(call) for call in calls])


async def spend_since(db: Database, since: str) -> float:
    """USD spent on calls at or after ``since`` (a stored UTC time), over all agents."""
    value = await db.fetchval("SELECT COALESCE(SUM(cost_usd), 0) FROM usage WHERE created_at >= ?", (since,))
    return float(value or 0.0)


async def buckets_since(db: Database, since: str) -> list[UsageBucket]:
    """Usage summed per agent and UTC quarter hour for calls at or after ``since`` (a stored UTC time).

    SQLite knows no IANA timezones, and a fixed offset would be wrong across a DST change; every real UTC offset is a
    whole number of quarter hours, so a quarter-hour bucket always lies within one local day and the caller can sum
    buckets into days on the user's clock. That keeps the rows returned small (at most 96 per agent and day) however
    many calls were made.
    """
    rows = await db.fetchall(
        "SELECT COALESCE(agent_group_id, '') AS agent, substr(created_at, 1, 14)"
        " || printf('%02d', (CAST(substr(created_at, 15, 2) AS INTEGER) / 15) * 15) AS bucket,"
        " COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(cache_read_tokens), SUM(cache_write_tokens),"
        " SUM(cost_usd) FROM usage WHERE created_at >= ? GROUP BY agent, bucket",
        (since,),
    )
    buckets = []
    for r in rows:
        try:
            start = datetime.fromisoformat(str(r[1]).replace(" ", "T") + ":00+00:00")
        except ValueError:
            log.warning("usage rows with an unreadable time %r are left out of the report", r[1])
            continue
        buckets.append(UsageBucket(
            agent_group_id=str(r[0]), start=start, calls=int(r[2]), input_tokens=int(r[3] or 0),
            output_tokens=int(r[4] or 0), cache_read_tokens=int(r[5] or 0), cache_write_tokens=int(r[6] or 0),
            cost_usd=float(r[7] or 0.0),
        ))
    return buckets


async def calls_of_session(db: Database, session_id: str) -> list[CallUsage]:
    """Every recorded call of one session, oldest first (for the activity page and tests)."""
    rows = await db.fetchall(
        "SELECT agent_group_id, session_id, provider, model, input_tokens, output_tokens, cache_read_tokens,"
        " cache_write_tokens, cost_usd, created_at FROM usage WHERE session_id = ? ORDER BY id",
        (session_id,),
    )
    return [CallUsage(**dict(r)) for r in rows]


async def totals_by_agent_day(db: Database) -> list[dict[str, object]]:
    """Calls, tokens and cost per agent and UTC day, newest first (for the activity page)."""
    rows = await db.fetchall(
        "SELECT agent_group_id, substr(created_at, 1, 10) AS day, COUNT(*) AS calls,"
        " SUM(input_tokens) AS input_tokens, SUM(output_tokens) AS output_tokens,"
        " SUM(cache_read_tokens) AS cache_read_tokens, SUM(cache_write_tokens) AS cache_write_tokens,"
        " SUM(cost_usd) AS cost_usd FROM usage GROUP BY agent_group_id, day ORDER BY day DESC, agent_group_id"
    )
    return [dict(r) for r in rows]
