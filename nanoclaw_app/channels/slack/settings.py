"""Slack's own settings (stored as ``slack_<field>``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from nanoclaw_app.channels.manifest import ChannelSettings
from nanoclaw_app.errors import ConfigError


@dataclass(frozen=True)
class SlackSettings(ChannelSettings):
    """Where the app talks to Slack, and how often the Socket Mode link is checked."""

    channel: ClassVar[str] = "slack"

    api_base_url: str = "https://slack.com/api/"
    """Slack's Web API; ``apps.connections.open`` there names the websocket to dial (tests point it at a fake)."""
    ping_interval_seconds: float = 5.0
    """How often the websocket is pinged and its health checked; a drop is noticed and redialled within about this."""

    def check(self) -> None:
        """The API must be a web address and the interval sensible."""
        if not self.api_base_url.startswith(("http://", "https://")):
            raise ConfigError("setting 'slack_api_base_url' must start with http:// or https://")
        if not 0.1 <= self.ping_interval_seconds <= 300:
            raise ConfigError("setting 'slack_ping_interval_seconds' must be between 0.1 and 300")

    @property
    def api_url(self) -> str:
        """The base URL as slack_sdk wants it (with the trailing slash it joins method names to)."""
        return self.api_base_url.rstrip("/") + "/"
