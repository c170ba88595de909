"""The health box in the menu names NanoClaw's parts and their trouble in words, with a link to the page that fixes it;
the raw error stays in the tooltip."""

from __future__ import annotations

from typing import Any

from playwright.async_api import expect

from nanoclaw_app.host import Host
from tests.web.conftest import shot


async def test_a_broken_part_is_said_in_words_with_a_fix_link(page: Any, base_url: str, web_host: Host) -> None:
    await page.goto(f"{base_url}/chats")
    health = page.locator("#nc-health")
    await expect(health).to_have_text("● All parts running")

    broken = {"channel:whatsapp": "failed: dial tcp: lookup web.whatsapp.com: no network",
              "containers": "unavailable: cannot connect to Podman: connection refused"}
    web_host.state.components.update(broken)
    web_host.events.publish("health", components=broken)  # what the host publishes when a part breaks
    whatsapp = health.locator("div").filter(has_text="WhatsApp")
    await expect(whatsapp).to_have_text("● WhatsApp: no network connection Fix")
    await expect(whatsapp).to_have_attribute("title", "dial tcp: lookup web.whatsapp.com: no network")
    assert await whatsapp.get_by_role("link", name="Fix").get_attribute("href") == "/channels"
    containers = health.locator("div").filter(has_text="Agent containers")
    await expect(containers).to_have_text("● Agent containers: not available Fix")
    assert await containers.get_by_role("link", name="Fix").get_attribute("href") == "/setup"
    await expect(health).not_to_contain_text("channel:")
    await expect(health).not_to_contain_text("failed:")
    await shot(page, "health-words")
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.locator("#nc-health-dot").click()
    await expect(health).to_contain_text("WhatsApp: no network connection")
    await shot(page, "health-words-phone")
