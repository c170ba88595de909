"""Setting Discord up from the app and the CLI: checking a bot token (``GET /users/@me``), keeping it, the invite link.

discord.py is imported inside the functions that talk to Discord, so listing the channels never loads it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from nanoclaw_app.channels.discord.settings import DiscordSettings
from nanoclaw_app.channels.manifest import SetupContext
from nanoclaw_app.channels.token_setup import TokenSetup, keep_tokens, load_record, require_secret_store
from nanoclaw_app.errors import TransientError, UserError

log = logging.getLogger(__name__)

TOKEN_SECRET = "discord.bot_token"  # noqa: S105 - the secret's name, not its value
"""The secret store entry holding the bot token."""
TOKEN_LABEL = "Discord bot token"  # noqa: S105 - a label shown next to the name
BOT_KEY = "discord.bot"
"""The bot the saved token belongs to (JSON, in ``app_state``), so the page can name it while Discord is off."""
PORTAL = "https://discord.com/developers/applications"

PERMISSIONS = {
    "add_reactions": 1 << 6,
    "view_channel": 1 << 10,
    "send_messages": 1 << 11,
    "embed_links": 1 << 14,
    "attach_files": 1 << 15,
    "read_message_history": 1 << 16,
    "create_public_threads": 1 << 35,
    "send_messages_in_threads": 1 << 38,
}
"""What the invite link asks for: reading and answering in channels and threads, files, reactions, link cards."""
INVITE_PERMISSIONS = sum(PERMISSIONS.values())
INVITE_SCOPES = "bot applications.commands"
FLAG_MESSAGE_CONTENT = 1 << 18
FLAG_MESSAGE_CONTENT_LIMITED = 1 << 19
"""Application flags: the Message Content intent is turned on in the developer portal (one of the two)."""

_TOKEN = re.compile(r"[A-Za-z0-9_-]{18,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{20,}")
CHECK_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class BotInfo:
    """Who the token belongs to, as Discord reports it."""

    id: str
    username: str
    name: str
    app_id: str
    content_intent: bool
    """Whether the Message Content intent is on (without it, server messages reach the bot only when they mention
    it; the adapter asks for it, and Discord refuses the connection until it is turned on)."""


def invite_url(app_id: str) -> str:
    """The link that adds the bot to a server with the permissions it needs."""
    query = urlencode({"client_id": app_id, "scope": INVITE_SCOPES, "permissions": str(INVITE_PERMISSIONS)})
    return f"https://discord.com/oauth2/authorize?{query}"


def portal_url(app_id: str | None) -> str:
    """The bot's page in the developer portal (token, intents), or the list of applications."""
    return f"{PORTAL}/{app_id}/bot" if app_id else PORTAL


def clean_token(token: str) -> str:
    """The token as the portal shows it; a clear error for something else pasted (the id, the client secret)."""
    clean = token.strip()
    if clean.lower().startswith("bot "):
        clean = clean[4:].strip()
    if not clean:
        raise UserError("paste the bot token from the Discord developer portal (Bot → Reset Token → Copy)")
    if clean.isdigit():
        raise UserError("this is the application id, not the token: on the portal's Bot page press Reset Token and "
                        "copy what it shows")
    if not _TOKEN.fullmatch(clean):
        raise UserError("this does not look like a Discord bot token (three parts joined by dots, about 70 "
                        "characters). The client secret is not it: on the portal's Bot page press Reset Token and "
                        "copy the token")
    return clean


def point_library(settings: DiscordSettings) -> None:
    """Aim discord.py at the configured Discord (the real one, or a fake in tests).

    discord.py has no per-client setting for either address: ``Route.BASE`` and ``DEFAULT_GATEWAY`` are class
    attributes, so this is process-wide. One Discord bot runs per process, so that is what we want.
    """
    import discord.gateway
    import discord.http
    import yarl

    discord.http.Route.BASE = settings.api_base_url.rstrip("/")
    gateway = settings.gateway_url if "/" in settings.gateway_url.split("://", 1)[-1] else settings.gateway_url + "/"
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)


