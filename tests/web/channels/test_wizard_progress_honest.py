"""The wizard's progress bar tells a skipped phone channel from a working one (a dash and "Skipped", read out too), and
its WhatsApp step shows the channels page's "cannot reach WhatsApp" panel with "Try now"."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from nanoclaw_app.settings import Settings, load_settings
from tests.fakes.anthropic_server import FakeAnthropic, Text
from tests.fakes.telegram_api import TOKEN, FakeBotApi
from tests.web.channels.phones import Phones
from tests.web.channels.test_whatsapp_unreachable import OfflinePhones
from tests.web.channels.test_wizard_channels import set_up_model
from tests.web.conftest import shot

PHONE = {"width": 390, "height": 844}


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
def phones() -> Phones:
    return OfflinePhones()


async def test_the_state_lists_skipped_steps_until_the_channel_is_set_up_after_all(client: httpx.AsyncClient) -> None:
    await set_up_model(client)
    await client.post("/api/setup/channel", json={"channel": "whatsapp", "outcome": "skipped"})
    await client.post("/api/setup/channel", json={"channel": "telegram", "outcome": "skipped"})
    state = (await client.get("/api/setup/state")).json()
    assert (state["steps"]["whatsapp"], state["steps"]["telegram"]) == (True, True)
    assert state["skipped"] == ["whatsapp", "telegram"]

    await client.post("/api/channels/telegram/token", json={"token": TOKEN})  # set up later on the channels page
    assert (await client.get("/api/setup/state")).json()["skipped"] == ["whatsapp"]


async def test_skipped_channel_steps_show_as_skipped_not_done(page: Any, base_url: str, client: httpx.AsyncClient,
                                                              phones: OfflinePhones) -> None:
    await set_up_model(client)
    await page.goto(f"{base_url}/setup")
    step = page.locator('.wz-step[data-step="3"]')
    await expect(step).to_be_visible()

    # WhatsApp cannot be reached: the step says so, with Try now, instead of waiting for a code forever
    await step.get_by_label("My own number").check()
    await step.locator(".ch-wa-start").click()
    await phones.started(1)
    offline = step.locator(".ch-unreachable")
    await expect(offline).to_contain_text("NanoClaw cannot reach WhatsApp")
    await expect(offline.get_by_role("button", name="Try now")).to_be_visible()
    await expect(step.get_by_text("Scan this code with WhatsApp")).to_be_hidden()
    await shot(page, "wizard-3-whatsapp-unreachable")
    await offline.get_by_role("button", name="Try now").click()
    await phones.started(2)

    await page.click("#whatsapp-skip")
    await expect(page.locator('.wz-step[data-step="4"]')).to_be_visible()
    await page.click("#telegram-skip")
    await expect(page.locator('.wz-step[data-step="5"]')).to_be_visible()

    for n in ("3", "4"):
        item = page.locator(f'.wz-progress li[data-step="{n}"]')
        await expect(item).to_have_class(re.compile(r"\bskipped\b"))
        await expect(item).not_to_have_class(re.compile(r"\bdone\b"))
        await expect(item.locator(".wz-dot")).to_have_text("–")
        await expect(item.locator(".wz-state")).to_have_text("Skipped")
        await expect(item.locator(".wz-state")).to_be_visible()
    model = page.locator('.wz-progress li[data-step="1"]')
    await expect(model.locator(".wz-dot")).to_have_text("✓")
    await expect(model.locator(".wz-state")).to_have_text("done")  # read out, not shown
    await expect(model.locator(".wz-state")).to_have_class(re.compile("visually-hidden"))
    await shot(page, "wizard-progress-skipped")

    await page.reload()  # the server remembers it as skipped too
    await expect(page.locator('.wz-progress li[data-step="3"] .wz-state')).to_have_text("Skipped")
    await expect(page.locator('.wz-progress li[data-step="3"]')).not_to_have_class(re.compile(r"\bdone\b"))
    await page.set_viewport_size(PHONE)
    await shot(page, "wizard-progress-skipped-phone")
