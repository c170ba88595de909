"""The one live stream: every event the host publishes, as server-sent events, for whichever page is open.

A stream outlives the request that checked its session, so it checks again whenever sessions were ended in this
process (at once) and at every keepalive (sessions ended by another process or by expiry), and ends when signed out.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.response import ServerSentEvent, ServerSentEventMessage

from nanoclaw_app.core.events import Event
from nanoclaw_app.services.auth import COOKIE
from nanoclaw_app.services.context import AppServices

KEEPALIVE_SECONDS = 15.0


async def _stream(services: AppServices, cookie: str | None) -> AsyncIterator[ServerSentEventMessage]:
    auth = services.auth
    async with services.ctx.events.subscribe() as queue:
        yield ServerSentEventMessage(event="hello", data=json.dumps({"components": services.state.components}))
        closing = asyncio.ensure_future(services.closing.wait())
        getter: asyncio.Future[Event] | None = None
        revoked: asyncio.Future[Any] | None = None
        checked = time.monotonic()
        try:
            while not services.closing.is_set():
                getter = asyncio.ensure_future(queue.get())
                revoked = asyncio.ensure_future(auth.revocation().wait())
                done, _ = await asyncio.wait({getter, closing, revoked}, timeout=KEEPALIVE_SECONDS,
                                             return_when=asyncio.FIRST_COMPLETED)
                revoked.cancel()
                if revoked in done or time.monotonic() - checked >= KEEPALIVE_SECONDS:
                    if not await auth.check(cookie):
                        return  # signed out: the page's reconnect gets a 401
                    checked = time.monotonic()
                if getter not in done:
                    getter.cancel()
                    if not done - {revoked}:
                        yield ServerSentEventMessage(comment="keepalive")
                    continue
                event = getter.result()
                yield ServerSentEventMessage(event=event.kind, data=json.dumps(event.data, default=str))
        finally:
            closing.cancel()
            for waiter in (getter, revoked):
                if waiter is not None:
                    waiter.cancel()  # the page went away mid-wait


class EventsController(Controller):
    """``GET /api/events``."""

    @get("/api/events", summary="Live updates (server-sent events)")
    async def events(self, services: NamedDependency[AppServices],
                     request: Request[Any, Any, Any]) -> ServerSentEvent:
        """Chat, typing, tool activity, approvals, health and build progress as they happen."""
        return ServerSentEvent(_stream(services, request.cookies.get(COOKIE)))
