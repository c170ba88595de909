"""The host killed mid-turn and started again: the orphan container is removed and the pending message answered once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from nanoclaw_app.host import Host
from nanoclaw_app.runtime.podman_runtime import install_id
from tests.fakes.anthropic_server import FakeAnthropic, Hang, Text
from tests.integration.crash_host import FeedChannel
from tests.podman.conftest import ping, podman_settings, secrets_with_keys, seeded_home, wait_for
from tests.podman.podman_host import FAST
from tests.podman.test_faults import MARK

ROOT = Path(__file__).resolve().parents[2]


def pong(request: dict[str, Any]) -> Text:
    found = MARK.findall(json.dumps(request.get("messages")))
    return Text(f'<message to="owner-dm">pong {found[-1] if found else "?"}</message>')


def containers(install: str) -> list[str]:
    out = subprocess.run(
        ["podman", "ps", "-a", "--filter", f"label=io.nanoclaw.install={install}", "--format", "{{.Names}}"],
        capture_output=True, text=True, check=True,
    )
    return out.stdout.split()


def delivered(workdir: Path) -> list[str]:
    out = workdir / "out.jsonl"
    return [json.loads(line)["text"] for line in out.read_text().splitlines()] if out.exists() else []


async def test_host_killed_mid_turn_then_restarted_removes_the_orphan_and_answers_once(
    podman_url: str, agent_image: str, tmp_path: Path
) -> None:
    fake = FakeAnthropic(responder=pong)
    await fake.start()
    workdir = tmp_path / "feed"
    workdir.mkdir()
    feed = workdir / "feed.jsonl"
    env = {**os.environ, "NANOCLAW_ANTHROPIC_BASE_URL": fake.url, "PYTHONPATH": str(ROOT)}
    settings = podman_settings(podman_url, anthropic_base_url=fake.url, **FAST)
    await seeded_home(settings, provider="anthropic")
    install = install_id(settings.paths.home)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.podman.podman_host", str(workdir), podman_url],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    host: Host | None = None
    try:
        assert proc.stdout is not None
        assert (await asyncio.to_thread(proc.stdout.readline)).strip() == "ready"
        feed.write_text(ping(1).to_json() + "\n")
        await wait_for(lambda: "pong 1" in delivered(workdir), what="the first answer")

        fake.script(Hang())  # the next model call never answers: host A dies mid-turn
        with feed.open("a") as handle:
            handle.write(ping(2).to_json() + "\n")
        await fake.wait_for_requests(2, timeout=60)
        [orphan] = containers(install)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

        host = Host(settings, adapters=[FeedChannel(workdir)], serve_web=False, secrets=secrets_with_keys())
        await host.start()
        assert orphan not in containers(install)  # removed at start, whatever state it was in
        await wait_for(lambda: "pong 2" in delivered(workdir), what="the answer after the restart")
        await asyncio.sleep(1.0)  # a duplicate would show up now
        texts = delivered(workdir)
        assert texts.count("pong 1") == 1
        assert texts.count("pong 2") == 1
        assert not [t for t in texts if t.startswith("Error")], texts
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
        if host is not None:
            await host.stop()
        await fake.stop()
