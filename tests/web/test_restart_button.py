"""Settings that wait for a restart come with a Restart now button; pressing it brings the page back, signed in,
with nothing waiting any more (the host restarted in the same process, as the window app does)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from nanoclaw_app.services.auth import issue_login_token
from nanoclaw_app.settings import Settings, load_settings
from nanoclaw_app.window import HostThread
from tests.web.conftest import shot


@pytest.fixture
def app_thread(settings: Settings) -> Iterator[HostThread]:
    with socket.socket() as probe:  # a fixed port, as a user's app has: the page stays at its address
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    thread = HostThread(load_settings(settings.paths, port=port, runtime="local"),
                        reload=lambda: load_settings(settings.paths, port=port, runtime="local"))
    thread.launch()
    try:
        yield thread
    finally:
        thread.stop()


async def test_restart_now_applies_the_waiting_settings_and_the_page_comes_back(browser: Any,
                                                                                app_thread: HostThread) -> None:
    from playwright.async_api import expect

    url = await asyncio.to_thread(app_thread.wait_ready)
    host = app_thread.host
    assert host is not None
    token = await asyncio.to_thread(app_thread.call, issue_login_token(host.db))
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    try:
        await page.goto(f"{url}login?token={token}")
        await page.goto(f"{url}settings")
        await page.fill("#general-form input[name=timezone]", "Asia/Tokyo")
        await page.click("#general-form button[type=submit]")
        banner = page.locator("#restart-banner")
        await expect(banner).to_contain_text("Restart NanoClaw to apply: timezone")
        button = page.locator("#restart-now")
        await expect(button).to_be_visible()
        await shot(page, "settings-restart-now")
        first_run = host.state.run

        await button.click()
        await expect(banner).to_be_hidden(timeout=60000)  # the page reloaded from the new host
        await expect(page.locator("#general-form input[name=timezone]")).to_have_value("Asia/Tokyo")
        assert page.url.endswith("/settings")  # still signed in: no login page
        assert app_thread.host is not None
        assert app_thread.host.state.run != first_run
    finally:
        await context.close()
