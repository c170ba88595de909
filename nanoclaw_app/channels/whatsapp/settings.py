"""WhatsApp's own settings (stored as ``whatsapp_<field>``): the guardrails against bans."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from nanoclaw_app.channels.manifest import ChannelSettings
from nanoclaw_app.errors import ConfigError


@dataclass(frozen=True)
class WhatsAppSettings(ChannelSettings):
    """How carefully NanoClaw sends, so WhatsApp does not take the number for a spammer."""

    channel: ClassVar[str] = "whatsapp"

    reply_only: bool = field(default=True, metadata={"page": True})
    """Only send to chats that wrote to this number first (no cold messages)."""
    sends_per_minute: int = field(default=20, metadata={"page": True, "min": 1, "max": 120})
    """Most messages sent per minute over all chats; more wait their turn."""

    def check(self) -> None:
        """Between one and 120 sends a minute (more would look like a bot to WhatsApp)."""
        if not 1 <= self.sends_per_minute <= 120:
            raise ConfigError("WhatsApp sends per minute must be a whole number from 1 to 120 "
                              "(setting 'whatsapp_sends_per_minute')")
