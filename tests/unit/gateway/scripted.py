"""An upstream for the gateway tests whose reply is an exact list of byte chunks, with gates between them.

The model fakes write a whole SSE reply at once; to prove the gateway streams chunk by chunk and byte for byte, the
test has to control when each chunk leaves the upstream and what its bytes are.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Recorded:
    """One request as the upstream received it."""

    method: str
    path_qs: str
    headers: dict[str, str]
    body: bytes


@dataclass
class ScriptedUpstream:
    """``reply`` items are sent in order: bytes are written as one chunk, an ``asyncio.Event`` is waited for."""

    reply: list[bytes | asyncio.Event] = field(default_factory=list)
    status: int = 200
    content_type: str = "text/event-stream"
    requests: list[Recorded] = field(default_factory=list)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once the whole reply was written."""
    hung_up: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the gateway closed the connection before the reply was complete."""
    _runner: web.AppRunner | None = None
    _port: int = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        for item in self.reply:
            if isinstance(item, asyncio.Event):
                item.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def body(self) -> bytes:
        """Every byte of the reply, as the client should receive it."""
        return b"".join(item for item in self.reply if isinstance(item, bytes))

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(Recorded(request.method, request.path_qs,
                                      {k.lower(): v for k, v in request.headers.items()}, await request.read()))
        response = web.StreamResponse(status=self.status, headers={"Content-Type": self.content_type})
        try:
            await response.prepare(request)
            for item in self.reply:
                if isinstance(item, asyncio.Event):
                    await item.wait()
                else:
                    await response.write(item)
            await response.write_eof()
        except (asyncio.CancelledError, ConnectionResetError):
            self.hung_up.set()
            raise
        self.finished.set()
        return response
