"""The Socket Mode side of the fake Slack: websocket connections, envelopes, acks and redelivery.

Slack keeps every envelope until the app acks its ``envelope_id``. One delivered on a connection that closed before
the ack is sent again on the next connection with a higher ``retry_attempt`` and the same ``event_id`` (the adapter
dedupes by it); a click is never sent again (Slack shows the person an error instead). New envelopes go to the newest
open connection, as after a ``refresh_requested`` disconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from tests.fakes.slack_workspace import APP_ID


@dataclass
class Envelope:
    """Something Slack must hand to the app over Socket Mode; it stays until the app acks one of its deliveries."""

    type: str
    """``events_api`` or ``interactive``."""
    payload: dict[str, Any]
    key: str
    """The ``event_id`` (events) or the ``trigger_id`` (clicks)."""
    envelope_ids: list[str] = field(default_factory=list)
    """One per delivery, newest last."""
    connection: web.WebSocketResponse | None = None
    acked: bool = False
    expired: bool = False
    """A click whose connection closed before the ack: never sent again."""


class SocketModeHub:
    """The ``/link/`` websocket endpoint and the envelopes waiting for an ack; it outlives server restarts."""

    def __init__(self, changed: Callable[[], None]) -> None:
        self.envelopes: list[Envelope] = []
        self.acks: list[dict[str, Any]] = []
        """Every ack the app sent (``envelope_id`` and any ``payload``), in order, lost ones included."""
        self.connections_opened = 0
        self._changed = changed
        self._lost_acks = 0
        self._tickets: set[str] = set()
        self._sockets: list[web.WebSocketResponse] = []
        self._wake = asyncio.Event()

    @property
    def open_connections(self) -> int:
        return sum(1 for ws in self._sockets if not ws.closed)

    def new_url(self, port: int) -> str:
        """What ``apps.connections.open`` answers: a ``ws://`` URL with a ticket this hub accepts."""
        ticket = secrets.token_hex(8)
        self._tickets.add(ticket)
        return f"ws://127.0.0.1:{port}/link/?ticket={ticket}&app_id={APP_ID}"

    def queue(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)
        self._wake_pumps()

    def lose_next_acks(self, count: int) -> None:
        self._lost_acks += count

    def pending(self) -> list[Envelope]:
        """Envelopes the app has not acked yet (clicks that expired excluded)."""
        return [e for e in self.envelopes if not e.acked and not e.expired]

    async def send_disconnect(self, reason: str) -> None:
        for ws in list(self._sockets):
            if not ws.closed:
                await ws.send_json({"type": "disconnect", "reason": reason,
                                    "debug_info": {"host": "applink-fake-1"}})

    async def close_all(self, app: web.Application) -> None:
        """``on_shutdown`` of the server: the listening socket is already closed, so clients cannot come back yet."""
        for ws in list(self._sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """One Socket Mode connection: hello, envelopes out, acks in."""
        if request.query.get("ticket") not in self._tickets:
            return web.Response(status=401, text="invalid ticket")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        self.connections_opened += 1
        self._changed()
        pump = asyncio.create_task(self._pump(ws))  # awaited below: owned by this connection
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._on_client_message(message.data)
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await pump
            self._sockets.remove(ws)
            for envelope in self.envelopes:
                if envelope.connection is ws and not envelope.acked and envelope.type == "interactive":
                    envelope.expired = True
            self._wake_pumps()  # another connection may take over what this one left un-acked
        return ws

    def _wake_pumps(self) -> None:
        self._wake.set()
        self._wake = asyncio.Event()
        self._changed()

    async def _pump(self, ws: web.WebSocketResponse) -> None:
        """Say hello, then send what is due whenever this is the newest connection."""
        await ws.send_json({"type": "hello", "num_connections": self.open_connections,
                            "debug_info": {"host": "applink-fake-1", "build_number": 1,
                                           "approximate_connection_time": 18060},
                            "connection_info": {"app_id": APP_ID}})
        while not ws.closed:
            wake = self._wake
            newest = next((s for s in reversed(self._sockets) if not s.closed), None)
            if newest is ws:
                for envelope in self.pending():
                    if not envelope.acked and (envelope.connection is None or envelope.connection.closed):
                        await ws.send_json(self._deliver(envelope, ws))
            await wake.wait()

    def _deliver(self, envelope: Envelope, ws: web.WebSocketResponse) -> dict[str, Any]:
        envelope_id = str(uuid.uuid4())
        envelope.envelope_ids.append(envelope_id)
        envelope.connection = ws
        message: dict[str, Any] = {"envelope_id": envelope_id, "payload": envelope.payload, "type": envelope.type,
                                   "accepts_response_payload": False}
        if envelope.type == "events_api":
            attempt = len(envelope.envelope_ids) - 1
            message |= {"retry_attempt": attempt, "retry_reason": "timeout" if attempt else ""}
        return message

    def _on_client_message(self, data: str) -> None:
        with contextlib.suppress(ValueError):
            message = json.loads(data)
            if isinstance(message, dict) and "envelope_id" in message:
                self.acks.append(message)
                if self._lost_acks:
                    self._lost_acks -= 1
                else:
                    for envelope in self.envelopes:
                        if message["envelope_id"] in envelope.envelope_ids:
                            envelope.acked = True
        self._wake_pumps()
