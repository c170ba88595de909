"""The host comes up without waiting for the container engine, and connects to it by itself once it can.

A user opening the window should not wait for Podman's service to start, and a Podman that comes up later (a machine
booting, Podman installed while the app runs) must be found without a restart. Messages sent meanwhile are answered
once it is there, none lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest

from nanoclaw_app import host as host_module
from nanoclaw_app.core.messages import InboundMessage
from nanoclaw_app.errors import ConfigError
from nanoclaw_app.host import Host
from nanoclaw_app.runtime.base import SessionSpec
from nanoclaw_app.settings import Settings, load_settings
from tests.fakes.channel import FakeChannel
from tests.fakes.runtime import InProcessRuntime
from tests.integration.seed import seed


@dataclass
class LateEngine(InProcessRuntime):
    """An engine that is away until ``arrive`` is set (connecting waits, or is refused, until then)."""

    refuse: bool = False
    arrive: asyncio.Event = field(default_factory=asyncio.Event)
    attempts: int = 0
    connected: bool = False

    async def open(self) -> None:
        self.attempts += 1
        if self.refuse and not self.arrive.is_set():
            raise ConfigError("Podman is not running. To fix: start Podman")
        await self.arrive.wait()
        self.connected = True

    async def start(self, spec: SessionSpec) -> None:
        await self.open()  # as every real runtime does: no container before the engine is there
        await super().start(spec)


@pytest.fixture
def fast_settings(settings: Settings) -> Settings:
    return load_settings(settings.paths, timezone="Europe/Berlin", port=0, sweep_interval_seconds=0.2,
                         retry_base_seconds=0.05, fallback_poll_seconds=0.2)


@pytest.fixture
async def started(fast_settings: Settings, channel: FakeChannel, request: pytest.FixtureRequest,
                  monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Host, LateEngine]]:
    monkeypatch.setattr(host_module, "ENGINE_RETRY_SECONDS", (0.05,) * 200)
    engine = LateEngine(refuse=request.param)
    host = Host(fast_settings, runtime=engine, adapters=[channel])
    await asyncio.wait_for(host.start(), 30)  # would hang here if the start waited for the engine
    try:
        await seed(host.db)
        yield host, engine
    finally:
        await host.stop()


def dm(text: str, n: int) -> InboundMessage:
    return InboundMessage(channel_type="test", platform_id="owner", message_id=f"m{n}", sender_id="owner",
                          sender_name="Owner", text=text)


@pytest.mark.parametrize("started", [False], indirect=True)
async def test_the_app_serves_while_the_engine_connects_and_answers_once_it_is_there(
    started: tuple[Host, LateEngine], channel: FakeChannel
) -> None:
    host, engine = started
    assert host.state.ready
    async with httpx.AsyncClient(base_url=host.url or "") as client:
        health = await client.get("/health")
    assert health.status_code == 200
    assert host.state.components["containers"] == "connecting"
    # The router hands the message to a container start, which waits for the engine (as Podman's does, briefly).
    inject = asyncio.create_task(channel.inject(dm("early", 1)))
    await asyncio.sleep(0.5)
    assert channel.texts() == []  # waiting, not failed
    engine.arrive.set()
    await inject
    await channel.wait_sent(1, timeout=20)
    assert channel.texts() == ["echo: early"]
    assert host.state.components["containers"] == "inprocess"


@pytest.mark.parametrize("started", [True], indirect=True)
async def test_an_engine_that_comes_up_later_is_found_without_a_restart(
    started: tuple[Host, LateEngine], channel: FakeChannel, caplog: pytest.LogCaptureFixture
) -> None:
    host, engine = started
    await host.engine_connected()
    assert host.state.components["containers"].startswith("unavailable: Podman is not running")
    await channel.inject(dm("while away", 2))
    while engine.attempts < 4:  # it keeps trying ...
        await asyncio.sleep(0.05)
    records = caplog.get_records("setup") + caplog.get_records("call")
    said = [r for r in records if "container engine unavailable" in r.getMessage()]
    assert len(said) == 1  # ... and says so once, not once per attempt
    engine.arrive.set()
    await channel.wait_sent(1, timeout=20)
    assert channel.texts() == ["echo: while away"]
    for _ in range(100):
        if host.state.components["containers"] == "inprocess":
            break
        await asyncio.sleep(0.05)
    assert host.state.components["containers"] == "inprocess"
