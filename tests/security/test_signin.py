"""Sign-in attacks against the real host: parallel password guessing, sessions that should have ended, and LAN
traffic anyone on the network could read.

The LAN devices are real clients: other loopback addresses (127.0.0.2, …) over TCP, or a network address handed to
the real Litestar app through httpx's ASGI transport where the address itself matters.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import stat
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from nanoclaw_app.cli import main
from nanoclaw_app.host import Host
from nanoclaw_app.secrets.store import SecretStore
from nanoclaw_app.services import auth as auth_module
from nanoclaw_app.services.auth import COOKIE, issue_login_token
from nanoclaw_app.settings import Settings, load_settings
from nanoclaw_app.tls import read_certificate
from nanoclaw_app.web.app import create_app
from tests.fakes.keyring import MemoryKeyring
from tests.fakes.runtime import InProcessRuntime
from tests.web.conftest import (
    base_url,
    browser,
    client,
    keyring_backend,
    screenshot_dir,
    shot,
    sign_in,
    web_host,
    web_settings,
)

__all__ = ["base_url", "browser", "client", "keyring_backend", "web_host", "web_settings"]  # fixtures from tests/web
PASSWORD = "correct horse battery"


async def csrf_headers(c: httpx.AsyncClient) -> dict[str, str]:
    await c.get("/health")  # any GET hands out the CSRF cookie a write must echo
    return {"x-csrftoken": c.cookies["nanoclaw_csrf"]}


async def password_sign_in(c: httpx.AsyncClient, password: str = PASSWORD) -> httpx.Response:
    return await c.post("/api/login", json={"password": password}, headers=await csrf_headers(c))


def from_address(base: str, address: str) -> httpx.AsyncClient:
    """A browser on another device: a real TCP connection from another local address."""
    return httpx.AsyncClient(base_url=base, timeout=60,
                             transport=httpx.AsyncHTTPTransport(local_address=address))


@pytest.fixture
async def lan_host(settings: Settings, keyring_backend: MemoryKeyring, request: pytest.FixtureRequest,
                   ) -> AsyncIterator[Host]:
    """A host started with LAN access on (listening on 127.0.0.1 for the test); HTTPS as the test's param says."""
    https = getattr(request, "param", False)
    lan_settings = load_settings(settings.paths, timezone="Europe/Berlin", port=0, https_port=0, runtime="local",
                                 lan_access=True, lan_https=https, host="127.0.0.1")
    host = Host(lan_settings, runtime=InProcessRuntime(), secrets=SecretStore(keyring_backend))
    await host.start()
    await host.auth.set_password(PASSWORD)
    try:
        yield host
    finally:
        await host.stop()


def lan_device(host: Host, address: str = "192.168.1.50") -> httpx.AsyncClient:
    """A device on the home network reaching the app as LAN access serves it (the real app, a network address)."""
    app = create_app(host.services, lan=True)
    return httpx.AsyncClient(base_url="http://192.168.1.10:8765", timeout=30,
                             transport=httpx.ASGITransport(app=app, client=(address, 50000)))


# ---------------------------------------------------------------------------------------------- guessing


