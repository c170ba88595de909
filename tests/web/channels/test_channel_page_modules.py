"""The channels page and the wizard draw each channel with the page module its view names, so both follow the channel
list: the wizard has a step per channel listed for it (numbered and counted to match), and a card whose module does
not load says so in words with a button that fixes it."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from nanoclaw_app.channels import registry
from nanoclaw_app.host import Host
from nanoclaw_app.services.auth import issue_login_token
from nanoclaw_app.settings import Settings, load_settings
from tests.fakes.anthropic_server import FakeAnthropic, Text
from tests.fakes.telegram_api import FakeBotApi
from tests.web.conftest import shot

KEY = "sk-ant-api03-page-modules-key-0123456789abcdef"


@pytest.fixture
async def fake_anthropic() -> AsyncIterator[FakeAnthropic]:
    fake = FakeAnthropic()
    fake.responder = lambda body: Text("Hi")
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
def web_settings(settings: Settings, fake_anthropic: FakeAnthropic, bot_api: FakeBotApi) -> Settings:
    return load_settings(settings.paths, timezone="Europe/Berlin", port=0, sweep_interval_seconds=0.2,
                         retry_base_seconds=0.05, fallback_poll_seconds=0.2, runtime="local",
                         anthropic_base_url=fake_anthropic.url, telegram_api_base_url=bot_api.base_url)


@pytest.fixture
def whatsapp_not_in_wizard(monkeypatch: pytest.MonkeyPatch) -> None:
    """WhatsApp listed as a channel the wizard does not offer (the Channels page still does)."""
    listed = tuple(dataclasses.replace(m, in_wizard=False) if m.name == "whatsapp" else m for m in registry.CHANNELS)
    monkeypatch.setattr(registry, "CHANNELS", listed)


async def test_the_wizard_has_a_step_per_channel_listed_for_it(
    whatsapp_not_in_wizard: None, page: Any, base_url: str, client: httpx.AsyncClient
) -> None:
    model = await client.post("/api/setup/model", json={"kind": "anthropic", "api_key": KEY,
                                                        "model": "claude-sonnet-4-6"})
    assert model.status_code == 200, model.text
    assert (await client.post("/api/setup/engine")).json()["ok"] is True

    await page.goto(f"{base_url}/setup")
    await expect(page.locator(".wz-progress .wz-label")).to_have_text(
        ["Model access", "Containers", "Telegram", "Your agent", "Say hello"])
    step = page.locator('.wz-step[data-step="3"]')
    await expect(step.locator("h2")).to_have_text("Chat from Telegram")
    await expect(page.locator("#wz-count")).to_have_text("Step 3 of 5")
    await expect(step.locator(".ch-steps")).to_contain_text("@BotFather")
    await expect(page.locator("#wz-whatsapp")).to_have_count(0)
    await shot(page, "wizard-channels-from-the-list")

    await page.click("#telegram-skip")
    await expect(page.locator('.wz-step[data-step="4"] h2')).to_have_text("Name your agent")
    await expect(page.locator("#wz-count")).to_have_text("Step 4 of 5")
    await expect(page.locator('.wz-progress li[data-step="3"] .wz-state')).to_have_text("Skipped")

    await page.goto(f"{base_url}/channels")  # the Channels page offers every channel
    await expect(page.locator("#channel-whatsapp .ch-wa-start")).to_be_visible()
    await expect(page.locator("#channel-telegram .ch-steps")).to_be_visible()


async def test_a_channel_card_that_did_not_load_says_so_and_reloads(
    browser: Any, web_host: Host, base_url: str
) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        tab = await context.new_page()
        await tab.goto(f"{base_url}/login?token={await issue_login_token(web_host.db)}")
        await tab.route("**/static/channels/telegram.js", lambda route: route.abort())
        await tab.goto(f"{base_url}/channels")

        telegram = tab.locator("#channel-telegram")
        await expect(telegram.get_by_role("alert")).to_have_text(
            "This part of the page did not load. Reload the page to try again.Reload the page")
        await expect(tab.locator("#channel-whatsapp .ch-wa-start")).to_be_visible()  # the other card works
        await shot(tab, "channels-card-not-loaded")

        await tab.unroute("**/static/channels/telegram.js")
        await telegram.get_by_role("button", name="Reload the page").click()
        await expect(tab.locator("#channel-telegram .ch-steps")).to_contain_text("@BotFather")
    finally:
        await context.close()
