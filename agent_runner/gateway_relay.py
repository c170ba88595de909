"""A loopback TCP relay to the model gateway's unix socket, for a client that cannot speak HTTP over a unix socket.

On Linux the host's model gateway reaches a container only as a unix socket mounted into it (no network needed). The
``anthropic``/``openai`` SDKs talk to it directly; the Claude Code CLI takes only an ``http://host:port`` base URL, so
the runner listens on ``127.0.0.1:<free port>`` and copies bytes between each accepted connection and a fresh
connection to the socket.

It is a byte pipe, not an HTTP proxy: nothing is parsed or buffered beyond one read, so streamed (SSE) answers arrive
as the gateway sends them, keep-alive and pipelining work unchanged, and a half-close on one side is passed on to the
other. It listens on loopback only; anything it carries is still authorised by the container's own gateway token.

The relay also tells a gateway outage (the host crashed or is restarting) from an error the gateway answered: when the
socket cannot be reached, or the gateway drops a connection while a request on it is unanswered, it records why in
``outage`` (cleared by the next answer) and marks its own 502 with ``RELAY_HEADER``. An HTTP error the gateway sent,
even a 502 for an upstream outage, passes through unmarked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
"""The most one read takes; whatever arrived is forwarded at once, however little."""
BACKLOG = 128
RELAY_HEADER = "X-NanoClaw-Relay"
"""Set (to ``gateway-unreachable``) on the relay's own 502, never on an answer the gateway sent."""
PROBE_TIMEOUT = 5.0


class GatewayRelay:
    """Listens on a loopback port and pipes every connection to ``socket_path``; owned and closed by one provider.

    ``bind()`` reserves the port without an event loop (the port goes into the CLI's environment, built synchronously);
    connections made before ``start()`` wait in the listen backlog.
    """

    def __init__(self, socket_path: Path, *, host: str = "127.0.0.1", port: int = 0,
                 what: str = "model gateway") -> None:
        self.socket_path = socket_path
        self._what = what
        self._host = host
        self._port = port
        self._listener: socket.socket | None = None
        self._server: asyncio.Server | None = None
        self._start_lock = asyncio.Lock()
        self._connections: set[asyncio.Task[object]] = set()
        self._closed = False
        self._outage: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------------------

    def bind(self) -> int:
        """Reserve the listening port (once) and return it."""
        if self._closed:
            raise RuntimeError("the gateway relay is closed")
        if self._listener is None:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                listener.bind((self._host, self._port))
                listener.listen(BACKLOG)
                listener.setblocking(False)
            except OSError:
                listener.close()
                raise
            self._listener = listener
            log.info("%s relay on %s:%d for %s", self._what, self._host, self.port, self.socket_path)
        return self.port

    async def start(self) -> None:
        """Accept connections (binding first if needed); calling it again is harmless."""
        self.bind()
        async with self._start_lock:
            if self._server is None and not self._closed:
                self._server = await asyncio.start_server(self._serve, sock=self._listener, limit=CHUNK)

    async def aclose(self) -> None:
        """Stop listening, cut every open connection and wait until each is closed."""
        self._closed = True
        server, self._server = self._server, None
        listener, self._listener = self._listener, None
        if server is not None:
            server.close()  # closes the listening socket it was given
        elif listener is not None:
            listener.close()
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    # -- facts -------------------------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound loopback port (``bind()`` first)."""
        if self._listener is None:
            raise RuntimeError("the gateway relay is not bound")
        return int(self._listener.getsockname()[1])

    def url(self, path: str = "") -> str:
        """``http://127.0.0.1:<port>`` followed by ``path`` (the gateway's route prefix, e.g. ``/anthropic``)."""
        return f"http://{self._host}:{self.bind()}{path}"

    @property
    def open_connections(self) -> int:
        """Connections being relayed right now."""
        return len(self._connections)

    @property
    def outage(self) -> str | None:
        """Why the last model call found the gateway gone (socket unreachable, or dropped unanswered).

        None once the gateway answers again; a query that fails while it is set failed because the host is gone.
        """
        return self._outage

    def _lost(self, reason: str) -> None:
        if self._outage is None:
            log.warning("the %s at %s is gone: %s", self._what, self.socket_path, reason)
        self._outage = reason

    def _dropped(self) -> None:
        self._lost("it ended a connection without answering the request on it")

    def _answered(self) -> None:
        if self._outage is not None:
            log.info("the %s at %s answers again", self._what, self.socket_path)
            self._outage = None

    # -- one connection ----------------------------------------------------------------------------------------------

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is None or self._closed:
            client_writer.close()
            return
        self._connections.add(task)
        try:
            try:
                gateway_reader, gateway_writer = await asyncio.open_unix_connection(str(self.socket_path), limit=CHUNK)
            except OSError as exc:
                log.warning("the %s socket %s cannot be reached: %s", self._what, self.socket_path, exc)
                self._lost(f"its socket cannot be reached ({exc.strerror or exc})")
                reason = f"The {self._what} ({self.socket_path}) is not reachable: {exc.strerror or exc}."
                await _refuse(client_reader, client_writer, reason)
                return
            exchange = _Exchange(on_answer=self._answered, on_drop=self._dropped)
            try:
                await _pipe_both(client_reader, client_writer, gateway_reader, gateway_writer, exchange)
            finally:
                await _close(gateway_writer)
        except asyncio.CancelledError:
            pass  # the relay is closing; the connections are cut below
        except Exception:
            log.exception("relaying a model call to %s failed", self.socket_path)
        finally:
            await _close(client_writer)
            self._connections.discard(task)


