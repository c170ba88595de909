"""Fixtures for tests against real Podman: one engine service and one agent image for the whole run.

`scripts/setup_podman.sh` (run by `scripts/test.sh`) installs Podman, writes the engine settings this CI machine needs
and builds the local base image; these fixtures fail with that fix when something is missing (never skip).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket as sock
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from nanoclaw_app.core.messages import InboundMessage
from nanoclaw_app.db import agents
from nanoclaw_app.db.database import Database
from nanoclaw_app.db.migrate import migrate
from nanoclaw_app.host import Host
from nanoclaw_app.runtime.image import AgentImages
from nanoclaw_app.runtime.podman_api import PodmanApi
from nanoclaw_app.secrets.store import SecretStore
from nanoclaw_app.settings import Settings, load_settings
from tests.fakes.channel import FakeChannel
from tests.fakes.keyring import MemoryKeyring
from tests.integration.seed import Seeded, seed

pytestmark = pytest.mark.podman

BASE_IMAGE = os.environ.get("NANOCLAW_TEST_BASE_IMAGE", "localhost/nanoclaw-base:bookworm")
HOST_CA = "/etc/ssl/certs/ca-certificates.crt"
REAL_KEY = "sk-ant-api03-REAL-KEY-never-in-a-container-7f3a9c"
REAL_OPENAI_KEY = "sk-proj-REAL-OPENAI-KEY-never-in-a-container-1b2c"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/podman/" in str(item.fspath):
            item.add_marker(pytest.mark.podman)


@pytest.fixture(scope="session")
def podman_url() -> Iterator[str]:
    """A Podman REST service of our own for the test run."""
    exe = shutil.which("podman")
    if exe is None:
        pytest.fail("podman is not installed: run scripts/setup_podman.sh (scripts/test.sh does)")
    run_dir = Path(tempfile.mkdtemp(prefix="ncpod-"))
    socket = run_dir / "podman.sock"
    proc = subprocess.Popen(
        [exe, "system", "service", "--time=0", f"unix://{socket}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while not _answers(socket):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail("the Podman service did not start")
        time.sleep(0.05)
    try:
        yield f"unix://{socket}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(run_dir, ignore_errors=True)


def _answers(path: Path) -> bool:
    """Whether the engine at ``path`` answers its ping (a plain socket: nothing to leak when it does not)."""
    try:
        with sock.socket(sock.AF_UNIX, sock.SOCK_STREAM) as conn:
            conn.settimeout(2)
            conn.connect(str(path))
            conn.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            head = conn.recv(64)
    except OSError:
        return False
    return head.startswith(b"HTTP/1.") and b" 200 " in head


def ca_file() -> str:
    """The host's CA bundle: this machine reaches PyPI and Debian through a TLS-intercepting proxy."""
    return HOST_CA if Path(HOST_CA).exists() else ""


@pytest.fixture(scope="session")
def agent_image(podman_url: str) -> str:
    """The agent image built from the shipped Containerfile on the local base image (cached by its tag)."""

    async def build() -> str:
        api = PodmanApi(podman_url)
        try:
            if await api.image_id(BASE_IMAGE) is None:
                pytest.fail(f"base image {BASE_IMAGE} is missing: run scripts/setup_podman.sh")
            images = AgentImages(api, base_image=BASE_IMAGE, ca_certificates=ca_file())
            return await images.ensure_base()
        finally:
            await api.close()

    return asyncio.run(build())


def podman_settings(podman_url: str, **overrides: Any) -> Settings:
    """Settings for a host on real Podman in this test's home."""
    values: dict[str, Any] = {
        "timezone": "Europe/Berlin",
        "port": 0,
        "runtime": "podman",
        "podman_url": podman_url,
        "agent_base_image": BASE_IMAGE,
        "agent_ca_certificates": ca_file(),
        "container_stop_grace_seconds": 2.0,
    }
    values.update(overrides)
    settings = load_settings(**values)
    settings.paths.ensure()
    return settings


async def seeded_home(settings: Settings, *, provider: str, model: str = "claude-test") -> Seeded:
    async with Database(settings.paths.central_db) as db:
        await migrate(db)
        seeded = await seed(db)
        await agents.update_config(db, seeded.agent_id, provider=provider, model=model)
    return seeded


def secrets_with_keys() -> SecretStore:
    backend = MemoryKeyring()
    backend.set_password("nanoclaw", "anthropic_api_key", REAL_KEY)
    backend.set_password("nanoclaw", "openai_api_key", REAL_OPENAI_KEY)
    return SecretStore(backend)


def ping(i: int | str, text: str | None = None, *, platform_id: str = "owner") -> InboundMessage:
    return InboundMessage(channel_type="test", platform_id=platform_id, message_id=f"m{i}", sender_id="owner",
                          sender_name="Owner", text=text or f"ping-{i}")


async def wait_for(predicate: Any, timeout: float = 90.0, what: str = "condition") -> None:
    """Poll an (a)sync predicate; real containers take real seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.fixture
async def podman_host_factory(podman_url: str, agent_image: str) -> AsyncIterator[Any]:
    """Build started hosts on real Podman; every one is stopped at the end."""
    hosts: list[Host] = []

    async def make(settings: Settings, channel: FakeChannel, *, secrets: SecretStore | None = None) -> Host:
        host = Host(settings, adapters=[channel], serve_web=False, secrets=secrets or secrets_with_keys())
        await host.start()
        hosts.append(host)
        return host

    yield make
    for host in reversed(hosts):
        await host.stop()