async def test_two_hundred_parallel_guesses_get_five_checks_and_never_lock_out_the_owner(
    web_host: Host, base_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await web_host.auth.set_password(PASSWORD)
    checked: list[str] = []
    real_verify = auth_module.verify_password

    def counting_verify(password: str, stored: str) -> bool:
        checked.append(password)
        return real_verify(password, stored)

    monkeypatch.setattr(auth_module, "verify_password", counting_verify)

    async with httpx.AsyncClient(base_url=base_url, timeout=120,
                                 limits=httpx.Limits(max_connections=200)) as attacker:
        headers = await csrf_headers(attacker)
        answers = await asyncio.gather(*(
            attacker.post("/api/login", json={"password": f"guess number {n}"}, headers=headers) for n in range(200)
        ))
        statuses = Counter(answer.status_code for answer in answers)
        assert len(checked) <= 5, f"{len(checked)} guesses were fully checked"
        assert statuses[401] == len(checked)
        assert statuses[400] == 200 - len(checked)
        refused = next(answer for answer in answers if answer.status_code == 400)
        assert "too many wrong passwords" in refused.json()["error"]
        # the guessing device stays refused, even with the right password
        assert (await attacker.post("/api/login", json={"password": PASSWORD}, headers=headers)).status_code == 400

    async with from_address(base_url, "127.0.0.2") as phone:  # the owner's phone, another address
        assert (await password_sign_in(phone)).status_code == 200
        assert (await phone.get("/api/settings")).status_code == 200

    async with httpx.AsyncClient(base_url=base_url, timeout=30) as window:  # same address as the guesser
        await sign_in(window, web_host)  # the window's one-time link is never limited by password guesses
        assert (await window.get("/api/settings")).status_code == 200


# ---------------------------------------------------------------------------------------------- sessions that ended


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


async def test_a_deleted_session_row_is_refused_at_once(web_host: Host, client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/settings")).status_code == 200
    await web_host.db.execute("DELETE FROM web_sessions WHERE token_hash = ?", (_hash(client.cookies[COOKIE]),))
    assert (await client.get("/api/settings")).status_code == 401


async def test_an_expired_session_is_refused_at_once(web_host: Host, client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/settings")).status_code == 200
    await web_host.db.execute("UPDATE web_sessions SET expires_at = '2000-01-01T00:00:00.000Z' WHERE token_hash = ?",
                              (_hash(client.cookies[COOKIE]),))
    answer = await client.get("/api/settings")
    assert answer.status_code == 401
    assert "sign in" in answer.json()["error"]


async def test_lan_access_switched_off_with_the_command_signs_out_lan_devices_at_once(lan_host: Host) -> None:
    async with lan_device(lan_host) as phone:
        assert (await password_sign_in(phone)).status_code == 200
        assert (await phone.get("/api/settings")).status_code == 200
        # `nanoclaw settings set lan_access off`, typed in a terminal while the app runs
        assert await asyncio.to_thread(main, ["settings", "set", "lan_access", "off"]) == 0
        assert (await phone.get("/api/settings")).status_code in (400, 401)
        assert (await password_sign_in(phone)).status_code == 400  # and it cannot sign in again before a restart


async def test_lan_access_switched_off_in_settings_shuts_lan_devices_out_before_any_restart(
    lan_host: Host, client_of_lan_host: httpx.AsyncClient
) -> None:
    async with lan_device(lan_host) as phone:
        assert (await password_sign_in(phone)).status_code == 200
        assert (await phone.get("/api/settings")).status_code == 200

        off = await client_of_lan_host.post("/api/settings/lan", json={"enabled": False})
        assert off.status_code == 200, off.text
        assert (await phone.get("/api/settings")).status_code in (400, 401)
        again = await password_sign_in(phone)  # the app still listens on the network until it restarts
        assert again.status_code == 400
        assert "LAN access is off" in again.json()["error"]
    assert (await client_of_lan_host.get("/api/settings")).status_code == 200  # this computer's window is not


@pytest.fixture
async def client_of_lan_host(lan_host: Host) -> AsyncIterator[httpx.AsyncClient]:
    """The owner's window on the LAN host (signed in with a one-time link, from this computer)."""
    assert lan_host.url is not None
    async with httpx.AsyncClient(base_url=lan_host.url.rstrip("/"), timeout=30) as c:
        await sign_in(c, lan_host)
        yield c


# ---------------------------------------------------------------------------------------------- sign out others


async def test_signing_out_all_other_devices_keeps_only_this_session_and_ends_their_live_updates(
    web_host: Host, base_url: str, client: httpx.AsyncClient
) -> None:
    await web_host.auth.set_password(PASSWORD)
    async with from_address(base_url, "127.0.0.4") as phone, httpx.AsyncClient(base_url=base_url) as laptop:
        assert (await password_sign_in(phone)).status_code == 200
        await sign_in(laptop, web_host)
        assert (await client.get("/api/sessions")).json() == {"others": 2}

        async with phone.stream("GET", "/api/events") as stream:
            lines = stream.aiter_lines()
            async for line in lines:
                if line.startswith("event: hello"):
                    break
            answer = await client.post("/api/sessions/sign-out-others")
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"signed_out": 2}
            rest = [line async for line in lines]  # the phone's open stream ends instead of carrying on
            assert not any(line.startswith("event:") for line in rest)

        assert (await phone.get("/api/settings")).status_code == 401
        assert (await laptop.get("/api/settings")).status_code == 401
        assert (await client.get("/api/settings")).status_code == 200
        assert (await client.get("/api/sessions")).json() == {"others": 0}


# ---------------------------------------------------------------------------------------------- HTTPS on the LAN


@pytest.mark.parametrize("lan_host", [True], indirect=True)
async def test_https_lan_access_serves_tls_with_the_fingerprint_settings_show(
    lan_host: Host, client_of_lan_host: httpx.AsyncClient
) -> None:
    shown = (await client_of_lan_host.get("/api/settings")).json()
    assert shown["lan_https"] is True
    fingerprint = shown["lan_certificate_fingerprint"]
    assert fingerprint
    assert len(fingerprint.split(":")) == 32
    assert client_of_lan_host.base_url.scheme == "http"  # the window stays on plain HTTP on 127.0.0.1
    assert lan_host.url is not None
    assert lan_host.url.startswith("http://127.0.0.1:")

    home = lan_host.settings.paths.home
    key_file = home / "lan-https.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert lan_host.lan_web is not None
    port = lan_host.lan_web.port
    assert port is not None

    # a client that trusts exactly this certificate, checking the name and the chain as a browser would
    trusting = ssl.create_default_context(cadata=(home / "lan-https.crt").read_text())
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=trusting, server_hostname="127.0.0.1")
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
        await writer.wait_closed()
    served = ":".join(f"{byte:02X}" for byte in hashlib.sha256(der).digest())
    assert served == fingerprint

    async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{port}", verify=trusting, timeout=30) as phone:
        answer = await password_sign_in(phone)
        assert answer.status_code == 200
        assert "secure" in answer.headers["set-cookie"].lower()  # the cookie never goes back over plain HTTP
        assert (await phone.get("/api/settings")).status_code == 200

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as plain:
        with pytest.raises(httpx.HTTPError):  # the LAN port speaks nothing but TLS
            await plain.get("/health")


# ---------------------------------------------------------------------------------------------- the page


async def _settings_tab(browser: Any, host: Host, viewport: dict[str, int]) -> tuple[Any, Any, list[str]]:
    """A signed-in Chromium tab on the Settings page; the list collects JavaScript errors."""
    assert host.url is not None
    context = await browser.new_context(viewport=viewport)
    tab = await context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.on("console", lambda msg: errors.append(msg.text)
           if msg.type == "error" and "Failed to load resource" not in msg.text else None)  # e.g. no favicon
    await tab.goto(f"{host.url}login?token={await issue_login_token(host.db)}")
    await tab.goto(f"{host.url}settings")
    return context, tab, errors


@pytest.mark.parametrize("lan_host", [True], indirect=True)
async def test_the_settings_page_explains_both_choices_shows_the_fingerprint_and_signs_out_other_devices(
    browser: Any, lan_host: Host
) -> None:
    from playwright.async_api import expect

    assert lan_host.url is not None
    certificate = read_certificate(lan_host.settings.paths.home)
    assert certificate is not None
    async with from_address(lan_host.url.rstrip("/"), "127.0.0.5") as phone:
        assert (await password_sign_in(phone)).status_code == 200

        context, tab, errors = await _settings_tab(browser, lan_host, {"width": 1280, "height": 800})
        card = tab.locator("#lan-card")
        await expect(tab.locator("#lan-fingerprint code")).to_have_text(certificate.fingerprint)
        await expect(card.get_by_label("Encrypted (HTTPS)")).to_be_checked()
        assert "could read them" in await card.inner_text()  # what plain HTTP means, said plainly
        await expect(tab.locator("#devices-status")).to_have_text("1 other browser or device is signed in.")
        await shot(tab, "settings-lan-https")
        await card.screenshot(path=str(screenshot_dir() / "settings-lan-https-card.png"))

        await card.get_by_label("Not encrypted (plain HTTP)").check()
        await tab.click("#lan-https-form button[type=submit]")
        await expect(tab.locator("#lan-fingerprint")).to_be_hidden()
        await expect(tab.locator("#restart-banner")).to_contain_text("how other devices connect")
        assert lan_host.settings.lan_https is False
        await card.get_by_label("Encrypted (HTTPS)").check()
        await tab.click("#lan-https-form button[type=submit]")
        await expect(tab.locator("#lan-fingerprint")).to_be_visible()
        assert lan_host.settings.lan_https is True

        await tab.get_by_role("button", name="Sign out all other devices").click()
        await expect(tab.locator("#devices-status")).to_have_text("No other browser or device is signed in.")
        assert (await phone.get("/api/settings")).status_code == 401
        await context.close()
        assert not errors, errors

    context, tab, errors = await _settings_tab(browser, lan_host, {"width": 390, "height": 844})
    await expect(tab.locator("#lan-fingerprint code")).to_have_text(certificate.fingerprint)
    await expect(tab.locator("#devices-status")).to_have_text("1 other browser or device is signed in.")  # the desktop
    await shot(tab, "settings-lan-https-phone")
    await tab.locator("#lan-card").screenshot(path=str(screenshot_dir() / "settings-lan-https-phone-card.png"))
    await context.close()
    assert not errors, errors
