"""Faults with real containers: a container killed mid-turn, the spend cap, and many sessions under the global cap."""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

from nanoclaw_app.db import messaging
from nanoclaw_app.db.database import Database
from nanoclaw_app.db.messaging import WiringSpec
from nanoclaw_app.host import Host
from nanoclaw_app.timeutil import now_iso
from tests.fakes.anthropic_server import FakeAnthropic, Hang, Text
from tests.fakes.channel import FakeChannel
from tests.podman.conftest import ping, podman_settings, seeded_home, wait_for

MARK = re.compile(r"ping-(\w+)")
FROM = re.compile(r'from=\\"([^"\\]+)\\"')
FAST = {"sweep_interval_seconds": 0.3, "retry_base_seconds": 0.2, "fallback_poll_seconds": 0.2}


def pong(request: dict[str, Any]) -> Text:
    """Answer the newest ping, addressed to the chat it came from."""
    raw = json.dumps(request.get("messages"))  # the system prompt mentions from="NAME" too
    found = MARK.findall(raw)
    origin = FROM.findall(raw)
    return Text(f'<message to="{origin[-1] if origin else "owner-dm"}">pong {found[-1] if found else "?"}</message>')


def our_containers(host: Host, *, live_only: bool = False) -> list[str]:
    """This install's containers; ``live_only`` leaves out those that have exited and wait to be removed."""
    install = host.runtime.install  # type: ignore[attr-defined]
    out = subprocess.run(
        ["podman", "ps", "-a", "--filter", f"label=io.nanoclaw.install={install}", "--format",
         "{{.Names}} {{.State}}"],
        capture_output=True, text=True, check=True,
    )
    rows = [line.split() for line in out.stdout.splitlines() if line.strip()]
    # "stopping": Podman may still show the state while the exit command cleans up after the process has died (the
    # 'died' event that frees the slot comes from that clean-up); the runner is gone by then.
    return [r[0] for r in rows if not live_only or r[-1] not in ("exited", "stopped", "stopping", "removing")]


async def test_a_container_killed_mid_turn_is_retried_and_the_reply_arrives(
    podman_url: str, podman_host_factory: Any
) -> None:
    fake = FakeAnthropic(responder=pong)
    await fake.start()
    try:
        settings = podman_settings(podman_url, anthropic_base_url=fake.url, **FAST)
        await seeded_home(settings, provider="anthropic")
        channel = FakeChannel()
        host: Host = await podman_host_factory(settings, channel)
        fake.script(Hang())  # the first model call never answers: the container is mid-turn
        await channel.inject(ping(1))
        await fake.wait_for_requests(1, timeout=90)
        [name] = our_containers(host)
        subprocess.run(["podman", "kill", name], check=True, capture_output=True)
        await wait_for(lambda: "pong 1" in channel.texts(), what="the retried reply")
        assert channel.texts().count("pong 1") == 1
        assert len(fake.requests) == 2  # the killed turn, then the retry in a fresh container
        log_text = next(settings.paths.container_logs.glob("*.log")).read_text()
        assert "exited with code 137" in log_text  # the kill is on record for the user
    finally:
        await fake.stop()


async def test_the_spend_cap_gives_the_user_a_clear_message(podman_url: str, podman_host_factory: Any) -> None:
    fake = FakeAnthropic(responder=pong)
    await fake.start()
    try:
        settings = podman_settings(podman_url, anthropic_base_url=fake.url, daily_spend_cap_usd=1.0, **FAST)
        seeded = await seeded_home(settings, provider="anthropic")
        async with Database(settings.paths.central_db) as db:  # today's spending already went over the cap
            await db.execute(
                "INSERT INTO usage (agent_group_id, session_id, provider, model, input_tokens, output_tokens,"
                " cost_usd, created_at) VALUES (?, NULL, 'anthropic', 'claude-sonnet-4-5', 1000000, 0, 1.5, ?)",
                (seeded.agent_id, now_iso()),
            )
        channel = FakeChannel()
        await podman_host_factory(settings, channel)
        await channel.inject(ping(1))
        await wait_for(lambda: any("$1.00" in t for t in channel.texts()), what="the spend cap message")
        message = next(t for t in channel.texts() if "$1.00" in t)
        assert "limit" in message.lower()
        assert fake.requests == []  # nothing was forwarded, nothing was spent
    finally:
        await fake.stop()


async def test_ten_sessions_share_three_container_slots_and_all_are_answered(
    podman_url: str, podman_host_factory: Any
) -> None:
    fake = FakeAnthropic(responder=pong)
    await fake.start()
    try:
        settings = podman_settings(podman_url, anthropic_base_url=fake.url, max_concurrent_containers=3, **FAST)
        seeded = await seeded_home(settings, provider="anthropic")
        async with Database(settings.paths.central_db) as db:
            for i in range(10):
                chat = await messaging.create(db, "test", f"chat-{i}", name=f"Chat {i}", is_group=False,
                                              unknown_sender_policy="public")
                await messaging.wire(db, chat.id, seeded.agent_id, WiringSpec(engage_mode="pattern",
                                                                              engage_pattern="."))
        channel = FakeChannel()
        host: Host = await podman_host_factory(settings, channel)
        peak = 0

        async def all_answered() -> bool:
            nonlocal peak
            peak = max(peak, host.waker.running_count())
            # A container that has exited may linger a moment before removal; it holds no slot.
            assert len(our_containers(host, live_only=True)) <= 3
            return len({s.platform_id for s in channel.sent}) == 10

        for i in range(10):
            await channel.inject(ping(i, platform_id=f"chat-{i}"))
        await wait_for(all_answered, timeout=240, what="every chat answered")
        assert peak <= 3
        assert sorted(s.message.text for s in channel.sent) == sorted(f"pong {i}" for i in range(10))
    finally:
        await fake.stop()
