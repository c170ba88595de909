"""Setting Slack up from the app and the CLI: the Slack app's manifest, checking its two tokens, keeping them.

A Slack app has a bot token (``xoxb-…``, what the bot does) and an app-level token (``xapp-…``, which opens the
Socket Mode websocket); both are checked before anything is kept. slack_sdk is imported inside :func:`check_tokens`,
so listing the channels never loads it. The tokens go to the secret store and are never returned or logged.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nanoclaw_app.channels.manifest import SetupContext
from nanoclaw_app.channels.slack.settings import SlackSettings
from nanoclaw_app.channels.token_setup import TokenSetup, keep_tokens, load_record, require_secret_store
from nanoclaw_app.errors import TransientError, UserError

log = logging.getLogger(__name__)

BOT_SECRET = "slack.bot_token"  # noqa: S105 - the secret's name, not its value
APP_SECRET = "slack.app_token"  # noqa: S105 - the secret's name, not its value
BOT_LABEL = "Slack bot token"
APP_LABEL = "Slack app-level token"
WORKSPACE_KEY = "slack.workspace"
"""The workspace and bot the saved tokens belong to (JSON, in ``app_state``), so the page names them while off."""
CHECK_TIMEOUT_SECONDS = 10
REFUSED = frozenset({"invalid_auth", "not_authed", "token_revoked", "account_inactive", "token_expired",
                     "not_allowed_token_type", "no_permission", "missing_scope"})
"""Answers that mean the token itself is wrong (anything else is Slack having a moment)."""

SCOPES = ("app_mentions:read", "channels:history", "channels:read", "chat:write", "files:read", "files:write",
          "groups:history", "groups:read", "im:history", "im:read", "im:write", "mpim:history", "mpim:read",
          "reactions:write", "users:read")
EVENTS = ("app_mention", "message.channels", "message.groups", "message.im", "message.mpim")


def app_manifest(name: str = "NanoClaw") -> dict[str, Any]:
    """The manifest to paste into api.slack.com → Create New App → From a manifest: Socket Mode, scopes, events."""
    return {
        "display_information": {"name": name, "description": "Your NanoClaw assistant"},
        "features": {
            "app_home": {"home_tab_enabled": False, "messages_tab_enabled": True,
                         "messages_tab_read_only_enabled": False},
            "bot_user": {"display_name": name, "always_online": True},
        },
        "oauth_config": {"scopes": {"bot": list(SCOPES)}},
        "settings": {
            "event_subscriptions": {"bot_events": list(EVENTS)},
            "interactivity": {"is_enabled": True},
            "org_deploy_enabled": False,
            "socket_mode_enabled": True,
            "token_rotation_enabled": False,
        },
    }


@dataclass(frozen=True, slots=True)
class Workspace:
    """Who the tokens belong to, as ``auth.test`` reports it."""

    team: str
    team_id: str
    url: str
    bot_user_id: str
    bot_name: str


def _clean(value: object, prefix: str, what: str, where: str) -> str:
    clean = value.strip() if isinstance(value, str) else ""
    if not clean:
        raise UserError(f"paste the {what} ({prefix}…) from {where}")
    if not clean.startswith(prefix) or any(c.isspace() for c in clean) or len(clean) < len(prefix) + 10:
        raise UserError(f"this does not look like a Slack {what}: it starts with {prefix} — copy the whole token "
                        f"from {where}, without spaces")
    return clean


def clean_tokens(body: Mapping[str, Any]) -> tuple[str, str]:
    """``(bot token, app token)`` as Slack gave them; a clear error for anything else pasted (the two swapped too)."""
    bot, app = body.get("bot_token"), body.get("app_token")
    if isinstance(bot, str) and isinstance(app, str) and bot.strip().startswith("xapp-") and \
            app.strip().startswith("xoxb-"):
        raise UserError("the two tokens are swapped: the bot token starts with xoxb-, the app-level token with xapp-")
    return (_clean(bot, "xoxb-", "bot token", "OAuth & Permissions → Bot User OAuth Token"),
            _clean(app, "xapp-", "app-level token", "Basic Information → App-Level Tokens"))


async def check_tokens(bot_token: str, app_token: str, api_url: str) -> Workspace:
    """Ask Slack who the bot token belongs to (``auth.test``) and whether the app token may open Socket Mode.

    Raises:
        UserError: a token was refused (revoked, mistyped, the app not installed, Socket Mode off).
        TransientError: Slack could not be reached; try again later.
    """
    import aiohttp
    from slack_sdk.errors import SlackApiError
    from slack_sdk.web.async_client import AsyncWebClient

    client = AsyncWebClient(token=bot_token, base_url=api_url, timeout=CHECK_TIMEOUT_SECONDS)
    step = "bot"
    try:
        me = await client.auth_test()
        step = "app"
        await client.apps_connections_open(app_token=app_token)
    except SlackApiError as err:
        error = str(err.response.get("error", ""))
        log.info("Slack refused the %s token (%s)", step, error)  # the library's message may carry the token
        if step == "bot" and error in REFUSED:
            raise UserError("Slack refused the bot token: it may be mistyped, or the app was removed from the "
                            "workspace. Copy it again from OAuth & Permissions (Bot User OAuth Token, "
                            "xoxb-…)") from None
        if step == "app" and error in REFUSED:
            raise UserError("Slack refused the app-level token: it may be mistyped or lack the connections:write "
                            "scope. Create it again under Basic Information → App-Level Tokens") from None
        if error == "ratelimited":
            raise TransientError("Slack asks to wait a little before checking again") from None
        if step == "app":
            raise UserError("Slack did not open Socket Mode for this app: turn Socket Mode on under Settings → "
                            f"Socket Mode ({error})") from None
        raise TransientError(f"Slack did not answer as expected ({error}); try again in a moment") from None
    except (aiohttp.ClientError, TimeoutError, OSError) as err:
        log.info("Slack not reachable at %s: %s", api_url, type(err).__name__)
        raise TransientError(f"Slack could not be reached at {api_url}; check the internet connection and try "
                             "again") from None
    return Workspace(team=str(me.get("team") or ""), team_id=str(me.get("team_id") or ""),
                     url=str(me.get("url") or ""), bot_user_id=str(me.get("user_id") or ""),
                     bot_name=str(me.get("user") or ""))


@dataclass
class TokensSaved:
    """Checked and saved tokens: the workspace, and the channel now."""

    workspace: Workspace
    started: bool
    """False in a CLI process without a running NanoClaw: Slack starts with it."""
    channel: Any
    message: str
    """What happened, in one sentence (the CLI prints it)."""


async def saved_workspace(ctx: SetupContext) -> Workspace | None:
    """The workspace the saved tokens belong to, as recorded when they were checked."""
    return await load_record(ctx, WORKSPACE_KEY, lambda data: Workspace(
        **{f.name: str(data[f.name]) for f in dataclasses.fields(Workspace)}), "Slack workspace", log)


async def save_tokens(ctx: SetupContext, body: Mapping[str, Any]) -> TokensSaved:
    """Check both tokens with Slack, keep them in the secret store, turn Slack on and (re)start it.

    Nothing is kept when Slack refuses either token. Without a running host they are kept and Slack starts with
    NanoClaw.
    """
    bot_token, app_token = clean_tokens(body)
    require_secret_store(ctx, "the tokens")
    workspace = await check_tokens(bot_token, app_token, ctx.settings.channel(SlackSettings).api_url)
    started = await keep_tokens(ctx, [(BOT_SECRET, bot_token, BOT_LABEL), (APP_SECRET, app_token, APP_LABEL)],
                                WORKSPACE_KEY, dataclasses.asdict(workspace))
    log.info("channels: Slack tokens for @%s in %s saved%s", workspace.bot_name, workspace.team,
             "" if started else " (starts with NanoClaw)")
    ctx.changed()
    return TokensSaved(workspace=workspace, started=started, channel=await ctx.view(),
                       message=f"Slack app @{workspace.bot_name} in {workspace.team} checked and saved")


async def show_manifest(ctx: SetupContext, body: Mapping[str, Any]) -> dict[str, Any]:
    """The Slack app manifest (for the CLI; the page shows it from the details)."""
    return {"manifest": app_manifest()}


class SlackSetup(TokenSetup):
    """The Slack half of the channels service."""

    secrets = (BOT_SECRET, APP_SECRET)
    record_key = WORKSPACE_KEY
    not_connected = "Slack is not connected yet: create the Slack app and paste its two tokens"
    no_tokens = "Slack has no tokens yet: create the Slack app and paste its two tokens first"

    async def details(self, ctx: SetupContext) -> dict[str, Any]:
        """The workspace and bot, and the app manifest to paste into Slack."""
        workspace = await saved_workspace(ctx)
        return {"workspace": None if workspace is None else dataclasses.asdict(workspace),
                "app_manifest": json.dumps(app_manifest(), indent=2)}

    async def send_to(self, ctx: SetupContext) -> str | None:
        """The bot's handle."""
        workspace = await saved_workspace(ctx)
        return f"@{workspace.bot_name}" if workspace is not None and workspace.bot_name else None


def pair_hint(code: str, send_to: str | None) -> str:
    """Where the owner sends a pairing code (in a channel the bot must be mentioned)."""
    bot = send_to or "the NanoClaw app"
    return f"Send {code} to {bot} in a direct message in Slack (in a channel: {send_to or '@NanoClaw'} {code})."
