"""An agent's own container setup, for real: packages in a derived image, a failed package build, an extra folder
mounted read-only through the allowlist, resource limits, and building the image from the command line."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from nanoclaw_app.cli import main
from nanoclaw_app.db import agents
from nanoclaw_app.db.database import Database
from nanoclaw_app.host import Host
from nanoclaw_app.runtime.mounts import AllowedRoot, Allowlist, save_allowlist
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.channel import FakeChannel
from tests.podman.conftest import BASE_IMAGE, ca_file, ping, podman_settings, seeded_home, wait_for
from tests.podman.test_faults import pong


def the_container(host: Host) -> str:
    out = subprocess.run(
        ["podman", "ps", "--filter", f"label=io.nanoclaw.install={host.runtime.install}",  # type: ignore[attr-defined]
         "--format", "{{.Names}}"], capture_output=True, text=True, check=True,
    )
    [name] = out.stdout.split()
    return name


def run_in(name: str, script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", "exec", "-w", "/", name, "sh", "-c", script],
                          capture_output=True, text=True, timeout=120, check=False)


async def test_approved_packages_run_in_a_derived_image(podman_url: str, podman_host_factory: Any) -> None:
    fake = FakeAnthropic(responder=pong)
    await fake.start()
    try:
        settings = podman_settings(podman_url, anthropic_base_url=fake.url)
        seeded = await seeded_home(settings, provider="anthropic")
        async with Database(settings.paths.central_db) as db:
            await agents.update_config(db, seeded.agent_id, packages_apt=json.dumps(["jq"]),
                                       packages_pip=json.dumps(["six"]))
        channel = FakeChannel()
        host: Host = await podman_host_factory(settings, channel)
        await channel.inject(ping(1))
        await wait_for(lambda: "pong 1" in channel.texts(), timeout=600, what="the reply (after the package build)")
        name = the_container(host)
        image = subprocess.run(["podman", "inspect", "-f", "{{.ImageName}}", name], capture_output=True,
                               text=True, check=True).stdout.strip()
        assert image.startswith("localhost/nanoclaw-agent-packages:")
        probe = run_in(name, "echo '{\"a\": 5}' | jq .a && python -c 'import six; print(six.__name__)'")
        assert probe.stdout.split() == ["5", "six"], probe.stderr
    finally:
        await fake.stop()


async def test_a_failed_package_build_falls_back_and_tells_the_agent(
    podman_url: str, podman_host_factory: Any
) -> None:
    fake = FakeAnthropic(responder=pong)
    await fake.start()
    try:
        settings = podman_settings(podman_url, anthropic_base_url=fake.url)
        seeded = await seeded_home(settings, provider="anthropic")
        async with Database(settings.paths.central_db) as db:
            await agents.update_config(db, seeded.agent_id,
                                       packages_pip=json.dumps(["nanoclaw-no-such-package-7f3a9c"]))
        channel = FakeChannel()
        host: Host = await podman_host_factory(settings, channel)
        await channel.inject(ping(1))
        await wait_for(lambda: "pong 1" in channel.texts(), timeout=600, what="the reply on the plain image")
        image = subprocess.run(["podman", "inspect", "-f", "{{.ImageName}}", the_container(host)],
                               capture_output=True, text=True, check=True).stdout.strip()
        assert image.startswith("localhost/nanoclaw-agent:")
        prompts = json.dumps(fake.requests)
        assert "could not be installed" in prompts  # the agent was told why its packages are missing
    finally:
        await fake.stop()


async def test_an_allowed_folder_is_mounted_read_only_and_limits_apply(
    podman_url: str, podman_host_factory: Any, tmp_path: Path
) -> None:
    fake = FakeAnthropic(responder=pong)
    await fake.start()
    try:
        shared = tmp_path / "photos"
        shared.mkdir()
        (shared / "note.txt").write_text("hello from the host")
        settings = podman_settings(podman_url, anthropic_base_url=fake.url, container_memory_mb=512,
                                   container_cpus=1.5, container_pids_limit=256)
        save_allowlist(settings.paths.mount_allowlist, Allowlist(roots=(AllowedRoot(tmp_path, True),)))
        seeded = await seeded_home(settings, provider="anthropic")
        async with Database(settings.paths.central_db) as db:
            await agents.update_config(db, seeded.agent_id, additional_mounts=json.dumps([
                {"host_path": str(shared), "container_path": "photos"},  # asks read-only
                {"host_path": str(settings.paths.home)},  # never: NanoClaw's own data
            ]))
        channel = FakeChannel()
        host: Host = await podman_host_factory(settings, channel)
        await channel.inject(ping(1))
        await wait_for(lambda: "pong 1" in channel.texts(), what="the reply")
        name = the_container(host)
        assert run_in(name, "cat /workspace/extra/photos/note.txt").stdout == "hello from the host"
        write = run_in(name, "touch /workspace/extra/photos/new.txt")
        assert write.returncode != 0
        assert "Read-only" in write.stderr
        assert run_in(name, "ls /workspace/extra").stdout.split() == ["photos"]
        limits = json.loads(subprocess.run(["podman", "inspect", name], capture_output=True, text=True,
                                           check=True).stdout)[0]["HostConfig"]
        assert limits["Memory"] == 512 * 2**20
        assert limits["CpuQuota"] / limits["CpuPeriod"] == 1.5
        assert limits["PidsLimit"] == 256
        env = json.loads(subprocess.run(["podman", "inspect", name], capture_output=True, text=True,
                                        check=True).stdout)[0]["Config"]["Env"]
        assert "TZ=Europe/Berlin" in env
        assert f"NANOCLAW_ADMIN_USER_IDS={seeded.owner_id}" in env
    finally:
        await fake.stop()


def test_nanoclaw_image_build_reports_progress_and_the_tag(
    podman_url: str, agent_image: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NANOCLAW_PODMAN_URL", podman_url)
    monkeypatch.setenv("NANOCLAW_AGENT_BASE_IMAGE", BASE_IMAGE)
    monkeypatch.setenv("NANOCLAW_AGENT_CA_CERTIFICATES", ca_file())
    assert main(["image", "build"]) == 0
    out = capsys.readouterr().out
    assert f"agent image ready: {agent_image}" in out  # same inputs, same tag: nothing rebuilt
