"""Cold DMs: find (or open) the direct-message chat with a user, so approvals and notices can reach them first."""

from __future__ import annotations

import logging

from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.db import messaging
from nanoclaw_app.db import users as users_db
from nanoclaw_app.db.rows import MessagingGroup

log = logging.getLogger(__name__)


async def resolve_channel(ctx: CoreContext, user_id: str) -> tuple[str, str] | None:
    """``(channel_type, handle)`` of a user id, or None when no running channel can address them.

    Ids are ``<channel>:<handle>``, but some platforms' own ids contain a colon (Teams ``29:…``); when the prefix is
    not a running channel the user's ``kind`` names the channel and the whole id is the handle.
    """
    prefix, sep, handle = user_id.partition(":")
    if sep and prefix in ctx.channels:
        return prefix, handle
    user = await users_db.get(ctx.db, user_id)
    if user is not None and user.kind in ctx.channels:
        return user.kind, user_id
    return None


async def ensure_user_dm(ctx: CoreContext, user_id: str) -> MessagingGroup | None:
    """The DM chat with ``user_id`` (cached in ``user_dms``), creating it when needed; None when unreachable."""
    resolved = await resolve_channel(ctx, user_id)
    if resolved is None:
        log.info("cannot reach %s by DM: no running channel for this user", user_id)
        return None
    channel_type, handle = resolved
    adapter = ctx.channels.get(channel_type)
    if adapter is None:  # pragma: no cover - resolve_channel only returns running channels
        return None

    cached_id = await users_db.cached_dm(ctx.db, user_id, channel_type)
    if cached_id is not None:
        cached = await messaging.get(ctx.db, cached_id)
        if cached is not None:
            return cached

    try:
        platform_id = await adapter.open_dm(handle)
    except Exception:
        log.exception("opening a DM with %s on %s failed", user_id, channel_type)
        return None
    if not platform_id:
        log.info("%s cannot open a DM with %s", channel_type, user_id)
        return None

    chat = await messaging.find(ctx.db, channel_type, platform_id)
    if chat is None:
        user = await users_db.get(ctx.db, user_id)
        chat = await messaging.create(
            ctx.db,
            channel_type,
            platform_id,
            name=user.display_name if user is not None else None,
            is_group=False,
            unknown_sender_policy="strict",
        )
    await users_db.cache_dm(ctx.db, user_id, channel_type, chat.id)
    return chat
