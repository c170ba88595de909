"""Queries for ``usage``: tokens (and later cost) per model call, per agent and session."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from nanoclaw_app.db.database import Database


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One model call's token counts as the runner reported them."""

    source_id: int
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    created_at: str


async def last_source_id(db: Database, session_id: str) -> int:
    """Highest runner row id already copied for a session (0 when none)."""
    value = await db.fetchval("SELECT MAX(source_id) FROM usage WHERE session_id = ?", (session_id,))
    return int(value or 0)


async def add_from_session(db: Database, agent_group_id: str, session_id: str, rows: Iterable[UsageRow]) -> int:
    """Copy runner usage rows; a row already copied is skipped. Returns how many were new."""
    added = 0
    async with db.transaction() as conn:
        for row in rows:
            cursor = await conn.execute(
                "INSERT INTO usage (agent_group_id, session_id, provider, model, input_tokens, output_tokens,"
                " cache_read_tokens, cache_write_tokens, cost_usd, created_at, source_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?) ON CONFLICT DO NOTHING",
                (agent_group_id, session_id, row.provider, row.model, row.input_tokens, row.output_tokens,
                 row.cache_read_tokens, row.cache_write_tokens, row.created_at, row.source_id),
            )
            added += cursor.rowcount
    return added


async def totals_by_agent_day(db: Database) -> list[dict[str, object]]:
    """Token totals per agent and UTC day, newest first (for the activity page)."""
    rows = await db.fetchall(
        "SELECT agent_group_id, substr(created_at, 1, 10) AS day, COUNT(*) AS calls,"
        " SUM(input_tokens) AS input_tokens, SUM(output_tokens) AS output_tokens,"
        " SUM(cache_read_tokens) AS cache_read_tokens, SUM(cache_write_tokens) AS cache_write_tokens,"
        " SUM(cost_usd) AS cost_usd FROM usage GROUP BY agent_group_id, day ORDER BY day DESC, agent_group_id"
    )
    return [dict(r) for r in rows]
