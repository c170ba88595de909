"""The loopback relay the claude provider puts in front of the gateway's unix socket: bytes flow both ways as they
come, many connections at once, half-closes pass through, and closing it really closes the port."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from agent_runner.gateway_relay import GatewayRelay

SAFETY = 10.0
"""Only guards against a hang; never a synchronisation point."""

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def relay(gateway_socket: Path) -> AsyncIterator[GatewayRelay]:
    relay = GatewayRelay(gateway_socket)
    await relay.start()
    try:
        yield relay
    finally:
        await relay.aclose()


async def serve_socket(path: Path, handler: Handler) -> asyncio.Server:
    """A raw unix-socket server standing in for the gateway; each handler closes its connection when done."""

    async def wrapped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    return await asyncio.start_unix_server(wrapped, path=str(path))


async def stop_server(server: asyncio.Server) -> None:
    server.close()
    await server.wait_closed()


async def connect(relay: GatewayRelay) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", relay.port)


async def test_bytes_reach_the_client_as_the_gateway_sends_them(relay: GatewayRelay, gateway_socket: Path) -> None:
    release = asyncio.Event()
    received: list[bytes] = []

    async def gateway(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.readline())
        writer.write(b"first\n")
        await writer.drain()
        await release.wait()
        writer.write(b"second\n")
        await writer.drain()

    server = await serve_socket(gateway_socket, gateway)
    try:
        async with asyncio.timeout(SAFETY):
            reader, writer = await connect(relay)
            writer.write(b"hello\n")
            await writer.drain()
            # the first piece arrives while the gateway still holds the rest: nothing waits for the whole answer
            assert await reader.readline() == b"first\n"
            release.set()
            assert await reader.read() == b"second\n"
            writer.close()
    finally:
        await stop_server(server)
    assert received == [b"hello\n"]


async def test_a_half_closed_request_still_gets_the_whole_answer(relay: GatewayRelay, gateway_socket: Path) -> None:
    async def gateway(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.read()  # to EOF: only the client's half-close ends this
        writer.write(b"got " + request)
        await writer.drain()

    server = await serve_socket(gateway_socket, gateway)
    try:
        async with asyncio.timeout(SAFETY):
            reader, writer = await connect(relay)
            writer.write(b"the whole request")
            writer.write_eof()
            assert await reader.read() == b"got the whole request"
            writer.close()
    finally:
        await stop_server(server)


async def test_many_connections_are_relayed_at_once(relay: GatewayRelay, gateway_socket: Path) -> None:
    count = 20
    arrived = 0
    all_in = asyncio.Event()

    async def gateway(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal arrived
        request = await reader.read()
        arrived += 1
        if arrived == count:
            all_in.set()
        await all_in.wait()  # no one is answered until every connection got through: a serial relay would hang
        writer.write(request.upper())
        await writer.drain()

    async def call(number: int) -> bytes:
        reader, writer = await connect(relay)
        writer.write(f"request {number}".encode())
        writer.write_eof()
        answer = await reader.read()
        writer.close()
        return answer

    server = await serve_socket(gateway_socket, gateway)
    try:
        async with asyncio.timeout(SAFETY):
            answers = await asyncio.gather(*(call(n) for n in range(count)))
    finally:
        await stop_server(server)
    assert answers == [f"REQUEST {n}".encode() for n in range(count)]


async def test_a_streamed_http_answer_arrives_event_by_event(relay: GatewayRelay, gateway_socket: Path) -> None:
    release = asyncio.Event()

    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"data: one\n\n")
        await release.wait()
        await response.write(b"data: two\n\n")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/anthropic/v1/stream", events)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.UnixSite(runner, str(gateway_socket)).start()
    try:
        async with asyncio.timeout(SAFETY), httpx.AsyncClient() as client:
            lines: list[str] = []
            async with client.stream("GET", relay.url("/anthropic/v1/stream")) as response:
                async for line in response.aiter_lines():
                    if line:
                        lines.append(line)
                    if lines == ["data: one"]:
                        release.set()  # only now may the second event be sent
            # the connection is kept alive and reused for the next call
            again = await client.get(relay.url("/anthropic/v1/missing"))
    finally:
        await runner.cleanup()
    assert lines == ["data: one", "data: two"]
    assert again.status_code == 404


async def test_closing_the_relay_cuts_open_connections_and_refuses_new_ones(gateway_socket: Path) -> None:
    holding = asyncio.Event()

    async def gateway(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        holding.set()
        await reader.read()  # never answers

    relay = GatewayRelay(gateway_socket)
    await relay.start()
    port = relay.port
    server = await serve_socket(gateway_socket, gateway)
    try:
        async with asyncio.timeout(SAFETY):
            reader, writer = await connect(relay)
            writer.write(b"a call that never ends\n")
            await holding.wait()
            assert relay.open_connections == 1
            await relay.aclose()
            assert relay.open_connections == 0
            with contextlib.suppress(ConnectionResetError):  # cut either way: EOF or a reset
                assert await reader.read() == b""
            writer.close()
            with pytest.raises(OSError):
                await asyncio.open_connection("127.0.0.1", port)
    finally:
        await stop_server(server)


async def test_an_unreachable_gateway_is_answered_with_a_502_naming_the_socket(
    gateway_socket: Path, caplog: pytest.LogCaptureFixture
) -> None:
    relay = GatewayRelay(gateway_socket)  # nothing listens there
    await relay.start()
    try:
        async with asyncio.timeout(SAFETY), httpx.AsyncClient() as client:
            response = await client.post(relay.url("/anthropic/v1/messages"), json={"model": "m", "messages": []})
    finally:
        await relay.aclose()
    assert response.status_code == 502
    message = response.json()["error"]["message"]
    assert "model gateway" in message
    assert "not reachable" in message
    assert str(gateway_socket) in message
    assert any(
        r.levelno == logging.WARNING and str(gateway_socket) in r.getMessage() for r in caplog.records
    ), "the failure is logged with the socket path"


async def test_a_relay_that_was_never_started_closes_cleanly(gateway_socket: Path) -> None:
    relay = GatewayRelay(gateway_socket)
    port = relay.bind()
    await relay.aclose()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)
    with pytest.raises(RuntimeError):
        relay.bind()
