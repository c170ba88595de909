"""The one live stream: every event the host publishes, as server-sent events, for whichever page is open."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.response import ServerSentEvent, ServerSentEventMessage

from nanoclaw_app.core.events import Event
from nanoclaw_app.services.context import AppServices

KEEPALIVE_SECONDS = 15.0


async def _stream(services: AppServices) -> AsyncIterator[ServerSentEventMessage]:
    async with services.ctx.events.subscribe() as queue:
        yield ServerSentEventMessage(event="hello", data=json.dumps({"components": services.state.components}))
        closing = asyncio.ensure_future(services.closing.wait())
        getter: asyncio.Future[Event] | None = None
        try:
            while not services.closing.is_set():
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({getter, closing}, timeout=KEEPALIVE_SECONDS,
                                             return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    if not done:
                        yield ServerSentEventMessage(comment="keepalive")
                    continue
                event = getter.result()
                yield ServerSentEventMessage(event=event.kind, data=json.dumps(event.data, default=str))
        finally:
            closing.cancel()
            if getter is not None:
                getter.cancel()  # the page went away mid-wait


class EventsController(Controller):
    """``GET /api/events``."""

    @get("/api/events", summary="Live updates (server-sent events)")
    async def events(self, services: NamedDependency[AppServices]) -> ServerSentEvent:
        """Chat, typing, tool activity, approvals, health and build progress as they happen."""
        return ServerSentEvent(_stream(services))
