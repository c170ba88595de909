"""Setting Telegram up from the app and the CLI: checking a BotFather token (``getMe``), keeping it, the Bot API server.

The Telegram library is imported inside :func:`check_token`, so listing the channels never loads it.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nanoclaw_app.channels.manifest import SetupContext
from nanoclaw_app.channels.telegram.settings import TelegramSettings
from nanoclaw_app.channels.token_setup import TokenSetup, keep_tokens, load_record, require_secret_store
from nanoclaw_app.errors import TransientError, UserError

log = logging.getLogger(__name__)

TOKEN_SECRET = "telegram.bot_token"  # noqa: S105 - the secret's name, not its value
"""The secret store entry holding the bot token."""
TOKEN_LABEL = "Telegram bot token"  # noqa: S105 - a label shown next to the name
BOT_KEY = "telegram.bot"
"""The bot the saved token belongs to (JSON, in ``app_state``), so the page can name it while Telegram is off."""
DEFAULT_API = TelegramSettings.api_base_url
PRIVACY_NOTE = (
    "Group privacy mode is on: in groups, the bot only sees commands, messages that mention it and replies to its "
    "messages (your direct chat with the bot is not affected). To let it read every group message, send /setprivacy to "
    "@BotFather, choose @{username}, then Disable, and add the bot to the group again."
)

_TOKEN = re.compile(r"\d{3,}:[A-Za-z0-9_-]{20,}")
CHECK_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class BotInfo:
    """Who the token belongs to, as Telegram reports it."""

    id: int
    username: str
    name: str
    can_join_groups: bool
    can_read_all_group_messages: bool
    """False while privacy mode is on: in groups the bot then only sees mentions, replies and commands."""


def looks_like_token(token: str) -> bool:
    """Whether ``token`` has BotFather's shape (``123456789:AAE…``); anything else is refused before any request."""
    return bool(_TOKEN.fullmatch(token))


def bot_api_url(api_base_url: str) -> str:
    """The Bot API method URL prefix PTB appends the token to (``…/bot<token>/<method>``)."""
    return f"{api_base_url.rstrip('/')}/bot"


def bot_file_url(api_base_url: str) -> str:
    """The file download URL prefix PTB appends the token to (``…/file/bot<token>/<path>``)."""
    return f"{api_base_url.rstrip('/')}/file/bot"


async def check_token(token: str, api_base_url: str) -> BotInfo:
    """Ask Telegram who the token belongs to.

    Raises:
        UserError: the token is malformed, or Telegram refused it (revoked, mistyped).
        TransientError: Telegram (or the configured Bot API server) could not be reached; try again later.
    """
    from telegram import Bot
    from telegram.error import Forbidden, InvalidToken, NetworkError, RetryAfter, TelegramError
    from telegram.request import HTTPXRequest

    if not looks_like_token(token):
        raise UserError("this does not look like a Telegram bot token; it looks like 123456789:AAE… — copy the "
                        "whole token from @BotFather's message")
    request = HTTPXRequest(connection_pool_size=1, connect_timeout=CHECK_TIMEOUT_SECONDS,
                           read_timeout=CHECK_TIMEOUT_SECONDS)
    bot = Bot(token, base_url=bot_api_url(api_base_url), base_file_url=bot_file_url(api_base_url), request=request)
    try:
        async with bot:  # initializing calls getMe; leaving closes the HTTP client
            me = bot.bot
    except (InvalidToken, Forbidden) as err:
        # The library's message may contain the token; never repeat it.
        log.info("Telegram refused a bot token (%s)", type(err).__name__)
        raise UserError("Telegram refused this token: it may have been revoked or mistyped. Copy it again from "
                        "@BotFather (/mybots → your bot → API Token)") from None
    except RetryAfter as err:
        raise TransientError("Telegram asks to wait a little before checking the token again") from err
    except NetworkError as err:
        log.info("Telegram not reachable at %s: %s", api_base_url, err)
        raise TransientError(f"Telegram could not be reached at {api_base_url}; check the internet connection "
                             "and try again") from None
    except TelegramError as err:
        raise TransientError(f"Telegram did not answer as expected ({err}); try again in a moment") from None
    return BotInfo(
        id=me.id,
        username=me.username or "",
        name=me.full_name,
        can_join_groups=bool(me.can_join_groups),
        can_read_all_group_messages=bool(me.can_read_all_group_messages),
    )


@dataclass
class TokenSaved:
    """A checked and saved token: the bot it belongs to, and the channel now."""

    bot: BotInfo
    privacy_mode: bool
    """True when the bot only sees commands, mentions and replies in groups."""
    privacy_note: str | None
    started: bool
    """False in a CLI process without a running NanoClaw: Telegram starts with it."""
    channel: Any
    message: str
    """What happened, in one sentence (the CLI prints it)."""
    note: str | None
    """What the owner should still do (the CLI prints it after the message)."""


