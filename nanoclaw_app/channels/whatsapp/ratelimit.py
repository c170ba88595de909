"""The send rate limit, a guardrail against bans: a token bucket that makes sends wait their turn, never drops them.

WhatsApp bans numbers that send in bursts like a spammer. ``per_minute`` tokens flow in evenly; a small burst (a reply
split into a few parts) goes out at once, anything beyond waits. Waiters are served strictly in arrival order, so a
long reply's parts keep their order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

DEFAULT_BURST = 5
"""Sends that may go out back to back before the steady rate applies."""


class TokenBucket:
    """``await bucket.acquire()`` before each send."""

    def __init__(
        self,
        per_minute: int,
        *,
        burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        """``clock`` and ``sleep`` are injectable so tests can watch the waiting without waiting."""
        self.per_minute = max(1, int(per_minute))
        self.capacity = float(max(1, min(self.per_minute, DEFAULT_BURST if burst is None else burst)))
        self._rate = self.per_minute / 60.0
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.capacity
        self._updated = clock()
        self._lock = asyncio.Lock()
        self.waits = 0
        """How many times a send had to wait (shown in the log; tests count it)."""

    async def acquire(self) -> None:
        """Take one token, waiting until one has flowed in."""
        async with self._lock:  # FIFO: asyncio.Lock wakes waiters in the order they came
            while True:
                self._refill()
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                self.waits += 1
                await self._sleep((1.0 - self._tokens) / self._rate)

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._updated = now
        self._tokens = min(self.capacity, self._tokens + elapsed * self._rate)
