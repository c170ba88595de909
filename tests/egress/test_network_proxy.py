"""On a network whose only way out is its own proxy, connections go through it, to the address the egress proxy
checked (never the name, which the network's proxy might resolve to a host on the inside)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator

import pytest

from nanoclaw_app.egress.tunnel import NetworkProxy, UpstreamError, close_stream, open_upstream
from tests.fakes.https_api import FakeHttpsApi


class NetworkCONNECTProxy:
    """A company network's proxy on 127.0.0.1: records each CONNECT line and its credentials, then tunnels."""

    def __init__(self, *, refuse: bool = False) -> None:
        self.refuse = refuse
        self.heads: list[bytes] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.heads.append(head)
        if self.refuse:
            writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
            await close_stream(writer)
            return
        host, _, port = head.split(b" ")[1].decode().rpartition(":")
        up_reader, up_writer = await asyncio.open_connection(host.strip("[]"), int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while chunk := await src.read(65536):
                    dst.write(chunk)
                    await dst.drain()
            dst.close()

        pumps = [asyncio.create_task(pump(reader, up_writer)), asyncio.create_task(pump(up_reader, writer))]
        self._tasks.update(pumps)
        await asyncio.gather(*pumps, return_exceptions=True)


@pytest.fixture
async def network_proxy() -> AsyncIterator[NetworkCONNECTProxy]:
    proxy = NetworkCONNECTProxy()
    await proxy.start()
    yield proxy
    await proxy.stop()


def test_the_network_proxy_is_read_from_its_url_with_its_credentials() -> None:
    assert NetworkProxy.from_url("http://proxy.corp:3128") == NetworkProxy("proxy.corp", 3128)
    assert NetworkProxy.from_url("proxy.corp:8080") == NetworkProxy("proxy.corp", 8080)
    with_user = NetworkProxy.from_url("http://ann:s%40cret@proxy.corp:3128")
    assert with_user is not None
    assert with_user.authorization == b"Basic YW5uOnNAY3JldA=="
    assert NetworkProxy.from_url("socks5://proxy.corp:1080") is None


async def test_a_verified_connection_goes_through_the_network_proxy_to_the_checked_address(
    fake_api: FakeHttpsApi, network_proxy: NetworkCONNECTProxy
) -> None:
    trust = ssl.create_default_context(cafile=str(fake_api.ca_file))
    via = NetworkProxy("127.0.0.1", network_proxy.port, b"Basic YW5uOnB3")

    reader, writer = await open_upstream("127.0.0.1", fake_api.port, ["127.0.0.1"], trust, via)
    writer.write(b"GET /through HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    answer = await reader.read()
    await close_stream(writer)

    assert answer.startswith(b"HTTP/1.1 200")
    assert [r["path"] for r in fake_api.requests] == ["/through"]
    [head] = network_proxy.heads
    assert head.startswith(f"CONNECT 127.0.0.1:{fake_api.port} HTTP/1.1\r\n".encode())
    assert b"Proxy-Authorization: Basic YW5uOnB3\r\n" in head


async def test_a_refusal_by_the_network_proxy_is_said_in_words(fake_api: FakeHttpsApi) -> None:
    refusing = NetworkCONNECTProxy(refuse=True)
    await refusing.start()
    try:
        with pytest.raises(UpstreamError) as refused:
            await open_upstream("api.example.com", 443, ["203.0.113.7"], None,
                                NetworkProxy("127.0.0.1", refusing.port))
    finally:
        await refusing.stop()
    assert str(refused.value) == ("could not reach api.example.com: the network's proxy refused "
                                  "(HTTP/1.1 407 Proxy Authentication Required)")
    assert refusing.heads[0].startswith(b"CONNECT 203.0.113.7:443 HTTP/1.1")  # the checked address, not the name
