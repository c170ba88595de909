"""Who may approve, and which of them we can actually reach by DM."""

from __future__ import annotations

from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.user_dm import ensure_user_dm, resolve_channel
from nanoclaw_app.db import users as users_db
from nanoclaw_app.db.database import Database
from nanoclaw_app.db.rows import MessagingGroup


async def pick_approver(db: Database, agent_group_id: str | None) -> list[str]:
    """Approvers closest to the agent first: its scoped admins, then global admins, then owners (no repeats)."""
    candidates: list[str] = []
    if agent_group_id is not None:
        candidates += await users_db.scoped_admins(db, agent_group_id)
    candidates += await users_db.global_admins(db)
    candidates += await users_db.owners(db)
    return list(dict.fromkeys(candidates))


async def pick_approval_delivery(
    ctx: CoreContext, approvers: list[str], origin_channel_type: str | None, *, avoid_channel: str | None = None
) -> tuple[str, MessagingGroup] | None:
    """``(approver, DM chat)``: an approver on the origin's channel when reachable, else the first reachable one.

    Same channel first because the person is evidently using that app right now; order within each pass is the
    approver order, so a scoped admin still wins over an owner. ``avoid_channel`` (a channel that is down) is never
    picked, and then a connected phone channel is preferred to the in-app chat, which the owner may not be looking at.
    """
    tried: set[str] = set()
    if avoid_channel is not None:
        channel_of = {u: r[0] for u in approvers if (r := await resolve_channel(ctx, u)) is not None}
        tried = {u for u, channel in channel_of.items() if channel == avoid_channel}
        if origin_channel_type is None:
            for user_id, channel in channel_of.items():
                adapter = ctx.channels.get(channel)
                if user_id in tried or channel == "webchat" or adapter is None or not adapter.is_connected():
                    continue
                chat = await ensure_user_dm(ctx, user_id)
                if chat is not None:
                    return user_id, chat
    if origin_channel_type is not None:
        for user_id in approvers:
            resolved = await resolve_channel(ctx, user_id)
            if resolved is None or resolved[0] != origin_channel_type or user_id in tried:
                continue
            tried.add(user_id)
            chat = await ensure_user_dm(ctx, user_id)
            if chat is not None:
                return user_id, chat
    for user_id in approvers:
        if user_id in tried:
            continue
        chat = await ensure_user_dm(ctx, user_id)
        if chat is not None:
            return user_id, chat
    return None
