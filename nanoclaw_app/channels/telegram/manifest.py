"""The Telegram channel as the app lists it: its setup actions and how its adapter is built."""

from __future__ import annotations

from nanoclaw_app.channels.manifest import ActionField, ChannelDeps, ChannelManifest, SetupAction
from nanoclaw_app.channels.telegram import setup
from nanoclaw_app.channels.telegram.settings import TelegramSettings
from nanoclaw_app.core.adapter_contract import ChannelAdapter


async def _build(deps: ChannelDeps) -> ChannelAdapter | None:
    from nanoclaw_app.channels.telegram.factory import build

    return await build(deps)


MANIFEST = ChannelManifest(
    name="telegram",
    title="Telegram",
    build=_build,
    setup=setup.TelegramSetup(),
    actions={
        "token": SetupAction(setup.save_token, "Check and save the Telegram bot token",
                             fields=(ActionField("token", "Bot token from @BotFather", secret=True),)),
        "api-server": SetupAction(setup.set_api_server, "Use another Telegram Bot API server", method="PUT",
                                  fields=(ActionField("url", "the Bot API server's address; empty for Telegram's"),)),
    },
    token_action="token",  # noqa: S106 - the action's name
    in_wizard=True,
    pair_hint=setup.pair_hint,
    settings=TelegramSettings,
)
