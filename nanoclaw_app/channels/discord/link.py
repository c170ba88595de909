"""Where the link to Discord stands: the shared link keeper, plus Discord's refused intent.

discord.py reconnects (with growing, randomised waits) and resumes the gateway session by itself; its events
(``ready``, ``resumed``, ``disconnect``) and what ends its connection loop are turned into states here. A failed state
says in ``extra["problem"]`` what to fix (``token``, ``intent``, ``other``), so the page can show the right help.
"""

from __future__ import annotations

from nanoclaw_app.channels.link import ChannelLink

CHANNEL = "discord"
REFUSED_NOTICE = (
    "Discord refused the bot token: it was reset or the bot was deleted in the developer portal. Paste the new token "
    "on the Channels page."
)
INTENT_NOTICE = (
    "Discord refused the connection because the bot's Message Content Intent is off. In the Discord developer portal "
    "open your application → Bot → Privileged Gateway Intents, turn on Message Content Intent, save, then press "
    "Try again."
)


class Link(ChannelLink):
    """The Discord connection's state as the app shows it."""

    channel = CHANNEL
    title = "Discord"
    refused_notice = REFUSED_NOTICE
    refused_problem = "token"
    broken_problem = "other"

    def intent_refused(self) -> None:
        """Discord closed the gateway with 4014: the Message Content intent is not turned on for the bot."""
        self._fail(INTENT_NOTICE, problem="intent")
