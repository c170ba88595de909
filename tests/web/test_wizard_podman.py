"""The wizard end to end on real Podman: the agent image is built with live progress on the page (from the local base
image), and the live test message goes through a real container whose Claude agent calls a fake Anthropic server
through the model gateway.

The image is built for real: the test's CA file repeats one certificate, which gives the image a tag of its own (the
shared test image stays untouched); that image is removed again afterwards.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from nanoclaw_app.host import Host
from nanoclaw_app.runtime.image import AgentImages, read_ca_certificates
from nanoclaw_app.runtime.podman_api import PodmanApi
from nanoclaw_app.secrets.store import SecretStore
from nanoclaw_app.settings import Settings
from tests.fakes.anthropic_server import FakeAnthropic, Text
from tests.fakes.keyring import MemoryKeyring
from tests.podman.conftest import BASE_IMAGE, ca_file, podman_settings, podman_url
from tests.web.conftest import shot

pytestmark = pytest.mark.podman

__all__ = ["podman_url"]  # the session fixture, shared with tests/podman

GOOD_KEY = "sk-ant-api03-wizard-podman-key-0123456789abcdef"
BUILD_SECONDS = 900
"""Playwright waits this long for the image build (a real apt and pip install; 1-2 minutes on a busy machine)."""
ANSWER = "Hello from your container!"
FROM = re.compile(r'from=\\?"([^"\\]+)')


def answer(body: dict[str, Any]) -> Text:
    """Reply to whoever wrote, as the agent runner expects: a message block to the sender's destination."""
    found = FROM.findall(json.dumps(body.get("messages")))
    return Text(f'<message to="{found[-1] if found else "app-chat"}">{ANSWER}</message>')


@pytest.fixture
async def fake_anthropic() -> AsyncIterator[FakeAnthropic]:
    fake = FakeAnthropic(responder=answer)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
def variant_ca(tmp_path: Path) -> Path:
    """The host's CA bundle with its first certificate once more: the same trust, a new image tag."""
    source = ca_file()
    if not source:
        pytest.fail("the host CA bundle is missing: run scripts/setup_podman.sh")
    certs = read_ca_certificates(source)
    file = tmp_path / "wizard-ca.pem"
    file.write_bytes(b"\n".join([*certs, certs[0]]) + b"\n")
    return file


def _remove_image(tag: str) -> None:
    subprocess.run(["podman", "rmi", "--force", tag], capture_output=True, timeout=120, check=False)


@pytest.fixture
def base_image() -> str:
    """The local base image (a test may name another, e.g. one that does not exist)."""
    return BASE_IMAGE


@pytest.fixture
async def wizard_image(podman_url: str, variant_ca: Path, base_image: str) -> AsyncIterator[str]:
    """The tag the wizard will build: absent before the test (a leftover of an interrupted run is removed), and
    removed after it."""
    api = PodmanApi(podman_url)
    try:
        if base_image == BASE_IMAGE and await api.image_id(BASE_IMAGE) is None:
            pytest.fail(f"base image {BASE_IMAGE} is missing: run scripts/setup_podman.sh")
        tag = await AgentImages(api, base_image=base_image, ca_certificates=str(variant_ca)).base_tag()
    finally:
        await api.close()
    await asyncio.to_thread(_remove_image, tag)
    try:
        yield tag
    finally:
        await asyncio.to_thread(_remove_image, tag)


@pytest.fixture
def wizard_settings(podman_url: str, variant_ca: Path, base_image: str, fake_anthropic: FakeAnthropic) -> Settings:
    return podman_settings(podman_url, anthropic_base_url=fake_anthropic.url, agent_ca_certificates=str(variant_ca),
                           agent_base_image=base_image, sweep_interval_seconds=0.5)


@pytest.fixture
async def web_host(wizard_settings: Settings, wizard_image: str,
                   keyring_backend: MemoryKeyring) -> AsyncIterator[Host]:
    """The app on real Podman (replaces the conftest's in-process host for the ``page`` fixture)."""
    host = Host(wizard_settings, secrets=SecretStore(keyring_backend))
    await host.start()
    try:
        yield host
    finally:
        await host.stop()


