"""A write cancelled while it waits for its transaction to begin leaves the database usable."""

from __future__ import annotations

import asyncio

from nanoclaw_app.db import app_state
from nanoclaw_app.db.database import Database


async def test_cancelling_writes_at_every_point_never_wedges_later_writes(db: Database) -> None:
    # Cancel after 0, 1, 2, ... loop turns, so some cancellations land while BEGIN IMMEDIATE is still queued.
    for turns in range(12):
        task = asyncio.create_task(app_state.put(db, f"k{turns}", "v"))
        for _ in range(turns):
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await app_state.put(db, "after", str(turns))  # raised "cannot start a transaction within a transaction"
        assert await app_state.get(db, "after") == str(turns)