async def check_token(token: str, settings: DiscordSettings) -> BotInfo:
    """Ask Discord who the token belongs to (and the application behind it, for the invite link).

    Raises:
        UserError: the token is malformed, or Discord refused it (reset, mistyped).
        TransientError: Discord could not be reached; try again later.
    """
    import aiohttp
    import discord
    from discord.http import HTTPClient

    clean = clean_token(token)
    point_library(settings)
    http = HTTPClient(asyncio.get_running_loop())
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            me = await http.static_login(clean)
            app = await http.application_info()
    except discord.LoginFailure:
        # The library's messages never contain the token, but ours must not either.
        log.info("Discord refused a bot token")
        raise UserError("Discord refused this token: it may have been reset or mistyped. On the developer portal's "
                        "Bot page press Reset Token and paste the new one") from None
    except discord.HTTPException as err:
        raise TransientError(f"Discord did not answer as expected (HTTP {err.status}); try again in a moment") from None
    except (aiohttp.ClientError, OSError, TimeoutError) as err:
        log.info("Discord not reachable at %s: %s", settings.api_base_url, type(err).__name__)
        raise TransientError(f"Discord could not be reached at {settings.api_base_url}; check the internet "
                             "connection and try again") from None
    finally:
        await http.close()
    flags = int(app.get("flags") or 0)
    return BotInfo(
        id=str(me["id"]),
        username=str(me.get("username") or ""),
        name=str(me.get("global_name") or me.get("username") or ""),
        app_id=str(app.get("id") or me["id"]),
        content_intent=bool(flags & (FLAG_MESSAGE_CONTENT | FLAG_MESSAGE_CONTENT_LIMITED)),
    )


@dataclass
class TokenSaved:
    """A checked and saved token: the bot it belongs to, its invite link, and the channel now."""

    bot: BotInfo
    invite_url: str
    started: bool
    """False in a CLI process without a running NanoClaw: Discord starts with it."""
    channel: Any
    message: str
    """What happened, in one sentence (the CLI prints it)."""
    note: str | None
    """What the owner should still do (the CLI prints it after the message)."""


async def saved_bot(ctx: SetupContext) -> BotInfo | None:
    """The bot the saved token belongs to, as recorded when it was checked."""
    return await load_record(ctx, BOT_KEY, lambda data: BotInfo(
        id=str(data["id"]), username=str(data["username"]), name=str(data["name"]), app_id=str(data["app_id"]),
        content_intent=bool(data["content_intent"])), "Discord bot", log)


async def save_token(ctx: SetupContext, body: Mapping[str, Any]) -> TokenSaved:
    """Check the token with Discord, keep it in the secret store, turn Discord on and (re)start it.

    Nothing is kept when Discord refuses the token. Without a running host the token is kept and Discord starts
    with NanoClaw.
    """
    token = body.get("token")
    clean = clean_token(token if isinstance(token, str) else "")
    require_secret_store(ctx, "the token")
    bot = await check_token(clean, ctx.settings.channel(DiscordSettings))
    started = await keep_tokens(ctx, [(TOKEN_SECRET, clean, TOKEN_LABEL)], BOT_KEY, dataclasses.asdict(bot))
    log.info("channels: Discord token for %s saved%s", bot.username, "" if started else " (starts with NanoClaw)")
    ctx.changed()
    link = invite_url(bot.app_id)
    note = f"Add the bot to your server with this link: {link}"
    if not bot.content_intent:
        note += (f"\nTurn on Message Content Intent on the bot's page ({portal_url(bot.app_id)}), or Discord "
                 "refuses the connection.")
    return TokenSaved(bot=bot, invite_url=link, started=started, channel=await ctx.view(),
                      message=f"Discord bot {bot.username} checked and saved", note=note)


async def retry(ctx: SetupContext, body: Mapping[str, Any]) -> None:
    """Connect again now (after turning the Message Content intent on, or when Discord is back)."""
    ctx.require_host()
    if not await DiscordSetup().is_set_up(ctx):
        raise UserError(DiscordSetup.no_tokens)
    await ctx.set_enabled(True)
    await ctx.start(restart=True)
    ctx.changed()


class DiscordSetup(TokenSetup):
    """The Discord half of the channels service."""

    secrets = (TOKEN_SECRET,)
    record_key = BOT_KEY
    not_connected = "Discord is not connected yet: paste your bot's token"
    no_tokens = "Discord has no bot token yet: paste the token from the developer portal first"

    async def details(self, ctx: SetupContext) -> dict[str, Any]:
        """The bot, its invite link and the developer portal page (where the token and the intent are)."""
        bot = await saved_bot(ctx)
        return {"bot": None if bot is None else dataclasses.asdict(bot),
                "invite_url": None if bot is None else invite_url(bot.app_id),
                "portal_url": portal_url(bot.app_id if bot is not None else None),
                "permissions": sorted(PERMISSIONS)}

    async def send_to(self, ctx: SetupContext) -> str | None:
        """The bot's name."""
        bot = await saved_bot(ctx)
        return bot.username if bot is not None else None


def pair_hint(code: str, send_to: str | None) -> str:
    """Where the owner sends a pairing code (in a server channel, with a mention so the bot sees it)."""
    bot = send_to or "your bot"
    return f"Send {code} to {bot} in a direct message on Discord (in a server channel: @{bot} {code})."
