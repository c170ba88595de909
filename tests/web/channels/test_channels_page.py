"""The channels page and API: WhatsApp paired from the app (a live QR code that follows the phone's rotation, the
phone-number code, logout) over the neonize client boundary, and Telegram set up with a token and a pairing code
against a fake Bot API server on 127.0.0.1 (the real python-telegram-bot client long-polling it)."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from nanoclaw_app.channels import registry as channel_registry
from nanoclaw_app.channels.telegram.settings import TelegramSettings
from nanoclaw_app.db import users as users_db
from nanoclaw_app.host import Host
from nanoclaw_app.settings import Settings, load_settings
from tests.fakes.keyring import MemoryKeyring
from tests.fakes.neonize_client import FRIEND, OWN_NUMBER, FakeNeonizeClient, text_dm
from tests.fakes.telegram_api import ANN, BOT_USERNAME, TOKEN, FakeBotApi
from tests.waiting import until
from tests.web.channels.phones import OWN_DISPLAY, OWN_JID, QR_1, QR_2, Phones, qr_source
from tests.web.conftest import shot


@pytest.fixture
def web_settings(settings: Settings, bot_api: FakeBotApi) -> Settings:
    return load_settings(settings.paths, timezone="Europe/Berlin", port=0, sweep_interval_seconds=0.2,
                         retry_base_seconds=0.05, fallback_poll_seconds=0.2, runtime="local",
                         telegram_api_base_url=bot_api.base_url)


async def channel(client: httpx.AsyncClient, name: str) -> dict[str, Any]:
    response = await client.get(f"/api/channels/{name}")
    assert response.status_code == 200, response.text
    return dict(response.json())


async def reaches(client: httpx.AsyncClient, name: str, state: str) -> bool:
    """Whether the channel's link gets to ``state`` (as the API reports it) within a few seconds."""
    async def there() -> bool:
        return bool((await channel(client, name))["status"]["state"] == state)
    return bool(await until(there))


# ---------------------------------------------------------------------------------------------------- API


async def test_the_api_needs_a_session(anon: httpx.AsyncClient) -> None:
    assert (await anon.get("/api/channels")).status_code == 401
    assert (await anon.get("/api/channels/whatsapp/qr")).status_code == 401
    await anon.get("/health")  # a CSRF cookie, so the refusal is about the missing session
    headers = {"x-csrftoken": anon.cookies.get("nanoclaw_csrf") or ""}
    for path, body in (("/api/channels/telegram/token", {"token": TOKEN}),
                       ("/api/channels/whatsapp/enable", {"mode": "self"}),
                       ("/api/channels/telegram/pairing-code", {})):
        refused = await anon.post(path, json=body, headers=headers)
        assert refused.status_code == 401, path
    page = await anon.get("/channels", headers={"accept": "text/html"})
    assert page.status_code == 401


async def test_every_channel_is_listed_before_anything_is_set_up(client: httpx.AsyncClient) -> None:
    listed = (await client.get("/api/channels")).json()["channels"]
    assert [c["name"] for c in listed] == [m.name for m in channel_registry.CHANNELS]
    assert [(c["name"], c["title"]) for c in listed][:2] == [("whatsapp", "WhatsApp"), ("telegram", "Telegram")]
    assert {(c["enabled"], c["running"], c["status"]["state"]) for c in listed} == {(False, False, "not_paired")}
    assert [c["page_module"] for c in listed] == [f"/static/channels/{c['name']}.js" for c in listed]
    assert (await client.get("/api/channels/signal")).status_code == 404
    missing = await client.post("/api/channels/telegram/qr")
    assert missing.status_code == 404
    assert "Telegram has no POST action 'qr'" in missing.json()["error"]
    schema = (await client.get("/schema/openapi.json")).json()
    assert {"/api/channels", "/api/channels/{name}/{action}", "/api/channels/{name}/pairing-code"} <= set(
        schema["paths"])
    page = await client.get("/channels")
    assert page.status_code == 200
    assert 'href="/channels"' in page.text  # in the menu


