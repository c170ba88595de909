"""A relay inside the app from a loopback TCP port to the Podman machine's Windows named pipe.

On Windows the Podman machine's API is a named pipe (``podman-machine-default`` under ``//./pipe/``), which
podman-py and httpx cannot open. The relay listens on ``127.0.0.1`` (a random port), lets in only connections made by
this process (see ``peer.py``: a loopback port is otherwise open to every account on the computer), opens the pipe for
each one with asyncio's Windows pipe support, and copies bytes both ways. The app then talks to
``tcp://127.0.0.1:<port>`` by itself.

The pipe is reached through an ``Opener``, so the same relay runs against a unix socket standing in for the pipe in
the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from nanoclaw_app.engine import peer

log = logging.getLogger(__name__)

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]
Opener = Callable[[], Awaitable[Streams]]
PeerCheck = Callable[[tuple[str, int], tuple[str, int]], bool]
CHUNK = 64 * 1024
PIPE_BUSY = 231
"""ERROR_PIPE_BUSY: every instance of the pipe is in use right now; the server makes a new one a moment later."""
PIPE_BUSY_TRIES = 50


class PipeRelay:
    """Serves ``tcp://127.0.0.1:<port>`` for this process and forwards each connection to the target."""

    def __init__(self, open_target: Opener, *, target: str, peer_allowed: PeerCheck = peer.is_this_process) -> None:
        self._open = open_target
        self.target = target
        """The pipe (or stand-in) this relays to, for logs and for telling relays apart."""
        self._allowed = peer_allowed
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self.url = ""

    async def start(self) -> str:
        """Listen, and return the URL to give podman-py (``tcp://127.0.0.1:<port>``)."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"tcp://127.0.0.1:{port}"
        log.info("relaying %s to %s", self.url, self.target)
        return self.url

    async def close(self) -> None:
        """Stop listening and end every relayed connection (idempotent)."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._relay(client_reader, client_writer)
        except asyncio.CancelledError:
            pass  # closing the relay; the streams are closed below
        finally:
            self._connections.discard(task)
            await _close(client_writer)

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        client = client_writer.get_extra_info("peername")
        server = client_writer.get_extra_info("sockname")
        if not self._allowed(tuple(client[:2]), tuple(server[:2])):
            log.warning("refused a connection to the Podman relay from %s: not opened by NanoClaw", client)
            return
        try:
            pipe_reader, pipe_writer = await self._open()
        except OSError as err:
            log.warning("the Podman relay could not open %s: %s", self.target, err)
            return
        try:
            up = asyncio.ensure_future(_pump(client_reader, pipe_writer))
            down = asyncio.ensure_future(_pump(pipe_reader, client_writer))
            try:
                await asyncio.gather(up, down)
            finally:
                for pump in (up, down):
                    pump.cancel()
                await asyncio.gather(up, down, return_exceptions=True)
        finally:
            await _close(pipe_writer)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until the reader ends; then pass the end on (half-close where possible, else close)."""
    try:
        while chunk := await reader.read(CHUNK):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError) as err:
        log.debug("relay stream ended: %s", err)
    if writer.can_write_eof() and not writer.is_closing():
        with contextlib.suppress(OSError, RuntimeError):
            writer.write_eof()
            return
    writer.close()


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, asyncio.CancelledError):
        await writer.wait_closed()


def windows_pipe(path: str) -> Opener:
    """An opener for a Windows named pipe, through the Proactor event loop (the default loop on Windows)."""

    async def open_pipe() -> Streams:
        loop = asyncio.get_running_loop()
        create = getattr(loop, "create_pipe_connection", None)
        if create is None:
            raise OSError("this event loop cannot open Windows named pipes (it needs asyncio's Proactor loop)")
        reader = asyncio.StreamReader(limit=CHUNK)
        protocol = asyncio.StreamReaderProtocol(reader)
        for _attempt in range(PIPE_BUSY_TRIES):
            try:
                transport, _ = await create(lambda: protocol, path)
                break
            except OSError as err:
                if getattr(err, "winerror", None) != PIPE_BUSY:
                    raise
                await asyncio.sleep(0.02)
        else:
            raise OSError(f"{path} stayed busy")
        return reader, asyncio.StreamWriter(transport, protocol, reader, loop)

    return open_pipe


def unix_socket(path: str) -> Opener:
    """An opener for a unix socket: the stand-in for the pipe in tests (and a relay to any local socket)."""

    async def open_socket() -> Streams:
        return await asyncio.open_unix_connection(path, limit=CHUNK)

    return open_socket