class _Exchange:
    """One relayed connection: is a request out that the gateway has not begun to answer?

    The gateway ending the connection (EOF or reset) at such a moment is how a crashed host looks from here; ending
    it with nothing pending is an ordinary keep-alive close.
    """

    def __init__(self, *, on_answer: Callable[[], None], on_drop: Callable[[], None]) -> None:
        self._on_answer = on_answer
        self._on_drop = on_drop
        self.awaiting = False

    def from_client(self, chunk: bytes) -> None:
        if chunk:
            self.awaiting = True

    def from_gateway(self, chunk: bytes) -> None:
        if chunk:
            self.awaiting = False
            self._on_answer()
        elif self.awaiting:
            self.awaiting = False
            self._on_drop()


async def _pipe_both(
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
    gateway_reader: asyncio.StreamReader,
    gateway_writer: asyncio.StreamWriter,
    exchange: _Exchange,
) -> None:
    """Copy both ways until both sides sent EOF; a failure either way (a reset) ends the whole connection."""
    pumps = {
        asyncio.create_task(_pump(client_reader, gateway_writer, exchange.from_client), name="relay-to-gateway"),
        asyncio.create_task(_pump(gateway_reader, client_writer, exchange.from_gateway), name="relay-to-client"),
    }
    try:
        done, _ = await asyncio.wait(pumps, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if (error := task.exception()) is not None and not isinstance(error, ConnectionError):
                raise error
            if error is not None:
                log.debug("relayed connection ended: %r", error)
    finally:
        for task in pumps:
            task.cancel()
        for task in pumps:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: Callable[[bytes], None]) -> None:
    """Forward each read as it comes; at EOF, half-close the other side so it sees the end too.

    ``seen`` gets every read before it is forwarded, and ``b""`` when the reading side ended (EOF or a reset), so the
    outage is on record before the client learns of it.
    """
    while True:
        try:
            chunk = await reader.read(CHUNK)
        except ConnectionError:
            seen(b"")
            raise
        seen(chunk)
        if not chunk:
            break
        writer.write(chunk)
        await writer.drain()
    if writer.can_write_eof():
        writer.write_eof()


async def _refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, message: str) -> None:
    """Answer 502 with the reason (in the Anthropic error shape the CLI shows), then wait for the client to leave.

    Reading the request to its end before closing keeps the kernel from resetting the connection under the answer.
    """
    body = json.dumps({"type": "error", "error": {"type": "api_error", "message": message}}).encode()
    head = (
        "HTTP/1.1 502 Bad Gateway\r\nContent-Type: application/json\r\n"
        f"{RELAY_HEADER}: gateway-unreachable\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    try:
        writer.write(head + body)
        await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
        while await reader.read(CHUNK):
            pass
    except ConnectionError:
        pass


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()


async def gateway_reachable(socket_path: Path) -> bool:
    """Whether the gateway socket takes a connection now; a missing file or a refusal means the host is gone.

    A probe that times out counts as reachable: a host too busy to accept is not a gone one, and the user is better
    told of the failed call than left waiting for a retry that may fail the same way.
    """
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            _, writer = await asyncio.open_unix_connection(str(socket_path))
    except TimeoutError:
        log.warning("probing the model gateway socket %s timed out; taking it as up", socket_path)
        return True
    except OSError as exc:
        log.warning("the model gateway socket %s cannot be reached: %s", socket_path, exc)
        return False
    await _close(writer)
    return True


__all__ = ["RELAY_HEADER", "GatewayRelay", "gateway_reachable"]
