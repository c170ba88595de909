"""Where the link to Slack stands: the shared link keeper with Slack's words.

States come from bolt's listeners, the health watcher and failed sends alike. The health watcher reports every few
seconds while Slack is away, so a reconnecting link is told once per outage (``quiet_retries``), not once per attempt.
"""

from __future__ import annotations

from nanoclaw_app.channels.link import ChannelLink

CHANNEL = "slack"
REVOKED_NOTICE = (
    "Slack refused the app's tokens: the app was removed from the workspace or its tokens were regenerated. Paste "
    "the new tokens on the Channels page."
)


class Link(ChannelLink):
    """The Slack connection's state as the app shows it."""

    channel = CHANNEL
    title = "Slack"
    refused_notice = REVOKED_NOTICE
    quiet_retries = True
