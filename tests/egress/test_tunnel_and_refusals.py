"""Hosts without a credential pass untouched; the home network and refused sites are out of reach."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from nanoclaw_app.egress.policy import Injection
from nanoclaw_app.egress.server import EgressAccess, EgressServer
from tests.egress.conftest import client, proxy_url, start_egress
from tests.egress.policy_fake import FakePolicy
from tests.egress.rawclient import connect_and_read
from tests.fakes.https_api import FakeHttpsApi, echo


async def test_a_host_without_a_credential_is_tunnelled_untouched(
        policy: FakePolicy, fake_api: FakeHttpsApi, egress: EgressServer, access: EgressAccess) -> None:
    async with client(access, fake_api.ca_file) as http:  # trusts only the fake's own CA: no interception possible
        response = await http.get(f"{fake_api.url}/echo", headers={"Authorization": "Bearer agent-own"})
    assert response.status_code == 200
    assert echo(response.content)["headers"]["authorization"] == "Bearer agent-own"
    assert policy.asked == []
    assert [(r.kind, r.decision) for r in policy.records] == [("connect", "allowed")]


@pytest.mark.parametrize(("target", "words"), [
    ("127.0.0.1:{other}", "this computer itself"),
    ("localhost:{port}", "localhost points to 127.0.0.1"),
    ("169.254.169.254:80", "link-local"),
    ("10.0.0.1:443", "home network"),
    ("192.168.1.1:443", "home network"),
    ("[::1]:443", "this computer itself"),
    ("[::ffff:192.168.1.1]:443", "home network"),
    ("2130706433:443", "points to 127.0.0.1"),
])
async def test_private_loopback_and_link_local_destinations_are_refused(
        policy: FakePolicy, fake_api: FakeHttpsApi, egress: EgressServer, access: EgressAccess,
        target: str, words: str) -> None:
    target = target.format(other=fake_api.port + 1 if fake_api.port < 65535 else 1, port=fake_api.port)
    answer = await connect_and_read(access, f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 403 ")
    assert words in answer.decode()
    [record] = policy.refused()
    assert record.kind == "connect"
    assert words in record.reason
    assert policy.connects == []  # refused before the policy is even asked: no setting can lift it


async def test_an_absolute_http_request_to_the_home_network_is_refused(
        policy: FakePolicy, egress: EgressServer, access: EgressAccess) -> None:
    answer = await connect_and_read(access, b"GET http://192.168.1.1/admin HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 403 ")
    assert b"home network" in answer
    assert len(policy.refused()) == 1


async def test_a_site_the_policy_refuses_gets_403_with_its_reason(
        policy: FakePolicy, fake_api: FakeHttpsApi, egress: EgressServer, access: EgressAccess) -> None:
    policy.refuse_sites["127.0.0.1"] = "This agent may only reach github.com."
    target = f"127.0.0.1:{fake_api.port}"
    answer = await connect_and_read(access, f"CONNECT {target} HTTP/1.0\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 403 ")
    assert answer.endswith(b"This agent may only reach github.com.\n")
    assert [(r.decision, r.reason) for r in policy.records] == [("refused", "This agent may only reach github.com.")]
    assert fake_api.requests == []


async def test_plain_http_is_forwarded_without_a_credential(
        policy: FakePolicy, egress: EgressServer, tmp_path: Path) -> None:
    plain = FakeHttpsApi(tls=False)
    await plain.start()
    server = await start_egress(policy, tmp_path / "plain", plain, trust_fake=False)
    try:
        policy.credentials[("127.0.0.1", plain.port)] = Injection("bearer", "", "sk-never-in-clear")
        access = await server.attach("sess-p", "ag-1")
        async with httpx.AsyncClient(proxy=proxy_url(access), trust_env=False) as http:
            response = await http.post(f"{plain.url}/form?a=1", content=b"hello")  # the token goes as proxy auth
        seen = echo(response.content)
    finally:
        await server.stop()
        await plain.stop()
    assert seen["method"] == "POST"
    assert seen["query"] == "a=1"
    assert seen["body_len"] == 5
    assert "authorization" not in seen["headers"]
    assert "proxy-authorization" not in seen["headers"]
    assert policy.asked == []


async def test_a_request_that_is_not_for_a_proxy_gets_a_plain_400(egress: EgressServer, access: EgressAccess) -> None:
    answer = await connect_and_read(access, b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b"HTTPS_PROXY" in answer
