"""A channel's own settings: declared in its folder, stored beside the app's, overridden and checked like them."""

from __future__ import annotations

import json

import pytest

from nanoclaw_app.channels import registry
from nanoclaw_app.channels.telegram.settings import TelegramSettings
from nanoclaw_app.channels.whatsapp.settings import WhatsAppSettings
from nanoclaw_app.errors import ConfigError, UserError
from nanoclaw_app.services.app_settings import parse_value
from nanoclaw_app.settings import Settings, load_settings, save_settings


def test_defaults_come_from_the_channels_settings_object(settings: Settings) -> None:
    assert settings.channel(TelegramSettings).api_base_url == "https://api.telegram.org"
    assert settings.channel(WhatsAppSettings) == WhatsAppSettings(reply_only=True, sends_per_minute=20)
    assert settings.channel(WhatsAppSettings).sends_per_minute == 20


def test_the_file_the_environment_and_overrides_set_them_in_that_order(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_settings(settings.paths, {"whatsapp_sends_per_minute": 7, "whatsapp_reply_only": False},
                  theirs=registry.setting_fields())
    loaded = load_settings(settings.paths)
    assert loaded.channel(WhatsAppSettings) == WhatsAppSettings(reply_only=False, sends_per_minute=7)
    monkeypatch.setenv("NANOCLAW_WHATSAPP_SENDS_PER_MINUTE", "9")
    assert load_settings(settings.paths).channel(WhatsAppSettings).sends_per_minute == 9
    overridden = load_settings(settings.paths, whatsapp_sends_per_minute=11)
    assert overridden.channel(WhatsAppSettings).sends_per_minute == 11
    stored = json.loads(settings.paths.settings_file.read_text())
    assert stored["whatsapp_reply_only"] is False  # stored under its flat name, as before channels declared them


def test_a_bad_value_says_the_fix_and_an_unknown_name_is_refused(settings: Settings) -> None:
    save_settings(settings.paths, {"telegram_api_base_url": "ftp://bots"}, theirs=registry.setting_fields())
    with pytest.raises(ConfigError, match="not a web address"):
        load_settings(settings.paths).channel(TelegramSettings)  # checked where the channel reads it
    assert load_settings(settings.paths, telegram_api_base_url="http://localhost:8081")  # an override wins
    save_settings(settings.paths, {"telegram_api_base_url": "https://x.example", "whatsapp_sends_per_minute": "many"},
                  theirs=registry.setting_fields())
    with pytest.raises(ConfigError, match="'whatsapp_sends_per_minute' must be a whole number, got 'many'"):
        load_settings(settings.paths).channel(WhatsAppSettings)
    save_settings(settings.paths, {"whatsapp_sends_per_minute": 500}, theirs=registry.setting_fields())
    with pytest.raises(ConfigError, match="from 1 to 120"):
        load_settings(settings.paths).channel(WhatsAppSettings)
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings(settings.paths, colour="blue")
    with pytest.raises(ConfigError, match="unknown setting"):
        save_settings(settings.paths, {"whatsapp_send_per_minute": 3}, theirs=registry.setting_fields())
    with pytest.raises(UserError, match="cannot be changed here"):
        parse_value("whatsapp_send_per_minute", "3")


def test_replacing_a_channel_setting_keeps_the_others(settings: Settings) -> None:
    changed = settings.replaced({"whatsapp_reply_only": False, "timezone": "Asia/Tokyo"})
    assert changed.channel(WhatsAppSettings) == WhatsAppSettings(reply_only=False, sends_per_minute=20)
    assert changed.timezone == "Asia/Tokyo"
    assert changed.channel(TelegramSettings) == settings.channel(TelegramSettings)
