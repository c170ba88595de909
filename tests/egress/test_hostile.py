"""A hostile agent's bytes: whatever could desync the proxy from the service ends the connection, unforwarded."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from nanoclaw_app.egress.mitm import Limits
from nanoclaw_app.egress.policy import Injection
from nanoclaw_app.egress.server import EgressAccess, EgressServer
from tests.egress.conftest import SECRET, client, start_egress
from tests.egress.policy_fake import FakePolicy
from tests.egress.rawclient import connect_and_read, read_to_end, tunnel_to
from tests.fakes.https_api import FakeHttpsApi, echo

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize("request_bytes", [
    pytest.param(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                 + SMUGGLED, id="content-length-and-transfer-encoding"),
    pytest.param(b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
                 id="transfer-encoding-other-than-chunked"),
    pytest.param(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 36\r\n\r\n" + SMUGGLED,
                 id="conflicting-content-lengths"),
    pytest.param(b"GET /a HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n Transfer-Encoding: chunked\r\n\r\n", id="obs-fold"),
    pytest.param(b"GET /a HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n", id="bad-header-name"),
    pytest.param(b"GET /a HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", id="head-over-64k"),
    pytest.param(b"GET /a HTTP/1.1\r\n" + b"X-H: 1\r\n" * 101 + b"\r\n", id="over-100-headers"),
    pytest.param(b"\x16\x03\x01garbage\r\n\r\n", id="garbage"),
    pytest.param(b"GET /a HTTP/1.1\r\nHost: x\r\nHost: attacker.example\r\n\r\n", id="two-hosts"),
    pytest.param(b"GET https://other.example/a HTTP/1.1\r\nHost: x\r\n\r\n", id="another-host-in-the-target"),
])
async def test_malformed_requests_inside_an_intercepted_connection_are_never_forwarded(
        policy: FakePolicy, fake_api: FakeHttpsApi, egress: EgressServer, access: EgressAccess,
        request_bytes: bytes) -> None:
    policy.credentials[("127.0.0.1", fake_api.port)] = Injection("bearer", "", SECRET)
    reader, writer = await tunnel_to(access, f"127.0.0.1:{fake_api.port}", egress.bundle_path)
    writer.write(request_bytes)
    answer = await read_to_end(reader)
    writer.close()
    assert answer == b""
    assert fake_api.requests == []
    assert policy.asked == []
    await _still_serves(access, egress, fake_api)


async def test_a_malformed_chunk_ends_the_request_before_the_service_gets_it(
        policy: FakePolicy, fake_api: FakeHttpsApi, egress: EgressServer, access: EgressAccess) -> None:
    policy.credentials[("127.0.0.1", fake_api.port)] = Injection("bearer", "", SECRET)
    reader, writer = await tunnel_to(access, f"127.0.0.1:{fake_api.port}", egress.bundle_path)
    writer.write(b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n" + SMUGGLED)
    assert await read_to_end(reader) == b""
    writer.close()
    await asyncio.sleep(0)
    assert [r["path"] for r in fake_api.requests] == []
    await _still_serves(access, egress, fake_api)


@pytest.mark.parametrize("data", [
    b"\x00\x01\x02 not http\r\n\r\n",
    b"CONNECT nohostport HTTP/1.1\r\n\r\n",
    b"CONNECT 127.0.0.1:99999 HTTP/1.1\r\n\r\n",
    b"CONNECT 127.0.0.1:443 HTTP/2.0\r\n\r\n",
    b"CONNECT a/b:443 HTTP/1.1\r\n\r\n",
    b"CONNECT 127.0.0.1:443 HTTP/1.1\r\nX: " + b"y" * 70_000 + b"\r\n\r\n",
])
async def test_garbage_for_the_proxy_itself_closes_the_connection(
        policy: FakePolicy, fake_api: FakeHttpsApi, egress: EgressServer, access: EgressAccess, data: bytes) -> None:
    assert await connect_and_read(access, data) == b""
    assert policy.records == []
    await _still_serves(access, egress, fake_api)


async def test_a_head_that_never_ends_is_cut_off(
        policy: FakePolicy, fake_api: FakeHttpsApi, tmp_path: Path) -> None:
    server = await start_egress(policy, tmp_path, fake_api, limits=Limits(head=0.3, idle=0.3, grace=0.3))
    try:
        access = await server.attach("sess-slow", "ag-1")
        reader, writer = await asyncio.open_connection("127.0.0.1", access.port)
        writer.write(b"CONNECT 127.0.0.1:")  # and then nothing more
        assert await asyncio.wait_for(reader.read(), 30) == b""
        writer.close()
        policy.credentials[("127.0.0.1", fake_api.port)] = Injection("bearer", "", SECRET)
        reader, writer = await tunnel_to(access, f"127.0.0.1:{fake_api.port}", server.bundle_path)
        writer.write(b"GET /slow HTTP/1.1\r\nHo")
        assert await read_to_end(reader) == b""
        writer.close()
        assert fake_api.requests == []
        await _still_serves(access, server, fake_api)
    finally:
        await server.stop()


async def _still_serves(access: EgressAccess, egress: EgressServer, fake_api: FakeHttpsApi) -> None:
    async with client(access, egress.bundle_path) as http:
        response = await http.get(f"{fake_api.url}/after")
    assert response.status_code == 200
    assert echo(response.content)["path"] == "/after"
