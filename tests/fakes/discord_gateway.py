"""The gateway half of the fake Discord: a real aiohttp websocket speaking Discord's gateway protocol (v10, JSON).

A connection gets HELLO (op 10) with the heartbeat interval, answers every HEARTBEAT (op 1) with HEARTBEAT_ACK
(op 11), and then either IDENTIFY (op 2: a new session, READY with the guilds unavailable, then one GUILD_CREATE each)
or RESUME (op 6: the events the client missed, replayed from its sequence number, then RESUMED). Every dispatch is
kept in its session's log, so a client that loses its socket (the server stopped, a network drop) resumes with
nothing lost or doubled. An unknown session on RESUME gets INVALID_SESSION (op 9, not resumable), a wrong token
close code 4004, privileged intents the application was not granted close code 4014, like Discord.

discord.py asks for ``compress=zlib-stream`` in the URL; frames it receives as *text* bypass its decompressor, so this
fake answers uncompressed text frames (``connections`` records what each client asked for).

Dispatches honour the session's intents: guild messages need GUILD_MESSAGES, DMs need DIRECT_MESSAGES, and without
MESSAGE_CONTENT a guild message's content, attachments, embeds and components arrive empty unless it mentions the
bot (Discord's rule for the privileged intent).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

DISPATCH, HEARTBEAT, IDENTIFY, RESUME, RECONNECT, REQUEST_MEMBERS, INVALID_SESSION, HELLO, HEARTBEAT_ACK = (
    0, 1, 2, 6, 7, 8, 9, 10, 11)

INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_GUILD_MESSAGE_REACTIONS = 1 << 10
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = INTENT_GUILD_MEMBERS | INTENT_GUILD_PRESENCES | INTENT_MESSAGE_CONTENT

CLOSE_AUTHENTICATION_FAILED = 4004
CLOSE_DISALLOWED_INTENTS = 4014
_GATED_FIELDS = {"content": "", "attachments": [], "embeds": [], "components": []}


@dataclass
class GatewaySession:
    """One identified session: its intents and every dispatch sent in it, numbered by sequence."""

    id: str
    intents: int
    log: list[dict[str, Any]] = field(default_factory=list)

    @property
    def seq(self) -> int:
        return len(self.log)

    def add(self, event: str, data: dict[str, Any]) -> None:
        self.log.append({"op": DISPATCH, "t": event, "s": self.seq + 1, "d": data})


@dataclass
class _Connection:
    """A live socket; ``sent`` is the last sequence number written to it."""

    ws: web.WebSocketResponse
    session: GatewaySession | None = None
    sent: int = 0
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def send(self, payload: dict[str, Any]) -> None:
        async with self.lock:
            await self.ws.send_str(json.dumps(payload))


@dataclass
class _Pending:
    event: str
    data: dict[str, Any]
    intent: int
    gated: bool


class FakeGateway:
    """Sessions, their logs and the live sockets. The REST half owns it and supplies the world it describes.

    ``ready`` builds the READY payload for a session id; ``guilds`` the full GUILD_CREATE payloads; ``members`` the
    member list of a guild (for REQUEST_GUILD_MEMBERS); ``token_ok`` checks the IDENTIFY/RESUME token.
    """

    def __init__(self, *, ready: Callable[[str], dict[str, Any]], guilds: Callable[[], list[dict[str, Any]]],
                 members: Callable[[int], list[dict[str, Any]]], token_ok: Callable[[str], bool],
                 heartbeat_interval_ms: int = 41250, granted_intents: int = PRIVILEGED_INTENTS) -> None:
        self._ready = ready
        self._guilds = guilds
        self._members = members
        self._token_ok = token_ok
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.granted_intents = granted_intents
        """The privileged intents enabled for the application in the developer portal."""
        self.sessions: dict[str, GatewaySession] = {}
        self.connections: list[dict[str, str]] = []
        """The query string of every websocket connection (``v``, ``encoding``, ``compress``)."""
        self.identifies: list[dict[str, Any]] = []
        self.resumes: list[dict[str, Any]] = []
        self.heartbeats = 0
        self._live: list[_Connection] = []
        self._early: list[_Pending] = []

    # ------------------------------------------------------------------------------------------ test controls

    @property
    def connected(self) -> bool:
        """A client is identified or resumed on a live socket."""
        return any(c.session is not None and not c.ws.closed for c in self._live)

    def dispatch(self, event: str, data: dict[str, Any], *, intent: int = 0, gated: bool = False) -> None:
        """Send an event to every session whose intents include ``intent``; held until a session exists.

        ``gated``: the payload's content is privileged (a guild message not mentioning the bot).
        """
        if not self.sessions:
            self._early.append(_Pending(event, data, intent, gated))
            return
        for session in self.sessions.values():
            self._add(session, _Pending(event, data, intent, gated))

    async def close_all(self, code: int = 1001) -> None:
        """Close every socket (1001: going away, which a client answers by resuming)."""
        for conn in list(self._live):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await conn.ws.close(code=code, message=b"fake gateway closing")

    async def send_reconnect(self) -> None:
        """Ask the clients to reconnect and resume (op 7), as Discord does before moving a session."""
        for conn in list(self._live):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await conn.send({"op": RECONNECT, "d": None})

    async def invalidate_sessions(self) -> None:
        """Forget every session and tell the clients (op 9, not resumable): they must identify again."""
        self.sessions.clear()
        for conn in list(self._live):
            conn.session = None
            with contextlib.suppress(ConnectionError, RuntimeError):
                await conn.send({"op": INVALID_SESSION, "d": False})

    # ------------------------------------------------------------------------------------------ the socket

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        self.connections.append(dict(request.query))
        conn = _Connection(ws)
        self._live.append(conn)
        writer = asyncio.create_task(self._write(conn))
        try:
            await conn.send({"op": HELLO, "d": {"heartbeat_interval": self.heartbeat_interval_ms}})
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    await self._receive(conn, json.loads(message.data))
        except ConnectionError:
            pass
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            self._live.remove(conn)
        return ws

    async def _receive(self, conn: _Connection, payload: dict[str, Any]) -> None:
        op = payload.get("op")
        data: dict[str, Any] = payload.get("d") or {}
        if op == HEARTBEAT:
            self.heartbeats += 1
            await conn.send({"op": HEARTBEAT_ACK})
        elif op == IDENTIFY:
            await self._identify(conn, data)
        elif op == RESUME:
            await self._resume(conn, data)
        elif op == REQUEST_MEMBERS and conn.session is not None:
            guild_id = int(data["guild_id"])
            members = self._members(guild_id)
            wanted = {str(u) for u in data.get("user_ids") or []}
            if wanted:
                members = [m for m in members if m["user"]["id"] in wanted]
            conn.session.add("GUILD_MEMBERS_CHUNK", {"guild_id": str(guild_id), "members": members,
                                                     "chunk_index": 0, "chunk_count": 1,
                                                     "nonce": data.get("nonce")})
            conn.wake.set()

    async def _identify(self, conn: _Connection, data: dict[str, Any]) -> None:
        self.identifies.append(data)
        if not self._token_ok(str(data.get("token"))):
            await conn.ws.close(code=CLOSE_AUTHENTICATION_FAILED, message=b"Authentication failed.")
            return
        intents = int(data.get("intents") or 0)
        if intents & PRIVILEGED_INTENTS & ~self.granted_intents:
            await conn.ws.close(code=CLOSE_DISALLOWED_INTENTS, message=b"Disallowed intent(s).")
            return
        session = GatewaySession(uuid.uuid4().hex, intents)
        self.sessions = {session.id: session}  # one shard: a new identify replaces the old session
        session.add("READY", self._ready(session.id))
        for guild in self._guilds():
            session.add("GUILD_CREATE", guild)
        early, self._early = self._early, []
        for pending in early:
            self._add(session, pending)
        self._attach(conn, session, 0)

    async def _resume(self, conn: _Connection, data: dict[str, Any]) -> None:
        self.resumes.append(data)
        session = self.sessions.get(str(data.get("session_id")))
        if session is None or not self._token_ok(str(data.get("token"))):
            await conn.send({"op": INVALID_SESSION, "d": False})
            return
        for other in self._live:  # a zombie socket of the same session stops receiving
            if other is not conn and other.session is session:
                other.session = None
        session.add("RESUMED", {})
        self._attach(conn, session, int(data.get("seq") or 0))

    def _attach(self, conn: _Connection, session: GatewaySession, sent: int) -> None:
        conn.session, conn.sent = session, sent
        conn.wake.set()

    def _add(self, session: GatewaySession, pending: _Pending) -> None:
        if pending.intent and not session.intents & pending.intent:
            return
        data = pending.data
        if pending.gated and not session.intents & INTENT_MESSAGE_CONTENT:
            data = copy.deepcopy(data) | copy.deepcopy(_GATED_FIELDS)
        session.add(pending.event, data)
        for conn in self._live:
            if conn.session is session:
                conn.wake.set()

    async def _write(self, conn: _Connection) -> None:
        """Write the session's log from the connection's position on; the same path serves live events and replay."""
        while True:
            await conn.wake.wait()
            conn.wake.clear()
            session = conn.session
            if session is None or conn.ws.closed:
                continue
            while conn.session is session and conn.sent < session.seq:
                payload = session.log[conn.sent]
                conn.sent += 1
                try:
                    await conn.send(payload)
                except (ConnectionError, RuntimeError):
                    return
