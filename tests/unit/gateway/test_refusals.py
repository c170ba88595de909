"""What the gateway refuses on its own, and how: in each API's error shape, with statuses the SDKs do not retry."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import anthropic
import openai
import pytest

from nanoclaw_app.secrets.store import SecretStore
from tests.fakes.anthropic_server import FakeAnthropic, Hang
from tests.fakes.keyring import MemoryKeyring
from tests.fakes.openai_server import FakeOpenAI
from tests.unit.gateway.conftest import CLAUDE, GPT, TIMEOUT, StartGateway

SAY: Any = [{"role": "user", "content": "hi"}]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_an_unknown_token_is_refused_in_each_apis_shape_and_nothing_is_forwarded(
        start_gateway: StartGateway, fake_anthropic: FakeAnthropic, fake_openai: FakeOpenAI) -> None:
    gw = await start_gateway()
    gw.grant()
    claude = await gw.anthropic("ncgw-not-a-granted-token")
    gpt = await gw.openai("sk-some-real-looking-key")

    with pytest.raises(anthropic.AuthenticationError) as claude_error:
        await claude.messages.create(model=CLAUDE, max_tokens=5, messages=SAY)
    with pytest.raises(openai.AuthenticationError) as gpt_error:
        await gpt.chat.completions.create(model=GPT, messages=SAY)

    assert claude_error.value.status_code == gpt_error.value.status_code == 401
    assert claude_error.value.response.json()["type"] == "error"
    assert claude_error.value.response.json()["error"]["type"] == "authentication_error"
    assert gpt_error.value.code == "invalid_api_key"
    assert "token is not valid" in str(gpt_error.value)
    assert "ncgw-not-a-granted-token" not in claude_error.value.response.text
    assert fake_anthropic.calls == []
    assert fake_openai.calls == []


async def test_a_revoked_token_stops_working_at_once(start_gateway: StartGateway) -> None:
    gw = await start_gateway()
    token = gw.grant("sess-r", "agent-1")
    other = gw.grant("sess-other", "agent-1")
    claude = await gw.anthropic(token)
    await claude.messages.create(model=CLAUDE, max_tokens=5, messages=SAY)

    gw.gateway.revoke("sess-r")

    with pytest.raises(anthropic.AuthenticationError):
        await claude.messages.create(model=CLAUDE, max_tokens=5, messages=SAY)
    still = await (await gw.anthropic(other)).messages.create(model=CLAUDE, max_tokens=5,
                                                               messages=SAY)
    assert still.content


async def test_a_missing_anthropic_key_is_a_clear_final_error_and_no_call_is_made(
        start_gateway: StartGateway, fake_anthropic: FakeAnthropic) -> None:
    gw = await start_gateway(secrets=SecretStore(MemoryKeyring()))
    claude = await gw.anthropic(gw.grant("sess-k", "agent-1"))

    with pytest.raises(anthropic.BadRequestError) as error:
        await claude.messages.create(model=CLAUDE, max_tokens=5, messages=SAY)
    refused = await gw.event("gateway.refused")

    assert error.value.status_code == 400
    assert error.value.response.headers["x-should-retry"] == "false"
    body = error.value.response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert "No Anthropic API key is set up" in body["error"]["message"]
    assert "Settings" in body["error"]["message"]
    assert refused.data["reason"] == "no_key"
    assert fake_anthropic.calls == []


async def test_an_unreachable_upstream_answers_502_in_the_api_shape_and_is_logged(
        start_gateway: StartGateway, caplog: pytest.LogCaptureFixture) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    gw = await start_gateway(anthropic_base_url=down, openai_base_url=down + "/v1")
    token = gw.grant("sess-d", "agent-1")
    claude = await gw.anthropic(token)
    gpt = await gw.openai(token)

    with caplog.at_level(logging.WARNING, logger="nanoclaw_app.gateway"):
        with pytest.raises(anthropic.APIStatusError) as claude_error:
            await claude.messages.create(model=CLAUDE, max_tokens=5, messages=SAY)
        with pytest.raises(openai.APIStatusError) as gpt_error:
            await gpt.chat.completions.create(model=GPT, messages=SAY)
    failed = await gw.event("gateway.upstream_failed")

    assert claude_error.value.status_code == gpt_error.value.status_code == 502
    assert claude_error.value.response.json()["error"]["type"] == "api_error"
    assert "could not reach Anthropic" in claude_error.value.response.json()["error"]["message"]
    assert gpt_error.value.response.json()["error"]["code"] == "upstream_unreachable"
    assert f"cannot reach the anthropic upstream {down}" in caplog.text
    assert failed.data["session_id"] == "sess-d"
    assert token not in caplog.text


async def test_stopping_the_gateway_ends_a_call_in_flight_instead_of_waiting_for_it(
        start_gateway: StartGateway, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script(Hang())
    gw = await start_gateway()
    http = await gw.http()

    async with asyncio.timeout(TIMEOUT):
        call = asyncio.ensure_future(http.post("/anthropic/v1/messages", headers={"x-api-key": gw.grant()},
                                      json={"model": CLAUDE, "max_tokens": 5, "messages": []}))
        await fake_anthropic.wait_for_requests(1)
        await gw.gateway.stop()
        response = await call

    assert response.status_code == 503
    assert "shutting down" in response.json()["error"]["message"]



async def test_a_locked_secret_store_is_explained_not_forwarded(
        start_gateway: StartGateway, fake_anthropic: FakeAnthropic) -> None:
    locked = SecretStore(None, unavailable_reason="the keyring is locked")
    gw = await start_gateway(secrets=locked)
    claude = await gw.anthropic(gw.grant())

    with pytest.raises(anthropic.BadRequestError) as error:
        await claude.messages.create(model=CLAUDE, max_tokens=5, messages=SAY)

    assert "cannot read your Anthropic API key" in error.value.response.json()["error"]["message"]
    assert "the keyring is locked" in error.value.response.json()["error"]["message"]
    assert fake_anthropic.calls == []


async def test_an_oversized_request_is_refused_before_forwarding(
        start_gateway: StartGateway, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("nanoclaw_app.gateway.proxy.MAX_REQUEST_BYTES", 1024)
    gw = await start_gateway()
    http = await gw.http()

    response = await http.post("/openai/chat/completions", headers={"authorization": f"Bearer {gw.grant()}"},
                               content=b"x" * 4096)

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert fake_openai.calls == []
