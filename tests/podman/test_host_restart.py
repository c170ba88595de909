"""The host killed with messages in flight and started again: the orphan container is removed, every message is
answered once, and the model reads each message once (a retried turn must not replay what the transcript holds)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from nanoclaw_app.host import Host
from nanoclaw_app.runtime.podman_runtime import install_id
from tests.fakes.anthropic_server import FakeAnthropic, Hang, Text, last_user_content
from tests.integration.crash_host import FeedChannel
from tests.podman.conftest import ping, podman_settings, secrets_with_keys, seeded_home, wait_for
from tests.podman.podman_host import FAST

ROOT = Path(__file__).resolve().parents[2]
IN_FLIGHT = range(2, 12)
"""The ten messages written while the model hangs; message 1 is answered before, so there is history to resume."""
PING = re.compile(r"\bping-(\d+)\b")


def pongs(request: dict[str, Any]) -> Text:
    """Answer every message of the newest user turn (one turn may hold several)."""
    said = " ".join(str(block.get("text", "")) for block in last_user_content(request))
    found = sorted({int(n) for n in PING.findall(said)})
    return Text("".join(f'<message to="owner-dm">pong {n}</message>' for n in found) or "nothing to answer")


def containers(install: str) -> list[str]:
    out = subprocess.run(
        ["podman", "ps", "-a", "--filter", f"label=io.nanoclaw.install={install}", "--format", "{{.Names}}"],
        capture_output=True, text=True, check=True,
    )
    return out.stdout.split()


def delivered(workdir: Path) -> list[str]:
    out = workdir / "out.jsonl"
    return [json.loads(line)["text"] for line in out.read_text().splitlines()] if out.exists() else []


def claimed(sessions: Path) -> int:
    """Rows the runner holds as ``processing`` (claimed, not yet answered)."""
    total = 0
    for outbound in sessions.glob("*/*/outbound.db"):
        conn = sqlite3.connect(f"file:{outbound}?mode=ro", uri=True, timeout=5)
        try:
            total += conn.execute("SELECT COUNT(*) FROM processing_ack WHERE status = 'processing'").fetchone()[0]
        except sqlite3.OperationalError:
            pass  # the runner has not created its tables yet
        finally:
            conn.close()
    return total


@pytest.mark.parametrize("provider", ["anthropic", "claude"])
async def test_host_killed_with_ten_messages_in_flight_then_restarted_answers_each_once_and_replays_none(
    podman_url: str, agent_image: str, tmp_path: Path, provider: str
) -> None:
    fake = FakeAnthropic(responder=pongs)
    await fake.start()
    workdir = tmp_path / "feed"
    workdir.mkdir()
    feed = workdir / "feed.jsonl"
    env = {**os.environ, "NANOCLAW_ANTHROPIC_BASE_URL": fake.url, "PYTHONPATH": str(ROOT)}
    settings = podman_settings(podman_url, anthropic_base_url=fake.url, **FAST)
    await seeded_home(settings, provider=provider)
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
        answered_before = len(fake.requests)
        with feed.open("a") as handle:
            handle.writelines(ping(n).to_json() + "\n" for n in IN_FLIGHT)
        await fake.wait_for_requests(answered_before + 1, timeout=60)
        await wait_for(lambda: claimed(settings.paths.sessions) == len(IN_FLIGHT), what="all ten claimed")
        [orphan] = containers(install)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

        host = Host(settings, adapters=[FeedChannel(workdir)], serve_web=False, secrets=secrets_with_keys())
        await host.start()
        await host.engine_connected()
        assert orphan not in containers(install)  # removed at start, whatever state it was in
        await wait_for(lambda: all(f"pong {n}" in delivered(workdir) for n in IN_FLIGHT),
                       what="the answers after the restart")
        await asyncio.sleep(1.0)  # a duplicate would show up now
        everyone = [1, *IN_FLIGHT]
        texts = delivered(workdir)
        assert {n: texts.count(f"pong {n}") for n in everyone} == dict.fromkeys(everyone, 1), texts
        assert not [t for t in texts if t.startswith("Error")], texts
        # What the model read last: the whole conversation, each message in it exactly once.
        prompt = json.dumps(fake.requests[-1]["messages"])
        assert Counter(int(n) for n in PING.findall(prompt)) == dict.fromkeys(everyone, 1), "message: times in prompt"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
        if host is not None:
            await host.stop()
        await fake.stop()
