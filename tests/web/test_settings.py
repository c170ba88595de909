"""The settings page and API: secrets by name (values never come back), validated settings, LAN access, the
encrypted secret store where no OS keyring works."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import expect

from nanoclaw_app.channels.whatsapp.settings import WhatsAppSettings
from nanoclaw_app.host import Host
from tests.fakes.certs import ca_pem
from tests.fakes.keyring import MemoryKeyring
from tests.web.conftest import shot

VALUE = "sk-ant-api03-do-not-show-me-0123456789"
PASSPHRASE = "a long enough passphrase"
PEM = ca_pem().decode()
"""A real CA certificate: the setting checks that the file's certificates parse."""


class Responses:
    """Every response body of a test, so it can be searched for a secret afterwards."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.bodies: list[str] = []

    async def __call__(self, method: str, url: str, **kwargs: object) -> httpx.Response:
        response = await self.client.request(method, url, **kwargs)  # type: ignore[arg-type]
        self.bodies.append(response.text)
        return response


async def test_secrets_are_listed_by_name_and_no_response_ever_holds_the_value(
    client: httpx.AsyncClient, keyring_backend: MemoryKeyring
) -> None:
    call = Responses(client)
    stored = await call("PUT", "/api/secrets/anthropic_api_key", json={"value": f"  {VALUE}\n", "label": "Claude"})
    assert stored.status_code == 200, stored.text
    assert stored.json() == {"name": "anthropic_api_key", "label": "Claude", "is_set": True,
                             "updated_at": stored.json()["updated_at"]}
    assert keyring_backend.values[("nanoclaw", "anthropic_api_key")] == VALUE  # pasted whitespace is trimmed

    listed = {s["name"]: s for s in (await call("GET", "/api/secrets")).json()}
    assert listed["anthropic_api_key"]["is_set"] is True
    assert listed["openai_api_key"]["is_set"] is False  # the model keys are offered before they are set
    for method, url in (("GET", "/api/secrets/status"), ("GET", "/api/settings"), ("GET", "/settings"),
                        ("GET", "/schema/openapi.json"), ("GET", "/health")):
        assert (await call(method, url)).status_code == 200
    assert all(VALUE not in body for body in call.bodies)
    assert all("do-not-show-me" not in body for body in call.bodies)


async def test_a_deleted_secret_shows_as_not_set_and_unknown_names_are_refused(
    client: httpx.AsyncClient, keyring_backend: MemoryKeyring
) -> None:
    await client.put("/api/secrets/telegram_bot_token", json={"value": "123:abc"})
    deleted = await client.delete("/api/secrets/telegram_bot_token")
    assert deleted.status_code == 200
    names = [s["name"] for s in (await client.get("/api/secrets")).json()]
    assert "telegram_bot_token" not in names
    assert ("nanoclaw", "telegram_bot_token") not in keyring_backend.values

    missing = await client.delete("/api/secrets/never_stored")
    assert missing.status_code == 404
    assert "no secret named" in missing.json()["error"]
    bad_name = await client.put("/api/secrets/Bad%20Name", json={"value": "x"})
    assert bad_name.status_code == 400
    assert "a-z, 0-9" in bad_name.json()["error"]
    empty = await client.put("/api/secrets/some_key", json={"value": "   "})
    assert empty.status_code == 400
    assert "empty" in empty.json()["error"]


async def test_settings_are_validated_with_messages_that_say_the_fix(client: httpx.AsyncClient,
                                                                     tmp_path: Path) -> None:
    cases = {
        "timezone": ("Mars/Olympus", "IANA name"),
        "daily_spend_cap_usd": (-1, "0 (no cap)"),
        "port": (70000, "1 to 65535"),
        "agent_base_image": ("not an image!", "image reference"),
        "agent_ca_certificates": (str(tmp_path / "missing.pem"), "no file at"),
        "whatsapp_sends_per_minute": (0, "from 1 to 120"),
        "telegram_api_base_url": ("ftp://bots", "web address"),
    }
    for name, (value, fix) in cases.items():
        channel = name.startswith(("whatsapp_", "telegram_"))  # a channel's own setting
        response = await client.put("/api/settings", json={"channel_settings": {name: value}} if channel
                                    else {name: value})
        assert response.status_code == 400, name
        assert fix in response.json()["error"], response.json()
    not_pem = tmp_path / "notes.txt"
    not_pem.write_text("hello")
    response = await client.put("/api/settings", json={"agent_ca_certificates": str(not_pem)})
    assert response.status_code == 400
    assert "no PEM certificate" in response.json()["error"]
    assert (await client.get("/api/settings")).json()["restart_needed"] == []


async def test_the_spend_cap_applies_at_once_and_the_timezone_after_a_restart(
    client: httpx.AsyncClient, web_host: Host, tmp_path: Path
) -> None:
    ca = tmp_path / "company-ca.pem"
    ca.write_text(PEM)
    response = await client.put("/api/settings", json={"daily_spend_cap_usd": 2.5, "timezone": "Asia/Tokyo",
                                                       "agent_ca_certificates": str(ca)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["daily_spend_cap_usd"] == 2.5
    assert body["restart_needed"] == ["timezone"]  # the CA file applies at once: the next image build uses it
    assert web_host.settings.daily_spend_cap_usd == 2.5  # swapped into the running host
    assert '"daily_spend_cap_usd": 2.5' in web_host.settings.paths.settings_file.read_text()

    back = await client.put("/api/settings", json={"timezone": "Europe/Berlin", "agent_ca_certificates": ""})
    assert back.json()["restart_needed"] == []  # back to what the running host started with
    assert (await client.get("/api/settings")).json()["timezone"] == "Europe/Berlin"


async def test_lan_access_needs_a_password_and_turning_it_off_signs_out_lan_devices(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, web_host: Host
) -> None:
    refused = await client.post("/api/settings/lan", json={"enabled": True})
    assert refused.status_code == 400
    assert "needs a password" in refused.json()["error"]
    short = await client.post("/api/settings/lan", json={"enabled": True, "password": "short"})
    assert short.status_code == 400
    assert "at least 10" in short.json()["error"]

    on = await client.post("/api/settings/lan", json={"enabled": True, "password": "correct horse battery"})
    assert on.status_code == 200, on.text
    assert on.json()["lan_access"] is True
    assert on.json()["host"] == "0.0.0.0"
    assert on.json()["lan_password_set"] is True
    assert on.json()["restart_needed"] == ["host", "lan_access"]
    assert "correct horse battery" not in on.text

    await anon.get("/health")
    headers = {"x-csrftoken": anon.cookies["nanoclaw_csrf"]}
    assert (await anon.post("/api/login", json={"password": "correct horse battery"}, headers=headers)).is_success
    assert (await anon.get("/api/settings")).status_code == 200

    off = await client.post("/api/settings/lan", json={"enabled": False})
    assert off.json()["lan_access"] is False
    assert off.json()["host"] == "127.0.0.1"
    assert off.json()["restart_needed"] == []
    assert (await anon.get("/api/settings")).status_code == 401  # the LAN device is signed out
    assert (await client.get("/api/settings")).status_code == 200  # this window is not


async def test_listening_beyond_this_computer_needs_lan_access_first(client: httpx.AsyncClient) -> None:
    response = await client.put("/api/settings", json={"port": 9123})
    assert response.json()["restart_needed"] == ["port"]
    lan_via_put = await client.put("/api/settings", json={"lan_access": True})
    assert lan_via_put.status_code == 200  # not a field of this endpoint: ignored, nothing turned on
    assert lan_via_put.json()["lan_access"] is False


async def test_without_an_os_keyring_a_passphrase_creates_an_encrypted_store_that_unlocks_after_a_restart(
    client: httpx.AsyncClient, web_host: Host
) -> None:
    call = Responses(client)
    web_host.secrets.set_backend(None, "no OS keyring is available here; set a passphrase in Settings")
    status = (await call("GET", "/api/secrets/status")).json()
    assert status["kind"] == "none"
    assert status["needs_passphrase_setup"] is True
    refused = await call("PUT", "/api/secrets/anthropic_api_key", json={"value": VALUE})
    assert refused.status_code == 400
    assert "set a passphrase in Settings" in refused.json()["error"]
    assert (await call("POST", "/api/secrets/passphrase", json={"passphrase": "short"})).status_code == 400

    created = await call("POST", "/api/secrets/passphrase", json={"passphrase": PASSPHRASE})
    assert created.status_code == 200, created.text
    assert created.json()["kind"] == "encrypted_file"
    assert web_host.state.components["secrets"] == "ok"
    assert (await call("PUT", "/api/secrets/anthropic_api_key", json={"value": VALUE})).status_code == 200

    web_host.secrets.set_backend(None, "the encrypted secret store is locked: unlock it in Settings")  # a restart
    locked = (await call("GET", "/api/secrets/status")).json()
    assert locked["locked"] is True
    listed = {s["name"]: s for s in (await call("GET", "/api/secrets")).json()}
    assert listed["anthropic_api_key"]["is_set"] is None
    wrong = await call("POST", "/api/secrets/unlock", json={"passphrase": "not the passphrase"})
    assert wrong.status_code == 400
    assert "wrong passphrase" in wrong.json()["error"]
    unlocked = await call("POST", "/api/secrets/unlock", json={"passphrase": PASSPHRASE})
    assert unlocked.json()["kind"] == "encrypted_file"
    assert await web_host.secrets.get("anthropic_api_key") == VALUE
    assert all(VALUE not in body and PASSPHRASE not in body for body in call.bodies)


async def test_a_passphrase_is_refused_while_the_os_keyring_works(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/secrets/passphrase", json={"passphrase": PASSPHRASE})
    assert response.status_code == 400
    assert "OS keyring" in response.json()["error"]


async def test_setting_a_secret_and_the_spend_cap_on_the_page(page: Any, base_url: str, web_host: Host,
                                                              keyring_backend: MemoryKeyring) -> None:
    await page.goto(f"{base_url}/settings")
    row = page.locator('tr[data-secret="anthropic_api_key"]')
    await expect(row.locator("td").first).to_have_text(re.compile(r"^Anthropic API key \(Claude\)"))
    await expect(row.get_by_text("anthropic_api_key")).to_be_hidden()  # the stored name is plumbing
    await expect(page.locator("#secret-form")).to_be_hidden()  # storing by name waits under Advanced
    await row.get_by_role("button", name="Set").click()
    await row.get_by_label("New value for Anthropic API key (Claude)").fill(VALUE)
    await row.get_by_role("button", name="Save").click()
    await row.locator(".badge.good").wait_for()
    await expect(page.get_by_text("Anthropic API key (Claude) saved.")).to_be_visible()
    assert keyring_backend.values[("nanoclaw", "anthropic_api_key")] == VALUE
    await page.set_viewport_size({"width": 390, "height": 844})
    await shot(page, "settings-keys-phone")
    await page.set_viewport_size({"width": 1280, "height": 800})

    await page.get_by_text("Advanced: names for the command line").click()
    await expect(row.get_by_text("name: anthropic_api_key")).to_be_visible()
    await page.fill("#secret-form input[name=name]", "github_token")
    await page.fill("#secret-form input[name=value]", "gh-secret-value")
    await page.click("#secret-form button[type=submit]")
    await expect(page.locator('tr[data-secret="github_token"] td').first).to_contain_text("Github token")
    assert await page.locator("#secret-form input[name=value]").input_value() == ""
    await shot(page, "settings-keys")

    await page.fill("#general-form input[name=daily_spend_cap_usd]", "3.75")
    await page.fill("#general-form input[name=timezone]", "America/New_York")
    await page.click("#general-form button[type=submit]")
    await page.locator("#restart-banner").wait_for()
    assert "timezone" in await page.locator("#restart-banner").inner_text()
    assert web_host.settings.daily_spend_cap_usd == 3.75
    assert VALUE not in await page.content()
    assert await page.get_by_role("link", name="Run setup again").get_attribute("href") == "/setup"
    await shot(page, "settings")


async def test_unlocking_the_store_on_the_page(page: Any, base_url: str, web_host: Host) -> None:
    web_host.secrets.set_backend(None, "no OS keyring is available here; set a passphrase in Settings")
    await page.goto(f"{base_url}/settings")
    await page.locator("#create-form").wait_for()
    await page.fill("#create-form input[name=passphrase]", PASSPHRASE)
    await page.fill("#create-form input[name=again]", PASSPHRASE)
    await page.click("#create-form button[type=submit]")
    await page.locator("#create-form").wait_for(state="hidden")
    assert web_host.secrets.backend_kind == "encrypted_file"

    web_host.secrets.set_backend(None, "the encrypted secret store is locked: unlock it in Settings")
    await page.reload()
    await page.locator("#unlock-form").wait_for()
    await shot(page, "settings-locked")
    await page.fill("#unlock-form input[name=passphrase]", PASSPHRASE)
    await page.click("#unlock-form button[type=submit]")
    await page.locator("#unlock-form").wait_for(state="hidden")
    assert web_host.secrets.available


async def test_settings_changed_elsewhere_show_up_on_an_open_page(page: Any, base_url: str,
                                                                  client: httpx.AsyncClient) -> None:
    await page.goto(f"{base_url}/settings")
    await expect(page.locator("#general-form input[name=timezone]")).to_have_value("Europe/Berlin")
    await page.locator("#nc-health.good").wait_for()  # the event stream said hello: the page is subscribed
    await client.put("/api/settings", json={"daily_spend_cap_usd": 9})
    await expect(page.locator("#general-form input[name=daily_spend_cap_usd]")).to_have_value("9")


async def test_whatsapp_guardrails_are_set_on_the_page_and_apply_at_once(page: Any, base_url: str,
                                                                         web_host: Host) -> None:
    assert web_host.settings.channel(WhatsAppSettings).reply_only is True
    await page.goto(f"{base_url}/settings")
    box = page.locator("#whatsapp-settings-form input[name=whatsapp_reply_only]")
    await expect(box).to_be_checked()
    await box.uncheck()
    await page.fill("#whatsapp-settings-form input[name=whatsapp_sends_per_minute]", "8")
    await page.click("#whatsapp-settings-form button[type=submit]")
    await page.locator("#nc-toasts .toast.good").first.wait_for()
    assert web_host.settings.channel(WhatsAppSettings).reply_only is False
    assert web_host.settings.channel(WhatsAppSettings).sends_per_minute == 8
    assert (await page.locator("#restart-banner").is_hidden())
    await page.reload()
    await expect(page.locator("#whatsapp-settings-form input[name=whatsapp_reply_only]")).not_to_be_checked()
    await expect(page.locator("#whatsapp-settings-form input[name=whatsapp_sends_per_minute]")).to_have_value("8")
