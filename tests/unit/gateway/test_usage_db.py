"""The usage table as the gateway writes it: one row per call, spend since a time, totals per agent and day."""

from __future__ import annotations

import pytest

from nanoclaw_app.db import agents as agents_db
from nanoclaw_app.db import usage as usage_db
from nanoclaw_app.db.database import Database


async def test_calls_are_summed_since_a_time_and_per_agent_and_day(db: Database) -> None:
    agent = await agents_db.create(db, "Helper")
    for cost, at in ((1.25, "2026-11-20T23:59:59.000Z"), (0.5, "2026-11-21T00:00:00.000Z"),
                     (2.0, "2026-11-21T08:30:00.000Z")):
        await usage_db.record_call(db, usage_db.CallUsage(agent.id, "sess-1", "anthropic", "claude-sonnet-4-6",
                                                          input_tokens=10, output_tokens=2, cost_usd=cost,
                                                          created_at=at))

    assert await usage_db.spend_since(db, "2026-11-21T00:00:00.000Z") == pytest.approx(2.5)
    assert await usage_db.spend_since(db, "2026-11-22T00:00:00.000Z") == 0.0
    totals = await usage_db.totals_by_agent_day(db)
    assert [(t["agent_group_id"], t["day"], t["calls"], t["input_tokens"], t["cost_usd"]) for t in totals] == [
        (agent.id, "2026-11-21", 2, 20, pytest.approx(2.5)),
        (agent.id, "2026-11-20", 1, 10, pytest.approx(1.25)),
    ]
    calls = await usage_db.calls_of_session(db, "sess-1")
    assert [c.cost_usd for c in calls] == [1.25, 0.5, 2.0]


async def test_a_call_without_a_time_is_stamped_now(db: Database) -> None:
    await usage_db.record_call(db, usage_db.CallUsage(None, "sess-2", "openai", "gpt-4o", cost_usd=0.1))

    (call,) = await usage_db.calls_of_session(db, "sess-2")
    assert call.created_at.endswith("Z")
    assert len(call.created_at) == 24
