"""Where the link to Telegram stands: the shared link keeper, plus the state only Telegram has (``replaced``).

States come from PTB's synchronous error callback as well as from coroutines; :class:`ChannelLink` keeps their order.
"""

from __future__ import annotations

from nanoclaw_app.channels.link import ChannelLink

CHANNEL = "telegram"
REVOKED_NOTICE = (
    "Telegram refused the bot token: it was revoked or replaced in @BotFather. Enter the new token on the Channels "
    "page."
)


class Link(ChannelLink):
    """The Telegram connection's state as the app shows it."""

    channel = CHANNEL
    title = "Telegram"
    refused_notice = REVOKED_NOTICE

    @property
    def can_send(self) -> bool:
        """Whether sends may be tried: connected, or only polling is taken over by another program."""
        return self._status.state in ("connected", "replaced")

    def replaced(self) -> None:
        """Another program polls with the same token; Telegram gives updates to one of them only."""
        if self._status.state == "replaced" or self.failed:
            return
        self._set("replaced", "Another program is receiving this bot's messages (Telegram allows one at a time). "
                              "Stop the other program, or create a new token for NanoClaw in @BotFather.",
                  alert="Telegram: another program is using the bot's token, so NanoClaw misses messages there.")
