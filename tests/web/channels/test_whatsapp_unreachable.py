"""WhatsApp out of reach on the channels page: a plain "cannot reach WhatsApp" panel with the reason in words, neonize's
Go text only under a closed "Technical details", no scan instructions before there is a code, and a "Try now" that
dials again at once (the backoff here is ten minutes, so only the button can bring the next try)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from nanoclaw_app.channels.manifest import ChannelDeps
from nanoclaw_app.channels.whatsapp.adapter import WhatsAppAdapter
from nanoclaw_app.core.adapter_contract import ChannelAdapter
from nanoclaw_app.settings import Settings, load_settings
from tests.fakes.neonize_client import DIAL_ERROR, FakeNeonizeClient
from tests.fakes.telegram_api import FakeBotApi
from tests.waiting import until
from tests.web.channels.phones import QR_1, Phones, qr_source
from tests.web.conftest import shot

PHONE = {"width": 390, "height": 844}


class OfflinePhones(Phones):
    """Every client fails to dial (a computer without internet) while ``offline``; reconnects wait ten minutes."""

    def __init__(self) -> None:
        super().__init__()
        self.offline = True

    def factory(self, name: str) -> FakeNeonizeClient:
        client = super().factory(name)
        client.fail_dial = self.offline
        return client

    async def build(self, deps: ChannelDeps) -> ChannelAdapter | None:
        return WhatsAppAdapter(deps, client_factory=self.factory, backoff=(600.0,), outage_alert_after=600.0,
                               qr_timeout=600.0)


@pytest.fixture
def phones() -> Phones:
    return OfflinePhones()


@pytest.fixture
def web_settings(settings: Settings, bot_api: FakeBotApi) -> Settings:
    return load_settings(settings.paths, timezone="Europe/Berlin", port=0, sweep_interval_seconds=0.2,
                         retry_base_seconds=0.05, fallback_poll_seconds=0.2, runtime="local",
                         telegram_api_base_url=bot_api.base_url)


async def test_the_api_reports_an_unreachable_whatsapp_with_words_apart_from_the_go_text(
    client: httpx.AsyncClient, phones: OfflinePhones
) -> None:
    assert (await client.post("/api/channels/whatsapp/enable", json={"mode": "self"})).status_code == 200
    await phones.started(1)

    async def unreachable() -> bool:
        found = (await client.get("/api/channels/whatsapp")).json()["status"]
        return bool(found["extra"].get("problem") == "unreachable")

    assert await until(unreachable)
    status = (await client.get("/api/channels/whatsapp")).json()["status"]
    assert status["extra"]["technical"] == DIAL_ERROR
    assert "no such host" not in status["detail"]
    assert status["extra"]["reason"].startswith("This computer cannot look up WhatsApp's address")

    tried = await client.post("/api/channels/whatsapp/reconnect")
    assert tried.status_code == 200, tried.text
    await phones.started(2)  # at once: the next automatic try is ten minutes away


async def test_the_channels_page_says_whatsapp_cannot_be_reached_and_try_now_dials_at_once(
    page: Any, base_url: str, phones: OfflinePhones
) -> None:
    await page.goto(f"{base_url}/channels")
    card = page.locator("#channel-whatsapp")
    await card.get_by_label("My own number").check()
    await card.locator(".ch-wa-start").click()
    await phones.started(1)

    offline = card.locator(".ch-unreachable")
    await expect(offline).to_be_visible()
    await expect(offline.locator("h3")).to_have_text("NanoClaw cannot reach WhatsApp")
    await expect(card.locator(".ch-badge")).to_have_text("No connection")
    await expect(offline).to_contain_text("This computer cannot look up WhatsApp's address")
    await expect(offline).to_contain_text(re.compile(r"tries again by itself at \d"))
    await expect(card.locator(".ch-detail")).to_be_hidden()  # said once, in the panel
    await expect(card.locator(".ch-wa-pair")).to_be_hidden()  # no "Waiting for WhatsApp to send a code…"
    technical = offline.locator("details.ch-technical")
    await expect(technical).not_to_have_attribute("open", "")
    await expect(technical.locator("code")).to_be_hidden()
    await expect(offline).not_to_contain_text("no such host", use_inner_text=True)
    await shot(page, "channels-wa-8-unreachable")
    await technical.locator("summary").click()
    await expect(technical.locator("code")).to_have_text(DIAL_ERROR)
    await page.set_viewport_size(PHONE)
    await shot(page, "channels-wa-8-unreachable-phone")

    phones.offline = False  # the internet is back
    await offline.get_by_role("button", name="Try now").click()
    fresh = await phones.started(2)
    await expect(offline).to_be_hidden()
    pair = card.locator(".ch-wa-pair")
    await expect(pair.locator(".ch-qr-frame .ch-wait")).to_contain_text("Waiting for WhatsApp")
    await expect(pair.get_by_text("Scan this code with WhatsApp")).to_be_hidden()  # nothing to scan yet
    await expect(pair.get_by_role("button", name="Link with phone number instead")).to_be_hidden()
    await fresh.emit_qr(QR_1)
    await qr_source(card)
    await expect(pair.get_by_text("Scan this code with WhatsApp")).to_be_visible()
    await expect(pair.get_by_role("button", name="Link with phone number instead")).to_be_visible()

