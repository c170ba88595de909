"""Building the Slack adapter when both tokens are stored (called lazily by the channel registry)."""

from __future__ import annotations

from nanoclaw_app.channels.manifest import ChannelDeps
from nanoclaw_app.channels.slack.setup import APP_SECRET, BOT_SECRET
from nanoclaw_app.core.adapter_contract import ChannelAdapter


async def build(deps: ChannelDeps) -> ChannelAdapter | None:
    """The adapter for the stored tokens, or None when Slack has not been set up."""
    bot_token = await deps.secrets.get(BOT_SECRET)
    app_token = await deps.secrets.get(APP_SECRET)
    if not bot_token or not app_token:
        return None
    from nanoclaw_app.channels.slack.adapter import SlackAdapter

    return SlackAdapter(deps, bot_token=bot_token, app_token=app_token)
