"""An OpenAI-compatible server that needs no key (Ollama, a local server) works with no secret store at all: no OS
keyring, no passphrase. No key means nothing to keep, so nothing asks for a store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from nanoclaw_app.host import Host
from nanoclaw_app.secrets.store import SecretStore
from nanoclaw_app.settings import Settings
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.runtime import InProcessRuntime
from tests.web.conftest import shot, sign_in

NO_STORE = "no OS keyring works here and no passphrase is set"


@pytest.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def keyless_host(web_settings: Settings) -> AsyncIterator[Host]:
    """A host whose secret store cannot be used, as on a headless machine before any passphrase exists."""
    host = Host(web_settings, runtime=InProcessRuntime(), secrets=SecretStore(None, unavailable_reason=NO_STORE))
    await host.start()
    try:
        yield host
    finally:
        await host.stop()


@pytest.fixture
async def keyless_client(keyless_host: Host) -> AsyncIterator[httpx.AsyncClient]:
    assert keyless_host.url is not None
    async with httpx.AsyncClient(base_url=keyless_host.url.rstrip("/"), timeout=30) as c:
        await sign_in(c, keyless_host)
        yield c


async def test_a_local_server_without_a_key_passes_the_model_step_with_no_secret_store(
    keyless_client: httpx.AsyncClient, keyless_host: Host, fake_openai: FakeOpenAI
) -> None:
    response = await keyless_client.post("/api/setup/model", json={
        "kind": "openai_compatible", "base_url": fake_openai.v1_url, "api_key": "", "model": "fake-model"})

    assert response.status_code == 200, response.text
    assert "fake-model" in response.json()["message"]
    assert ("GET", "/v1/models") in fake_openai.calls
    assert all("authorization" not in headers for headers in fake_openai.headers)
    assert keyless_host.settings.openai_base_url == fake_openai.v1_url
    assert keyless_host.secrets.available is False


async def test_a_key_typed_for_a_local_server_still_needs_a_store_and_says_so(
    keyless_client: httpx.AsyncClient, fake_openai: FakeOpenAI
) -> None:
    response = await keyless_client.post("/api/setup/model", json={
        "kind": "openai_compatible", "base_url": fake_openai.v1_url, "api_key": "sk-local-1234567890",
        "model": "fake-model"})

    assert response.status_code == 400
    assert response.json()["field"] == "api_key"
    assert "cannot keep your key safely" in response.json()["error"]
    assert fake_openai.calls == []


async def test_ollama_without_a_key_gets_past_the_model_step_in_the_browser(
    page: Any, base_url: str, web_host: Host, fake_openai: FakeOpenAI
) -> None:
    web_host.secrets.set_backend(None, NO_STORE)
    await page.goto(f"{base_url}/setup")
    await page.locator('input[name=kind][value="openai_compatible"]').check()
    await page.fill("#base-url", fake_openai.v1_url)
    await page.fill("#model", "fake-model")
    await shot(page, "wizard-model-keyless")
    await page.click("#model-submit")

    await expect(page.locator('.wz-step[data-step="2"]')).to_be_visible()
    assert web_host.settings.openai_base_url == fake_openai.v1_url
    assert ("GET", "/v1/models") in fake_openai.calls
