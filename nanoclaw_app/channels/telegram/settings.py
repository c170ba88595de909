"""Telegram's own settings (stored as ``telegram_<field>``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar

from nanoclaw_app.channels.manifest import ChannelSettings
from nanoclaw_app.errors import ConfigError


@dataclass(frozen=True)
class TelegramSettings(ChannelSettings):
    """Where the bot talks to Telegram."""

    channel: ClassVar[str] = "telegram"

    api_base_url: str = field(default="https://api.telegram.org", metadata={"url": True})
    """Telegram Bot API server (a self-hosted ``telegram-bot-api`` server works too); ``/bot<token>`` is added."""

    def check(self) -> None:
        """The server must be a web address."""
        if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", self.api_base_url):
            raise ConfigError(f"{self.api_base_url!r} is not a web address such as https://api.telegram.org "
                              "(setting 'telegram_api_base_url')")
