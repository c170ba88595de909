"""The host's stop, in named steps: a step that takes long says which it is, so a slow quit can be explained."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

log = logging.getLogger(__name__)

SLOW_STEP_SECONDS = 5.0
"""A stop step running longer than this is logged by name while it runs (and again with its time when done)."""


class StopSteps(AsyncExitStack):
    """An exit stack whose callbacks have names; ``aclose`` runs them in reverse order like any exit stack."""

    def __init__(self, slow_seconds: float = SLOW_STEP_SECONDS) -> None:
        super().__init__()
        self._slow_seconds = slow_seconds

    def step(self, name: str, callback: Callable[[], Awaitable[object]]) -> None:
        """Run ``callback`` at close under ``name``; a step still running after the slow time is logged."""

        async def timed() -> None:
            started = time.monotonic()
            waiting = asyncio.ensure_future(callback())
            try:
                while not (await asyncio.wait({waiting}, timeout=self._slow_seconds))[0]:
                    log.warning("still stopping: %s (%.0f s so far)", name, time.monotonic() - started)
            except asyncio.CancelledError:
                waiting.cancel()  # the step is the stop's own work: it ends with the wait for it
                raise
            took = time.monotonic() - started
            if took >= self._slow_seconds:
                log.warning("stopping %s took %.1f s", name, took)
            waiting.result()

        self.push_async_callback(timed)
