"""Setting Telegram up: the token's secret name and checking a token with Telegram (``getMe``).

The Telegram library is imported inside :func:`check_token`, so the app's setup pages can import this module cheaply.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from nanoclaw_app.errors import TransientError, UserError

log = logging.getLogger(__name__)

TOKEN_SECRET = "telegram.bot_token"  # noqa: S105 - the secret's name, not its value
"""The secret store entry holding the bot token."""

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
