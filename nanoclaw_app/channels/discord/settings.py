"""Discord's own settings (stored as ``discord_<field>``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from nanoclaw_app.channels.manifest import ChannelSettings
from nanoclaw_app.errors import ConfigError


@dataclass(frozen=True)
class DiscordSettings(ChannelSettings):
    """Where the bot talks to Discord (tests point both addresses at a fake server on 127.0.0.1)."""

    channel: ClassVar[str] = "discord"

    api_base_url: str = "https://discord.com/api/v10"
    """Discord's REST API, with its version."""
    gateway_url: str = "wss://gateway.discord.gg"
    """Discord's gateway websocket (the live connection that brings messages)."""
    guild_ready_timeout: float = 2.0
    """How long discord.py waits for more servers after the connection is up before it reports "ready"."""

    def check(self) -> None:
        """The addresses must be web addresses; the wait must be sensible."""
        if not self.api_base_url.startswith(("http://", "https://")):
            raise ConfigError("setting 'discord_api_base_url' must start with http:// or https://")
        if not self.gateway_url.startswith(("ws://", "wss://")):
            raise ConfigError("setting 'discord_gateway_url' must start with ws:// or wss://")
        if not 0 <= self.guild_ready_timeout <= 60:
            raise ConfigError("setting 'discord_guild_ready_timeout' must be between 0 and 60 seconds")