async def test_a_telegram_token_is_checked_saved_and_never_sent_back(
    client: httpx.AsyncClient, web_host: Host, bot_api: FakeBotApi, keyring_backend: MemoryKeyring
) -> None:
    refused = await client.post("/api/channels/telegram/token", json={"token": "987654321:AAHnotTheRightTokenAtAll0"})
    assert refused.status_code == 400
    assert "Telegram refused this token" in refused.json()["error"]
    assert keyring_backend.values == {}

    saved = await client.post("/api/channels/telegram/token", json={"token": f" {TOKEN} "})
    assert saved.status_code == 200, saved.text
    body = saved.json()
    assert body["bot"]["username"] == BOT_USERNAME
    assert body["started"] is True
    assert body["privacy_mode"] is True
    assert "/setprivacy" in body["privacy_note"]
    assert keyring_backend.values[("nanoclaw", "telegram.bot_token")] == TOKEN
    assert await reaches(client, "telegram", "connected")
    await until(lambda: bot_api.sent("getUpdates"))  # polling Telegram for messages
    view = await channel(client, "telegram")
    assert view["status"]["account"] == f"@{BOT_USERNAME}"
    bodies = [saved.text, json.dumps(view), (await client.get("/api/channels")).text,
              (await client.get("/api/secrets")).text, (await client.get("/channels")).text]
    assert all(TOKEN not in text for text in bodies)
    assert all(TOKEN.split(":")[1] not in text for text in bodies)


async def test_a_pairing_code_sent_from_telegram_makes_that_chat_the_owners(
    client: httpx.AsyncClient, web_host: Host, bot_api: FakeBotApi
) -> None:
    await client.post("/api/channels/telegram/token", json={"token": TOKEN})
    issued = await client.post("/api/channels/telegram/pairing-code", json={})
    assert issued.status_code == 201, issued.text
    code = issued.json()["code"]
    assert re.fullmatch(r"\d{4}", code)
    assert issued.json()["send_to"] == f"@{BOT_USERNAME}"
    assert (await channel(client, "telegram"))["pairing_code"]["code"] == code  # shown again after a reload

    async with web_host.events.subscribe() as events:
        bot_api.push_message(code, user=ANN)
        while (event := await asyncio.wait_for(events.get(), 15)).kind != "channel.paired":
            pass
    assert event.data["chat_name"] == "Ann Koch"
    assert "telegram:4242" in await users_db.owners(web_host.db)
    view = await channel(client, "telegram")
    assert [(c["title"], c["is_group"]) for c in view["chats"]] == [("Ann Koch", False)]
    assert view["pairing_code"] is None
    await bot_api.wait_for(lambda: any("Paired!" in text for text in bot_api.texts(ANN.id)))


async def test_a_running_telegram_moves_to_a_new_bot_api_server_and_can_be_turned_off_and_on(
    client: httpx.AsyncClient, web_host: Host, bot_api: FakeBotApi
) -> None:
    await client.post("/api/channels/telegram/token", json={"token": TOKEN})
    await until(lambda: bot_api.sent("getUpdates"))
    async with FakeBotApi() as other:
        moved = await client.put("/api/channels/telegram/api-server", json={"url": other.base_url})
        assert moved.status_code == 200, moved.text
        assert moved.json()["details"]["api_base_url"] == other.base_url
        await until(lambda: other.sent("getUpdates"))
        assert web_host.settings.channel(TelegramSettings).api_base_url == other.base_url
        bad = await client.put("/api/channels/telegram/api-server", json={"url": "telegram.example"})
        assert bad.status_code == 400
        assert "http://" in bad.json()["error"]

        off = await client.post("/api/channels/telegram/off", json={})
        assert off.status_code == 200
        turned_off = off.json()
        assert (turned_off["enabled"], turned_off["running"]) == (False, False)
        assert turned_off["status"]["state"] == "stopped"
        assert off.json()["set_up"] is True  # the token stays
        assert not await channel_registry.is_enabled(web_host.db, "telegram")
        on = await client.post("/api/channels/telegram/on")
        assert on.status_code == 200
        assert on.json()["running"] is True
        assert await reaches(client, "telegram", "connected")


# ---------------------------------------------------------------------------------------------------- in Chromium


async def test_telegram_is_set_up_and_paired_on_the_page(page: Any, base_url: str, web_host: Host,
                                                         bot_api: FakeBotApi) -> None:
    await page.goto(f"{base_url}/channels")
    card = page.locator("#channel-telegram")
    await expect(card.locator(".ch-steps")).to_contain_text("/newbot")
    await expect(card.locator(".ch-badge")).to_have_text("Not set up")
    await shot(page, "channels-1-empty")

    token = card.locator("#tg-token")
    await token.fill("987654321:AAHnotTheRightTokenAtAll0")
    await token.press("Enter")
    await expect(card.locator(".ch-token .field-error")).to_contain_text("Telegram refused this token")
    await token.fill(TOKEN)
    await card.locator(".ch-tg-check").click()

    await expect(card.locator(".ch-linked")).to_contain_text(f"@{BOT_USERNAME}")
    await expect(card.locator(".ch-badge")).to_have_text("Connected")
    await expect(card.locator(".ch-privacy")).to_contain_text("/setprivacy")
    await expect(token).to_be_hidden()
    assert await token.input_value() == ""  # never kept on the page

    await card.locator(".ch-get-code").click()
    code_box = card.locator(".ch-bigcode")
    await expect(code_box).to_have_text(re.compile(r"^\d{4}$"))
    code = await code_box.inner_text()
    await expect(card.locator(".ch-send")).to_contain_text(f"Send {code} to @{BOT_USERNAME}")
    await expect(card.locator(".ch-send")).to_contain_text(f"@{BOT_USERNAME} {code}")
    await shot(page, "channels-2-telegram-code")

    bot_api.push_message(code, user=ANN)
    await expect(card.locator(".ch-paired")).to_contain_text("Paired: Ann Koch")
    await expect(code_box).to_be_hidden()
    await expect(card.locator(".ch-chats")).to_contain_text("Ann")
    await shot(page, "channels-3-telegram-paired")


