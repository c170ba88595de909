"""Tools that send to chats and agents mid-turn: messages, files, edits, reactions, display cards."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from agent_runner.protocol import AGENT_CHANNEL, CardOut, EditOut, MessageKind, ReactionOut, TextOut
from agent_runner.session_db import NewOutbound, new_id
from agent_runner.tools.base import ToolError
from agent_runner.tools.context import ToolContext, int_arg, opt_text_arg, resolve_address, text_arg

log = logging.getLogger(__name__)

MAX_NAME = 200


def _describe(name: str | None, seq: int) -> str:
    return f"Sent{f' to {name}' if name else ''} as message {seq}."


async def send_message(ctx: ToolContext, args: dict[str, Any]) -> str:
    """Send text now (progress on a long task, or a message to another destination)."""
    text = text_arg(args, "text")
    address = await ctx.io(resolve_address, ctx, opt_text_arg(args, "to"))
    seq = await ctx.write(NewOutbound(
        kind=MessageKind.CHAT, content=TextOut(text=text).to_json(), channel_type=address.channel_type,
        platform_id=address.platform_id, thread_id=address.thread_id, in_reply_to=address.in_reply_to,
    ))
    return _describe(address.name, seq)


def _check_filename(name: str) -> str:
    if (not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name or len(name) > MAX_NAME
            or name != Path(name).name):
        raise ToolError(f"`filename` {name!r} must be a plain file name")
    return name


def _copy_to_outbox(session_dir: Path, row_id: str, source: Path, filename: str) -> None:
    folder = session_dir / "outbox" / row_id
    folder.mkdir(parents=True, mode=0o700)
    shutil.copyfile(source, folder / filename)


def _remove_outbox(session_dir: Path, row_id: str) -> None:
    shutil.rmtree(session_dir / "outbox" / row_id, ignore_errors=True)


async def send_file(ctx: ToolContext, args: dict[str, Any]) -> str:
    """Send a file: copied into ``outbox/<row id>/`` before the row exists, so the host never sees a row without it."""
    raw = text_arg(args, "path")
    path = Path(raw)
    if not path.is_absolute():
        path = ctx.config.agent_dir / path
    if not path.is_file():
        raise ToolError(f"{path} is not a file")
    filename = _check_filename((opt_text_arg(args, "filename") or path.name).strip())
    text = opt_text_arg(args, "text", allow_empty=True) or ""
    address = await ctx.io(resolve_address, ctx, opt_text_arg(args, "to"))
    row_id = new_id("out")
    try:
        await ctx.io(_copy_to_outbox, ctx.config.session_dir, row_id, path, filename)
    except OSError as err:
        await ctx.io(_remove_outbox, ctx.config.session_dir, row_id)
        raise ToolError(f"could not copy {path}: {err}") from err
    try:
        seq = await ctx.write(NewOutbound(
            id=row_id, kind=MessageKind.CHAT, content=TextOut(text=text, files=[filename]).to_json(),
            channel_type=address.channel_type, platform_id=address.platform_id, thread_id=address.thread_id,
            in_reply_to=address.in_reply_to,
        ))
    except BaseException:
        await ctx.io(_remove_outbox, ctx.config.session_dir, row_id)
        raise
    return f"{_describe(address.name, seq)[:-1]} (file {filename})."


async def _target(ctx: ToolContext, seq: int, *, own_only: bool) -> NewOutbound:
    """A template row addressed like the message with ``seq``; refuses seqs that cannot be edited or reacted to."""
    target = await ctx.io(ctx.db.seq_target, seq)
    if target is None:
        raise ToolError(f"there is no message {seq}")
    if own_only and seq % 2 == 0:
        raise ToolError(f"message {seq} was not sent by you; you can only edit your own messages")
    if target.kind != MessageKind.CHAT or target.channel_type == AGENT_CHANNEL:
        raise ToolError(f"message {seq} is not a chat message, so it cannot be changed or reacted to")
    origin = next((r for r in reversed(ctx.batch.origins())
                   if r.channel_type == target.channel_type and r.platform_id == target.platform_id), None)
    return NewOutbound(kind=MessageKind.CHAT, content="", channel_type=target.channel_type,
                       platform_id=target.platform_id, thread_id=target.thread_id,
                       in_reply_to=origin.id if origin else None)


async def edit_message(ctx: ToolContext, args: dict[str, Any]) -> str:
    """Replace the text of a message the agent sent earlier."""
    seq = int_arg(args, "message_id")
    text = text_arg(args, "text")
    base = await _target(ctx, seq, own_only=True)
    out = await ctx.write(NewOutbound(
        kind=base.kind, content=EditOut(message_seq=seq, text=text).to_json(), channel_type=base.channel_type,
        platform_id=base.platform_id, thread_id=base.thread_id, in_reply_to=base.in_reply_to,
    ))
    return f"Edit of message {seq} queued (as {out})."


async def add_reaction(ctx: ToolContext, args: dict[str, Any]) -> str:
    """React to a message with an emoji."""
    seq = int_arg(args, "message_id")
    emoji = text_arg(args, "emoji")
    base = await _target(ctx, seq, own_only=False)
    await ctx.write(NewOutbound(
        kind=base.kind, content=ReactionOut(message_seq=seq, emoji=emoji.strip()).to_json(),
        channel_type=base.channel_type, platform_id=base.platform_id, thread_id=base.thread_id,
        in_reply_to=base.in_reply_to,
    ))
    return f"Reacted to message {seq} with {emoji.strip()}."


def _links(raw: object) -> list[dict[str, str]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ToolError("`card.links` must be a list of {label, url}")
    links: list[dict[str, str]] = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("url"), str):
            raise ToolError("each link needs a `url` (and a `label`)")
        url = item["url"].strip()
        if urlparse(url).scheme not in ("http", "https"):
            raise ToolError(f"link {url!r} must be an http(s) URL")
        label = item.get("label")
        links.append({"label": label.strip() if isinstance(label, str) and label.strip() else url, "url": url})
    return links


async def send_card(ctx: ToolContext, args: dict[str, Any]) -> str:
    """Send a display card (title, description, link buttons); plain text where the chat cannot draw cards."""
    card = args.get("card")
    if not isinstance(card, dict):
        raise ToolError("`card` must be an object with a title")
    title = text_arg(card, "title")
    description = opt_text_arg(card, "description", allow_empty=True) or ""
    links = _links(card.get("links"))
    fallback = opt_text_arg(args, "fallback_text") or "\n".join(
        [title, *([description] if description else []), *(f"{link['label']}: {link['url']}" for link in links)]
    )
    address = await ctx.io(resolve_address, ctx, opt_text_arg(args, "to"))
    if address.is_agent:
        raise ToolError("cards are for people; send another agent a message instead")
    seq = await ctx.write(NewOutbound(
        kind=MessageKind.CHAT,
        content=CardOut(title=title, description=description, links=links, fallback_text=fallback).to_json(),
        channel_type=address.channel_type, platform_id=address.platform_id, thread_id=address.thread_id,
        in_reply_to=address.in_reply_to,
    ))
    return _describe(address.name, seq)


__all__ = ["add_reaction", "edit_message", "send_card", "send_file", "send_message"]
