"""Discord on the Channels page (real app, real Chromium): the steps to make a bot, the token, the invite link, the
pairing code, and a refused Message Content intent with the button that fixes it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import expect

from nanoclaw_app.host import Host
from nanoclaw_app.secrets.store import SecretStore
from nanoclaw_app.settings import Settings
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.discord_gateway import INTENT_MESSAGE_CONTENT
from tests.fakes.discord_model import TOKEN
from tests.fakes.keyring import MemoryKeyring
from tests.fakes.runtime import InProcessRuntime
from tests.web.conftest import browser, screenshot_dir, signed_in_tab

__all__ = ["browser"]


@pytest.fixture
async def web_host(dc_settings: Settings) -> AsyncIterator[Host]:
    server = Host(dc_settings, runtime=InProcessRuntime(), secrets=SecretStore(MemoryKeyring()))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def both_widths(page: Any, name: str) -> None:
    """Screenshots at a desktop and a phone width, for a person to look at."""
    for width in (1280, 390):
        await page.set_viewport_size({"width": width, "height": 800})
        await page.wait_for_timeout(100)
        await page.screenshot(path=str(screenshot_dir() / f"discord-{name}-{width}.png"), full_page=True)
    await page.set_viewport_size({"width": 1280, "height": 800})


async def test_the_owner_sets_discord_up_from_the_channels_page(
    browser: Any, web_host: Host, fake: FakeDiscord
) -> None:
    fake.gateway.granted_intents &= ~INTENT_MESSAGE_CONTENT  # the owner forgot the intent at first
    async with signed_in_tab(browser, web_host) as page:
        assert web_host.url is not None
        await page.goto(f"{web_host.url.rstrip('/')}/channels")
        widget = page.locator("#channel-discord")
        await expect(widget.locator(".ch-steps")).to_be_visible()
        await expect(widget.locator(".ch-steps")).to_contain_text("Message Content Intent")
        portal = widget.locator('.ch-steps a[href="https://discord.com/developers/applications"]')
        await expect(portal).to_be_visible()
        await both_widths(page, "fresh")

        await widget.locator("#dc-token").fill("not a token")
        await widget.locator(".ch-dc-check").click()
        await expect(widget.locator(".field-error").first).to_contain_text("does not look like a Discord bot token")

        await widget.locator("#dc-token").fill(TOKEN)
        await widget.locator(".ch-dc-check").click()
        await expect(widget.locator(".ch-dc-intent")).to_be_visible(timeout=30_000)
        await expect(widget.locator(".ch-dc-retry")).to_be_visible(timeout=30_000)
        await expect(widget.locator(".ch-badge")).to_have_attribute("data-state", "failed")
        await both_widths(page, "intent-refused")

        fake.gateway.granted_intents |= INTENT_MESSAGE_CONTENT  # turned on in the portal; Try again
        await widget.locator(".ch-dc-retry").click()
        await expect(widget.locator(".ch-badge")).to_have_attribute("data-state", "connected", timeout=30_000)
        await expect(widget.locator(".ch-linked")).to_contain_text("nano")
        invite = widget.locator("a.ch-dc-invite")
        await expect(invite).to_be_visible()
        href = await invite.get_attribute("href")
        assert href is not None
        assert href.startswith("https://discord.com/oauth2/authorize?client_id=")
        await widget.locator(".ch-get-code").click()
        await expect(widget.locator(".ch-bigcode")).to_have_text(re.compile(r"^\d{4}$"))
        await expect(widget.locator(".ch-send")).to_contain_text("direct message")
        assert TOKEN not in await page.content()
        await both_widths(page, "connected")
