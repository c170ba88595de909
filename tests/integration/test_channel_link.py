"""A channel whose link drops: replies wait (persisted, attempts not used up) and go out once it is back, also after a
restart; the owner hears about a lost link on another channel; channels can be started and stopped while the host runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from nanoclaw_app.channels.manifest import ChannelDeps
from nanoclaw_app.core.adapter_contract import ChannelAdapter, ChannelStatus
from nanoclaw_app.core.messages import InboundMessage, OutboundMessage
from nanoclaw_app.db import delivery_attempts as attempts_db
from nanoclaw_app.db import users
from nanoclaw_app.errors import ChannelDown, ConfigError
from nanoclaw_app.host import Host
from nanoclaw_app.settings import Settings, load_settings
from tests.fakes.channel import FakeChannel
from tests.fakes.runtime import InProcessRuntime
from tests.integration.seed import seed
from tests.waiting import until


@pytest.fixture
def fast_settings(settings: Settings) -> Settings:
    return load_settings(settings.paths, timezone="Europe/Berlin", port=0, sweep_interval_seconds=0.2,
                         retry_base_seconds=0.05, fallback_poll_seconds=0.2, delivery_max_attempts=2)


@pytest.fixture
async def host(fast_settings: Settings, channel: FakeChannel) -> AsyncIterator[Host]:
    running = Host(fast_settings, runtime=InProcessRuntime(), adapters=[channel], serve_web=False)
    await running.start()
    await seed(running.db)
    try:
        yield running
    finally:
        await running.stop()


def dm(text: str, n: int) -> InboundMessage:
    return InboundMessage(channel_type="test", platform_id="owner", message_id=f"m{n}", sender_id="owner",
                          sender_name="Owner", text=text)


async def test_replies_wait_while_the_link_is_down_and_go_out_in_order_when_it_is_back(
    host: Host, channel: FakeChannel
) -> None:
    channel.down = True
    for n in range(3):
        await channel.inject(dm(f"while down {n}", n))

    async def three_waiting() -> bool:
        return (await attempts_db.waiting_counts(host.db)).get("test") == 3

    await until(three_waiting)
    # Far more passes than delivery_max_attempts went by; nothing was given up.
    await asyncio.sleep(0.5)
    assert (await attempts_db.state_counts(host.db))["failed"] == 0
    assert channel.sent == []

    channel.down = False
    await host.callbacks.on_status("test", ChannelStatus("connected"))
    await channel.wait_sent(3)
    assert channel.texts() == [f"echo: while down {n}" for n in range(3)]
    assert await attempts_db.waiting_counts(host.db) == {}


async def test_a_link_back_while_a_send_is_failing_keeps_the_replies_in_order(host: Host, channel: FakeChannel) -> None:
    channel.down = True
    await host.callbacks.on_status("test", ChannelStatus("reconnecting"))
    for n in range(3):
        await channel.inject(dm(f"reply {n}", n))
    await until(lambda: _waiting(host, 3))
    send = channel.deliver
    first = [True]

    async def dropped_as_it_comes_back(platform_id: str, thread_id: str | None, message: OutboundMessage) -> str | None:
        if first[0]:  # the link drops under the first send and is back before that send has failed
            first[0] = False
            await host.callbacks.on_status("test", ChannelStatus("reconnecting"))
            channel.down = False
            back = asyncio.create_task(host.callbacks.on_status("test", ChannelStatus("connected")))
            await asyncio.sleep(0.2)  # the adapter's "connected" is handled while this send is still failing
            assert back.done()
            raise ChannelDown("test", "the link dropped under this send")
        return await send(platform_id, thread_id, message)

    channel.deliver = dropped_as_it_comes_back  # type: ignore[method-assign]
    await host.callbacks.on_status("test", ChannelStatus("connected"))

    await channel.wait_sent(3)
    assert channel.texts() == [f"echo: reply {n}" for n in range(3)]
    await until(lambda: _waiting(host, 0))


async def _waiting(host: Host, count: int) -> bool:
    return (await attempts_db.waiting_counts(host.db)).get("test", 0) == count


async def test_waiting_replies_survive_a_restart_and_are_sent_once(fast_settings: Settings) -> None:
    first_channel = FakeChannel(down=True)
    first = Host(fast_settings, runtime=InProcessRuntime(), adapters=[first_channel], serve_web=False)
    await first.start()
    await seed(first.db)
    try:
        await first_channel.inject(dm("before the restart", 1))

        async def waiting() -> bool:
            return (await attempts_db.waiting_counts(first.db)).get("test") == 1

        await until(waiting)
    finally:
        await first.stop()

    second_channel = FakeChannel()
    second = Host(fast_settings, runtime=InProcessRuntime(), adapters=[second_channel], serve_web=False)
    await second.start()
    try:
        await second.callbacks.on_status("test", ChannelStatus("connected"))
        await second_channel.wait_sent(1)
        await asyncio.sleep(0.5)  # a second copy would have gone out by now
        assert second_channel.texts() == ["echo: before the restart"]
    finally:
        await second.stop()


async def test_a_lost_link_is_told_to_the_owner_on_another_channel(host: Host, channel: FakeChannel) -> None:
    phone = FakeChannel(channel_type="phone")
    await phone.setup(host.callbacks)
    host.channels.add(phone)
    await users.upsert(host.db, "phone:me", "phone", "Me")
    await users.grant(host.db, "phone:me", "owner")

    await host.callbacks.on_status("test", ChannelStatus("logged_out", "unlinked on the phone",
                                                         alert="Your test channel was logged out."))
    sent = await phone.wait_sent(1)
    assert sent[0].platform_id == "me"
    assert sent[0].message.text == "Your test channel was logged out."
    assert channel.sent == []  # never over the channel that is down
    assert host.state.components["channel:test"] == "logged_out"


async def test_a_channel_is_started_and_stopped_while_the_host_runs(fast_settings: Settings) -> None:
    built: list[FakeChannel] = []

    async def build(deps: ChannelDeps) -> ChannelAdapter | None:
        adapter = FakeChannel(channel_type="whatsapp")
        built.append(adapter)
        return adapter

    async def not_set_up(deps: ChannelDeps) -> ChannelAdapter | None:
        return None

    host = Host(fast_settings, runtime=InProcessRuntime(), serve_web=False,
                channel_builders={"whatsapp": build, "telegram": not_set_up})
    await host.start()
    try:
        assert "whatsapp" not in host.channels  # not turned on yet
        adapter = await host.start_channel("whatsapp")
        assert adapter is built[0]
        assert built[0].is_connected()
        assert await host.start_channel("whatsapp") is adapter  # idempotent
        with pytest.raises(ConfigError, match="not set up"):
            await host.start_channel("telegram")
        await host.stop_channel("whatsapp")
        assert "whatsapp" not in host.channels
        assert not built[0].connected
        assert host.callbacks.statuses["whatsapp"].state == "stopped"
    finally:
        await host.stop()


async def test_a_channel_turned_on_starts_with_the_host(fast_settings: Settings) -> None:
    from nanoclaw_app.channels import registry

    built: list[FakeChannel] = []

    async def build(deps: ChannelDeps) -> ChannelAdapter | None:
        built.append(FakeChannel(channel_type="telegram"))
        return built[-1]

    host = Host(fast_settings, runtime=InProcessRuntime(), serve_web=False, channel_builders={"telegram": build})
    await host.start()
    try:
        await registry.set_enabled(host.db, "telegram", True)
    finally:
        await host.stop()
    assert built == []
    again = Host(fast_settings, runtime=InProcessRuntime(), serve_web=False, channel_builders={"telegram": build})
    await again.start()
    try:
        assert again.channels.get("telegram") is built[0]
        assert built[0].connected
    finally:
        await again.stop()
    assert not built[0].connected  # torn down with the host
