"""Standby containers on real Podman: an idle session's next container is prepared (created and initialised, never
started) and answers its next message; one that no longer matches, or whose session is going away, is never used."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from nanoclaw_app.core.messages import InboundMessage
from nanoclaw_app.db import agents, sessions
from nanoclaw_app.host import Host
from nanoclaw_app.runtime.podman_runtime import PodmanRuntime
from nanoclaw_app.settings import Settings
from tests.fakes.anthropic_server import FakeAnthropic, Text, last_user_content
from tests.fakes.channel import FakeChannel
from tests.podman.conftest import ping, podman_settings, seeded_home, wait_for
from tests.podman.podman_host import FAST

PING = re.compile(r"ping-(\w+)")
IDLE = {**FAST, "idle_stop_seconds": 0.5}
"""A container with nothing to do is stopped (as idle) half a second after its last answer."""


def echo(request: dict[str, Any]) -> Text:
    said = " ".join(str(block.get("text", "")) for block in last_user_content(request))
    found = PING.findall(said)
    return Text(f'<message to="owner-dm">pong {found[-1] if found else "?"}</message>')


def containers(install: str) -> dict[str, str]:
    """Name → state of every container of the install (``initialized`` is a standby)."""
    out = subprocess.run(
        ["podman", "ps", "-a", "--filter", f"label=io.nanoclaw.install={install}", "--format", "json"],
        capture_output=True, text=True, check=True,
    )
    return {c["Names"][0]: c["State"] for c in json.loads(out.stdout or "[]")}


def runtime_of(host: Host) -> PodmanRuntime:
    assert isinstance(host.runtime, PodmanRuntime)
    return host.runtime


async def only_session(host: Host) -> str:
    [session] = await sessions.list_active(host.db)
    return session.id


async def answered_then_idle(host: Host, channel: FakeChannel, i: int) -> str:
    """Send ping ``i``, wait for its answer and for the idle stop; returns the name of the container that answered."""
    runtime = runtime_of(host)
    await channel.inject(ping(i))
    await wait_for(lambda: f"pong {i}" in channel.texts(), what=f"the answer to ping {i}")
    sid = await only_session(host)
    name = runtime._running.get(sid)
    assert name is not None
    await wait_for(lambda: not runtime._running, what="the idle stop")
    return name


@dataclass
class Standing:
    """A host whose only session answered ping 1, went idle and has its standby ready."""

    host: Host
    channel: FakeChannel
    settings: Settings
    agent_id: str
    sid: str
    first: str
    """The container that answered ping 1."""
    standby: str

    @property
    def runtime(self) -> PodmanRuntime:
        return runtime_of(self.host)


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    server = FakeAnthropic(responder=echo)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def standing(podman_url: str, podman_host_factory: Any, fake: FakeAnthropic) -> Standing:
    settings = podman_settings(podman_url, anthropic_base_url=fake.url, **IDLE)
    seeded = await seeded_home(settings, provider="anthropic")
    channel = FakeChannel()
    host: Host = await podman_host_factory(settings, channel)
    runtime = runtime_of(host)
    first = await answered_then_idle(host, channel, 1)
    sid = await only_session(host)
    await wait_for(lambda: runtime.has_standby(sid), what="the standby container")
    return Standing(host, channel, settings, seeded.agent_id, sid, first, runtime._standby[sid].name)


async def test_an_idle_session_gets_a_standby_that_answers_its_next_message(standing: Standing) -> None:
    assert standing.standby != standing.first
    # prepared but never started: nothing of the image has run in it
    assert containers(standing.runtime.install) == {standing.standby: "initialized"}
    log_file = standing.settings.paths.container_log(standing.sid)
    log_before = log_file.read_text()

    second = await answered_then_idle(standing.host, standing.channel, 2)

    assert second == standing.standby
    assert "pong 2" in standing.channel.texts()
    assert log_file.read_text().count("runner process up") == log_before.count("runner process up") + 1


async def test_a_standby_whose_session_folder_was_replaced_is_never_started(standing: Standing) -> None:
    """The OCI runtime bound the folders when it initialised the standby: started, it would still see the old one."""
    host, runtime, sid = standing.host, standing.runtime, standing.sid
    [session] = await sessions.list_active(host.db)
    folder = host.store.dir(session.agent_group_id, sid)
    folder.rename(folder.with_name(folder.name + "-set-aside"))
    await host.store.create(session.agent_group_id, sid)
    (folder / "marker-of-the-new-folder").write_text("new")

    await standing.channel.inject(ping(2))
    await wait_for(lambda: sid in runtime._running, what="a container for the session")
    running = runtime._running[sid]
    seen = subprocess.run(["podman", "exec", running, "ls", "/workspace"], capture_output=True, text=True)
    await wait_for(lambda: "pong 2" in standing.channel.texts(), what="the answer to ping 2")

    assert running != standing.standby
    assert standing.standby not in containers(runtime.install)
    assert "marker-of-the-new-folder" in seen.stdout


async def test_a_standby_made_before_a_settings_change_is_replaced(standing: Standing, fake: FakeAnthropic) -> None:
    await agents.update_config(standing.host.db, standing.agent_id, model="claude-other-model")

    second = await answered_then_idle(standing.host, standing.channel, 2)

    assert second != standing.standby
    assert fake.requests[-1]["model"] == "claude-other-model"


async def test_stopping_a_session_for_any_other_reason_removes_its_standby_and_so_does_the_host_stop(
    standing: Standing,
) -> None:
    host, runtime, sid = standing.host, standing.runtime, standing.sid

    await host.waker.stop(sid, reason="its agent is being deleted")

    assert not runtime.has_standby(sid)
    assert containers(runtime.install) == {}

    await answered_then_idle(host, standing.channel, 2)
    await wait_for(lambda: runtime.has_standby(sid), what="a new standby container")
    await host.stop()
    assert containers(runtime.install) == {}


def in_group(i: int) -> InboundMessage:
    return InboundMessage(channel_type="test", platform_id="group-1", message_id=f"g{i}", sender_id="owner",
                          sender_name="Owner", text=f"ping-{i}", is_group=True, is_mention=True, chat_name="Family")


async def test_a_restarted_host_prepares_standbys_for_recently_active_sessions_up_to_the_setting(
    podman_url: str, podman_host_factory: Any, fake: FakeAnthropic
) -> None:
    settings = podman_settings(podman_url, anthropic_base_url=fake.url, container_standby=1, **IDLE)
    seeded = await seeded_home(settings, provider="anthropic")
    channel = FakeChannel()
    first_host: Host = await podman_host_factory(settings, channel)
    await channel.inject(ping(1))
    await wait_for(lambda: "pong 1" in channel.texts(), what="the answer in the DM")
    await channel.inject(in_group(2))  # the group's session is the most recently active one
    await wait_for(lambda: "pong 2" in channel.texts(), what="the answer to the group")
    await first_host.stop()
    assert containers(runtime_of(first_host).install) == {}

    channel = FakeChannel()
    host: Host = await podman_host_factory(settings, channel)
    runtime = runtime_of(host)
    await wait_for(lambda: len(runtime._standby) == 1, what="a standby for the most recent session")
    [sid] = runtime._standby
    group_session = await sessions.find(host.db, seeded.agent_id, "shared", seeded.group_id, None)
    assert group_session is not None
    assert sid == group_session.id
    standby = runtime._standby[sid].name
    assert containers(runtime.install) == {standby: "initialized"}

    await channel.inject(in_group(3))
    await wait_for(lambda: runtime._running.get(sid) is not None, what="the group's container")
    assert runtime._running[sid] == standby
    await wait_for(lambda: "pong 3" in channel.texts(), what="the answer after the restart")
