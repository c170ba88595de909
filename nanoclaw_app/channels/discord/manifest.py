"""The Discord channel as the app lists it: its setup actions and how its adapter is built."""

from __future__ import annotations

from nanoclaw_app.channels.discord import setup
from nanoclaw_app.channels.discord.settings import DiscordSettings
from nanoclaw_app.channels.manifest import ActionField, ChannelDeps, ChannelManifest, SetupAction, library_check
from nanoclaw_app.core.adapter_contract import ChannelAdapter


async def _build(deps: ChannelDeps) -> ChannelAdapter | None:
    from nanoclaw_app.channels.discord.factory import build

    return await build(deps)


MANIFEST = ChannelManifest(
    name="discord",
    title="Discord",
    build=_build,
    setup=setup.DiscordSetup(),
    actions={
        "token": SetupAction(setup.save_token, "Check and save the Discord bot token",
                             fields=(ActionField("token", "Bot token from the Discord developer portal",
                                                 secret=True),)),
        "retry": SetupAction(setup.retry, "Connect to Discord again (after fixing something in the portal)"),
    },
    token_action="token",  # noqa: S106 - the action's name
    in_wizard=False,
    pair_hint=setup.pair_hint,
    settings=DiscordSettings,
    self_check=library_check("Discord", "discord.py", "discord"),
)
