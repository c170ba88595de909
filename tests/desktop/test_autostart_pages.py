"""Start at login in Chromium: on the wizard's last step and on the Settings page, each switching
the real entry, with screenshots at desktop and phone width."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from nanoclaw_app.settings import Settings, load_settings
from tests.fakes.anthropic_server import FakeAnthropic, Text
from tests.web.conftest import screenshot_dir, shot

GOOD_KEY = "sk-ant-api03-desktop-wizard-key-0123456789abcdef"
PHONE = {"width": 390, "height": 844}


@pytest.fixture
async def fake_anthropic() -> AsyncIterator[FakeAnthropic]:
    fake = FakeAnthropic()
    fake.responder = lambda _body: Text("Hi")
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
def web_settings(settings: Settings, fake_anthropic: FakeAnthropic) -> Settings:
    return load_settings(settings.paths, timezone="Europe/Berlin", port=0, sweep_interval_seconds=0.2,
                         retry_base_seconds=0.05, fallback_poll_seconds=0.2, runtime="local",
                         anthropic_base_url=fake_anthropic.url)


async def quiet(page: Any) -> None:
    """No toast over the screenshot."""
    await page.evaluate("document.querySelectorAll('.toast').forEach((t) => t.remove())")


def entry(tmp_path: Path) -> Path:
    return tmp_path / "xdg-config" / "autostart" / "nanoclaw.desktop"


async def test_the_wizards_last_step_offers_start_at_login(page: Any, base_url: str, tmp_path: Path) -> None:
    await page.goto(f"{base_url}/setup")
    await page.fill("#api-key", GOOD_KEY)
    await page.click("#model-submit")
    await expect(page.locator("#engine-next")).to_be_enabled()
    await page.click("#engine-next")
    await page.click("#whatsapp-skip")
    await page.click("#telegram-skip")
    await page.fill("#agent-name", "Ada")
    await page.click("#agent-submit")
    await page.click("#test-send")
    await expect(page.locator('.wz-step[data-step="7"]')).to_be_visible(timeout=30_000)

    toggle = page.locator("#startup-toggle")
    await expect(page.locator("#startup-box")).to_be_visible()
    await expect(toggle).not_to_be_checked()
    await toggle.check()
    await expect(page.locator(".toast").last).to_contain_text("NanoClaw will start when you log in.")
    assert entry(tmp_path).is_file()
    await quiet(page)
    await shot(page, "wizard-done-startup")
    await page.set_viewport_size(PHONE)
    await shot(page, "wizard-done-startup-phone")

    await toggle.uncheck()
    await expect(page.locator(".toast").last).to_contain_text("no longer start")
    assert not entry(tmp_path).exists()


async def test_settings_shows_and_switches_start_at_login(page: Any, base_url: str, tmp_path: Path) -> None:
    await page.goto(f"{base_url}/settings")
    toggle = page.locator("#startup-toggle")
    status = page.locator("#startup-status")
    await expect(status).to_have_text("Off: NanoClaw runs only after you open it.")
    await toggle.check()
    await expect(status).to_contain_text("On: NanoClaw starts in the background each time you log in")
    assert entry(tmp_path).is_file()
    card = page.locator("#startup-card")
    await quiet(page)
    await shot(page, "settings-startup")
    await card.screenshot(path=str(screenshot_dir() / "settings-startup-card.png"))
    await page.set_viewport_size(PHONE)
    await card.screenshot(path=str(screenshot_dir() / "settings-startup-card-phone.png"))

    # Switched off outside the app (the desktop's own settings): the page says so after a reload.
    entry(tmp_path).unlink()
    await page.reload()
    await expect(status).to_have_text("Off: NanoClaw runs only after you open it.")
    await expect(toggle).not_to_be_checked()
