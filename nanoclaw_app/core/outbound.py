"""Turning an outbound row the container wrote into an ``OutboundMessage`` an adapter can send.

The agent addresses earlier messages by the seq it saw; parity says where to look: an even seq is a host row in
``messages_in`` (its platform id is in the chat content), an odd seq is the container's own earlier row, whose platform
id the host recorded in ``delivered`` when it sent it.
"""

from __future__ import annotations

import json
import mimetypes
import sqlite3
from pathlib import Path

from agent_runner.protocol import (
    AGENT_CHANNEL,
    AskQuestionOut,
    CardOut,
    ChatContent,
    ContractError,
    EditOut,
    OutboundContent,
    OutboundRow,
    ReactionOut,
    TextOut,
    decode_outbound,
    is_host_seq,
)
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.messages import OutboundMessage, OutgoingFile
from nanoclaw_app.errors import UserError
from nanoclaw_app.sessions.files import read_outbox_file
from nanoclaw_app.text_safety import clean_file_name


class UnresolvableMessage(UserError):
    """An edit or reaction names a seq that has no platform message (never sent, unknown, or not a chat message)."""


def decode(row: OutboundRow) -> OutboundContent:
    """Parse the row's content; raises ``ContractError`` naming the row when it is malformed."""
    try:
        return decode_outbound(row.kind, row.content)
    except ContractError as err:
        raise ContractError(f"outbound row {row.id} (seq {row.seq}) is malformed: {err}") from err


def platform_id_for_seq(conn: sqlite3.Connection, seq: int) -> str | None:
    """The platform message id behind a seq the agent saw, or None (run via ``SessionStore.read``)."""
    if is_host_seq(seq):
        row = conn.execute("SELECT id, kind, channel_type, content FROM messages_in WHERE seq = ?", (seq,)).fetchone()
        if row is None or row["kind"] != "chat" or row["channel_type"] == AGENT_CHANNEL:
            return None
        try:
            content = ChatContent.from_dict(json.loads(row["content"]))
        except (ContractError, ValueError):
            return None
        if content.platform_message_id:
            return content.platform_message_id
        # Inbound row ids are "<platform message id>:<agent group id>" (ids.inbound_row_id).
        row_id = str(row["id"])
        return row_id.rsplit(":", 1)[0] if ":" in row_id else None
    found = conn.execute(
        "SELECT d.platform_message_id FROM ob.messages_out o JOIN delivered d ON d.message_out_id = o.id"
        " WHERE o.seq = ? AND d.status = 'delivered'",
        (seq,),
    ).fetchone()
    return None if found is None else found[0]


async def resolve_seq(ctx: CoreContext, folder: Path, seq: int) -> str:
    """Platform message id for a seq; raises ``UnresolvableMessage`` with a clear reason."""
    platform_id = await ctx.store.read(folder, lambda conn: platform_id_for_seq(conn, seq))
    if platform_id is None:
        side = "a received message" if is_host_seq(seq) else "a message the agent sent"
        raise UnresolvableMessage(
            f"message {seq} ({side}) has no known platform message id: it is unknown, was never delivered, "
            "or cannot be edited or reacted to"
        )
    return platform_id


def read_files(ctx: CoreContext, folder: Path, message_out_id: str, names: list[str]) -> tuple[OutgoingFile, ...]:
    """Read the files named by an outbound row from ``outbox/<message id>/``, hardened and size-capped."""
    cap = ctx.settings.max_attachment_bytes
    files = []
    for name in names:
        data = read_outbox_file(folder, message_out_id, name, cap)
        shown = clean_file_name(name) or "file"  # what the person sees: no override disguising the file's type
        mime = mimetypes.guess_type(shown)[0] or "application/octet-stream"
        files.append(OutgoingFile(name=shown, data=data, mime_type=mime))
    return tuple(files)


async def build_message(
    ctx: CoreContext, folder: Path, row: OutboundRow, content: OutboundContent
) -> OutboundMessage:
    """The adapter-facing message for a decoded row; ``delivery_id`` is the row id, stable across retries."""
    if isinstance(content, TextOut):
        files = await ctx.store.run_io(lambda: read_files(ctx, folder, row.id, content.files))
        if not content.text and not files:
            raise UserError(f"outbound row {row.id} has neither text nor files")
        return OutboundMessage(kind="text", delivery_id=row.id, text=content.text, files=files)
    if isinstance(content, EditOut):
        target = await resolve_seq(ctx, folder, content.message_seq)
        return OutboundMessage(kind="edit", delivery_id=row.id, text=content.text, target_message_id=target)
    if isinstance(content, ReactionOut):
        target = await resolve_seq(ctx, folder, content.message_seq)
        return OutboundMessage(kind="reaction", delivery_id=row.id, emoji=content.emoji, target_message_id=target)
    if isinstance(content, AskQuestionOut):
        return OutboundMessage(
            kind="question",
            delivery_id=row.id,
            text=content.question,
            question_id=content.question_id,
            title=content.title,
            options=tuple(content.option_list),
        )
    if isinstance(content, CardOut):
        # OutboundMessage has no separate fallback field: adapters that cannot draw cards send title + text + links.
        return OutboundMessage(
            kind="card",
            delivery_id=row.id,
            title=content.title,
            text=content.description or content.fallback_text,
            links=tuple(content.links),
        )
    raise ContractError(f"outbound row {row.id}: a {type(content).__name__} cannot be sent to a chat")


def preview(content: OutboundContent | None, limit: int = 80) -> str:
    """A short human-readable gist of an outbound message, for failure notices."""
    text = ""
    if isinstance(content, TextOut):
        text = content.text or ", ".join(content.files)
    elif isinstance(content, EditOut):
        text = f"(edit) {content.text}"
    elif isinstance(content, ReactionOut):
        text = f"(reaction {content.emoji})"
    elif isinstance(content, AskQuestionOut):
        text = f"(question) {content.title}"
    elif isinstance(content, CardOut):
        text = f"(card) {content.title}"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
