"""A home user on a computer with no OS keyring, never at a terminal (issue 15, "Show it"): from the first window to
the first reply without leaving the wizard, then a reboot after which a Telegram message is answered with nothing
typed; or, when they chose a passphrase instead of automatic unlocking, the app shows that the keys are locked
(Telegram's own token is among them, so Telegram waits too), they unlock from the app's banner, and the messages sent
meanwhile are answered.

Everything is real but what lives outside the machine: the app as ``nanoclaw serve`` builds it (runtime ``local``:
agents are runner subprocesses running Claude Code against the model gateway, which adds the key from the secret
store), the fake Anthropic server and the fake Telegram Bot API on 127.0.0.1. A reboot is the host stopped and a new
one started on the same folders. Screenshots of every state, at 1280 and 390 px, are ``journey-*.png``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import keyring
import pytest
from keyring.backends.fail import Keyring as FailKeyring
from playwright.async_api import expect

from nanoclaw_app.secrets import machine_key
from nanoclaw_app.settings import Settings, load_settings
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.telegram_api import ANN, FakeBotApi
from tests.web.home_user import KEY, answer, app_tab, running, shots, wizard_to_first_reply

pytestmark = pytest.mark.slow

PASSPHRASE = "correct horse battery"
ANSWER_SECONDS = 120.0
"""An upper bound only: an answer starts a runner and Claude Code on a machine shared with CI."""


@pytest.fixture(autouse=True)
def no_os_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    """A computer without an OS keyring (headless, root, many Linux desktops); keyring's own pick is never used, so
    a test keyring imported elsewhere cannot be picked either."""
    monkeypatch.setattr(keyring, "get_keyring", FailKeyring)


@pytest.fixture
async def fake_anthropic() -> AsyncIterator[FakeAnthropic]:
    fake = FakeAnthropic(responder=answer)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def bot_api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as fake:
        yield fake


@pytest.fixture
def home_settings(settings: Settings, fake_anthropic: FakeAnthropic, bot_api: FakeBotApi) -> Settings:
    return load_settings(settings.paths, timezone="Europe/Berlin", port=0, sweep_interval_seconds=0.2,
                         retry_base_seconds=0.05, fallback_poll_seconds=0.2, runtime="local",
                         anthropic_base_url=fake_anthropic.url, telegram_api_base_url=bot_api.base_url)


def owner_chat_since(bot_api: FakeBotApi, start: int) -> Callable[[], list[str]]:
    """What the owner sees in their Telegram chat with the bot from message ``start`` on."""
    return lambda: bot_api.texts(ANN.id)[start:]


async def test_first_window_to_first_reply_then_after_a_reboot_telegram_is_answered_with_nothing_typed(
    browser: Any, home_settings: Settings, bot_api: FakeBotApi, fake_anthropic: FakeAnthropic
) -> None:
    async with running(home_settings) as host, app_tab(browser, host) as page:
        assert page.url.endswith("/setup")  # the first window opens the wizard
        await wizard_to_first_reply(page, bot_api, fake_anthropic, branch="automatic")
        assert machine_key.method(home_settings.paths) in ("systemd-creds", "key file")
        await bot_api.wait_for(lambda: any("Paired" in text for text in bot_api.texts(ANN.id)))
    seen = len(bot_api.texts(ANN.id))
    calls = len(fake_anthropic.requests)

    async with running(home_settings) as host:  # the reboot
        assert host.secrets.available
        bot_api.push_message("good morning", user=ANN)
        since = owner_chat_since(bot_api, seen)
        await bot_api.wait_for(lambda: any("You said: good morning" in text for text in since()),
                               timeout=ANSWER_SECONDS)
        assert not any("locked" in text or "Error" in text for text in since())
        assert [h.get("x-api-key") for h in fake_anthropic.headers[calls:]] == \
            [KEY] * (len(fake_anthropic.requests) - calls)  # the stored key, read from the store by itself
        async with app_tab(browser, host) as page:
            await expect(page.locator("#nc-locked")).to_be_hidden()
            await expect(page.locator("#main")).to_be_visible()
            await shots(page, "automatic-8-after-reboot")


async def test_with_a_passphrase_telegram_waits_for_the_unlock_in_the_app_and_nothing_is_lost(
    browser: Any, home_settings: Settings, bot_api: FakeBotApi, fake_anthropic: FakeAnthropic
) -> None:
    async with running(home_settings) as host, app_tab(browser, host) as page:
        await wizard_to_first_reply(page, bot_api, fake_anthropic, branch="passphrase",
                                    passphrase=PASSPHRASE)
        assert machine_key.method(home_settings.paths) is None  # asked at each start, as chosen
        await bot_api.wait_for(lambda: any("Paired" in text for text in bot_api.texts(ANN.id)))
    since = owner_chat_since(bot_api, len(bot_api.texts(ANN.id)))

    async with running(home_settings) as host, app_tab(browser, host) as page:  # the reboot
        assert not host.secrets.available
        banner = page.locator("#nc-locked")
        await expect(banner).to_be_visible()
        await expect(banner).to_contain_text("its saved keys are locked")
        await shots(page, "passphrase-8-locked")

        # Telegram's bot token is in the locked store too, so Telegram waits for the unlock (the app says so); what
        # the owner sends meanwhile waits on Telegram's side. No error text ever reaches the chat.
        await expect(page.locator("#nc-health")).to_contain_text("Telegram")
        bot_api.push_message("are you there?", user=ANN)
        bot_api.push_message("hello?", user=ANN)
        await asyncio.sleep(1.0)
        assert since() == []

        await page.fill("#nc-locked-passphrase", PASSPHRASE)
        await page.click("#nc-locked button[type=submit]")
        await expect(banner).to_be_hidden()
        await expect(page.locator("#nc-toasts")).to_contain_text("Unlocked")
        await shots(page, "passphrase-9-unlocked")
        await bot_api.wait_for(lambda: any("You said: hello?" in text for text in since()), timeout=ANSWER_SECONDS)
        answers = since()
        assert [text for text in answers if "You said: are you there?" in text]  # the first waiting message too
        assert not any("Error" in text for text in answers)
