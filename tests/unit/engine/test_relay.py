"""The app's relay from a loopback port to the Podman machine's named pipe (a unix socket stands in for the pipe):
bytes pass both ways, only this process may use it, and closing it ends every connection."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from nanoclaw_app.engine import peer
from nanoclaw_app.engine.relay import PipeRelay, unix_socket


@pytest.fixture
def short_dir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="nc-relay-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
async def pipe(short_dir: Path) -> AsyncIterator[Path]:
    """The stand-in for the pipe: answers each line with it upper-cased; ends a connection on ``bye``."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            if line.strip() == b"bye":
                break
            writer.write(line.upper())
            await writer.drain()
        await _shut(writer)

    path = short_dir / "pipe.sock"
    server = await asyncio.start_unix_server(serve, str(path))
    try:
        yield path
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def relay(pipe: Path) -> AsyncIterator[PipeRelay]:
    r = PipeRelay(unix_socket(str(pipe)), target=str(pipe))
    await r.start()
    try:
        yield r
    finally:
        await r.close()


async def _shut(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


def _port(relay: PipeRelay) -> int:
    return int(relay.url.rsplit(":", 1)[1])


async def test_bytes_pass_both_ways_and_the_end_is_passed_on(relay: PipeRelay) -> None:
    assert relay.url.startswith("tcp://127.0.0.1:")
    reader, writer = await asyncio.open_connection("127.0.0.1", _port(relay))
    big = b"x" * 60_000 + b"\n"  # more than one socket read: the pump keeps copying
    writer.write(b"hello\n" + big)
    await writer.drain()
    assert await reader.readline() == b"HELLO\n"
    assert await reader.readline() == big.upper()
    writer.write(b"bye\n")
    await writer.drain()
    assert await reader.read() == b""  # the pipe closed: so does the client's connection
    await _shut(writer)


async def test_connections_run_side_by_side(relay: PipeRelay) -> None:
    pairs = [await asyncio.open_connection("127.0.0.1", _port(relay)) for _ in range(3)]
    for n, (_, writer) in enumerate(pairs):
        writer.write(f"conn {n}\n".encode())
    for n, (reader, writer) in enumerate(pairs):
        assert await reader.readline() == f"CONN {n}\n".encode()
        await _shut(writer)


async def test_another_program_on_this_computer_is_refused(relay: PipeRelay) -> None:
    """A loopback port is open to every account: a connection this process did not make gets nothing."""
    client = await asyncio.create_subprocess_exec(
        sys.executable, "-c",
        "import socket, sys\n"
        f"s = socket.create_connection(('127.0.0.1', {_port(relay)}))\n"
        "s.sendall(b'steal\\n')\n"
        "try:\n"
        "    sys.stdout.write(repr(s.recv(100)))\n"
        "except ConnectionResetError:\n"
        "    sys.stdout.write('reset')\n",
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await client.communicate()
    assert out in (b"b''", b"reset")  # closed without an answer
    reader, writer = await asyncio.open_connection("127.0.0.1", _port(relay))
    writer.write(b"mine\n")
    assert await reader.readline() == b"MINE\n"  # this process still gets through
    await _shut(writer)


async def test_closing_the_relay_ends_open_connections(relay: PipeRelay) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", _port(relay))
    writer.write(b"ping\n")
    assert await reader.readline() == b"PING\n"
    await relay.close()
    assert await reader.read() == b""
    await _shut(writer)
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", _port(relay))


async def test_a_pipe_that_is_gone_closes_the_client_connection(short_dir: Path) -> None:
    missing = short_dir / "gone.sock"
    relay = PipeRelay(unix_socket(str(missing)), target=str(missing))
    await relay.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", _port(relay))
        assert await reader.read() == b""
        await _shut(writer)
    finally:
        await relay.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
async def test_the_owner_check_tells_this_process_from_others() -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        mine = writer.get_extra_info("sockname")
        assert peer.is_this_process(mine, ("127.0.0.1", port)) is True
        assert peer.is_this_process(("127.0.0.1", 1), ("127.0.0.1", port)) is False
        await _shut(writer)
    finally:
        server.close()
        await server.wait_closed()
