"""Each provider reaches the model only through the gateway's unix socket, as in a Linux container.

The fake model server stands in for the gateway: it listens on a unix socket and serves the API under the gateway's
route prefix. The base URL the runner gets names a host that does not resolve (``gateway``), so a reply can only have
come over the socket; the fake also records which listener every request used.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent_runner.config import RunnerConfig
from agent_runner.providers.anthropic import AnthropicProvider
from agent_runner.providers.base import Provider, ProviderEvent
from agent_runner.providers.claude import ClaudeProvider
from agent_runner.providers.registry import build_provider
from tests.fakes.anthropic_server import Fail, FakeAnthropic
from tests.fakes.openai_server import FakeOpenAI

TOKEN = "per-container-token-9"
SAFETY = 60.0
"""Only guards against a hang (the Claude CLI starts slowly); never a synchronisation point."""


@pytest.fixture
async def anthropic_gateway(gateway_socket: Path) -> AsyncIterator[FakeAnthropic]:
    server = FakeAnthropic(unix_socket=gateway_socket, prefix="/anthropic")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def openai_gateway(gateway_socket: Path) -> AsyncIterator[FakeOpenAI]:
    server = FakeOpenAI(unix_socket=gateway_socket, prefix="/openai")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def gateway_config(tmp_path: Path, provider: str, base_url: str, socket: Path, **extra: object) -> RunnerConfig:
    agent_dir = tmp_path / "agent"
    agent_dir.mkdir(exist_ok=True)
    values: dict[str, object] = {
        "session_dir": tmp_path,
        "agent_dir": agent_dir,
        "provider": provider,
        "model": "fake-model-1",
        "base_url": base_url,
        "api_key": TOKEN,
        "gateway_socket": socket,
        "model_max_retries": 0,
    }
    values.update(extra)
    return RunnerConfig(**values)  # type: ignore[arg-type]


async def ask(provider: Provider, cwd: Path, prompt: str) -> list[ProviderEvent]:
    query = provider.query(prompt=prompt, continuation=None, cwd=cwd, system_prompt="You are Nano.", tools=[])
    query.end()
    async with asyncio.timeout(SAFETY):
        return [event async for event in query.events() if event.kind != "activity"]


def results(events: list[ProviderEvent]) -> list[str]:
    return [event.text for event in events if event.kind == "result"]


def errors(events: list[ProviderEvent]) -> list[str]:
    return [event.text for event in events if event.kind == "error"]


# -- anthropic and openai: the SDK's own HTTP client over the socket ---------------------------------------------------


async def test_anthropic_provider_answers_over_the_gateway_socket(
    anthropic_gateway: FakeAnthropic, gateway_socket: Path, tmp_path: Path
) -> None:
    config = gateway_config(tmp_path, "anthropic", anthropic_gateway.socket_url(), gateway_socket)
    provider = build_provider("anthropic", config)
    try:
        first = await ask(provider, tmp_path, "hello")
        second = await ask(provider, tmp_path, "again")  # the shared client outlives each query
    finally:
        await provider.aclose()

    assert results(first) == ["FAKE: hello"]
    assert results(second) == ["FAKE: again"]
    assert anthropic_gateway.calls == [("POST", "/anthropic/v1/messages")] * 2
    assert anthropic_gateway.via == ["unix", "unix"]
    assert anthropic_gateway.headers[0]["authorization"] == f"Bearer {TOKEN}"


async def test_openai_provider_answers_over_the_gateway_socket(
    openai_gateway: FakeOpenAI, gateway_socket: Path, tmp_path: Path
) -> None:
    config = gateway_config(tmp_path, "openai", openai_gateway.socket_v1_url(), gateway_socket)
    provider = build_provider("openai", config)
    try:
        first = await ask(provider, tmp_path, "hello")
        second = await ask(provider, tmp_path, "again")
    finally:
        await provider.aclose()

    assert results(first) == ["FAKE: hello"]
    assert results(second) == ["FAKE: again"]
    assert openai_gateway.calls == [("POST", "/openai/v1/chat/completions")] * 2
    assert openai_gateway.via == ["unix", "unix"]
    assert openai_gateway.headers[0]["authorization"] == f"Bearer {TOKEN}"


async def test_closing_a_tool_loop_provider_closes_its_gateway_client(
    anthropic_gateway: FakeAnthropic, gateway_socket: Path, tmp_path: Path
) -> None:
    provider = AnthropicProvider(gateway_config(tmp_path, "anthropic", anthropic_gateway.socket_url(), gateway_socket))
    await ask(provider, tmp_path, "hello")
    http = provider._gateway_http()
    assert http is not None
    assert not http.is_closed

    await provider.aclose()

    assert http.is_closed


async def test_the_configured_retry_count_reaches_the_sdk(
    anthropic_gateway: FakeAnthropic, gateway_socket: Path, tmp_path: Path
) -> None:
    anthropic_gateway.responder = lambda body: Fail(500, "upstream hiccup")
    config = gateway_config(tmp_path, "anthropic", anthropic_gateway.socket_url(), gateway_socket, model_max_retries=1)
    provider = AnthropicProvider(config)
    try:
        events = await ask(provider, tmp_path, "hello")
    finally:
        await provider.aclose()

    assert errors(events)
    assert "upstream hiccup" in errors(events)[0]
    assert len(anthropic_gateway.requests) == 2  # the call and one retry


# -- claude: the CLI through the loopback relay ---------------------------------------------------------------------


async def test_claude_provider_answers_over_the_gateway_socket_through_the_relay(
    anthropic_gateway: FakeAnthropic, gateway_socket: Path, tmp_path: Path
) -> None:
    config = gateway_config(tmp_path, "claude", "http://gateway/anthropic", gateway_socket)
    provider = ClaudeProvider(config)
    try:
        events = await ask(provider, config.agent_dir, "hello over the socket")
        relay = provider.relay
        assert relay is not None
        port = relay.port
    finally:
        await provider.aclose()

    assert errors(events) == []
    assert results(events) == ["FAKE: hello over the socket"]
    assert anthropic_gateway.not_found == []
    assert set(anthropic_gateway.calls) == {("POST", "/anthropic/v1/messages")}
    assert set(anthropic_gateway.via) == {"unix"}
    assert anthropic_gateway.headers[0]["x-api-key"] == TOKEN
    # closing the provider closed the relay: its port takes no more connections
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_claude_cli_is_pointed_at_the_relay_with_the_gateway_path_and_retry_count(
    gateway_socket: Path, tmp_path: Path
) -> None:
    config = gateway_config(tmp_path, "claude", "http://gateway/anthropic/", gateway_socket, model_max_retries=3)
    provider = ClaudeProvider(config)
    options = provider.options(continuation=None, cwd=config.agent_dir, system_prompt="", tools=[])
    relay = provider.relay
    assert relay is not None
    try:
        assert options.env["ANTHROPIC_BASE_URL"] == f"http://127.0.0.1:{relay.port}/anthropic"
        assert options.env["ANTHROPIC_API_KEY"] == TOKEN
        assert options.env["CLAUDE_CODE_MAX_RETRIES"] == "3"
        assert "127.0.0.1" in options.env["NO_PROXY"].split(",")
    finally:
        await provider.aclose()


def test_claude_cli_without_a_socket_uses_the_base_url_as_given(tmp_path: Path) -> None:
    config = gateway_config(tmp_path, "claude", "http://10.0.2.2:4000/anthropic", None)  # type: ignore[arg-type]
    provider = ClaudeProvider(config)
    options = provider.options(continuation=None, cwd=config.agent_dir, system_prompt="", tools=[])

    assert provider.relay is None
    assert options.env["ANTHROPIC_BASE_URL"] == "http://10.0.2.2:4000/anthropic"
    assert options.env["CLAUDE_CODE_MAX_RETRIES"] == "0"
    assert "NO_PROXY" not in options.env


async def test_claude_reports_an_unreachable_gateway_instead_of_hanging(gateway_socket: Path, tmp_path: Path) -> None:
    config = gateway_config(tmp_path, "claude", "http://gateway/anthropic", gateway_socket)  # nothing listens
    provider = ClaudeProvider(config)
    try:
        events = await ask(provider, config.agent_dir, "hello")
    finally:
        await provider.aclose()

    assert results(events) == []
    (error,) = errors(events)
    assert "model gateway" in error
    assert "not reachable" in error
    assert str(gateway_socket) in error