async def test_a_wrong_code_sent_to_the_bot_withdraws_the_code_on_the_page(page: Any, base_url: str,
                                                                          client: httpx.AsyncClient,
                                                                          bot_api: FakeBotApi) -> None:
    await client.post("/api/channels/telegram/token", json={"token": TOKEN})
    await page.goto(f"{base_url}/channels")
    card = page.locator("#channel-telegram")
    await card.locator(".ch-get-code").click()
    code_box = card.locator(".ch-bigcode")
    await expect(code_box).to_have_text(re.compile(r"^\d{4}$"))
    code = await code_box.inner_text()
    wrong = f"{(int(code) + 1) % 10_000:04d}"

    bot_api.push_message(wrong, user=ANN)
    notice = card.locator(".ch-invalidated")
    await expect(notice).to_contain_text("Someone sent a wrong code")
    await expect(code_box).to_be_hidden()
    await shot(page, "channels-4-telegram-wrong-code")
    await bot_api.wait_for(lambda: any("not right" in text for text in bot_api.texts(ANN.id)))

    await notice.locator(".ch-new-code").click()
    await expect(code_box).to_have_text(re.compile(r"^\d{4}$"))
    await expect(notice).to_be_hidden()


# ---------------------------------------------------------------------------------------------------- WhatsApp


async def turn_on_whatsapp(client: httpx.AsyncClient, phones: Phones, mode: str = "self") -> FakeNeonizeClient:
    response = await client.post("/api/channels/whatsapp/enable", json={"mode": mode})
    assert response.status_code == 200, response.text
    return await phones.started(1)


async def link(client: httpx.AsyncClient, fake: FakeNeonizeClient) -> None:
    """The phone scans the code: linked, then connected."""
    assert await fake.emit_pair_success(jid=OWN_JID)
    assert await fake.emit_connected()
    assert await reaches(client, "whatsapp", "connected")


async def test_whatsapp_serves_the_live_qr_code_a_phone_number_code_and_unlinks(
    client: httpx.AsyncClient, web_host: Host, phones: Phones
) -> None:
    refused = await client.post("/api/channels/whatsapp/enable", json={"mode": "both"})
    assert refused.status_code == 400
    assert "self or dedicated" in refused.json()["error"]
    fake = await turn_on_whatsapp(client, phones)
    assert (await client.get("/api/channels/whatsapp/qr")).json() == {"svg": None, "issued_at": None}
    early = await client.post("/api/channels/whatsapp/phone-code", json={"phone": "+49 170 1234567"})
    assert early.status_code == 503
    assert "try again in a few seconds" in early.json()["error"]

    await fake.emit_qr(QR_1)
    first = (await client.get("/api/channels/whatsapp/qr")).json()
    assert first["svg"].startswith("<svg")
    await fake.emit_qr(QR_2)
    second = (await client.get("/api/channels/whatsapp/qr")).json()
    assert second["svg"] != first["svg"]
    view = await channel(client, "whatsapp")
    assert (view["enabled"], view["running"], view["details"]["mode"], view["status"]["state"]) == (
        True, True, "self", "pairing")
    assert view["details"]["qr"]["svg"] == second["svg"]

    bad = await client.post("/api/channels/whatsapp/phone-code", json={"phone": "0170 1234567"})
    assert bad.status_code == 400
    assert "country code" in bad.json()["error"]
    code = await client.post("/api/channels/whatsapp/phone-code", json={"phone": "+49 (170) 123-4567"})
    assert code.status_code == 200, code.text
    assert code.json() == {"code": "K7QX-2M9P", "phone": "+491701234567"}
    assert fake.pair_requests == [OWN_NUMBER]

    await link(client, fake)
    view = await channel(client, "whatsapp")
    assert view["status"]["account"] == OWN_DISPLAY
    assert view["set_up"] is True
    assert view["details"]["qr"] is None
    # own number: "Message yourself" became the owner's chat
    assert await until(lambda: users_db.owners(web_host.db))
    assert f"whatsapp:{OWN_JID}" in await users_db.owners(web_host.db)
    assert [c["platform_id"] for c in (await channel(client, "whatsapp"))["chats"]] == [OWN_JID]

    out = await client.post("/api/channels/whatsapp/logout")
    assert out.status_code == 200, out.text
    assert fake.logout_calls == 1
    assert await reaches(client, "whatsapp", "not_paired")
    assert (await channel(client, "whatsapp"))["set_up"] is False
    fresh = await phones.started(2)  # a new device: a new QR code follows
    await fresh.emit_qr(QR_1)
    assert (await client.get("/api/channels/whatsapp/qr")).json()["svg"].startswith("<svg")


