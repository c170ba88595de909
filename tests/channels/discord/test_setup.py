"""Setting Discord up and keeping it connected: the token check, the invite link, the Channels page API, a refused
token and a refused Message Content intent in plain words.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from nanoclaw_app.channels.discord import factory
from nanoclaw_app.channels.discord.settings import DiscordSettings
from nanoclaw_app.channels.discord.setup import INVITE_PERMISSIONS, TOKEN_SECRET, check_token, invite_url
from nanoclaw_app.channels.manifest import ChannelDeps
from nanoclaw_app.core.messages import OutboundMessage
from nanoclaw_app.errors import ChannelDown, TransientError, UserError
from nanoclaw_app.host import Host
from nanoclaw_app.secrets.store import SecretStore
from nanoclaw_app.settings import Settings
from tests.channels.discord.conftest import wait_status
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.discord_gateway import INTENT_MESSAGE_CONTENT
from tests.fakes.discord_model import BOT, TOKEN
from tests.fakes.keyring import MemoryKeyring
from tests.fakes.runtime import InProcessRuntime
from tests.waiting import until
from tests.web.conftest import sign_in

OTHER_TOKEN = "MTEwMDAwMDAwMDAwMDAwMDAwMg.OtherT.not-the-right-token-for-this-bot-99"


def aimed(settings: Settings) -> DiscordSettings:
    return settings.channel(DiscordSettings)


async def test_a_good_token_tells_who_the_bot_is_and_gives_the_invite_link(
    fake: FakeDiscord, dc_settings: Settings
) -> None:
    info = await check_token(TOKEN, aimed(dc_settings))
    assert (info.id, info.username, info.name, info.app_id) == (str(BOT.id), "nano", "Nano", str(BOT.id))
    assert [c.path for c in fake.calls] == ["/users/@me", "/oauth2/applications/@me"]

    link = urlparse(invite_url(info.app_id))
    query = parse_qs(link.query)
    assert (link.netloc, link.path) == ("discord.com", "/oauth2/authorize")
    assert query["client_id"] == [str(BOT.id)]
    assert query["scope"] == ["bot applications.commands"]
    permissions = int(query["permissions"][0])
    for bit in (6, 10, 11, 14, 15, 16, 35, 38):  # reactions, view, send, embeds, files, history, threads, in threads
        assert permissions & (1 << bit)
    assert permissions == INVITE_PERMISSIONS
    assert not permissions & (1 << 3)  # never administrator


async def test_a_refused_token_says_so_without_repeating_it(fake: FakeDiscord, dc_settings: Settings) -> None:
    with pytest.raises(UserError, match="Discord refused this token") as caught:
        await check_token(OTHER_TOKEN, aimed(dc_settings))
    assert OTHER_TOKEN not in str(caught.value)


async def test_what_is_not_a_token_is_refused_before_asking_discord(
    fake: FakeDiscord, dc_settings: Settings
) -> None:
    for bad, words in (("", "paste the bot token"), ("1100000000000000001", "application id"),
                       ("a" * 32, "client secret"), ("hello there", "does not look like")):
        with pytest.raises(UserError, match=words):
            await check_token(bad, aimed(dc_settings))
    assert fake.calls == []
    assert (await check_token(f"Bot {TOKEN} ", aimed(dc_settings))).username == "nano"  # pasted with its prefix


async def test_an_unreachable_discord_is_a_transient_error(fake: FakeDiscord, dc_settings: Settings) -> None:
    await fake.stop()
    with pytest.raises(TransientError, match="could not be reached"):
        await check_token(TOKEN, aimed(dc_settings))


async def test_without_a_token_there_is_no_adapter(dc_settings: Settings, host: Host) -> None:
    deps = ChannelDeps(settings=dc_settings, db=host.db, events=host.events, secrets=SecretStore(MemoryKeyring()),
                       store=host.store)
    assert await factory.build(deps) is None
    await deps.secrets.set(TOKEN_SECRET, TOKEN)
    adapter = await factory.build(deps)
    assert adapter is not None
    assert (adapter.channel_type, adapter.supports_threads) == ("discord", True)
    assert adapter.status().state == "stopped"


async def test_a_token_refused_at_start_fails_the_channel_in_plain_words(fake: FakeDiscord, host: Host) -> None:
    await host.secrets.set(TOKEN_SECRET, OTHER_TOKEN)
    adapter = await host.start_channel("discord")
    status = await wait_status(host, "failed")
    assert "refused the bot token" in status.detail
    assert status.alert is not None
    with pytest.raises(ChannelDown):
        await adapter.deliver("1", None, OutboundMessage(kind="text", delivery_id="d1", text="hi"))


async def test_a_missing_message_content_intent_is_explained_with_where_to_turn_it_on(
    fake: FakeDiscord, host: Host
) -> None:
    fake.gateway.granted_intents &= ~INTENT_MESSAGE_CONTENT  # Discord closes the gateway with 4014
    await host.start_channel("discord")
    status = await wait_status(host, "failed")
    assert "Message Content Intent" in status.detail
    assert "developer portal" in status.detail
    assert status.extra == {"problem": "intent"}

    fake.gateway.granted_intents |= INTENT_MESSAGE_CONTENT  # the owner turned it on and presses Try again
    await host.stop_channel("discord")
    await host.start_channel("discord")
    await wait_status(host, "connected")


async def test_setup_does_not_wait_for_an_unreachable_discord_and_connects_when_it_is_back(
    fake: FakeDiscord, host: Host
) -> None:
    await fake.stop()
    adapter = await host.start_channel("discord")  # returns although nothing answers
    status = await wait_status(host, "reconnecting")
    assert status.retry_at is not None
    assert not adapter.is_connected()
    await fake.start()
    status = await wait_status(host, "connected")
    assert status.account == "nano"


# ---------------------------------------------------------------------------------------------------- the page API


@pytest.fixture
async def web_host(dc_settings: Settings) -> AsyncIterator[Host]:
    server = Host(dc_settings, runtime=InProcessRuntime(), secrets=SecretStore(MemoryKeyring()))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def client(web_host: Host) -> AsyncIterator[httpx.AsyncClient]:
    assert web_host.url is not None
    async with httpx.AsyncClient(base_url=web_host.url.rstrip("/"), timeout=30) as c:
        await sign_in(c, web_host)
        yield c


async def test_the_channels_page_lists_discord_and_a_saved_token_is_never_sent_back(
    client: httpx.AsyncClient, web_host: Host, fake: FakeDiscord
) -> None:
    listed = (await client.get("/api/channels")).json()["channels"]
    [discord] = [c for c in listed if c["name"] == "discord"]
    assert (discord["title"], discord["enabled"], discord["status"]["state"], discord["in_wizard"]) == (
        "Discord", False, "not_paired", False)
    assert discord["page_module"] == "/static/channels/discord.js"
    assert (await client.get("/static/channels/discord.js")).status_code == 200

    refused = await client.post("/api/channels/discord/token", json={"token": OTHER_TOKEN})
    assert refused.status_code == 400
    assert "Discord refused this token" in refused.json()["error"]

    saved = await client.post("/api/channels/discord/token", json={"token": TOKEN})
    assert saved.status_code in (200, 201), saved.text
    assert TOKEN not in saved.text
    assert saved.json()["invite_url"].startswith("https://discord.com/oauth2/authorize?")

    async def connected() -> bool:
        view = (await client.get("/api/channels/discord")).json()
        return bool(view["status"]["state"] == "connected")

    await until(connected, 30)
    view = (await client.get("/api/channels/discord")).json()
    assert TOKEN not in str(view)
    assert view["details"]["bot"]["username"] == "nano"
    assert view["details"]["invite_url"] == invite_url(str(BOT.id))
    code = (await client.post("/api/channels/discord/pairing-code", json={})).json()
    assert code["send_to"] == "nano"
