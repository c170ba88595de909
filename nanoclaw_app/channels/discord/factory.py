"""Building the Discord adapter when a bot token is stored (called lazily by the channel registry)."""

from __future__ import annotations

from nanoclaw_app.channels.discord.setup import TOKEN_SECRET
from nanoclaw_app.channels.manifest import ChannelDeps
from nanoclaw_app.core.adapter_contract import ChannelAdapter


async def build(deps: ChannelDeps) -> ChannelAdapter | None:
    """The adapter for the stored token, or None when Discord has not been set up."""
    token = await deps.secrets.get(TOKEN_SECRET)
    if not token:
        return None
    from nanoclaw_app.channels.discord.adapter import DiscordAdapter

    return DiscordAdapter(deps, token=token)
