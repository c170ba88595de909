"""The container rewrites its mounted folders; the host follows no link there and loses no message.

Each test plays the attacker with ``podman exec`` in a real agent container, then checks what the user would notice:
their files untouched, their messages answered, the owner told.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.rows import Session
from nanoclaw_app.host import Host
from nanoclaw_app.services.activity import log_tail
from nanoclaw_app.sessions.store import SET_ASIDE
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.channel import FakeChannel
from tests.podman.conftest import (
    ping,
    podman_settings,
    seeded_home,
    wait_for,
)
from tests.podman.test_faults import FAST, our_containers, pong

pytestmark = pytest.mark.podman


def attack(container: str, script: str) -> None:
    """Run ``script`` as the agent inside its container (what a prompt-injected agent can do with its shell)."""
    subprocess.run(["podman", "exec", container, "sh", "-c", script], check=True, capture_output=True, timeout=60)


async def started(podman_url: str, podman_host_factory: Any, fake: FakeAnthropic) -> tuple[Host, FakeChannel]:
    """A host on real Podman whose agent has answered once, so its container is up and warm."""
    settings = podman_settings(podman_url, anthropic_base_url=fake.url, **FAST)
    await seeded_home(settings, provider="anthropic")
    channel = FakeChannel()
    host: Host = await podman_host_factory(settings, channel)
    await channel.inject(ping(1))
    await wait_for(lambda: "pong 1" in channel.texts(), what="the first reply")
    return host, channel


async def only_session(host: Host) -> Session:
    [session] = await sessions_db.list_active(host.db)
    return session


async def answered(host: Host, session: Session, message: str) -> bool:
    """Whether the host has synced the container's ack for ``message`` (so a fresh outbound file cannot replay it)."""
    folder = host.store.dir(session.agent_group_id, session.id)
    rows = await host.store.read(folder, lambda c: c.execute(
        "SELECT status FROM messages_in WHERE content LIKE ?", (f"%{message}%",)).fetchall(), with_outbound=False)
    return bool(rows) and rows[0][0] == "completed"


@pytest.fixture
async def fake() -> Any:
    server = FakeAnthropic(responder=pong)
    await server.start()
    yield server
    await server.stop()


async def test_a_log_swapped_for_a_link_never_makes_the_host_write_or_show_a_host_file(
    podman_url: str, podman_host_factory: Any, fake: FakeAnthropic, tmp_path: Path
) -> None:
    victim = tmp_path / "bashrc"
    victim.write_text("# the user's shell start-up file\n", encoding="utf-8")
    host, _channel = await started(podman_url, podman_host_factory, fake)
    session = await only_session(host)
    [name] = our_containers(host)

    attack(name, f"rm -f /workspace/container.log; ln -s {victim} /workspace/container.log")
    await host.waker.stop(session.id, reason="restart agent")  # the host notes the exit in the container's log

    assert victim.read_text(encoding="utf-8") == "# the user's shell start-up file\n"
    tail = await log_tail(host.services, session.id)
    assert "shell start-up" not in tail.text
    assert f"container {name} exited" in tail.text  # the real log, kept where no container reaches


async def test_inbound_db_swapped_for_a_dangling_link_is_set_aside_and_the_message_still_answered(
    podman_url: str, podman_host_factory: Any, fake: FakeAnthropic, tmp_path: Path
) -> None:
    target = tmp_path / "elsewhere.db"
    host, channel = await started(podman_url, podman_host_factory, fake)
    session = await only_session(host)
    [name] = our_containers(host)

    attack(name, f"rm -f /workspace/inbound.db && ln -s {target} /workspace/inbound.db")
    await channel.inject(ping(2))

    await wait_for(lambda: "pong 2" in channel.texts(), what="the reply to the message after the attack")
    assert not target.exists()
    assert not target.is_symlink()
    assert any("started afresh" in text for text in channel.texts())  # the owner was told
    kept = list((host.settings.paths.home / SET_ASIDE / session.agent_group_id).iterdir())
    assert len(kept) == 1
    assert (kept[0] / "inbound.db").is_symlink()


async def test_a_runner_planted_in_the_agent_folder_never_runs_even_after_a_restart(
    podman_url: str, podman_host_factory: Any, fake: FakeAnthropic
) -> None:
    host, channel = await started(podman_url, podman_host_factory, fake)
    session = await only_session(host)
    [name] = our_containers(host)

    attack(name, "mkdir -p /workspace/agent/agent_runner && touch /workspace/agent/agent_runner/__init__.py && "
                 "echo 'open(\"/workspace/agent/PWNED\", \"w\").write(\"ran\")' "
                 "> /workspace/agent/agent_runner/__main__.py")
    await host.waker.stop(session.id, reason="restart agent")
    await channel.inject(ping(2))

    await wait_for(lambda: "pong 2" in channel.texts(), what="the reply from the real runner")
    agent_dir = next(host.settings.paths.agents.iterdir())
    assert not (agent_dir / "PWNED").exists()


async def test_a_corrupt_outbound_db_is_replaced_and_replies_flow_again(
    podman_url: str, podman_host_factory: Any, fake: FakeAnthropic
) -> None:
    host, channel = await started(podman_url, podman_host_factory, fake)
    session = await only_session(host)
    await wait_for(lambda: answered(host, session, "ping-1"), what="the first turn's ack to be synced")
    [name] = our_containers(host)

    attack(name, "head -c 65536 /dev/urandom > /workspace/outbound.db")

    await wait_for(lambda: any("outgoing-message file" in t for t in channel.texts()), what="the owner's notice")
    assert any("technical problem on my side" in t for t in channel.texts())  # the chat is told too
    await channel.inject(ping(2))
    await wait_for(lambda: "pong 2" in channel.texts(), what="a reply through the fresh outbound file")
    assert channel.texts().count("pong 1") == 1
    kept = list((host.settings.paths.home / SET_ASIDE / session.agent_group_id).iterdir())
    assert [k.name.endswith("-outbound") for k in kept] == [True]