async def test_the_wizard_builds_the_image_and_a_real_container_answers(
    page: Any, base_url: str, web_host: Host, wizard_image: str, fake_anthropic: FakeAnthropic
) -> None:
    from playwright.async_api import expect

    assert web_host.runtime.name == "podman"
    await page.goto(f"{base_url}/setup")
    await page.fill("#api-key", GOOD_KEY)
    await page.click("#model-submit")

    # the engine is there, the image is not: build it and watch it happen
    await expect(page.locator('.wz-step[data-step="2"]')).to_be_visible()
    await expect(page.locator("#engine-status .notice.good")).to_contain_text("Container engine ready")
    await expect(page.locator("#engine-status")).to_contain_text("has to be built once")
    await expect(page.locator("#engine-next")).to_be_disabled()
    await page.click("#engine-build")
    await expect(page.locator("#build-title")).to_have_text("Building the agent image…")
    await expect(page.locator("#build-step")).to_contain_text("Step ", timeout=60_000)
    await page.click("#build-details summary")
    await expect(page.locator("#build-log")).to_contain_text("RUN set -eux", timeout=60_000)
    await shot(page, "wizard-podman-build")
    await expect(page.locator("#build-title")).to_contain_text("The agent image is built",
                                                               timeout=BUILD_SECONDS * 1000)
    await expect(page.locator("#build-bar")).to_have_attribute("value", "1")
    await expect(page.locator("#engine-next")).to_be_enabled()
    api = web_host.runtime.api  # type: ignore[attr-defined]
    assert await api.image_id(wizard_image) is not None
    await page.click("#engine-next")

    # the phone channels are optional (tests/web/test_wizard_channels.py links them)
    await page.click("#whatsapp-skip")
    await page.click("#telegram-skip")
    await page.fill("#agent-name", "Ada")
    await page.click("#agent-submit")
    await expect(page.locator('.wz-step[data-step="6"]')).to_be_visible()
    await page.click("#test-send")
    await expect(page.locator('.wz-step[data-step="7"]')).to_be_visible(timeout=180_000)
    await expect(page.locator("#done-chat .wz-bubble.agent")).to_contain_text(ANSWER)
    await shot(page, "wizard-podman-done")

    # the container's agent called the model through the gateway, which added the real key on the way out
    assert len(fake_anthropic.requests) >= 2  # the wizard's key check, then the agent's own call(s)
    assert {headers.get("x-api-key") for headers in fake_anthropic.headers} == {GOOD_KEY}


@pytest.mark.parametrize("base_image", ["localhost/nanoclaw-wizard-missing:none"])
async def test_a_base_image_that_cannot_be_had_fails_the_build_with_a_fix(
    page: Any, base_url: str, web_host: Host, client_key: None
) -> None:
    from playwright.async_api import expect

    await page.goto(f"{base_url}/setup")
    await expect(page.locator('.wz-step[data-step="2"]')).to_be_visible()  # step 1 was passed by the fixture
    await expect(page.locator("#engine-status")).to_contain_text("localhost/nanoclaw-wizard-missing:none")
    await page.click("#engine-build")
    await expect(page.locator("#build-failure")).to_be_visible(timeout=120_000)
    await expect(page.locator("#build-headline")).to_have_text(
        "NanoClaw could not download the base image localhost/nanoclaw-wizard-missing:none: the image registry "
        "cannot be reached from this computer.")
    await expect(page.locator("#build-offer-list")).to_contain_text(f"Use {BASE_IMAGE}")
    await expect(page.locator("#build-log")).not_to_be_empty()
    await expect(page.locator("#engine-build")).to_have_text("Try the build again")
    await expect(page.locator("#engine-next")).to_be_disabled()
    await shot(page, "wizard-podman-build-failed")


@pytest.fixture
async def client_key(web_host: Host, keyring_backend: MemoryKeyring) -> None:
    """Step 1 already passed (through the service, as the page would), so the page opens at step 2."""
    from nanoclaw_app.services.setup import configure_model

    await configure_model(web_host.services, "anthropic", GOOD_KEY, "", "claude-sonnet-4-6")
