"""A tiny in-process event bus: the core publishes what happened, the UI's live stream and tests subscribe."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened: ``kind`` like ``message.dropped``, ``delivery.failed``; ``data`` is JSON-ready."""

    kind: str
    data: dict[str, Any] = field(default_factory=dict)


class EventBus:
    """Fan-out of events to subscribers with bounded queues (a slow subscriber loses old events, never blocks)."""

    def __init__(self, queue_size: int = 1000) -> None:
        self._subscribers: set[asyncio.Queue[Event]] = set()
        self._queue_size = queue_size

    def publish(self, kind: str, **data: Any) -> None:
        """Send an event to every subscriber, dropping the oldest for a full queue."""
        event = Event(kind, data)
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(event)

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[Event]]:
        """Receive events while the context is open."""
        queue: asyncio.Queue[Event] = asyncio.Queue(self._queue_size)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)
