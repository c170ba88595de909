"""The parts of the home-user journey (tests/web/test_home_user_journey.py): a host built as ``nanoclaw serve`` builds
it, a signed-in browser tab on it, the model's answers, screenshots at both widths and the wizard driven by hand."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from playwright.async_api import expect

from nanoclaw_app.host import Host
from nanoclaw_app.settings import Settings
from tests.fakes.anthropic_server import FakeAnthropic, Hang, Text, last_user_content
from tests.fakes.telegram_api import ANN, TOKEN, FakeBotApi
from tests.web.conftest import shot, signed_in_tab

KEY = "sk-ant-api03-home-user-journey-0123456789abcdef"
AGENT = "Ada"
WIDE = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
_INCOMING = re.compile(r'<message id="\d+" from="([^"]+)" sender="([^"]*)"[^>]*>(.*?)</message>', re.DOTALL)


def answer(body: dict[str, Any]) -> Text:
    """The model: answers each message of the turn where it came from, greeting its sender and repeating it."""
    text = " ".join(b.get("text", "") for b in last_user_content(body) if b.get("type") == "text")
    found = _INCOMING.findall(text)
    if not found:
        return Text("OK")  # a side call of Claude Code (a title, a check): nothing to address
    return Text("\n".join(f'<message to="{to}">Hi {html.unescape(sender)}! You said: {html.unescape(said)}</message>'
                          for to, sender, said in found))


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Host]:
    """A host as the app builds it: it picks the secret store itself and, for ``runtime="local"``, runs agents as
    real runner subprocesses that call the model through its gateway (``LocalRuntime(gateway=host.gateway)``)."""
    host = Host(settings)
    await host.start()
    try:
        yield host
    finally:
        await host.stop()


def app_tab(browser: Any, host: Host) -> AbstractAsyncContextManager[Any]:
    """A Chromium tab signed in to ``host`` (the window signs itself in; the one-time link stands in for that)."""
    return signed_in_tab(browser, host)


async def shots(page: Any, name: str) -> None:
    """The page as it is now, on a computer (1280 px) and on a phone (390 px)."""
    await shot(page, f"journey-{name}")
    await page.set_viewport_size(PHONE)
    await shot(page, f"journey-{name}-phone")
    await page.set_viewport_size(WIDE)


async def wizard_to_first_reply(page: Any, bot_api: FakeBotApi, model: FakeAnthropic, *, branch: str,
                                passphrase: str | None = None) -> None:
    """From the first window to the first reply, never leaving the wizard: the key (and the secret store, by the same
    click; with ``passphrase`` the user declines automatic unlocking), containers, WhatsApp skipped, Telegram with the
    owner's code sent from their Telegram account, the agent's name, "Say hello" (the fake ``model`` holds its first
    answer until the waiting state is photographed)."""
    await expect(page.locator('.wz-step[data-step="1"]')).to_be_visible()
    store = page.locator("#store-new")
    await expect(store).to_contain_text("Unlock automatically on this computer")
    await expect(page.locator('input[name="store"][value="automatic"]')).to_be_checked()  # no OS keyring here
    await shots(page, f"{branch}-1-model")
    if passphrase is not None:
        await page.check('input[name="store"][value="passphrase"]')
        await page.fill("#store-passphrase", passphrase)
        await shots(page, f"{branch}-1-model-passphrase")
    await page.fill("#api-key", KEY)
    await page.click("#model-submit")

    await expect(page.locator('.wz-step[data-step="2"]')).to_be_visible()
    await expect(page.locator("#engine-next")).to_be_enabled()
    await shots(page, f"{branch}-2-containers")
    await page.click("#engine-next")

    await expect(page.locator('.wz-step[data-step="3"]')).to_be_visible()
    await shots(page, f"{branch}-3-whatsapp")
    await page.click("#whatsapp-skip")

    step = page.locator('.wz-step[data-step="4"]')
    await expect(step).to_be_visible()
    await shots(page, f"{branch}-4-telegram")
    await step.locator("#tg-token").fill(TOKEN)
    await step.locator(".ch-tg-check").click()
    await expect(page.locator("#telegram-next")).to_be_enabled()
    await step.locator(".ch-get-code").click()
    code_box = step.locator(".ch-code-box .ch-bigcode")
    await expect(code_box).to_have_text(re.compile(r"^\d{4}$"))
    await shots(page, f"{branch}-4-telegram-code")
    bot_api.push_message(await code_box.inner_text(), user=ANN)  # the owner proves it is them, from Telegram
    await expect(step.locator(".ch-paired")).to_contain_text("Paired: Ann Koch")
    await shots(page, f"{branch}-4-telegram-paired")
    await page.click("#telegram-next")

    await expect(page.locator('.wz-step[data-step="5"]')).to_be_visible()
    await page.fill("#agent-name", AGENT)
    await shots(page, f"{branch}-5-agent")
    await page.click("#agent-submit")

    await expect(page.locator('.wz-step[data-step="6"]')).to_be_visible()
    await shots(page, f"{branch}-6-test")
    model.script(Hang())  # the model thinks until the waiting state is on record
    await page.click("#test-send")
    await expect(page.locator("#test-chat .wz-bubble.waiting")).to_be_visible()
    await shots(page, f"{branch}-6-test-waiting")
    model.release()
    outcome = page.locator('.wz-step[data-step="7"]:not([hidden]), #test-failure:not([hidden])')
    await expect(outcome).to_be_visible(timeout=120_000)  # the first start of Claude Code takes a while
    await expect(page.locator("#test-failure")).to_be_hidden()
    await expect(page.locator("#done-text")).to_contain_text(f"{AGENT} answered")
    await expect(page.locator("#done-chat .wz-bubble.agent")).to_contain_text("You said:")
    await shots(page, f"{branch}-7-done")
