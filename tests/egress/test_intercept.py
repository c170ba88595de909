"""Hosts with a credential: the proxy terminates TLS, adds the credential, and relays everything else intact."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from nanoclaw_app.egress.policy import Injection
from nanoclaw_app.egress.server import EgressAccess, EgressServer
from tests.egress.conftest import SECRET, client, start_egress
from tests.egress.policy_fake import FakePolicy
from tests.fakes.https_api import PATTERN, FakeHttpsApi, echo


def _credential(policy: FakePolicy, api: FakeHttpsApi, injection: Injection) -> None:
    policy.credentials[("127.0.0.1", api.port)] = injection


@pytest.mark.parametrize(("injection", "placeholder", "field", "expected"), [
    (Injection("bearer", "", SECRET), {"Authorization": "Bearer PLACEHOLDER"}, "authorization", f"Bearer {SECRET}"),
    (Injection("basic", "", f"me:{SECRET}"), {"Authorization": "Basic cGxhY2U6aG9sZGVy"}, "authorization",
     "Basic bWU6c2stdGVzdC1TRUNSRVQtMTIz"),
    (Injection("header", "X-Api-Key", SECRET), {"x-api-key": "PLACEHOLDER"}, "x-api-key", SECRET),
])
async def test_the_credential_replaces_the_agents_placeholder_header(
        policy: FakePolicy, fake_api: FakeHttpsApi, egress: EgressServer, access: EgressAccess,
        injection: Injection, placeholder: dict[str, str], field: str, expected: str) -> None:
    _credential(policy, fake_api, injection)
    async with client(access, egress.bundle_path) as http:
        response = await http.get(f"{fake_api.url}/repos?page=2", headers=placeholder)
    assert response.status_code == 200
    seen = echo(response.content)
    assert seen["headers"][field] == expected
    assert "PLACEHOLDER" not in response.text
    assert seen["query"] == "page=2"
    request_records = [r for r in policy.records if r.kind == "request"]
    assert [(r.method, r.path, r.status_code, r.credential_id) for r in request_records] == [
        ("GET", "/repos", 200, "cred-1")]


async def test_a_query_credential_replaces_the_agents_placeholder_parameter(
        policy: FakePolicy, fake_api: FakeHttpsApi, egress: EgressServer, access: EgressAccess) -> None:
    _credential(policy, fake_api, Injection("query", "key", SECRET))
    async with client(access, egress.bundle_path) as http:
        response = await http.get(f"{fake_api.url}/maps?key=PLACEHOLDER&q=x")
    seen = echo(response.content)
    assert sorted(seen["query"].split("&")) == sorted(["q=x", f"key={SECRET}"])
    assert all("key" not in r.path and "?" not in r.path for r in policy.records)


async def test_proxy_authorization_and_hop_headers_never_reach_the_service(
        policy: FakePolicy, fake_api: FakeHttpsApi, egress: EgressServer, access: EgressAccess) -> None:
    _credential(policy, fake_api, Injection("bearer", "", SECRET))
    async with client(access, egress.bundle_path) as http:
        response = await http.get(f"{fake_api.url}/echo", headers={
            "Proxy-Authorization": "Basic bmM6dG9rZW4=", "Proxy-Connection": "keep-alive", "X-Kept": "yes"})
    headers = echo(response.content)["headers"]
    assert "proxy-authorization" not in headers
    assert "proxy-connection" not in headers
    assert headers["x-kept"] == "yes"


async def test_host_is_always_the_host_the_agent_connected_to(
        policy: FakePolicy, fake_api: FakeHttpsApi, egress: EgressServer, access: EgressAccess) -> None:
    _credential(policy, fake_api, Injection("bearer", "", SECRET))
    async with client(access, egress.bundle_path) as http:
        response = await http.get(f"{fake_api.url}/echo", headers={"Host": "attacker.example"})
    assert echo(response.content)["headers"]["host"] == f"127.0.0.1:{fake_api.port}"


async def test_keep_alive_requests_share_one_connection_to_the_service(
        policy: FakePolicy, fake_api: FakeHttpsApi, egress: EgressServer, access: EgressAccess) -> None:
    _credential(policy, fake_api, Injection("bearer", "", SECRET))
    async with client(access, egress.bundle_path) as http:
        for _ in range(5):
            assert (await http.get(f"{fake_api.url}/echo")).status_code == 200
    assert len(fake_api.requests) == 5
    assert len(fake_api.connections) == 1


async def test_a_chunked_upload_arrives_intact(
        policy: FakePolicy, fake_api: FakeHttpsApi, egress: EgressServer, access: EgressAccess) -> None:
    _credential(policy, fake_api, Injection("bearer", "", SECRET))
    parts = [bytes([i]) * (1000 + i) for i in range(40)]

    async def upload() -> AsyncIterator[bytes]:  # no length known up front: httpx sends it chunked
        for part in parts:
            yield part

    async with client(access, egress.bundle_path) as http:
        response = await http.post(f"{fake_api.url}/upload", content=upload())
    seen = echo(response.content)
    assert seen["chunked"] is True
    assert seen["body_sha256"] == hashlib.sha256(b"".join(parts)).hexdigest()


async def test_chunked_and_large_answers_arrive_whole(
        policy: FakePolicy, fake_api: FakeHttpsApi, egress: EgressServer, access: EgressAccess) -> None:
    _credential(policy, fake_api, Injection("bearer", "", SECRET))
    size = 10_000_000
    async with client(access, egress.bundle_path) as http:
        assert (await http.get(f"{fake_api.url}/chunked")).content == b"one,two,three"
        digest, total = hashlib.sha256(), 0
        async with http.stream("GET", f"{fake_api.url}/big", params={"n": size}) as response:
            async for piece in response.aiter_raw():
                digest.update(piece)
                total += len(piece)
        expected = (PATTERN * (size // len(PATTERN) + 1))[:size]
        assert total == size
        assert digest.hexdigest() == hashlib.sha256(expected).hexdigest()
        assert (await http.head(f"{fake_api.url}/echo")).status_code == 200
        assert (await http.get(f"{fake_api.url}/status/204")).status_code == 204
        assert (await http.get(f"{fake_api.url}/status/304")).status_code == 304
        assert (await http.get(f"{fake_api.url}/echo")).status_code == 200  # the connection is still in step


async def test_server_sent_events_arrive_while_the_stream_is_open(
        policy: FakePolicy, fake_api: FakeHttpsApi, egress: EgressServer, access: EgressAccess) -> None:
    _credential(policy, fake_api, Injection("bearer", "", SECRET))
    async with client(access, egress.bundle_path) as http, http.stream("GET", f"{fake_api.url}/sse") as response:
        lines = response.aiter_lines()
        assert await anext(lines) == "data: first"  # the service is still holding the rest
        fake_api.release_sse()
        rest = [line async for line in lines if line]
    assert rest == ["data: second", "data: done"]


async def test_a_refused_request_gets_the_reason_and_never_reaches_the_service(
        policy: FakePolicy, fake_api: FakeHttpsApi, egress: EgressServer, access: EgressAccess) -> None:
    _credential(policy, fake_api, Injection("bearer", "", SECRET))
    policy.deny = "Your owner denied this request to Test API."
    async with client(access, egress.bundle_path) as http:
        response = await http.post(f"{fake_api.url}/repos?x=1", content=b"data")
    assert response.status_code == 403
    assert response.text.strip() == policy.deny
    assert fake_api.requests == []
    [record] = [r for r in policy.records if r.kind == "request"]
    assert (record.decision, record.status_code, record.path, record.approved_by) == ("denied", 403, "/repos", "owner")


async def test_a_service_with_an_untrusted_certificate_gets_a_plain_502(
        policy: FakePolicy, fake_api: FakeHttpsApi, tmp_path: Path, access: EgressAccess) -> None:
    _credential(policy, fake_api, Injection("bearer", "", SECRET))
    server = await start_egress(policy, tmp_path / "other", fake_api, trust_fake=False)
    try:
        other = await server.attach("sess-2", "ag-1")
        async with client(other, server.bundle_path) as http:
            response = await http.get(f"{fake_api.url}/echo")
    finally:
        await server.stop()
    assert response.status_code == 502
    assert "certificate is not trusted" in response.text
    assert fake_api.requests == []
