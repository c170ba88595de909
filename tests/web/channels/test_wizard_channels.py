"""The wizard's phone channel steps (WhatsApp, then Telegram, both optional) between the containers and the agent:
the same widgets as the channels page, WhatsApp moving on by itself once linked, and chats paired before the agent
existed wired to it when it is named."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from nanoclaw_app.db import app_state, messaging
from nanoclaw_app.db import users as users_db
from nanoclaw_app.host import Host
from nanoclaw_app.settings import Settings, load_settings
from tests.fakes.anthropic_server import FakeAnthropic, Text
from tests.fakes.neonize_client import FRIEND, self_chat, text_dm
from tests.fakes.telegram_api import ANN, BOT_USERNAME, TOKEN, FakeBotApi
from tests.web.channels.phones import OWN_DISPLAY, OWN_JID, QR_1, Phones, qr_source
from tests.web.conftest import shot

KEY = "sk-ant-api03-wizard-channels-key-0123456789abcdef"


@pytest.fixture
async def fake_anthropic() -> AsyncIterator[FakeAnthropic]:
    fake = FakeAnthropic()
    fake.responder = lambda body: Text("Hi")
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
def web_settings(settings: Settings, fake_anthropic: FakeAnthropic, bot_api: FakeBotApi) -> Settings:
    return load_settings(settings.paths, timezone="Europe/Berlin", port=0, sweep_interval_seconds=0.2,
                         retry_base_seconds=0.05, fallback_poll_seconds=0.2, runtime="local",
                         anthropic_base_url=fake_anthropic.url, telegram_api_base_url=bot_api.base_url)


async def set_up_model(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/setup/model", json={"kind": "anthropic", "api_key": KEY,
                                                           "model": "claude-sonnet-4-6"})
    assert response.status_code == 200, response.text
    assert (await client.post("/api/setup/engine")).json()["ok"] is True


async def paired(host: Host, send: Any) -> dict[str, Any]:
    """Do ``send()`` and wait for the chat it pairs."""
    async with host.events.subscribe() as events:
        send()
        while (event := await asyncio.wait_for(events.get(), 15)).kind != "channel.paired":
            pass
    return dict(event.data)


# ---------------------------------------------------------------------------------------------------- API


async def test_the_channel_steps_sit_between_containers_and_the_agent_and_can_be_skipped(
    client: httpx.AsyncClient,
) -> None:
    await set_up_model(client)
    state = (await client.get("/api/setup/state")).json()
    assert list(state["steps"]) == ["model", "engine", "whatsapp", "telegram", "agent", "test"]
    assert state["current"] == 3

    early = await client.post("/api/setup/channel", json={"channel": "whatsapp", "outcome": "done"})
    assert early.status_code == 400
    assert "scan the QR code" in early.json()["error"]
    assert "skip" in early.json()["error"]
    unknown = await client.post("/api/setup/channel", json={"channel": "signal", "outcome": "skipped"})
    assert unknown.status_code == 400

    skipped = await client.post("/api/setup/channel", json={"channel": "whatsapp", "outcome": "skipped"})
    assert skipped.status_code == 200
    assert (await client.get("/api/setup/state")).json()["current"] == 4
    early = await client.post("/api/setup/channel", json={"channel": "telegram", "outcome": "done"})
    assert "paste your bot's token" in early.json()["error"]
    await client.post("/api/channels/telegram/token", json={"token": TOKEN})
    done = await client.post("/api/setup/channel", json={"channel": "telegram", "outcome": "done"})
    assert done.status_code == 200, done.text
    state = (await client.get("/api/setup/state")).json()
    assert (state["steps"]["whatsapp"], state["steps"]["telegram"], state["current"]) == (True, True, 5)


async def test_naming_the_agent_wires_the_chats_paired_before_it_existed(
    client: httpx.AsyncClient, web_host: Host, bot_api: FakeBotApi
) -> None:
    await set_up_model(client)
    await client.post("/api/channels/telegram/token", json={"token": TOKEN})
    code = (await client.post("/api/channels/telegram/pairing-code", json={})).json()["code"]
    dm = await paired(web_host, lambda: bot_api.push_message(code, user=ANN))
    assert dm["agent_group_id"] is None  # no agent yet
    group_code = (await client.post("/api/channels/telegram/pairing-code", json={})).json()["code"]
    family = bot_api.group_chat(-1001234, "Family")
    group = await paired(web_host, lambda: bot_api.push_message(f"@{BOT_USERNAME} {group_code}", user=ANN,
                                                                 chat=family))
    assert group["agent_group_id"] is None
    listed = (await client.get("/api/channels/telegram")).json()["chats"]
    assert [c["agents"] for c in listed] == [[], []]

    agent = (await client.post("/api/setup/agent", json={"name": "Ada"})).json()

    wirings = {}
    for data in (dm, group):
        found = await messaging.wirings_for(web_host.db, data["messaging_group_id"])
        assert [w.agent_group_id for w in found] == [agent["id"]]
        wirings[data["platform_id"]] = (found[0].engage_mode, found[0].engage_pattern)
    assert wirings == {str(ANN.id): ("pattern", "."), "-1001234": ("mention", None)}
    owners = await users_db.owners(web_host.db)
    assert "telegram:4242" in owners
    assert "webchat:owner" in owners  # the person at the app stays the owner too
    listed = (await client.get("/api/channels/telegram")).json()["chats"]
    assert [c["agents"] for c in listed] == [["Ada"], ["Ada"]]

    # the agent answers there now
    bot_api.push_message("hello there", user=ANN)
    await bot_api.wait_for(lambda: "echo: hello there" in bot_api.texts(ANN.id))


# ---------------------------------------------------------------------------------------------------- in Chromium


async def test_the_telegram_step_in_the_browser(page: Any, base_url: str, client: httpx.AsyncClient,
                                                web_host: Host, bot_api: FakeBotApi) -> None:
    await set_up_model(client)
    await client.post("/api/setup/channel", json={"channel": "whatsapp", "outcome": "skipped"})
    await page.goto(f"{base_url}/setup")
    step = page.locator('.wz-step[data-step="4"]')
    await expect(step).to_be_visible()
    await expect(page.locator("#wz-count")).to_have_text("Step 4 of 6")
    await expect(page.locator("#telegram-next")).to_be_disabled()
    await expect(step.locator(".ch-steps")).to_contain_text("@BotFather")
    await shot(page, "wizard-4-telegram")

    await step.locator("#tg-token").fill(TOKEN)
    await step.locator(".ch-tg-check").click()
    await expect(step.locator(".ch-linked")).to_contain_text(f"@{BOT_USERNAME}")
    await expect(page.locator("#telegram-next")).to_be_enabled()
    await step.locator(".ch-get-code").click()
    await expect(step.locator(".ch-code-box .ch-bigcode")).to_have_text(re.compile(r"^\d{4}$"))
    code = await step.locator(".ch-code-box .ch-bigcode").inner_text()
    await shot(page, "wizard-4-telegram-code")
    bot_api.push_message(code, user=ANN)
    await expect(step.locator(".ch-paired")).to_contain_text("Paired: Ann Koch")
    await shot(page, "wizard-4-telegram-paired")

    await page.click("#telegram-next")
    await expect(page.locator('.wz-step[data-step="5"]')).to_be_visible()
    await page.fill("#agent-name", "Ada")
    await page.click("#agent-submit")
    await expect(page.locator('.wz-step[data-step="6"]')).to_be_visible()
    await bot_api.wait_for(lambda: "Paired!" in " ".join(bot_api.texts(ANN.id)))
    bot_api.push_message("are you there?", user=ANN)
    await bot_api.wait_for(lambda: "echo: are you there?" in bot_api.texts(ANN.id))


async def test_the_whatsapp_step_moves_on_by_itself_once_the_phone_linked(
    page: Any, base_url: str, client: httpx.AsyncClient, web_host: Host, phones: Phones
) -> None:
    await set_up_model(client)
    await page.goto(f"{base_url}/setup")
    step = page.locator('.wz-step[data-step="3"]')
    await expect(step).to_be_visible()
    await expect(page.locator("#wz-count")).to_have_text("Step 3 of 6")
    await expect(page.locator("#whatsapp-next")).to_be_disabled()
    await expect(page.locator("#whatsapp-skip")).to_have_text("Skip for now")
    await shot(page, "wizard-3-whatsapp")
    await step.get_by_label("My own number").check()
    await step.locator(".ch-wa-start").click()
    fake = await phones.started(1)
    await fake.emit_qr(QR_1)
    page_qr = await qr_source(step)
    assert page_qr.startswith("data:image/svg+xml;base64,")
    await shot(page, "wizard-3-whatsapp-qr")

    assert await fake.emit_pair_success(jid=OWN_JID)
    assert await fake.emit_connected()
    await expect(page.locator('.wz-step[data-step="4"]')).to_be_visible()
    await expect(page.locator('.wz-progress li[data-step="3"]')).to_have_class(re.compile("done"))
    assert await app_state.get(web_host.db, "wizard.whatsapp") == "done"

    # going back shows the link as it is, with the way on
    await page.locator('.wz-step[data-step="4"] .wz-back').click()
    await expect(step.locator(".ch-linked")).to_have_text(f"✓ Connected as {OWN_DISPLAY}")
    await expect(page.locator("#whatsapp-next")).to_be_enabled()
    await expect(page.locator("#whatsapp-skip")).to_be_hidden()
    await page.click("#whatsapp-next")
    await page.click("#telegram-skip")
    await page.fill("#agent-name", "Ada")
    await page.click("#agent-submit")
    await expect(page.locator('.wz-step[data-step="6"]')).to_be_visible()

    # "Message yourself", bound while no agent existed, is answered by the agent named afterwards
    assert await fake.emit_message(self_chat("hello from my phone"))
    await fake.wait_sent(1)
    async with asyncio.timeout(15):
        while "echo: hello from my phone" not in fake.texts(OWN_JID):
            await asyncio.sleep(0.05)


async def test_with_a_separate_number_the_whatsapp_step_waits_for_the_owners_code(
    page: Any, base_url: str, client: httpx.AsyncClient, web_host: Host, phones: Phones
) -> None:
    await set_up_model(client)
    await page.goto(f"{base_url}/setup")
    step = page.locator('.wz-step[data-step="3"]')
    await step.get_by_label("A separate number for the assistant (safer)").check()
    await step.locator(".ch-wa-start").click()
    fake = await phones.started(1)
    await fake.emit_qr(QR_1)
    await qr_source(step)
    assert await fake.emit_pair_success(jid=OWN_JID)
    assert await fake.emit_connected()

    await expect(step.locator(".ch-linked")).to_contain_text(OWN_DISPLAY)
    await expect(page.locator("#whatsapp-next")).to_be_enabled()  # pairing the owner can wait
    await step.locator(".ch-get-code").click()
    await expect(step.locator(".ch-code-box .ch-bigcode")).to_have_text(re.compile(r"^\d{4}$"))
    code = await step.locator(".ch-code-box .ch-bigcode").inner_text()
    await expect(step.locator(".ch-send")).to_contain_text(f"From your own WhatsApp, send {code} to {OWN_DISPLAY}")
    await shot(page, "wizard-3-whatsapp-dedicated-code")
    assert await fake.emit_message(text_dm(code, sender=FRIEND, push_name="Ann"))
    await expect(page.locator('.wz-step[data-step="4"]')).to_be_visible()
