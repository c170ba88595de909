"""The model gateway forwards only what a model client needs, and a token works only where it was issued.

A real ``ModelGateway`` (unix socket and loopback TCP) in front of upstreams that echo request headers back: a call the
gateway forwarded with the real key to the wrong endpoint would hand the key to the caller. Requests are written byte
for byte, since HTTP clients would normalise the attacks away. The same attacks from inside a real container are in
``test_gateway_containers.py``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from nanoclaw_app.core.events import EventBus
from nanoclaw_app.db.database import Database
from nanoclaw_app.gateway.server import ContainerAccess, ModelGateway
from nanoclaw_app.secrets.store import SecretStore
from nanoclaw_app.settings import Settings
from tests.fakes.keyring import MemoryKeyring
from tests.security.gateway_support import MODEL_BODY, TRAVERSALS, UNLISTED, WRONG_METHODS, HeaderEcho, raw_call

ANTHROPIC_KEY = "sk-ant-api03-REAL-anthropic-key-for-the-echo-test"
OPENAI_KEY = "sk-proj-REAL-openai-key-for-the-echo-test"


@pytest.fixture
async def echoes() -> AsyncIterator[tuple[HeaderEcho, HeaderEcho]]:
    """(anthropic upstream, openai upstream), both echoing headers on every path they do not serve."""
    anthropic, openai = HeaderEcho(), HeaderEcho()
    await anthropic.start()
    await openai.start()
    try:
        yield anthropic, openai
    finally:
        await anthropic.stop()
        await openai.stop()


@pytest.fixture(params=["unix", "tcp"])
async def gateway(request: pytest.FixtureRequest, settings: Settings, db: Database,
                  echoes: tuple[HeaderEcho, HeaderEcho]) -> AsyncIterator[ModelGateway]:
    secrets = SecretStore(MemoryKeyring())
    await secrets.set("anthropic_api_key", ANTHROPIC_KEY)
    await secrets.set("openai_api_key", OPENAI_KEY)
    anthropic, openai = echoes
    values = {"gateway_transport": request.param, "anthropic_base_url": anthropic.url, "openai_base_url": openai.v1_url}
    gateway = ModelGateway(settings=dataclasses.replace(settings, **values), db=db, secrets=secrets, events=EventBus())
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


def shared(gateway: ModelGateway) -> Path | int:
    """The gateway's own listener (the setup wizard's), which no container is given."""
    where = gateway.socket_path or gateway.port
    assert where is not None
    return where


def own(access: ContainerAccess) -> Path | int:
    """The listener a container was given."""
    where = access.socket_path or access.port
    assert where is not None
    return where


async def test_paths_that_leave_the_api_are_refused_before_the_key_is_added(
        gateway: ModelGateway, echoes: tuple[HeaderEcho, HeaderEcho], caplog: pytest.LogCaptureFixture) -> None:
    token = gateway.grant("sess-t", "agent-t")
    caplog.set_level(logging.WARNING, logger="nanoclaw_app.gateway")
    for target in TRAVERSALS:
        status, reply = await raw_call(shared(gateway), "POST", target, token, MODEL_BODY)
        assert status == 400, reply
        assert ANTHROPIC_KEY not in reply
        assert OPENAI_KEY not in reply
    for echo in echoes:
        assert echo.echoed == []
        assert echo.calls == []
    assert "sess-t" in caplog.text
    assert "/openai/../_calls" in caplog.text


async def test_endpoints_and_methods_no_model_client_uses_are_refused(
        gateway: ModelGateway, echoes: tuple[HeaderEcho, HeaderEcho]) -> None:
    token = gateway.grant("sess-u", "agent-u")
    for method, target in UNLISTED:
        status, reply = await raw_call(shared(gateway), method, target, token, MODEL_BODY)
        assert status == 404, (target, reply)
        assert ANTHROPIC_KEY not in reply
        assert OPENAI_KEY not in reply
    for method, target in WRONG_METHODS:
        status, reply = await raw_call(shared(gateway), method, target, token, MODEL_BODY)
        assert status == 405, (method, target, reply)
        assert ANTHROPIC_KEY not in reply
        assert OPENAI_KEY not in reply
    for echo in echoes:
        assert echo.echoed == []
        assert echo.calls == []


async def test_the_endpoints_model_clients_call_are_forwarded(
        gateway: ModelGateway, echoes: tuple[HeaderEcho, HeaderEcho]) -> None:
    anthropic, openai = echoes
    token = gateway.grant("sess-ok", "agent-ok")
    calls = [("POST", "/openai/chat/completions"), ("GET", "/openai/models"),
             ("POST", "/anthropic/v1/messages?beta=true"), ("POST", "/anthropic/v1/messages/count_tokens")]
    for method, target in calls:
        status, reply = await raw_call(shared(gateway), method, target, token, MODEL_BODY)
        assert status == 200, (target, reply)
    assert openai.calls == [("POST", "/v1/chat/completions"), ("GET", "/v1/models")]
    assert anthropic.echoed == [("POST", "/v1/messages?beta=true"), ("POST", "/v1/messages/count_tokens")]


async def test_a_containers_token_works_only_on_the_listener_it_was_issued_with(
        gateway: ModelGateway, echoes: tuple[HeaderEcho, HeaderEcho]) -> None:
    _, openai = echoes
    a = await gateway.attach("sess-a", "agent-1", "openai")
    b = await gateway.attach("sess-b", "agent-1", "openai")
    wizard = gateway.grant("setup-check", "")

    async def status(where: Path | int, token: str) -> int:
        return (await raw_call(where, "POST", "/openai/chat/completions", token, MODEL_BODY))[0]

    assert own(a) != own(b) != shared(gateway)
    assert await status(own(a), a.token) == 200
    assert await status(own(b), b.token) == 200
    assert await status(own(b), a.token) == 401  # A's token from B's container
    assert await status(shared(gateway), a.token) == 401
    assert await status(own(a), wizard) == 401
    assert len(openai.requests) == 2

    gateway.revoke("sess-a")
    if isinstance(own(a), Path):
        assert not Path(own(a)).exists()
    with pytest.raises(OSError):
        await status(own(a), a.token)
    assert await status(own(b), b.token) == 200


async def test_a_containers_token_works_only_for_its_own_providers_api(
        gateway: ModelGateway, echoes: tuple[HeaderEcho, HeaderEcho]) -> None:
    anthropic, _ = echoes
    access = await gateway.attach("sess-o", "agent-1", "openai")
    status, reply = await raw_call(own(access), "POST", "/anthropic/v1/messages", access.token, MODEL_BODY)
    assert status == 403, reply
    assert ANTHROPIC_KEY not in reply
    assert anthropic.echoed == []
    assert anthropic.calls == []


async def test_stopping_the_gateway_closes_every_containers_listener(gateway: ModelGateway) -> None:
    access = await gateway.attach("sess-s", "agent-1", "claude")
    await gateway.stop()
    with pytest.raises(OSError):
        await raw_call(own(access), "POST", "/anthropic/v1/messages", access.token, MODEL_BODY)
    if access.socket_path is not None:
        assert not access.socket_path.exists()
