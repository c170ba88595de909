"""The Slack part of the Channels page in a real browser: the manifest to paste with its copy button, both tokens
checked (a refused one said in plain words), the workspace and the pairing code, then paired — at 1280 and 390 px.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from nanoclaw_app.db import agents
from nanoclaw_app.host import Host
from nanoclaw_app.secrets.store import SecretStore
from nanoclaw_app.settings import Settings
from tests.channels.slack.conftest import texts
from tests.fakes.keyring import MemoryKeyring
from tests.fakes.runtime import InProcessRuntime
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_workspace import APP_TOKEN, BOT, BOT_TOKEN, OWNER, OWNER_DM, TEAM_NAME
from tests.web.conftest import browser, screenshot_dir, signed_in_tab  # noqa: F401 - the browser fixture

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
async def web_host(slack_settings: Settings) -> AsyncIterator[Host]:
    host = Host(slack_settings, runtime=InProcessRuntime(), secrets=SecretStore(MemoryKeyring()))
    async with host:
        await agents.create(host.db, "Nano")
        yield host


async def test_setting_slack_up_on_the_channels_page(browser: Any, web_host: Host, slack: FakeSlack) -> None:  # noqa: F811
    from playwright.async_api import expect

    assert web_host.url is not None
    async with signed_in_tab(browser, web_host) as page:
        await page.goto(f"{web_host.url.rstrip('/')}/channels")
        card = page.locator("#channel-slack")
        await expect(card.locator(".ch-badge")).to_have_text("Not set up")
        await expect(card.locator("#sl-manifest")).to_have_value(pattern("socket_mode_enabled"))
        await card.scroll_into_view_if_needed()
        await card_shot(card, "slack-1-setup-1280")
        await page.set_viewport_size({"width": 390, "height": 844})
        await card_shot(card, "slack-1-setup-390")
        await page.set_viewport_size({"width": 1280, "height": 800})

        await card.locator("#sl-bot-token").fill("xoxb-1111-2222-notTheRightOne")
        await card.locator("#sl-app-token").fill(APP_TOKEN)
        await card.locator(".ch-sl-check").click()
        await expect(card.locator(".ch-token .field-error")).to_contain_text("Slack refused the bot token")
        await card.locator("#sl-bot-token").fill(BOT_TOKEN)
        await card.locator(".ch-sl-check").click()
        await expect(card.locator(".ch-linked")).to_contain_text(f"@{BOT.name} in {TEAM_NAME}")
        await expect(card.locator(".ch-badge")).to_have_text("Connected")

        await card.locator(".ch-get-code").click()
        await expect(card.locator(".ch-bigcode")).to_have_text(pattern(r"^\s*\d{4}\s*$"))
        code = (await card.locator(".ch-bigcode").text_content() or "").strip()
        await expect(card.locator(".ch-send")).to_contain_text(f"send {code} as a direct message")
        await card_shot(card, "slack-2-code-1280")
        await page.set_viewport_size({"width": 390, "height": 844})
        await card_shot(card, "slack-2-code-390")
        await page.set_viewport_size({"width": 1280, "height": 800})

        slack.push_message(OWNER_DM, OWNER, code)
        await slack.wait_for(lambda: any(t.startswith("Paired!") for t in texts(slack, OWNER_DM)))
        await expect(card.locator(".ch-paired")).to_contain_text("Paired")
        await expect(card.locator(".ch-chats")).to_contain_text("Ann")
        await card_shot(card, "slack-3-paired-1280")
        await page.set_viewport_size({"width": 390, "height": 844})
        await card_shot(card, "slack-3-paired-390")


async def card_shot(card: Any, name: str) -> None:
    """The Slack card alone, for a person to look at (the whole page holds every channel)."""
    await card.screenshot(path=str(screenshot_dir() / f"{name}.png"))


def pattern(text: str) -> Any:
    import re

    return re.compile(text)