async def test_with_a_separate_number_the_owner_pairs_their_own_whatsapp_with_a_code(
    client: httpx.AsyncClient, web_host: Host, phones: Phones
) -> None:
    fake = await turn_on_whatsapp(client, phones, mode="dedicated")
    await fake.emit_qr(QR_1)
    await link(client, fake)
    assert await users_db.owners(web_host.db) == []  # the assistant's number is not the owner
    issued = await client.post("/api/channels/whatsapp/pairing-code", json={})
    assert issued.status_code == 201
    assert issued.json()["send_to"] == OWN_DISPLAY
    async with web_host.events.subscribe() as events:
        assert await fake.emit_message(text_dm(issued.json()["code"], sender=FRIEND, push_name="Ann"))
        while (event := await asyncio.wait_for(events.get(), 15)).kind != "channel.paired":
            pass
    assert event.data["owner"] is True
    assert f"whatsapp:{FRIEND}@s.whatsapp.net" in await users_db.owners(web_host.db)


async def test_turning_whatsapp_off_keeps_the_link_and_on_again_reconnects(
    client: httpx.AsyncClient, web_host: Host, phones: Phones
) -> None:
    fake = await turn_on_whatsapp(client, phones)
    await fake.emit_qr(QR_1)
    assert await fake.emit_pair_success(jid=OWN_JID)
    assert await fake.emit_connected()
    assert await reaches(client, "whatsapp", "connected")
    off = await client.post("/api/channels/whatsapp/off", json={})
    assert off.status_code == 200
    assert (off.json()["running"], off.json()["enabled"], off.json()["set_up"]) == (False, False, True)
    assert off.json()["status"]["state"] == "stopped"
    assert (await client.get("/api/channels/whatsapp/qr")).status_code == 400  # nothing to scan while off
    on = await client.post("/api/channels/whatsapp/on")
    assert on.status_code == 200
    again = await phones.started(2)
    assert await again.emit_connected()  # the stored device connects without a new QR code
    assert await reaches(client, "whatsapp", "connected")
    assert (await channel(client, "whatsapp"))["status"]["account"] == OWN_DISPLAY


# ------------------------------------------------------------------------------------------- WhatsApp in Chromium


async def test_the_qr_code_on_the_page_follows_whatsapp_rotating_it(page: Any, base_url: str, web_host: Host,
                                                                    phones: Phones) -> None:
    await page.goto(f"{base_url}/channels")
    card = page.locator("#channel-whatsapp")
    await expect(card.locator(".ch-wa-setup")).to_contain_text("separate number is the safer choice")
    await card.get_by_label("My own number").check()
    await card.locator(".ch-wa-start").click()
    await expect(card.locator(".ch-qr-frame .ch-wait")).to_contain_text("Waiting for WhatsApp")
    fake = await phones.started(1)

    await fake.emit_qr(QR_1)
    first = await qr_source(card)
    assert first.startswith("data:image/svg+xml;base64,")
    await expect(card.locator(".ch-badge")).to_have_text("Waiting for your phone")
    await expect(card.locator(".ch-wa-pair")).to_contain_text("Linked devices")
    await shot(page, "channels-wa-1-qr")

    await fake.emit_qr(QR_2)
    await expect(card.locator("img.ch-qr")).not_to_have_attribute("src", first)
    second = await qr_source(card)
    assert second != first
    await shot(page, "channels-wa-2-qr-rotated")


