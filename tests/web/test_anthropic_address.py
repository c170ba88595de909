"""The Anthropic address (a proxy, an Anthropic-compatible server) is set under Settings → Advanced or with
``nanoclaw settings set anthropic_base_url``: checked as a web address with a plain fix, and used by the model gateway
at once, without a restart."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from nanoclaw_app.cli import main
from nanoclaw_app.host import Host
from nanoclaw_app.services.model_check import ModelChoice, probe_model
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.keyring import MemoryKeyring
from tests.web.conftest import shot

KEY = "sk-ant-api03-address-test-0123456789abcdef"
CLAUDE = ModelChoice(kind="anthropic", model="claude-sonnet-4-6", base_url="")


@pytest.fixture
async def proxy() -> AsyncIterator[FakeAnthropic]:
    """Stands in for a proxy or compatible server the user points NanoClaw at."""
    fake = FakeAnthropic()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


async def _model_call(host: Host) -> str:
    """One real call through the running host's gateway, as the setup check (and an agent) makes it."""
    result = await probe_model(host.gateway, CLAUDE, host.settings.anthropic_base_url)
    return result.message


async def test_a_new_anthropic_address_is_used_at_once_without_a_restart(
    client: httpx.AsyncClient, web_host: Host, keyring_backend: MemoryKeyring, proxy: FakeAnthropic
) -> None:
    keyring_backend.set_password("nanoclaw", "anthropic_api_key", KEY)

    response = await client.put("/api/settings", json={"anthropic_base_url": proxy.url + "/"})

    assert response.status_code == 200, response.text
    assert response.json()["anthropic_base_url"] == proxy.url
    assert response.json()["restart_needed"] == []
    assert json.loads(web_host.settings.paths.settings_file.read_text())["anthropic_base_url"] == proxy.url
    assert "the key works" in await _model_call(web_host)
    assert proxy.calls == [("POST", "/v1/messages")]
    assert proxy.headers[-1]["x-api-key"] == KEY

    back = await client.put("/api/settings", json={"anthropic_base_url": ""})  # empty: Anthropic itself
    assert back.json()["anthropic_base_url"] == "https://api.anthropic.com"
    assert web_host.settings.anthropic_base_url == "https://api.anthropic.com"


@pytest.mark.parametrize(("value", "words"), [
    ("ftp://proxy.example", "must start with http:// or https://"),
    ("proxy.example:4000", "must start with http:// or https://"),
    ("https://api.anthropic.com/v1", "leave /v1 off the end"),
    ("https://me:secret@proxy.example", "leave user names, passwords"),
    ("https://proxy.example/?key=1", "leave user names, passwords, ? and #"),
    ("http://proxy.example:99999", "is not a web address"),
])
async def test_a_bad_anthropic_address_is_refused_in_plain_words_and_nothing_changes(
    client: httpx.AsyncClient, web_host: Host, value: str, words: str
) -> None:
    response = await client.put("/api/settings", json={"anthropic_base_url": value})

    assert response.status_code == 400
    assert words in response.json()["error"]
    assert "Traceback" not in response.text
    assert web_host.settings.anthropic_base_url == "https://api.anthropic.com"
    assert not web_host.settings.paths.settings_file.exists()


async def test_the_command_line_changes_the_address_of_the_running_app(
    web_host: Host, keyring_backend: MemoryKeyring, proxy: FakeAnthropic, capsys: pytest.CaptureFixture[str]
) -> None:
    keyring_backend.set_password("nanoclaw", "anthropic_api_key", KEY)

    code = await asyncio.to_thread(main, ["settings", "set", "anthropic_base_url", proxy.url])

    assert code == 0, capsys.readouterr().err
    assert "restart" not in capsys.readouterr().out.lower()
    assert web_host.settings.anthropic_base_url == proxy.url  # the running app took it, not only the file
    assert "the key works" in await _model_call(web_host)
    assert proxy.calls == [("POST", "/v1/messages")]
    refused = await asyncio.to_thread(main, ["settings", "set", "anthropic_base_url", "ftp://nope"])
    assert refused == 1
    assert "must start with http:// or https://" in capsys.readouterr().err


async def test_the_anthropic_address_is_set_under_advanced_on_the_settings_page(
    page: Any, base_url: str, web_host: Host, proxy: FakeAnthropic
) -> None:
    await page.goto(f"{base_url}/settings")
    field = page.locator("#advanced-form input[name=anthropic_base_url]")
    await expect(field).to_be_hidden()  # plumbing stays folded away until asked for
    await page.get_by_text("Advanced", exact=True).click()
    await expect(field).to_have_value("https://api.anthropic.com")
    await expect(page.get_by_text("Anthropic address (for a proxy or a compatible server)")).to_be_visible()

    await field.fill("api.example.com/v1")
    await page.click("#advanced-form button[type=submit]")
    await expect(page.locator("#nc-toasts .toast.error")).to_contain_text("must start with http:// or https://")
    await shot(page, "settings-advanced-refused")
    assert web_host.settings.anthropic_base_url == "https://api.anthropic.com"

    await field.fill(proxy.url)
    await page.click("#advanced-form button[type=submit]")
    await page.locator("#nc-toasts .toast.good", has_text="Saved").wait_for()
    assert web_host.settings.anthropic_base_url == proxy.url
    assert await page.locator("#restart-banner").is_hidden()
    await shot(page, "settings-advanced")
    await page.set_viewport_size({"width": 390, "height": 844})
    await shot(page, "settings-advanced-phone")
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
