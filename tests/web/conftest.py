"""The real app on 127.0.0.1: a started host (in-process test runtime, in-memory keyring), a signed-in httpx client
and a signed-in Chromium page (Playwright driving Debian's /usr/bin/chromium). Screenshots go to
``test-artifacts/screenshots/`` (or ``$NANOCLAW_SCREENSHOTS``) so a person can look at every page.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from nanoclaw_app.host import Host
from nanoclaw_app.secrets.store import SecretStore
from nanoclaw_app.services.auth import issue_login_token
from nanoclaw_app.settings import Settings, load_settings
from tests.fakes.keyring import MemoryKeyring
from tests.fakes.runtime import InProcessRuntime

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
REPO = Path(__file__).resolve().parents[2]


def screenshot_dir() -> Path:
    folder = Path(os.environ.get("NANOCLAW_SCREENSHOTS") or REPO / "test-artifacts" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def web_settings(settings: Settings) -> Settings:
    return load_settings(settings.paths, timezone="Europe/Berlin", port=0, sweep_interval_seconds=0.2,
                         retry_base_seconds=0.05, fallback_poll_seconds=0.2, runtime="local")


@pytest.fixture
def keyring_backend() -> MemoryKeyring:
    return MemoryKeyring()


@pytest.fixture
async def web_host(web_settings: Settings, keyring_backend: MemoryKeyring) -> AsyncIterator[Host]:
    host = Host(web_settings, runtime=InProcessRuntime(), secrets=SecretStore(keyring_backend))
    await host.start()
    try:
        yield host
    finally:
        await host.stop()


@pytest.fixture
def base_url(web_host: Host) -> str:
    assert web_host.url is not None
    return web_host.url.rstrip("/")


async def sign_in(client: httpx.AsyncClient, host: Host) -> None:
    """Use a one-time login link, then pick up the CSRF cookie and send it back as the header on writes."""
    token = await issue_login_token(host.db)
    response = await client.get(f"/login?token={token}", follow_redirects=False)
    assert response.status_code in (302, 303, 307), response.text
    await client.get("/health")  # any GET sets the CSRF cookie
    csrf = client.cookies.get("nanoclaw_csrf")
    assert csrf, "the CSRF cookie was not set"
    client.headers["x-csrftoken"] = csrf


@pytest.fixture
async def client(web_host: Host, base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """Signed in, CSRF header set: behaves like the app's own pages."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as c:
        await sign_in(c, web_host)
        yield c


@pytest.fixture
async def anon(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """No session at all."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as c:
        yield c


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield b
        finally:
            await b.close()


@asynccontextmanager
async def signed_in_tab(browser: Any, host: Host) -> AsyncIterator[Any]:
    """A Chromium tab (1280×800) signed in to ``host`` with a one-time link; console errors fail the test."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    tab = await context.new_page()
    errors: list[str] = []
    tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    assert host.url is not None
    token = await issue_login_token(host.db)
    await tab.goto(f"{host.url.rstrip('/')}/login?token={token}")
    try:
        yield tab
    finally:
        await context.close()
    real = [e for e in errors if "Failed to load resource" not in e and "net::ERR" not in e]
    assert not real, f"JavaScript errors on the page: {real}"


@pytest.fixture
async def page(browser: Any, web_host: Host) -> AsyncIterator[Any]:
    """A signed-in Chromium tab (1280×800); console errors fail the test."""
    async with signed_in_tab(browser, web_host) as tab:
        yield tab


async def shot(page: Any, name: str) -> Path:
    """Save a full-page screenshot for a person to look at."""
    path = screenshot_dir() / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
