"""The Credentials page in Chromium against the real app: add, test against a fake HTTPS service, change, remove;
the value typed in never comes back, in any API answer or in the page."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from nanoclaw_app.cli import main
from nanoclaw_app.db import agents as agents_db
from nanoclaw_app.db import credentials as credentials_db
from nanoclaw_app.host import Host
from nanoclaw_app.settings import Settings, load_settings
from tests.fakes.credential_echo import CredentialEcho
from tests.web.conftest import shot

TOKEN = "ghp_web-credential-value-0123456789"


@pytest.fixture
async def echo(tmp_path: Path) -> AsyncIterator[CredentialEcho]:
    fake = CredentialEcho(tmp_path / "echo", lambda r: r.headers.get("authorization") == f"Bearer {TOKEN}")
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
def web_settings(settings: Settings, echo: CredentialEcho) -> Settings:
    # The host trusts the fake's CA the way it trusts a network's own: through the CA certificates setting.
    return load_settings(settings.paths, timezone="Europe/Berlin", port=0, runtime="local",
                         agent_ca_certificates=str(echo.ca_file))


class Answers:
    """Every /api/ answer the page received, to prove none of them carried the value."""

    def __init__(self, page: Any) -> None:
        self.bodies: list[str] = []
        self._pending: list[Any] = []
        page.on("response", lambda response: self._pending.append(response) if "/api/" in response.url
                and "/api/events" not in response.url else None)

    async def read(self) -> list[str]:
        for response in self._pending:
            self.bodies.append(await response.text())
        self._pending.clear()
        return self.bodies


async def _phone(page: Any, name: str) -> None:
    await page.set_viewport_size({"width": 390, "height": 844})
    await shot(page, f"{name}-phone")
    await page.set_viewport_size({"width": 1280, "height": 800})


async def test_add_test_change_and_remove_without_the_value_ever_coming_back(
    page: Any, base_url: str, web_host: Host, echo: CredentialEcho
) -> None:
    from playwright.async_api import expect

    await page.goto(f"{base_url}/credentials")
    answers = Answers(page)  # from here on the page never navigates, so every body stays readable
    empty = page.locator(".cred-empty")
    await expect(empty).to_contain_text("No credentials yet")
    await shot(page, "credentials-empty")
    await _phone(page, "credentials-empty")

    await empty.get_by_role("button", name="Add a credential").click()
    await page.fill("#cred-name", "Echo")
    await page.fill("#cred-host", f"127.0.0.1:{echo.port}")
    await page.fill("#cred-value", TOKEN)
    await page.check('input[name="policy"][value="ask_once"]')
    await expect(page.locator("#cred-value-hint")).to_contain_text("never shown again")
    await shot(page, "credentials-add")
    await _phone(page, "credentials-add")
    await page.click("#cred-save")

    item = page.locator(".cred-item", has_text="Echo")
    await expect(item).to_contain_text("Value saved")
    await expect(item).to_contain_text("Ask once per conversation")
    await expect(item).to_contain_text("Bearer token")
    await expect(page.locator("#cred-form-card")).to_be_hidden()
    assert await page.input_value("#cred-value") == ""

    await item.get_by_role("button", name="Test").click()
    await expect(item.locator(".cred-result")).to_have_text("Echo answered 200 OK: the credential works")
    assert echo.received[-1].headers["authorization"] == f"Bearer {TOKEN}"
    await shot(page, "credentials-list")
    await _phone(page, "credentials-list")

    await item.get_by_role("button", name="Change").click()
    assert await page.input_value("#cred-value") == ""
    assert await page.input_value("#cred-name") == "Echo"
    await expect(page.locator("#cred-value-hint")).to_contain_text("Leave empty to keep the saved value")
    await page.fill("#cred-name", "Echo work")
    await page.click("#cred-save")
    item = page.locator(".cred-item", has_text="Echo work")
    await expect(item).to_contain_text("Value saved")
    [row] = await credentials_db.list_all(web_host.db)
    assert await web_host.secrets.get(credentials_db.secret_name(row.id)) == TOKEN
    await item.get_by_role("button", name="Test").click()
    await expect(item.locator(".cred-result")).to_contain_text("the credential works")

    assert TOKEN not in await page.content()
    for body in await answers.read():
        assert TOKEN not in body
    assert len(answers.bodies) >= 5

    await item.get_by_role("button", name="Remove").click()
    await expect(item.locator(".cred-confirm")).to_contain_text("Remove Echo work?")
    await item.locator(".cred-remove-yes").click()
    await expect(page.locator(".cred-empty")).to_be_visible()
    assert await web_host.secrets.get(credentials_db.secret_name(row.id)) is None


async def test_a_refused_credential_and_an_unreachable_service_are_said_in_words(
    page: Any, base_url: str, echo: CredentialEcho
) -> None:
    from playwright.async_api import expect

    await page.goto(f"{base_url}/credentials?host=127.0.0.1:{echo.port}")
    await page.fill("#cred-name", "Old token")
    await page.fill("#cred-value", "ghp_revoked")
    await page.click("#cred-save")
    item = page.locator(".cred-item", has_text="Old token")
    await item.get_by_role("button", name="Test").click()
    await expect(item.locator(".cred-result")).to_contain_text(
        "Old token answered 401 Unauthorized: the service refused this credential")
    await echo.stop()
    await item.get_by_role("button", name="Test").click()
    await expect(item.locator(".cred-result")).to_contain_text("could not reach 127.0.0.1")


async def test_the_link_an_agent_sends_opens_the_add_form_with_the_host(page: Any, base_url: str) -> None:
    from playwright.async_api import expect

    await page.goto(f"{base_url}/credentials?host=api.github.com")
    await expect(page.locator("#cred-form-card")).to_be_visible()
    await expect(page.locator("#cred-form-title")).to_have_text("Add a credential")
    assert await page.input_value("#cred-host") == "api.github.com"
    await expect(page.locator("#cred-name")).to_be_focused()
    await shot(page, "credentials-host-link")


async def test_bad_input_is_answered_next_to_the_form(page: Any, base_url: str) -> None:
    from playwright.async_api import expect

    error = page.locator("#cred-error")
    await page.goto(f"{base_url}/credentials?host=https://api.github.com/user")
    await page.fill("#cred-name", "GitHub")
    await page.click("#cred-save")
    await expect(error).to_have_text("Paste the value: the token, key or user:password.")
    await page.fill("#cred-value", TOKEN)
    await page.click("#cred-save")
    await expect(error).to_contain_text("is not a host name: write it like api.github.com")
    await page.fill("#cred-host", "api.github.com")
    await page.select_option("#cred-kind", "header")
    await page.click("#cred-save")
    await expect(error).to_have_text("Name the header it goes in, like X-Api-Key.")
    await page.fill("#cred-field", "X-Api-Key")
    await page.fill("#cred-test-url", "https://elsewhere.example/user")
    await page.click("#cred-save")
    await expect(error).to_contain_text("The test address must be on api.github.com")
    await shot(page, "credentials-error")
    await page.fill("#cred-test-url", "")
    await page.click("#cred-save")
    await expect(page.locator(".cred-item", has_text="GitHub")).to_contain_text("Header X-Api-Key")
    assert TOKEN not in await page.content()


async def test_without_a_secret_store_the_page_says_what_to_do(page: Any, base_url: str, web_host: Host) -> None:
    from playwright.async_api import expect

    web_host.secrets.set_backend(None, "no OS keyring is available here")
    await page.goto(f"{base_url}/credentials")
    notice = page.locator("#cred-store")
    await expect(notice).to_contain_text("none is set up yet")
    await expect(notice.get_by_role("link", name="Open Settings")).to_have_attribute("href", "/settings")
    await page.click("#cred-add")
    await page.fill("#cred-name", "GitHub")
    await page.fill("#cred-host", "api.github.com")
    await page.fill("#cred-value", TOKEN)
    await page.click("#cred-save")
    await expect(page.locator("#cred-error")).to_contain_text("choose where NanoClaw keeps keys in Settings")
    await shot(page, "credentials-no-store")
    assert await credentials_db.list_all(web_host.db) == []


async def test_the_api_needs_the_csrf_header_and_never_answers_with_the_value(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    body = {"name": "GitHub", "host_pattern": "api.github.com", "value": TOKEN}
    created = await client.post("/api/credentials", json=body)
    assert created.status_code == 201, created.text
    listed = await client.get("/api/credentials")
    changed = await client.put(f"/api/credentials/{created.json()['id']}", json={**body, "value": ""})
    for response in (created, listed, changed):
        assert response.is_success
        assert TOKEN not in response.text
    assert listed.json()["credentials"][0]["secret"] == "set"
    without_csrf = await client.post("/api/credentials", json={**body, "name": "Other"},
                                     headers={"x-csrftoken": ""})
    assert without_csrf.status_code == 403
    assert (await anon.get("/api/credentials")).status_code == 401


async def test_chosen_agents_only_and_the_cli_goes_through_the_running_app(
    page: Any, base_url: str, web_host: Host, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from playwright.async_api import expect

    await agents_db.create(web_host.db, "Nano")
    await agents_db.create(web_host.db, "Helper")
    await page.goto(f"{base_url}/credentials?host=api.github.com")
    await page.fill("#cred-name", "GitHub")
    await page.fill("#cred-value", TOKEN)
    await page.locator(".cred-agent", has_text="Nano").locator("input").check()
    await expect(page.locator('input[name="agents"][value="some"]')).to_be_checked()
    await page.click("#cred-save")
    await expect(page.locator(".cred-item", has_text="GitHub")).to_contain_text("Nano")

    # A terminal's change reaches the running app (its proxy reloads on the event) and this page, live.
    monkeypatch.setattr("sys.stdin", io.StringIO("sk-vercel-from-the-terminal"))
    code = await asyncio.to_thread(main, ["credentials", "add", "Vercel", "--host", "api.vercel.com",
                                          "--agents", "Helper", "--policy", "ask"])
    assert code == 0, capsys.readouterr().err
    vercel = page.locator(".cred-item", has_text="Vercel")
    await expect(vercel).to_contain_text("Ask each time")
    await expect(vercel).to_contain_text("Helper")
    [row] = [c for c in await credentials_db.list_all(web_host.db) if c.name == "Vercel"]
    assert await web_host.secrets.get(credentials_db.secret_name(row.id)) == "sk-vercel-from-the-terminal"
    await shot(page, "credentials-two")
