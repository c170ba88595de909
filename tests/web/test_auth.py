"""Who gets in: the session cookie from a one-time link or the LAN password; CSRF on writes; loopback Host only."""

from __future__ import annotations

import httpx

from nanoclaw_app.host import Host
from nanoclaw_app.services.auth import issue_login_token
from tests.web.conftest import shot


async def test_without_a_session_the_api_says_401_and_pages_show_the_sign_in(anon: httpx.AsyncClient) -> None:
    api = await anon.post("/api/logout")
    assert api.status_code in (401, 403)
    events = await anon.get("/api/events")
    assert events.status_code == 401
    assert "nanoclaw open" in events.json()["error"]
    page = await anon.get("/", headers={"accept": "text/html"})
    assert page.status_code == 401
    assert "nanoclaw open" in page.text
    schema = await anon.get("/schema/openapi.json")
    assert schema.status_code == 401


async def test_health_needs_no_session(anon: httpx.AsyncClient) -> None:
    response = await anon.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_a_login_link_works_once(web_host: Host, anon: httpx.AsyncClient) -> None:
    token = await issue_login_token(web_host.db)
    first = await anon.get(f"/login?token={token}", follow_redirects=False)
    assert first.status_code in (302, 303)
    assert "nanoclaw_session" in first.cookies
    assert (await anon.get("/schema/openapi.json")).status_code == 200

    async with httpx.AsyncClient(base_url=str(anon.base_url)) as other:
        again = await other.get(f"/login?token={token}", follow_redirects=False)
        assert again.status_code == 401
        assert "already been used" in again.text
        assert (await other.get("/schema/openapi.json")).status_code == 401


async def test_a_write_without_the_csrf_header_is_refused_with_a_reason(
    web_host: Host, client: httpx.AsyncClient
) -> None:
    header = client.headers.pop("x-csrftoken")
    refused = await client.post("/api/logout")
    assert refused.status_code == 403
    assert "reload" in refused.json()["error"]
    client.headers["x-csrftoken"] = header
    assert (await client.post("/api/logout")).status_code == 200
    assert (await client.get("/schema/openapi.json")).status_code == 401  # signed out


async def test_another_host_name_is_refused_even_with_a_session(client: httpx.AsyncClient) -> None:
    response = await client.get("/schema/openapi.json", headers={"host": "evil.example:8765"})
    assert response.status_code == 400
    assert (await client.get("/schema/openapi.json")).status_code == 200


async def test_lan_password_signs_in_and_guessing_is_limited(web_host: Host, anon: httpx.AsyncClient) -> None:
    await web_host.auth.set_password("correct horse battery")
    await anon.get("/health")
    headers = {"x-csrftoken": anon.cookies["nanoclaw_csrf"]}
    wrong = await anon.post("/api/login", json={"password": "nope"}, headers=headers)
    assert wrong.status_code == 401
    right = await anon.post("/api/login", json={"password": "correct horse battery"}, headers=headers)
    assert right.status_code == 200
    assert (await anon.get("/schema/openapi.json")).status_code == 200
    for _ in range(5):
        await anon.post("/api/login", json={"password": "guess"}, headers=headers)
    blocked = await anon.post("/api/login", json={"password": "correct horse battery"}, headers=headers)
    assert blocked.status_code == 400
    assert "too many" in blocked.json()["error"]


async def test_the_sign_in_page_in_a_browser(browser, base_url: str, web_host: Host) -> None:
    await web_host.auth.set_password("correct horse battery")
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    tab = await context.new_page()
    response = await tab.goto(f"{base_url}/")
    assert response.status == 401
    await tab.fill("#password", "correct horse battery")
    await shot(tab, "login")
    await tab.click("button[type=submit]")
    await tab.wait_for_url(lambda url: "/login" not in url and url.rstrip("/") != base_url)
    assert "/setup" in tab.url or "/chat" in tab.url
    await context.close()
