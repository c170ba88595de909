"""Fixtures of the model gateway tests: fake model APIs, a memory keyring and a started gateway with real clients."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import anthropic
import httpx2
import openai
import pytest

from nanoclaw_app.core.events import Event, EventBus
from nanoclaw_app.db.database import Database
from nanoclaw_app.gateway.server import ModelGateway
from nanoclaw_app.secrets.store import SecretStore
from nanoclaw_app.settings import Settings
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.keyring import MemoryKeyring
from tests.fakes.openai_server import FakeOpenAI

REAL_ANTHROPIC_KEY = "sk-ant-api03-REAL-anthropic-secret"
REAL_OPENAI_KEY = "sk-proj-REAL-openai-secret"
CLAUDE = "claude-sonnet-4-6"
GPT = "gpt-4o"
TIMEOUT = 10.0


class Harness:
    """A started gateway plus what a test needs around it: events, cap notices and clients like a runner's."""

    def __init__(self, gateway: ModelGateway, events: EventBus, queue: asyncio.Queue[Event], notices: list[str],
                 stack: AsyncExitStack) -> None:
        self.gateway = gateway
        self.events = events
        self.notices = notices
        self._queue = queue
        self._stack = stack
        self.seen: list[Event] = []

    def grant(self, session_id: str = "sess-1", agent_group_id: str = "agent-1") -> str:
        return self.gateway.grant(session_id, agent_group_id)

    def env(self, token: str, provider: str) -> dict[str, str]:
        return self.gateway.runner_env(token, provider, socket_in_runner=None, host_alias=None)

    async def http(self) -> httpx2.AsyncClient:
        """An HTTP client the way a runner makes one: over the socket on unix, plain loopback on tcp."""
        if self.gateway.transport == "unix":
            assert self.gateway.socket_path is not None
            client = httpx2.AsyncClient(transport=httpx2.AsyncHTTPTransport(uds=str(self.gateway.socket_path)),
                                        base_url="http://gateway", timeout=TIMEOUT)
        else:
            client = httpx2.AsyncClient(base_url=f"http://127.0.0.1:{self.gateway.port}", timeout=TIMEOUT)
        return await self._stack.enter_async_context(client)

    async def anthropic(self, token: str) -> anthropic.AsyncAnthropic:
        env = self.env(token, "anthropic")
        return anthropic.AsyncAnthropic(base_url=env["NANOCLAW_MODEL_BASE_URL"], api_key=env["NANOCLAW_MODEL_TOKEN"],
                                        http_client=await self.http(), max_retries=0)

    async def openai(self, token: str) -> openai.AsyncOpenAI:
        env = self.env(token, "openai")
        return openai.AsyncOpenAI(base_url=env["NANOCLAW_MODEL_BASE_URL"], api_key=env["NANOCLAW_MODEL_TOKEN"],
                                  http_client=await self.http(), max_retries=0)

    async def event(self, kind: str) -> Event:
        """The next event of ``kind`` (earlier ones of other kinds are kept in ``seen``)."""
        async with asyncio.timeout(TIMEOUT):
            while True:
                event = await self._queue.get()
                self.seen.append(event)
                if event.kind == kind:
                    return event

    def drain(self) -> list[Event]:
        """Events published so far and not yet awaited."""
        while not self._queue.empty():
            self.seen.append(self._queue.get_nowait())
        return self.seen


StartGateway = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def fake_anthropic() -> AsyncIterator[FakeAnthropic]:
    fake = FakeAnthropic()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
def keyring() -> MemoryKeyring:
    return MemoryKeyring()


@pytest.fixture
async def secret_store(keyring: MemoryKeyring) -> SecretStore:
    store = SecretStore(keyring)
    await store.set("anthropic_api_key", REAL_ANTHROPIC_KEY)
    await store.set("openai_api_key", REAL_OPENAI_KEY)
    return store


@pytest.fixture(params=["unix", "tcp"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def start_gateway(settings: Settings, db: Database, secret_store: SecretStore, fake_anthropic: FakeAnthropic,
                        fake_openai: FakeOpenAI) -> AsyncIterator[StartGateway]:
    """Start a gateway in front of the fakes (or other upstreams); it is stopped after the test."""
    async with AsyncExitStack() as stack:

        async def start(*, transport: str = "unix", secrets: SecretStore | None = None,
                        on_cap_reached: Callable[[str], Awaitable[None]] | None = None, **overrides: Any) -> Harness:
            values: dict[str, Any] = {"gateway_transport": transport, "anthropic_base_url": fake_anthropic.url,
                                      "openai_base_url": fake_openai.v1_url, **overrides}
            notices: list[str] = []

            async def record_notice(text: str) -> None:
                notices.append(text)

            events = EventBus()
            queue = await stack.enter_async_context(events.subscribe())
            gateway = ModelGateway(settings=dataclasses.replace(settings, **values), db=db,
                                   secrets=secrets or secret_store, events=events,
                                   on_cap_reached=on_cap_reached or record_notice)
            await gateway.start()
            stack.push_async_callback(gateway.stop)
            return Harness(gateway, events, queue, notices, stack)

        yield start
