"""Waiting in tests for a condition the system reaches on its own: only an upper bound, never a timing assertion."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

from nanoclaw_app.core.events import Event


async def until(condition: Callable[[], Any], timeout: float = 30.0, *, every: float = 0.02) -> Any:
    """Poll ``condition`` (sync, or returning an awaitable) until it is truthy; returns that value."""
    async with asyncio.timeout(timeout):
        while True:
            value = condition()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value
            await asyncio.sleep(every)


async def next_event(queue: asyncio.Queue[Event], kind: str, predicate: Any = None, *, timeout: float = 30.0) -> Event:
    """The next event of ``kind`` on a subscription (whose data ``predicate`` accepts, when given)."""
    async with asyncio.timeout(timeout):
        while True:
            event = await queue.get()
            if event.kind == kind and (predicate is None or predicate(event.data)):
                return event
