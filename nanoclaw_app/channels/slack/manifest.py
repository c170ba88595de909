"""The Slack channel as the app lists it: its setup actions and how its adapter is built."""

from __future__ import annotations

from nanoclaw_app.channels.manifest import ActionField, ChannelDeps, ChannelManifest, SetupAction, library_check
from nanoclaw_app.channels.slack import setup
from nanoclaw_app.channels.slack.settings import SlackSettings
from nanoclaw_app.core.adapter_contract import ChannelAdapter


async def _build(deps: ChannelDeps) -> ChannelAdapter | None:
    from nanoclaw_app.channels.slack.factory import build

    return await build(deps)


MANIFEST = ChannelManifest(
    name="slack",
    title="Slack",
    build=_build,
    setup=setup.SlackSetup(),
    actions={
        "tokens": SetupAction(setup.save_tokens, "Check and save the Slack app's bot and app-level tokens",
                              fields=(ActionField("bot_token", "Bot User OAuth Token (xoxb-…)", secret=True),
                                      ActionField("app_token", "App-Level Token (xapp-…)", secret=True))),
        "app-manifest": SetupAction(setup.show_manifest, "The Slack app manifest to paste into api.slack.com",
                                    method="GET"),
    },
    token_action="tokens",  # noqa: S106 - the action's name
    in_wizard=False,
    pair_hint=setup.pair_hint,
    settings=SlackSettings,
    self_check=library_check("Slack", "slack-bolt", "slack_bolt.async_app",
                             "slack_bolt.adapter.socket_mode.async_handler", "slack_sdk.web.async_client"),
)
