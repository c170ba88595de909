"""A CSRF cookie another NanoClaw left in the browser (same 127.0.0.1, another port or home) is replaced, not fatal.

Browsers keep cookies per host name, not per port: every install opened on 127.0.0.1 shares one ``nanoclaw_csrf``.
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx
from litestar.middleware.csrf import generate_csrf_token

from nanoclaw_app.host import Host
from nanoclaw_app.services.auth import issue_login_token
from tests.web.conftest import shot


def other_installs_token() -> str:
    """A well-formed CSRF token signed with another install's secret."""
    return generate_csrf_token(secrets.token_hex(32))


async def test_a_browser_holding_another_installs_csrf_cookie_can_save_a_setting(
    browser: Any, web_host: Host, base_url: str
) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        await context.add_cookies([{"name": "nanoclaw_csrf", "value": other_installs_token(), "url": base_url}])
        tab = await context.new_page()
        await tab.goto(f"{base_url}/login?token={await issue_login_token(web_host.db)}")
        await tab.goto(f"{base_url}/settings")
        await tab.fill("#general-form input[name=daily_spend_cap_usd]", "4.5")
        await tab.click("#general-form button[type=submit]")
        toast = tab.locator("#nc-toasts .toast").first  # before the fix: "the page is out of date (security token)…"
        await toast.wait_for()
        assert "Saved" in await toast.inner_text()
        assert web_host.settings.daily_spend_cap_usd == 4.5
        await shot(tab, "settings-saved-after-foreign-csrf-cookie")
    finally:
        await context.close()


async def test_a_save_refused_on_a_cookie_another_install_took_over_works_the_next_time(
    client: httpx.AsyncClient,
) -> None:
    """A page stays open while another install's page takes the shared cookie: one refusal, then saves work."""
    foreign = other_installs_token()
    client.cookies.set("nanoclaw_csrf", foreign, domain="127.0.0.1", path="/")
    client.headers["x-csrftoken"] = foreign  # what the open page's script reads from the cookie now
    refused = await client.put("/api/settings", json={"daily_spend_cap_usd": 7})
    assert refused.status_code == 403
    assert "reload" in refused.json()["error"]

    fresh = client.cookies.get("nanoclaw_csrf")
    assert fresh
    assert fresh != foreign
    client.headers["x-csrftoken"] = fresh
    saved = await client.put("/api/settings", json={"daily_spend_cap_usd": 7})
    assert saved.status_code == 200, saved.text
    assert saved.json()["daily_spend_cap_usd"] == 7


async def test_the_sign_in_page_replaces_another_installs_csrf_cookie(anon: httpx.AsyncClient) -> None:
    """The password form on the sign-in page posts with the cookie's token, so that page must bring a good one."""
    foreign = other_installs_token()
    anon.cookies.set("nanoclaw_csrf", foreign, domain="127.0.0.1", path="/")
    page = await anon.get("/", headers={"accept": "text/html"})
    assert page.status_code == 401
    fresh = anon.cookies.get("nanoclaw_csrf")
    assert fresh
    assert fresh != foreign
    attempt = await anon.post("/api/login", json={"password": "not the password"}, headers={"x-csrftoken": fresh})
    assert attempt.status_code == 401, attempt.text  # past the CSRF check: refused only for the password


async def test_this_installs_own_csrf_cookie_is_kept(client: httpx.AsyncClient) -> None:
    mine = client.cookies.get("nanoclaw_csrf")
    await client.get("/settings", headers={"accept": "text/html"})
    assert client.cookies.get("nanoclaw_csrf") == mine
    assert (await client.put("/api/settings", json={"daily_spend_cap_usd": 3})).status_code == 200