async def test_linking_by_phone_number_then_the_card_turns_connected_and_logout_brings_a_new_qr(
    page: Any, base_url: str, client: httpx.AsyncClient, phones: Phones
) -> None:
    fake = await turn_on_whatsapp(client, phones)
    await fake.emit_qr(QR_1)
    await page.goto(f"{base_url}/channels")
    card = page.locator("#channel-whatsapp")
    await qr_source(card)

    await card.get_by_role("button", name="Link with phone number instead").click()
    phone = card.get_by_label("The WhatsApp account's phone number")
    await expect(phone).to_be_focused()
    await phone.fill("0170 1234567")
    await phone.press("Enter")
    await expect(card.locator(".ch-phone .field-error")).to_contain_text("country code")
    await phone.fill("+49 170 1234567")
    await card.get_by_role("button", name="Get a code").click()
    await expect(card.locator(".ch-phone-code")).to_have_text("K7QX-2M9P")
    await expect(card.locator(".ch-phone")).to_contain_text("Link with phone number instead")
    await expect(card.locator("img.ch-qr")).to_be_hidden()
    await shot(page, "channels-wa-3-phone-code")
    assert fake.pair_requests == [OWN_NUMBER]

    assert await fake.emit_pair_success(jid=OWN_JID)
    assert await fake.emit_connected()
    await expect(card.locator(".ch-linked")).to_have_text(f"✓ Connected as {OWN_DISPLAY}")
    await expect(card.locator(".ch-badge")).to_have_text("Connected")
    await expect(card.locator(".ch-wa-linked")).to_contain_text("Message yourself")
    await expect(card.locator(".ch-chats")).to_contain_text(OWN_DISPLAY)
    await shot(page, "channels-wa-4-connected")

    page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await card.get_by_role("button", name="Log out").click()
    await expect(card.locator(".ch-linked")).to_be_hidden()
    fresh = await phones.started(2)
    await fresh.emit_qr(QR_2)
    await qr_source(card)
    await expect(card.locator(".ch-badge")).to_have_text("Waiting for your phone")
    await shot(page, "channels-wa-5-after-logout")
    assert fake.logout_calls == 1


async def test_a_lost_link_is_explained_with_what_to_do(page: Any, base_url: str, client: httpx.AsyncClient,
                                                         phones: Phones) -> None:
    fake = await turn_on_whatsapp(client, phones, mode="dedicated")
    await fake.emit_qr(QR_1)
    await link(client, fake)
    await page.goto(f"{base_url}/channels")
    card = page.locator("#channel-whatsapp")
    await expect(card.locator(".ch-wa-linked")).to_contain_text("send a pairing code from your own phone")

    assert await fake.emit_stream_replaced()
    trouble = card.locator(".ch-trouble")
    await expect(trouble).to_contain_text("Close the other program")
    await expect(card.locator(".ch-badge")).to_have_text("Taken over elsewhere")
    await shot(page, "channels-wa-6-replaced")
    await trouble.get_by_role("button", name="Reconnect").click()
    again = await phones.started(2)
    assert await again.emit_connected()
    await expect(card.locator(".ch-badge")).to_have_text("Connected")

    assert await again.emit_temporary_ban(expire_seconds=7200)
    await expect(card.locator(".ch-badge")).to_have_text("Blocked for now")
    await expect(trouble).to_contain_text("Do not try to link again and again")
    await shot(page, "channels-wa-7-banned")


async def test_a_revoked_token_is_explained_and_a_new_one_restarts_telegram(page: Any, base_url: str,
                                                                           client: httpx.AsyncClient,
                                                                           bot_api: FakeBotApi) -> None:
    await client.post("/api/channels/telegram/token", json={"token": TOKEN})
    assert await reaches(client, "telegram", "connected")
    await page.goto(f"{base_url}/channels")
    card = page.locator("#channel-telegram")
    await expect(card.locator(".ch-badge")).to_have_text("Connected")

    bot_api.revoke_token()  # /revoke in @BotFather: the saved token gets 401 from now on
    await expect(card.locator(".ch-badge")).to_have_text("Needs attention")
    await expect(card.locator(".ch-detail")).to_contain_text("Enter the new token")
    await expect(card.locator("#tg-token")).to_be_visible()
    await shot(page, "channels-5-telegram-revoked")
    new_token = "123456789:AAHbrandNewTokenAfterRevoke-98765"
    bot_api.token, bot_api._revoked = new_token, False  # BotFather's new token for the same bot

    await card.locator("#tg-token").fill(new_token)
    await card.locator(".ch-tg-check").click()
    await expect(card.locator(".ch-badge")).to_have_text("Connected")
    await expect(card.locator(".ch-tg-setup")).to_be_hidden()
    assert (await channel(client, "telegram"))["status"]["account"] == f"@{BOT_USERNAME}"
