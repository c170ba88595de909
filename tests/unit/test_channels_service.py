"""The channel setup service without a running NanoClaw (a CLI process): what works on the database, what says to
start NanoClaw first, and the checks on what a person types (phone numbers, bot tokens)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from nanoclaw_app.channels import registry as channel_registry
from nanoclaw_app.channels.telegram.settings import TelegramSettings
from nanoclaw_app.channels.telegram.setup import BOT_KEY
from nanoclaw_app.channels.whatsapp import state_keys
from nanoclaw_app.channels.whatsapp.setup import clean_phone
from nanoclaw_app.core import pairing
from nanoclaw_app.db import agents as agents_db
from nanoclaw_app.db import app_state, delivery_attempts, messaging
from nanoclaw_app.errors import ConfigError, NotFound, TransientError, UserError
from nanoclaw_app.secrets.store import SecretStore
from nanoclaw_app.services import channels
from nanoclaw_app.services.context import AppServices
from nanoclaw_app.services.offline import offline_services
from nanoclaw_app.settings import Settings, load_settings
from tests.fakes.keyring import MemoryKeyring
from tests.fakes.telegram_api import BOT_USERNAME, TOKEN, FakeBotApi


def act(services: AppServices, name: str, action: str, body: dict[str, object] | None = None,
        method: str = "POST") -> Any:
    """A channel's setup action, as the app's API runs it."""
    return channels.run_action(services, name, action, method, body)


@pytest.fixture
async def bot_api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as fake:
        yield fake


@pytest.fixture
def keyring_backend() -> MemoryKeyring:
    return MemoryKeyring()


@pytest.fixture
async def services(settings: Settings, bot_api: FakeBotApi, keyring_backend: MemoryKeyring
                   ) -> AsyncIterator[AppServices]:
    pointed = load_settings(settings.paths, timezone="Europe/Berlin", telegram_api_base_url=bot_api.base_url)
    async with offline_services(pointed, SecretStore(keyring_backend)) as found:
        yield found


async def test_actions_that_need_the_live_link_say_to_start_nanoclaw_first(services: AppServices) -> None:
    attempts = [
        act(services, "whatsapp", "enable", {"mode": "self"}),
        act(services, "whatsapp", "qr", method="GET"),
        act(services, "whatsapp", "phone-code", {"phone": "+49 170 1234567"}),
        act(services, "whatsapp", "logout"),
        act(services, "whatsapp", "repair"),
        act(services, "whatsapp", "reconnect"),
        channels.enable_channel(services, "telegram"),
        channels.new_pairing_code(services, "telegram"),
    ]
    for attempt in attempts:
        with pytest.raises(ConfigError, match="NanoClaw is not running: start it"):
            await attempt
    assert not await channel_registry.is_enabled(services.ctx.db, "whatsapp")
    assert await pairing.pending(services.ctx.db, "telegram") == []


async def test_the_listing_shows_each_channel_with_its_mode_chats_and_waiting_replies(services: AppServices) -> None:
    db = services.ctx.db
    agent = await agents_db.create(db, "Ada")
    dm = await messaging.create(db, "telegram", "4242", name="Ann Koch")
    await messaging.wire(db, dm.id, agent.id, messaging.WiringSpec(engage_mode="pattern", engage_pattern="."))
    await messaging.create(db, "telegram", "-100", name="Family", is_group=True)
    await messaging.create(db, "webchat", "owner", name="App chat")  # not a phone channel: not listed
    for n in range(3):
        await delivery_attempts.begin(db, "sess-1", f"out-{n}")
        await delivery_attempts.wait_for_channel(db, "sess-1", f"out-{n}", "telegram", "Telegram is down",
                                                 "2030-01-01T00:00:00Z")
    await app_state.put(db, state_keys.MODE_KEY, "self")
    await channel_registry.set_enabled(db, "telegram", True)

    listed = {view.name: view for view in await channels.list_channels(services)}
    whatsapp, telegram = listed["whatsapp"], listed["telegram"]

    assert (whatsapp.name, whatsapp.details["mode"], whatsapp.enabled, whatsapp.running) == (
        "whatsapp", "self", False, False)
    assert whatsapp.status.state == "not_paired"
    assert whatsapp.chats == []
    assert telegram.enabled is True
    assert telegram.status.state == "stopped"
    assert "NanoClaw is not running" in telegram.status.detail
    assert telegram.waiting == 3
    assert [(c.title, c.is_group, c.agents) for c in telegram.chats] == [("Ann Koch", False, ["Ada"]),
                                                                       ("Family", True, [])]
    with pytest.raises(NotFound, match="no channel called 'signal'"):
        await channels.get_channel(services, "signal")


async def test_a_good_token_is_checked_kept_and_turns_telegram_on_for_the_next_start(
    services: AppServices, bot_api: FakeBotApi, keyring_backend: MemoryKeyring
) -> None:
    result = await act(services, "telegram", "token", {"token": f"  {TOKEN}\n"})

    assert result.bot.username == BOT_USERNAME
    assert result.started is False  # no NanoClaw running: it starts with it
    assert result.privacy_mode is True
    assert result.privacy_note is not None
    assert "/setprivacy" in result.privacy_note
    assert f"@{BOT_USERNAME}" in result.privacy_note
    assert keyring_backend.values[("nanoclaw", "telegram.bot_token")] == TOKEN
    assert [name for name, _ in bot_api.calls] == ["getMe"]
    assert await channel_registry.is_enabled(services.ctx.db, "telegram")
    assert result.channel.set_up is True
    assert result.channel.details["bot"] is not None
    assert result.channel.details["bot"]["username"] == BOT_USERNAME
    assert TOKEN not in json.dumps(dataclasses.asdict(result))


async def test_a_refused_or_malformed_token_keeps_nothing(
    services: AppServices, bot_api: FakeBotApi, keyring_backend: MemoryKeyring
) -> None:
    with pytest.raises(UserError, match="does not look like a bot token"):
        await act(services, "telegram", "token", {"token": "my bot password"})
    assert bot_api.calls == []  # refused before any request

    other = "987654321:AAHsomeoneElsesTokenThatTelegramRefuses"
    with pytest.raises(UserError, match="Telegram refused this token"):
        await act(services, "telegram", "token", {"token": other})
    assert keyring_backend.values == {}
    assert not await channel_registry.is_enabled(services.ctx.db, "telegram")
    assert await app_state.get(services.ctx.db, BOT_KEY) is None


async def test_without_a_usable_secret_store_the_token_is_refused_with_the_fix(settings: Settings) -> None:
    async with offline_services(settings) as services:  # no secret backend opened
        with pytest.raises(ConfigError, match="Set a passphrase for the secret store in Settings"):
            await act(services, "telegram", "token", {"token": TOKEN})


async def test_turning_off_keeps_the_setup_unless_it_is_forgotten(
    services: AppServices, keyring_backend: MemoryKeyring
) -> None:
    db = services.ctx.db
    await act(services, "telegram", "token", {"token": TOKEN})
    await pairing.create_code(db, "telegram")
    device = services.settings.paths.channels / "whatsapp" / "device.db"
    device.parent.mkdir(parents=True, exist_ok=True)
    device.write_bytes(b"linked")
    await app_state.put(db, state_keys.NUMBER_KEY, "491701234567")  # as the adapter keeps it while linked
    await channel_registry.set_enabled(db, "whatsapp", True)

    telegram = await channels.disable_channel(services, "telegram")
    assert (telegram.enabled, telegram.set_up, telegram.status.state) == (False, True, "stopped")
    assert await pairing.pending(db, "telegram") == []  # a code shown before no longer pairs anything
    assert ("nanoclaw", "telegram.bot_token") in keyring_backend.values
    whatsapp = await channels.disable_channel(services, "whatsapp")
    assert (whatsapp.enabled, whatsapp.set_up) == (False, True)
    assert device.exists()

    forgotten = await channels.disable_channel(services, "telegram", forget=True)
    assert (forgotten.set_up, forgotten.details["bot"]) == (False, None)
    assert ("nanoclaw", "telegram.bot_token") not in keyring_backend.values
    unlinked = await channels.disable_channel(services, "whatsapp", forget=True)
    assert unlinked.set_up is False
    assert not device.exists()


async def test_a_bot_api_server_address_is_checked_with_the_saved_token_before_it_is_saved(
    services: AppServices, bot_api: FakeBotApi
) -> None:
    await act(services, "telegram", "token", {"token": TOKEN})
    with pytest.raises(UserError, match="must start with http"):
        await act(services, "telegram", "api-server", {"url": "ftp://bots.example"}, "PUT")
    nothing_there = "http://127.0.0.1:9"  # the discard port: nothing answers
    with pytest.raises(TransientError, match="could not be reached"):
        await act(services, "telegram", "api-server", {"url": nothing_there}, "PUT")
    assert services.settings.channel(TelegramSettings).api_base_url == bot_api.base_url
    assert not services.settings.paths.settings_file.exists()

    other = FakeBotApi()
    await other.start()
    try:
        view = await act(services, "telegram", "api-server", {"url": f"{other.base_url}/"}, "PUT")
    finally:
        await other.stop()
    assert view.details["api_base_url"] == other.base_url
    assert services.settings.channel(TelegramSettings).api_base_url == other.base_url
    saved = json.loads(services.settings.paths.settings_file.read_text())
    assert saved["telegram_api_base_url"] == other.base_url
    assert [name for name, _ in other.calls] == ["getMe"]


@pytest.mark.parametrize(("typed", "digits"), [
    ("+49 170 1234567", "491701234567"),
    ("0049 (170) 123-4567", "491701234567"),
    ("+1.415.555.0100", "14155550100"),
])
async def test_phone_numbers_are_taken_in_the_usual_ways(typed: str, digits: str) -> None:
    assert clean_phone(typed) == digits


@pytest.mark.parametrize(("typed", "words"), [
    ("0170 1234567", "country code"),
    ("call me", "country code"),
    ("+49 12", "country code"),
    ("", "country code"),
])
async def test_a_phone_number_without_its_country_code_is_refused_with_an_example(typed: str, words: str) -> None:
    with pytest.raises(UserError, match=words) as caught:
        clean_phone(typed)
    assert "+49" in str(caught.value)
