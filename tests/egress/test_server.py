"""The component the host runs: a listener per container (its identity), revocation, the CA bundle, curl."""

from __future__ import annotations

import asyncio
import ssl
import stat
from pathlib import Path

import certifi
import httpx
import pytest

from nanoclaw_app.egress.policy import Injection
from nanoclaw_app.egress.server import EgressAccess, EgressServer
from tests.egress.conftest import SECRET, proxy_url, start_egress
from tests.egress.policy_fake import FakePolicy
from tests.egress.rawclient import authorized
from tests.fakes.https_api import FakeHttpsApi, echo


async def _get_over_unix(socket_path: Path, url: str, cafile: Path) -> httpx.Response:
    """A request through a unix-socket listener, as a container's relay makes it."""
    server = await asyncio.start_server(lambda r, w: _relay(r, w, socket_path), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(proxy=f"http://127.0.0.1:{port}", trust_env=False,
                                     verify=ssl.create_default_context(cafile=str(cafile))) as http:
            return await http.get(url)
    finally:
        server.close()
        await server.wait_closed()


async def _relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, socket_path: Path) -> None:
    ureader, uwriter = await asyncio.open_unix_connection(str(socket_path))

    async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        while data := await src.read(65536):
            dst.write(data)
            await dst.drain()
        dst.close()

    await asyncio.gather(pipe(reader, uwriter), pipe(ureader, writer), return_exceptions=True)


async def test_each_listener_speaks_for_its_own_container_and_revoked_ones_are_gone(
        policy: FakePolicy, fake_api: FakeHttpsApi, tmp_path: Path) -> None:
    policy.credentials[("127.0.0.1", fake_api.port)] = Injection("bearer", "", SECRET)
    server = await start_egress(policy, tmp_path, fake_api, transport="unix")
    try:
        one = await server.attach("sess-1", "ag-1")
        two = await server.attach("sess-2", "ag-2")
        assert one.socket_path is not None
        assert two.socket_path is not None
        assert one.port is None
        assert stat.S_IMODE(one.socket_path.stat().st_mode) == 0o600
        assert stat.S_IMODE(one.socket_path.parent.stat().st_mode) == 0o700
        first = await _get_over_unix(one.socket_path, f"{fake_api.url}/one", server.bundle_path)
        second = await _get_over_unix(two.socket_path, f"{fake_api.url}/two", server.bundle_path)
        assert echo(first.content)["headers"]["authorization"] == f"Bearer {SECRET}"
        assert second.status_code == 200
        assert [(caller.session_id, caller.agent_group_id, path) for caller, *_, path in policy.asked] == [
            ("sess-1", "ag-1", "/one"), ("sess-2", "ag-2", "/two")]
        server.revoke("sess-1")
        assert not one.socket_path.exists()
        with pytest.raises(OSError):
            await asyncio.open_unix_connection(str(one.socket_path))
        assert (await _get_over_unix(two.socket_path, f"{fake_api.url}/two", server.bundle_path)).status_code == 200
    finally:
        await server.stop()
    assert not two.socket_path.exists()


async def test_stale_sockets_are_cleared_at_start(policy: FakePolicy, fake_api: FakeHttpsApi, tmp_path: Path) -> None:
    stale = tmp_path / "run" / "egress" / "dead.sock"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"")
    server = await start_egress(policy, tmp_path, fake_api, transport="unix")
    await server.stop()
    assert not stale.exists()


async def test_revoking_cuts_open_tunnels_and_stop_ends_every_connection(
        policy: FakePolicy, fake_api: FakeHttpsApi, egress: EgressServer, access: EgressAccess) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", access.port)
    writer.write(authorized(f"CONNECT 127.0.0.1:{fake_api.port} HTTP/1.1\r\n\r\n".encode(), access))
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
    egress.revoke("sess-1")
    assert await asyncio.wait_for(reader.read(), 30) == b""
    writer.close()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", access.port)


async def test_the_bundle_holds_public_extra_and_our_ca(
        policy: FakePolicy, fake_api: FakeHttpsApi, egress: EgressServer) -> None:
    bundle = egress.bundle_path.read_bytes()
    assert stat.S_IMODE(egress.bundle_path.stat().st_mode) == 0o644
    assert egress.ca_pem in bundle
    assert fake_api.ca_file.read_bytes().strip() in bundle
    assert Path(certifi.where()).read_bytes().strip() in bundle
    ssl.create_default_context(cafile=str(egress.bundle_path))  # one file OpenSSL reads whole


async def test_the_ca_survives_a_restart(policy: FakePolicy, fake_api: FakeHttpsApi, tmp_path: Path) -> None:
    first = await start_egress(policy, tmp_path, fake_api)
    await first.stop()
    second = await start_egress(policy, tmp_path, fake_api)
    await second.stop()
    assert first.ca_pem == second.ca_pem
    assert stat.S_IMODE((tmp_path / "ca" / "egress-ca.key").stat().st_mode) == 0o600


async def test_curl_gets_the_credential_through_the_proxy_and_tunnels_other_hosts(
        policy: FakePolicy, fake_api: FakeHttpsApi, egress: EgressServer, access: EgressAccess) -> None:
    proxy = proxy_url(access)

    async def curl(cafile: Path, *args: str) -> bytes:
        process = await asyncio.create_subprocess_exec(
            "curl", "-sS", "--fail", "--proxy", proxy, "--cacert", str(cafile), *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        return out

    tunnelled = echo(await curl(fake_api.ca_file, f"{fake_api.url}/plain"))
    assert "authorization" not in tunnelled["headers"]
    policy.credentials[("127.0.0.1", fake_api.port)] = Injection("header", "X-Api-Key", SECRET)
    injected = echo(await curl(egress.bundle_path, "-H", "X-Api-Key: placeholder", f"{fake_api.url}/k",
                               "--data-binary", "x" * 5000, "-H", "Transfer-Encoding: chunked"))
    assert injected["headers"]["x-api-key"] == SECRET
    assert injected["body_len"] == 5000
    assert all("proxy-authorization" not in r["headers"] for r in fake_api.requests)


async def test_a_websocket_upgrade_becomes_a_pipe(
        policy: FakePolicy, fake_api: FakeHttpsApi, egress: EgressServer, access: EgressAccess) -> None:
    import aiohttp
    policy.credentials[("127.0.0.1", fake_api.port)] = Injection("bearer", "", SECRET)
    context = ssl.create_default_context(cafile=str(egress.bundle_path))
    async with aiohttp.ClientSession() as session, session.ws_connect(
            f"wss://127.0.0.1:{fake_api.port}/ws", proxy=proxy_url(access), ssl=context) as ws:
        await ws.send_str("hi")
        assert (await ws.receive_str()) == "echo:hi"
    assert fake_api.requests[0]["headers"]["authorization"] == f"Bearer {SECRET}"


async def test_clients_that_send_connect_as_http_1_0_get_through(
        policy: FakePolicy, fake_api: FakeHttpsApi, egress: EgressServer, access: EgressAccess) -> None:
    import urllib.request  # http.client sends CONNECT ... HTTP/1.0, as requests, pip and urllib do
    policy.credentials[("127.0.0.1", fake_api.port)] = Injection("bearer", "", SECRET)
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({"https": proxy_url(access)}),
        urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=str(egress.bundle_path))))

    def fetch() -> bytes:
        with opener.open(f"{fake_api.url}/urllib", timeout=20) as response:
            return bytes(response.read())

    seen = echo(await asyncio.to_thread(fetch))
    assert seen["headers"]["authorization"] == f"Bearer {SECRET}"
