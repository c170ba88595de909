"""The whole host with the test adapter and the in-process test runtime: messages in, replies out, nothing lost."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from nanoclaw_app.core.messages import InboundMessage
from nanoclaw_app.host import Host
from nanoclaw_app.settings import Settings, load_settings
from tests.fakes.channel import FakeChannel
from tests.fakes.runtime import InProcessRuntime
from tests.integration.seed import Seeded, seed


@pytest.fixture
def fast_settings(settings: Settings) -> Settings:
    return load_settings(settings.paths, timezone="Europe/Berlin", port=0, sweep_interval_seconds=0.2,
                         retry_base_seconds=0.05, fallback_poll_seconds=0.2)


@pytest.fixture
async def running(fast_settings: Settings, channel: FakeChannel) -> AsyncIterator[tuple[Host, Seeded]]:
    host = Host(fast_settings, runtime=InProcessRuntime(), adapters=[channel])
    await host.start()
    try:
        yield host, await seed(host.db)
    finally:
        await host.stop()


def dm(text: str, n: int, sender: str = "owner") -> InboundMessage:
    return InboundMessage(channel_type="test", platform_id="owner", message_id=f"m{n}", sender_id=sender,
                          sender_name="Owner", text=text)


async def test_a_dm_gets_an_echo_reply_through_container_and_delivery(
    running: tuple[Host, Seeded], channel: FakeChannel
) -> None:
    await channel.inject(dm("hello", 1))
    sent = await channel.wait_sent(1)
    assert sent[0].platform_id == "owner"
    assert sent[0].message.text == "echo: hello"


async def test_many_messages_each_answered_once(running: tuple[Host, Seeded], channel: FakeChannel) -> None:
    for n in range(30):
        await channel.inject(dm(f"msg {n}", n))
    await channel.wait_sent(30, timeout=20)
    texts = channel.texts()
    assert sorted(texts) == sorted(f"echo: msg {n}" for n in range(30))


async def test_the_same_platform_message_routed_twice_is_answered_once(
    running: tuple[Host, Seeded], channel: FakeChannel
) -> None:
    await channel.inject(dm("once", 7))
    await channel.inject(dm("once", 7))
    await channel.wait_sent(1)
    await channel.inject(dm("after", 8))
    await channel.wait_sent(2)
    assert channel.texts() == ["echo: once", "echo: after"]


async def test_health_endpoint_reports_ok(running: tuple[Host, Seeded]) -> None:
    host, _ = running
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{host.web_port}/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["components"]["database"] == "ok"
    assert body["components"]["channel:test"] == "connected"
