"""Containers an earlier run left behind: whatever Podman answers while the host removes them, the host starts.

Podman sometimes reports a container that is removing itself as a 500 whose text says "no such container" (seen
with real racing removals: ``container <id> does not exist in database: no such container``), not as a 404. The fault
is injected where podman-py talks to the engine: the DELETE really goes to Podman, and the answer podman-py then reads
is that 500, so podman-py raises exactly the error it raises in the race.
"""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from podman.api.client import APIClient, APIResponse

from nanoclaw_app.host import Host
from nanoclaw_app.runtime.container_config import LABEL_INSTALL, LABEL_SESSION
from nanoclaw_app.runtime.podman_runtime import install_id
from tests.fakes.anthropic_server import FakeAnthropic, Text
from tests.fakes.channel import FakeChannel
from tests.podman.conftest import ping, podman_settings, seeded_home, wait_for

FAST = {"sweep_interval_seconds": 0.3, "retry_base_seconds": 0.2, "fallback_poll_seconds": 0.2}


def leftover(image: str, install: str, session: str) -> str:
    """A running container of this install, as a crashed host leaves it; returns its id."""
    out = subprocess.run(
        ["podman", "run", "-d", "--label", f"{LABEL_INSTALL}={install}", "--label", f"{LABEL_SESSION}={session}",
         "--name", f"nanoclaw-{install}-{session}-old", image, "sleep", "600"],
        capture_output=True, text=True, check=True,
    )
    return out.stdout.strip()


def exists(container_id: str) -> bool:
    return subprocess.run(["podman", "container", "exists", container_id], check=False).returncode == 0


def engine_error(status: int, text: str, url: str) -> APIResponse:
    """An answer of the Podman service as its REST API sends it (libpod's JSON error body)."""
    response = requests.Response()
    response.status_code = status
    response.reason = "Internal Server Error"
    response.url = url
    response.headers["Content-Type"] = "application/json"
    response._content = json.dumps({"cause": text.rsplit(": ", 1)[-1], "message": text, "response": status}).encode()
    return APIResponse(response)


@pytest.fixture
def cleanup() -> Iterator[list[str]]:
    ids: list[str] = []
    yield ids
    for container_id in ids:
        subprocess.run(["podman", "rm", "-f", "-t", "0", container_id], capture_output=True, check=False)


async def test_the_host_starts_and_answers_when_podman_fumbles_removing_leftover_containers(
    podman_url: str, agent_image: str, podman_host_factory: Any, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture, cleanup: list[str],
) -> None:
    fake = FakeAnthropic(responder=lambda request: Text('<message to="owner-dm">pong</message>'))
    await fake.start()
    try:
        settings = podman_settings(podman_url, anthropic_base_url=fake.url, **FAST)
        await seeded_home(settings, provider="anthropic")
        install = install_id(settings.paths.home)
        vanishing = leftover(agent_image, install, "sess-vanishing")
        stuck = leftover(agent_image, install, "sess-stuck")
        cleanup.extend([vanishing, stuck])
        real_delete = APIClient.delete

        def racing_delete(self: APIClient, path: str, *args: Any, **kwargs: Any) -> APIResponse:
            if path == f"/containers/{vanishing}":  # it went (removed concurrently), but the answer is a 500
                real: APIResponse = real_delete(self, path, *args, **kwargs)
                return engine_error(500, f"container {vanishing} does not exist in database: no such container",
                                    real.url)
            if path == f"/containers/{stuck}":  # a removal that really fails
                return engine_error(500, f"container {stuck} is in use: container state improper", path)
            result: APIResponse = real_delete(self, path, *args, **kwargs)
            return result

        monkeypatch.setattr(APIClient, "delete", racing_delete)
        channel = FakeChannel()
        with caplog.at_level(logging.WARNING):
            host: Host = await podman_host_factory(settings, channel)
            assert host.state.ready  # the app is up; the engine connects and cleans up beside it
            await host.engine_connected()
        assert not exists(vanishing)
        assert exists(stuck)  # left for the next start, and said so
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any(f"nanoclaw-{install}-sess-stuck-old" in w and "state improper" in w for w in warnings), warnings
        assert not any("sess-vanishing" in w for w in warnings), warnings  # gone is gone: nothing to warn about

        await channel.inject(ping(1))
        await wait_for(lambda: "pong" in channel.texts(), timeout=180, what="the agent's reply")
    finally:
        await fake.stop()
