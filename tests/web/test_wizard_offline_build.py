"""The container step on an ordinary home network, on real Podman: no registry can be reached (the default base image
cannot be pulled) and a TLS-intercepting proxy sits between the build and PyPI (as on this machine). Each failure is
one plain line with the fix done in the page: the base image already on this computer, then the proxy's certificate
file, both used at once (no restart), and the build goes through.

The last build makes the shared test image (local base image, this machine's CA bundle), so it is kept.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from nanoclaw_app.host import Host
from nanoclaw_app.runtime.podman_api import PodmanApi
from nanoclaw_app.secrets.store import SecretStore
from nanoclaw_app.services.setup import configure_model
from nanoclaw_app.settings import Settings
from tests.fakes.anthropic_server import FakeAnthropic, Text
from tests.fakes.keyring import MemoryKeyring
from tests.podman.conftest import BASE_IMAGE, ca_file, podman_settings, podman_url
from tests.web.conftest import screenshot_dir

pytestmark = pytest.mark.podman

__all__ = ["podman_url"]  # the session fixture, shared with tests/podman

UNREACHABLE_BASE = "docker.io/library/python:3.11-slim-bookworm"
BUILD_MS = 900_000
"""Playwright waits this long for a real build (apt and pip through the proxy; minutes on a busy machine)."""
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


@pytest.fixture
async def fake_anthropic() -> AsyncIterator[FakeAnthropic]:
    fake = FakeAnthropic(responder=lambda body: Text("ok"))
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def web_host(podman_url: str, fake_anthropic: FakeAnthropic) -> AsyncIterator[Host]:
    """The app on real Podman with the default base image and no CA file: what a new home user starts with."""
    api = PodmanApi(podman_url)
    try:
        if await api.image_id(BASE_IMAGE) is None:
            pytest.fail(f"base image {BASE_IMAGE} is missing: run scripts/setup_podman.sh")
        if await api.image_id(UNREACHABLE_BASE) is not None:
            pytest.fail(f"{UNREACHABLE_BASE} is on this machine: this test needs it to be missing")
    finally:
        await api.close()
    settings: Settings = podman_settings(podman_url, anthropic_base_url=fake_anthropic.url,
                                         agent_base_image=UNREACHABLE_BASE, agent_ca_certificates="")
    keyring = MemoryKeyring()
    host = Host(settings, secrets=SecretStore(keyring))
    await host.start()
    await configure_model(host.services, "anthropic", "sk-ant-api03-offline-build-0123456789abcdef", "",
                          "claude-sonnet-4-6")
    try:
        yield host
    finally:
        await host.stop()


async def shots(page: Any, name: str) -> None:
    """The step at desktop and at phone width, for a person to look at."""
    await page.evaluate("document.querySelectorAll('#nc-toasts .toast').forEach((t) => t.remove())")
    await page.screenshot(path=str(screenshot_dir() / f"{name}.png"), full_page=True)
    await page.set_viewport_size(PHONE)
    await page.screenshot(path=str(screenshot_dir() / f"{name}-phone.png"), full_page=True)
    await page.set_viewport_size(DESKTOP)


async def test_no_registry_and_a_proxy_are_fixed_in_the_page_without_a_restart(
    page: Any, base_url: str, web_host: Host, tmp_path: Path
) -> None:
    from playwright.async_api import expect

    await page.goto(f"{base_url}/setup")
    await expect(page.locator('.wz-step[data-step="2"]')).to_be_visible()
    await expect(page.locator("#engine-status .notice.good")).to_contain_text("Container engine ready")
    await page.click("#engine-build")

    # no registry: one plain line, the engine's words behind the toggle, and the local base image offered
    failure, headline = page.locator("#build-failure"), page.locator("#build-headline")
    await expect(failure).to_be_visible(timeout=120_000)
    await expect(headline).to_have_text("NanoClaw could not download the base image python:3.11-slim-bookworm: "
                                        "the image registry cannot be reached from this computer.")
    await expect(page.locator("#build-details")).not_to_have_attribute("open", "")
    await expect(page.locator("#build-error")).to_be_hidden()  # collapsed with the log
    await expect(page.locator("#build-error")).to_contain_text("registry-1.docker.io", use_inner_text=False)
    offer = page.locator("#build-offer-list button", has_text=BASE_IMAGE)
    await expect(offer).to_have_text(f"Use {BASE_IMAGE}")
    await shots(page, "wizard-build-no-registry")

    # the local base image: the setting switches at once and the build runs; behind the proxy, pip's words say why
    await offer.click()
    await expect(page.locator("#build-title")).to_have_text("Building the agent image…")
    await expect(headline).to_have_text("Your network checks secure connections with its own certificate, and the "
                                        "build does not trust it yet.", timeout=BUILD_MS)
    assert web_host.settings.agent_base_image == BASE_IMAGE
    assert "agent_base_image" not in (await _settings(page, base_url))["restart_needed"]
    ca_field = page.locator("#ca-file")
    await expect(ca_field).to_have_value(ca_file())  # this computer's own bundle, which trusts the proxy
    await shots(page, "wizard-build-proxy-certificate")

    # a file that is no certificate is refused next to the field, checked on this computer
    not_pem = tmp_path / "notes.txt"
    not_pem.write_text("not a certificate")
    await ca_field.fill(str(not_pem))
    await page.click("#ca-submit")
    error = page.locator('#build-ca [data-error-for="agent_ca_certificates"]')
    await expect(error).to_contain_text("holds no PEM certificate")
    await expect(ca_field).to_have_attribute("aria-invalid", "true")
    await shots(page, "wizard-build-proxy-certificate-refused")

    # the right file: used at once, and the build goes through
    await ca_field.fill(ca_file())
    await page.click("#ca-submit")
    await expect(page.locator("#build-title")).to_contain_text("✓", timeout=BUILD_MS)
    await expect(page.locator("#engine-next")).to_be_enabled()
    assert web_host.settings.agent_ca_certificates == ca_file()
    assert (await _settings(page, base_url))["restart_needed"] == []
    await shots(page, "wizard-build-fixed")


async def _settings(page: Any, base_url: str) -> dict[str, Any]:
    response = await page.request.get(f"{base_url}/api/settings")
    result: dict[str, Any] = await response.json()
    return result
