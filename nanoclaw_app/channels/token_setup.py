"""What a channel set up by pasting tokens does the same as the others: keep, know, resume and forget its setup.

Telegram, Slack and Discord differ in how a token is checked and what the page shows, not in how checked tokens are
kept, whether they are saved, how the channel is turned back on, or how they are forgotten. The tokens live in the
secret store; a record of whom they belong to lives in ``app_state``, so the app can tell the channel is set up (and
name its bot) while the secret store is locked.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

from nanoclaw_app.channels.manifest import SetupContext
from nanoclaw_app.db import app_state
from nanoclaw_app.errors import ConfigError, NanoClawError, UserError

T = TypeVar("T")


def require_secret_store(ctx: SetupContext, tokens: str) -> None:
    """Refuse before any check when ``tokens`` (``the token``) could not be kept safely."""
    if not ctx.secrets.available:
        raise ConfigError(f"NanoClaw cannot keep {tokens} safely yet: {ctx.secrets.unavailable_reason}. Set a "
                          "passphrase for the secret store in Settings, then try again")


async def keep_tokens(ctx: SetupContext, tokens: Sequence[tuple[str, str, str]], record_key: str,
                      record: Mapping[str, object]) -> bool:
    """Keep checked tokens and their record, turn the channel on; whether it (re)started now (else with NanoClaw).

    ``tokens`` are ``(secret name, token, label)``. A running channel restarts only when a token changed, so saving
    the same token again does not drop the link.
    """
    changed = [await ctx.secrets.get(name) for name, _, _ in tokens] != [token for _, token, _ in tokens]
    for name, token, label in tokens:
        await ctx.put_secret(name, token, label)
    await app_state.put(ctx.db, record_key, json.dumps(record))
    await ctx.set_enabled(True)
    if not ctx.host_running:
        return False
    await ctx.start(restart=changed)
    return True


async def load_record(ctx: SetupContext, record_key: str, build: Callable[[dict[str, Any]], T], what: str,
                      log: logging.Logger) -> T | None:
    """The record kept with the tokens, or None when there is none or it cannot be read (logged, as ``what``)."""
    raw = await app_state.get(ctx.db, record_key)
    if not raw:
        return None
    try:
        return build(json.loads(raw))
    except (ValueError, KeyError, TypeError):
        log.warning("channels: ignoring an unreadable saved %s %r", what, raw[:200])
        return None


class TokenSetup:
    """``is_set_up``, ``not_working``, ``enable`` and ``forget`` of a :class:`~channels.manifest.ChannelSetup`."""

    secrets: ClassVar[tuple[str, ...]]
    """The secret store entries that must all be saved."""
    record_key: ClassVar[str]
    """The ``app_state`` key of the record of whom the tokens belong to."""
    not_connected: ClassVar[str]
    """What is missing before it works, as the page says it."""
    no_tokens: ClassVar[str]
    """Why it cannot be turned on without tokens, and where to get them."""

    async def is_set_up(self, ctx: SetupContext) -> bool:
        """The tokens are saved (or, while the store is locked, they were checked before)."""
        if ctx.secrets.available:
            try:
                for name in self.secrets:
                    if await ctx.secrets.get(name) is None:
                        return False
                return True
            except NanoClawError as err:
                logging.getLogger(type(self).__module__).warning("channels: cannot tell whether %s is set up: %s",
                                                                 ctx.title, err)
        return await app_state.get(ctx.db, self.record_key) is not None

    async def not_working(self, ctx: SetupContext) -> str | None:
        """Working means the tokens saved and the channel running."""
        if ctx.adapter is None or not await self.is_set_up(ctx):
            return self.not_connected
        return None

    async def enable(self, ctx: SetupContext) -> None:
        """Start with the saved tokens."""
        ctx.require_host()
        if not await self.is_set_up(ctx):
            raise UserError(self.no_tokens)
        await ctx.set_enabled(True)
        await ctx.start()

    async def forget(self, ctx: SetupContext) -> None:
        """Delete the tokens and the record of whom they belong to."""
        if ctx.secrets.available:
            for name in self.secrets:
                if await ctx.secrets.get(name) is not None:
                    await ctx.delete_secret(name)
        await app_state.delete(ctx.db, self.record_key)