def clean_token(token: str) -> str:
    """The token as BotFather gave it; a clear error for something else pasted."""
    clean = token.strip()
    if not clean:
        raise UserError("paste the token @BotFather sent you (it looks like 123456789:AAE…)")
    if not looks_like_token(clean):
        raise UserError("this does not look like a bot token: it looks like 123456789:AAE… — copy the whole token "
                        "from @BotFather's message, without spaces")
    return clean


def privacy_note(bot: BotInfo | None) -> str | None:
    """What to do when privacy mode hides group messages from the bot (None when it sees them)."""
    if bot is None or bot.can_read_all_group_messages:
        return None
    return PRIVACY_NOTE.format(username=bot.username)


async def saved_bot(ctx: SetupContext) -> BotInfo | None:
    """The bot the saved token belongs to, as recorded when it was checked."""
    return await load_record(ctx, BOT_KEY, lambda data: BotInfo(
        id=int(data["id"]), username=str(data["username"]), name=str(data["name"]),
        can_join_groups=bool(data["can_join_groups"]),
        can_read_all_group_messages=bool(data["can_read_all_group_messages"])), "Telegram bot", log)


async def save_token(ctx: SetupContext, body: Mapping[str, Any]) -> TokenSaved:
    """Check the token with Telegram (``getMe``), keep it in the secret store, turn Telegram on and (re)start it.

    Nothing is kept when Telegram refuses the token. Without a running host the token is kept and Telegram starts
    with NanoClaw.
    """
    token = body.get("token")
    clean = clean_token(token if isinstance(token, str) else "")
    require_secret_store(ctx, "the token")
    bot = await check_token(clean, ctx.settings.channel(TelegramSettings).api_base_url)
    started = await keep_tokens(ctx, [(TOKEN_SECRET, clean, TOKEN_LABEL)], BOT_KEY, dataclasses.asdict(bot))
    log.info("channels: Telegram token for @%s saved%s", bot.username, "" if started else " (starts with NanoClaw)")
    ctx.changed()
    note = privacy_note(bot)
    return TokenSaved(bot=bot, privacy_mode=note is not None, privacy_note=note, started=started,
                      channel=await ctx.view(), message=f"Telegram bot @{bot.username} ({bot.name}) checked and saved",
                      note=note)


async def set_api_server(ctx: SetupContext, body: Mapping[str, Any]) -> None:
    """Use another Bot API server (a self-hosted ``telegram-bot-api``); empty means Telegram's own.

    A saved token is checked against the new server first, so a wrong address changes nothing; a running Telegram
    reconnects to the new server.
    """
    url = body.get("url", "")
    clean = (url if isinstance(url, str) else "").strip().rstrip("/") or DEFAULT_API
    if not clean.startswith(("http://", "https://")) or " " in clean:
        raise UserError("the Bot API server address must start with http:// or https://, "
                        "for example http://localhost:8081")
    if clean == ctx.settings.channel(TelegramSettings).api_base_url:
        return
    token = await ctx.secrets.get(TOKEN_SECRET) if ctx.secrets.available else None
    if token is not None:
        await check_token(token, clean)
    await ctx.save_settings({"telegram_api_base_url": clean})
    log.info("channels: Telegram Bot API server is now %s", clean)
    ctx.changed()


class TelegramSetup(TokenSetup):
    """The Telegram half of the channels service."""

    secrets = (TOKEN_SECRET,)
    record_key = BOT_KEY
    not_connected = "Telegram is not connected yet: paste your bot's token"
    no_tokens = "Telegram has no bot token yet: paste the token from @BotFather first"

    async def details(self, ctx: SetupContext) -> dict[str, Any]:
        """The bot, what privacy mode hides, and the Bot API server."""
        bot = await saved_bot(ctx)
        return {"bot": None if bot is None else dataclasses.asdict(bot), "privacy_note": privacy_note(bot),
                "api_base_url": ctx.settings.channel(TelegramSettings).api_base_url}

    async def send_to(self, ctx: SetupContext) -> str | None:
        """The bot's handle."""
        bot = await saved_bot(ctx)
        return f"@{bot.username}" if bot is not None else None


def pair_hint(code: str, send_to: str | None) -> str:
    """Where the owner sends a pairing code (a group needs the mention: privacy mode lets only those through)."""
    where = f"to {send_to}" if send_to else "to your bot"
    return f"Send {code} {where} from your Telegram account (in a group: {send_to or '@yourbot'} {code})."
