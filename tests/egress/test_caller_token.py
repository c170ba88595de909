"""On a Podman machine each container's proxy listener is a host port anyone local can find: its token decides.

The attacker is another container (or any program on the computer) that scans the loopback ports and finds the
listener of an agent that has a credential. Without that listener's token it gets a 407 and nothing else: no
connection is made for it, nothing is logged as that agent's, and no credential is added.
"""

from __future__ import annotations

import base64
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import httpx
import pytest

from nanoclaw_app.egress import caller_token
from nanoclaw_app.egress.policy import Injection
from nanoclaw_app.egress.server import EgressAccess, EgressServer
from nanoclaw_app.gateway.server import ModelGateway
from nanoclaw_app.runtime.base import SessionSpec
from nanoclaw_app.runtime.host_doors import HOST_ALIAS, Access, HostDoors
from tests.egress.conftest import SECRET, client
from tests.egress.policy_fake import FakePolicy
from tests.egress.rawclient import connect_and_read
from tests.fakes.https_api import FakeHttpsApi, echo


def _basic(user: str, password: str) -> bytes:
    return b"Basic " + base64.b64encode(f"{user}:{password}".encode())


async def test_each_port_listener_has_its_own_token(egress: EgressServer) -> None:
    one = await egress.attach("sess-1", "ag-1")
    two = await egress.attach("sess-2", "ag-2")
    assert one.token
    assert two.token
    assert one.token != two.token
    assert len(one.token) >= 32


@pytest.mark.parametrize("proof", [
    None,
    _basic("nanoclaw", "not-the-token"),
    b"Bearer whatever",
    b"Basic !!!not-base64!!!",
    b"Basic " + base64.b64encode(b"no-colon-at-all"),
])
async def test_a_connection_without_the_listeners_token_gets_407_and_nothing_else(
        policy: FakePolicy, fake_api: FakeHttpsApi, access: EgressAccess, proof: bytes | None) -> None:
    policy.credentials[("127.0.0.1", fake_api.port)] = Injection("bearer", "", SECRET)
    target = f"127.0.0.1:{fake_api.port}"
    head = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n".encode()
    if proof is not None:
        head += b"Proxy-Authorization: " + proof + b"\r\n"
    answer = await connect_and_read(access, head + b"\r\n", token=False)
    assert answer.startswith(b"HTTP/1.1 407 ")
    assert b'Proxy-Authenticate: Basic realm="NanoClaw"' in answer
    assert policy.records == []
    assert policy.asked == []
    assert fake_api.requests == []


async def test_another_containers_token_does_not_open_this_listener(
        policy: FakePolicy, fake_api: FakeHttpsApi, egress: EgressServer, access: EgressAccess) -> None:
    other = await egress.attach("sess-2", "ag-2")
    assert other.token is not None
    stolen = EgressAccess(socket_path=None, port=access.port, token=other.token)
    answer = await connect_and_read(stolen, f"GET {fake_api.url}/x HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 407 ")
    assert fake_api.requests == []


async def test_two_authorization_headers_are_refused_even_if_one_is_right(
        policy: FakePolicy, fake_api: FakeHttpsApi, access: EgressAccess) -> None:
    assert access.token is not None
    target = f"127.0.0.1:{fake_api.port}"
    head = (f"CONNECT {target} HTTP/1.1\r\n".encode() + b"Proxy-Authorization: " + _basic("x", access.token)
            + b"\r\nProxy-Authorization: " + _basic("x", "wrong") + b"\r\n\r\n")
    assert (await connect_and_read(access, head, token=False)).startswith(b"HTTP/1.1 407 ")
    assert policy.records == []


async def test_with_its_token_the_container_gets_its_credential_and_the_site_never_sees_the_token(
        policy: FakePolicy, fake_api: FakeHttpsApi, egress: EgressServer, access: EgressAccess) -> None:
    policy.credentials[("127.0.0.1", fake_api.port)] = Injection("bearer", "", SECRET)
    async with client(access, egress.bundle_path) as http:
        answer = await http.get(f"{fake_api.url}/mine")
    seen = echo(answer.content)
    assert seen["headers"]["authorization"] == f"Bearer {SECRET}"
    assert "proxy-authorization" not in seen["headers"]
    assert access.token is not None
    assert access.token not in answer.text
    assert [caller.session_id for caller, *_ in policy.asked] == ["sess-1"]


async def test_a_client_given_the_address_without_the_token_is_told_in_words(
        fake_api: FakeHttpsApi, access: EgressAccess) -> None:
    async with httpx.AsyncClient(proxy=f"http://127.0.0.1:{access.port}", trust_env=False) as http:
        with pytest.raises(httpx.ProxyError, match="407"):
            await http.get(f"{fake_api.url}/x")


def test_the_proxy_address_carries_the_token_as_its_password() -> None:
    url = caller_token.proxy_url("host.containers.internal", 41234, "tok-en_1")
    parts = httpx.URL(url)
    assert (parts.username, parts.password, parts.host, parts.port) == ("nanoclaw", "tok-en_1",
                                                                      "host.containers.internal", 41234)


async def test_a_container_on_a_podman_machine_is_given_its_own_token_in_every_proxy_variable(
        egress: EgressServer, tmp_path: Path) -> None:
    # Only the gateway's transport matters here (tcp, as on macOS/Windows); its own variables are tested elsewhere.
    doors = HostDoors(cast(ModelGateway, SimpleNamespace(transport="tcp")), egress)
    spec = SessionSpec(session_id="sess-9", agent_group_id="ag-9", log_path=tmp_path / "log",
                       session_dir=tmp_path / "s", agent_dir=tmp_path / "a", provider="claude")
    access = Access(egress=await egress.attach(spec.session_id, spec.agent_group_id))
    assert access.egress is not None
    assert access.egress.port is not None
    assert access.egress.token is not None
    env = doors.environment(spec, access)
    assert doors.network is None  # the VM's network: the token is what tells containers apart
    expected = caller_token.proxy_url(HOST_ALIAS, access.egress.port, access.egress.token)
    assert {env[name] for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY")} == {
        expected}
