"""Secrets without an OS keyring, in the browser: the wizard's first step makes the encrypted store by the same click
that saves the key (unlocking automatically by default), and a locked store is unlocked from a banner on any page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from nanoclaw_app.host import Host
from nanoclaw_app.secrets import machine_key
from nanoclaw_app.secrets.encrypted_file import EncryptedFileKeyring, secrets_file
from nanoclaw_app.settings import Settings, load_settings
from tests.fakes.anthropic_server import FakeAnthropic, Text
from tests.web.conftest import shot

GOOD_KEY = "sk-ant-api03-secrets-page-good-key-0123456789"
PASSPHRASE = "correct horse battery"
NO_KEYRING = "no OS keyring is available here (keyring.backends.fail.Keyring)"


@pytest.fixture
async def fake_anthropic() -> AsyncIterator[FakeAnthropic]:
    fake = FakeAnthropic(responder=lambda body: Text("Hi"))
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
def web_settings(settings: Settings, fake_anthropic: FakeAnthropic) -> Settings:
    return load_settings(settings.paths, timezone="Europe/Berlin", port=0, runtime="local",
                         anthropic_base_url=fake_anthropic.url)


async def test_step_one_keeps_the_key_in_a_store_this_computer_unlocks_with_no_extra_field(
    page: Any, base_url: str, web_host: Host
) -> None:
    from playwright.async_api import expect

    web_host.secrets.set_backend(None, NO_KEYRING)
    await page.goto(f"{base_url}/setup")
    store = page.locator("#store-new")
    await expect(store).to_be_visible()
    await expect(store).to_contain_text("Unlock automatically on this computer")
    await expect(store).to_contain_text("Anyone who can sign in to this computer as you")
    await expect(page.locator('input[name="store"][value="automatic"]')).to_be_checked()
    await expect(page.locator("#store-passphrase")).to_be_hidden()
    await shot(page, "wizard-1-store")
    await page.set_viewport_size({"width": 390, "height": 844})
    await shot(page, "wizard-1-store-phone")
    await page.set_viewport_size({"width": 1280, "height": 800})

    await page.fill("#api-key", GOOD_KEY)
    await page.click("#model-submit")
    await expect(page.locator('.wz-step[data-step="2"]')).to_be_visible()
    assert web_host.secrets.available
    assert await web_host.secrets.get("anthropic_api_key") == GOOD_KEY
    assert machine_key.method(web_host.settings.paths) in ("systemd-creds", "key file")


async def test_step_one_with_a_passphrase_asks_for_one_long_enough(page: Any, base_url: str, web_host: Host) -> None:
    from playwright.async_api import expect

    web_host.secrets.set_backend(None, NO_KEYRING)
    await page.goto(f"{base_url}/setup")
    await page.check('input[name="store"][value="passphrase"]')
    await expect(page.locator("#store-passphrase")).to_be_visible()
    await page.fill("#store-passphrase", "short")
    await page.fill("#api-key", GOOD_KEY)
    await page.click("#model-submit")
    await expect(page.locator('[data-error-for="passphrase"]')).to_contain_text("at least 10 characters")
    assert not secrets_file(web_host.settings.paths).exists()  # nothing made from a refused passphrase
    await page.fill("#store-passphrase", PASSPHRASE)
    await page.click("#model-submit")
    await expect(page.locator('.wz-step[data-step="2"]')).to_be_visible()
    assert machine_key.method(web_host.settings.paths) is None  # asked at each start, as chosen
    assert EncryptedFileKeyring.unlock(secrets_file(web_host.settings.paths), PASSPHRASE).get_password(
        "nanoclaw", "anthropic_api_key") == GOOD_KEY


async def test_a_locked_store_is_unlocked_from_the_banner_on_any_page(page: Any, base_url: str,
                                                                     web_host: Host) -> None:
    from playwright.async_api import expect

    paths = web_host.settings.paths
    EncryptedFileKeyring.create(secrets_file(paths), PASSPHRASE, n=2**14)
    web_host.secrets.set_backend(None, "the encrypted secret store needs its passphrase: unlock it in the app")
    await page.goto(f"{base_url}/settings")
    banner = page.locator("#nc-locked")
    await expect(banner).to_be_visible()
    await expect(banner).to_contain_text("its saved keys are locked")
    await shot(page, "banner-locked")
    await page.set_viewport_size({"width": 390, "height": 844})
    await shot(page, "banner-locked-phone")
    await page.set_viewport_size({"width": 1280, "height": 800})

    await page.fill("#nc-locked-passphrase", "not the passphrase")
    await page.click("#nc-locked button[type=submit]")
    await expect(page.locator("#nc-locked-error")).to_contain_text("wrong passphrase")
    await page.fill("#nc-locked-passphrase", PASSPHRASE)
    await page.check("#nc-locked-automatic")
    await page.click("#nc-locked button[type=submit]")
    await expect(banner).to_be_hidden()
    await expect(page.locator("#nc-toasts")).to_contain_text("Unlocked")
    assert web_host.secrets.available
    assert machine_key.recall(paths) == PASSPHRASE  # the next start unlocks by itself
