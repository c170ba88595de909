"""Queries for ``usage``: one row per model call the gateway forwarded, with its tokens and cost in USD.

The model gateway is the one writer: it sees every call a container makes (including the Claude CLI's own internal
ones), so these rows are the bill. ``created_at`` is the stored UTC form (``timeutil.iso``), which sorts as text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nanoclaw_app.db.database import Database
from nanoclaw_app.timeutil import now_iso


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
