"""A message through the test adapter reaches a real Podman container and the reply comes back.

The whole path is real but the model service and the chat platform: router → inbound.db → a container from the
shipped agent image → provider → the host's model gateway (over the mounted unix socket) → a fake model server on
127.0.0.1 → outbound.db → delivery → test adapter.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from nanoclaw_app.host import Host
from tests.fakes.anthropic_server import FakeAnthropic, Text
from tests.fakes.channel import FakeChannel
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.openai_server import Text as OpenAIText
from tests.podman.conftest import REAL_KEY, REAL_OPENAI_KEY, ping, podman_settings, seeded_home, wait_for

MARK = re.compile(r"ping-(\w+)")


def pong(request: dict[str, Any]) -> str:
    found = MARK.findall(json.dumps(request.get("messages")))
    return f'<message to="owner-dm">pong {found[-1] if found else "?"}</message>'


async def test_claude_provider_in_a_container_answers_through_the_gateway(
    podman_url: str, podman_host_factory: Any
) -> None:
    fake = FakeAnthropic(responder=lambda body: Text(pong(body)))
    await fake.start()
    try:
        settings = podman_settings(podman_url, anthropic_base_url=fake.url)
        await seeded_home(settings, provider="claude")
        channel = FakeChannel()
        host: Host = await podman_host_factory(settings, channel)
        await channel.inject(ping(1))
        await wait_for(lambda: "pong 1" in channel.texts(), what="the reply from the container")
        # the real Claude CLI in the container called the fake through the gateway with the real key injected
        assert fake.requests, "the model was never called"
        assert {h.get("x-api-key") for h in fake.headers} == {REAL_KEY}
        # and its output went to the session's host-only log, not lost (and not into the folder it can write)
        [log_file] = settings.paths.container_logs.glob("*.log")
        assert not list(settings.paths.sessions.glob("*/*/container.log"))
        log_text = log_file.read_text()
        assert "agent_runner" in log_text or "runner" in log_text
        assert host.runtime.name == "podman"
    finally:
        await fake.stop()


async def test_openai_provider_in_a_container_answers_through_the_gateway(
    podman_url: str, podman_host_factory: Any
) -> None:
    fake = FakeOpenAI(responder=lambda body: OpenAIText(pong(body)))
    await fake.start()
    try:
        settings = podman_settings(podman_url, openai_base_url=fake.v1_url)
        await seeded_home(settings, provider="openai", model="gpt-test")
        channel = FakeChannel()
        await podman_host_factory(settings, channel)
        await channel.inject(ping(2))
        await wait_for(lambda: "pong 2" in channel.texts(), what="the reply from the container")
        assert {h.get("authorization") for h in fake.headers} == {f"Bearer {REAL_OPENAI_KEY}"}
    finally:
        await fake.stop()


def _exec(name: str, script: str) -> str:
    out = subprocess.run(
        ["podman", "exec", name, "sh", "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    return out.stdout + out.stderr


async def test_the_real_key_is_nowhere_in_the_container(podman_url: str, podman_host_factory: Any) -> None:
    fake = FakeAnthropic(responder=lambda body: Text(pong(body)))
    await fake.start()
    try:
        settings = podman_settings(podman_url, anthropic_base_url=fake.url)
        await seeded_home(settings, provider="claude")
        channel = FakeChannel()
        host: Host = await podman_host_factory(settings, channel)
        await channel.inject(ping(3))
        await wait_for(lambda: "pong 3" in channel.texts(), what="the reply")
        assert {h.get("x-api-key") for h in fake.headers} == {REAL_KEY}  # the key was really in use

        names = subprocess.run(
            ["podman", "ps", "--filter", f"label=io.nanoclaw.install={host.runtime.install}",  # type: ignore[attr-defined]
             "--format", "{{.Names}}"], capture_output=True, text=True, check=True,
        ).stdout.split()
        assert len(names) == 1, names
        name = names[0]
        inspect = subprocess.run(["podman", "inspect", name], capture_output=True, text=True, check=True).stdout
        assert "NANOCLAW_MODEL_TOKEN" in inspect  # the scan looks at the right document
        # every process's environment, every mounted file and the home and temp folders of the container
        scanned = _exec(name, "cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | wc -l")
        assert int(scanned.split()[0]) > 5
        hits = _exec(
            name,
            f"(cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c -F '{REAL_KEY}');"
            f" grep -r -l -F '{REAL_KEY}' /workspace /app /run /home /tmp /etc /root 2>/dev/null | head",
        )
        assert hits.strip().splitlines() == ["0"], hits  # no process has it, no file has it
        assert REAL_KEY not in inspect
        # nor in anything on the host side that is mounted in
        for path in Path(settings.paths.home).rglob("*"):
            if path.is_file() and path.stat().st_size < 50_000_000:
                assert REAL_KEY.encode() not in path.read_bytes(), path
    finally:
        await fake.stop()
