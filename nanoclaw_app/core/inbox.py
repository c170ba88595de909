"""Writing one routed message into a session's ``inbound.db``, with its attachments saved safely under ``inbox/``.

A refused attachment (unsafe name, over the size cap, a tampered inbox folder) never loses the message: it is logged,
and it stays in the content with an ``error`` field so the agent can tell the user the file did not arrive.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

from agent_runner.protocol import Attachment, ChatContent, MessageKind, ReplyTo
from nanoclaw_app import ids
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.messages import InboundMessage, IncomingAttachment
from nanoclaw_app.core.session_repair import repair_session
from nanoclaw_app.db.rows import Session
from nanoclaw_app.db.users import namespaced
from nanoclaw_app.errors import AttachmentTooLarge, SessionDamaged, UnsafePath
from nanoclaw_app.sessions.files import write_inbox_file
from nanoclaw_app.sessions.store import NewInbound, insert_inbound
from nanoclaw_app.text_safety import clean_file_name
from nanoclaw_app.timeutil import iso, now_iso, parse_utc

log = logging.getLogger(__name__)

_SAFE_KEY = re.compile(r"[A-Za-z0-9._-]{1,100}")


def inbox_key(platform_message_id: str) -> str:
    """The ``inbox/<key>/`` folder of a message: its id when that is a portable file name, else a stable digest.

    Platform ids may hold ``:`` (not allowed on Windows), ``/`` or be very long; a digest keeps them inside the inbox.
    """
    if _SAFE_KEY.fullmatch(platform_message_id) and platform_message_id not in (".", ".."):
        return platform_message_id
    return "m-" + hashlib.sha256(platform_message_id.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def message_timestamp(msg: InboundMessage) -> str:
    """The platform's time in our stored form; a missing or unreadable one becomes now (logged)."""
    if not msg.timestamp:
        return now_iso()
    try:
        return iso(parse_utc(msg.timestamp))
    except (ValueError, TypeError, AttributeError):
        log.warning("message %s from %s has an unreadable timestamp %r; using now",
                    msg.message_id, msg.channel_type, msg.timestamp)
        return now_iso()


def _save_attachments(
    folder: Path, msg: InboundMessage, platform_key: str, max_bytes: int, agent_group_id: str
) -> list[dict[str, Any]]:
    key = inbox_key(platform_key)
    saved: list[dict[str, Any]] = []
    used: set[str] = set()
    for index, attachment in enumerate(msg.attachments, start=1):
        name = _unique(clean_file_name(attachment.name or "") or f"attachment-{index}", used)
        saved.append(_save_one(folder, key, name, attachment, max_bytes, msg, agent_group_id))
    return saved


def _unique(name: str, used: set[str]) -> str:
    """Two files with the same name in one message both arrive (``a.jpg``, ``a-2.jpg``)."""
    candidate, n = name, 1
    while candidate in used:
        n += 1
        stem, dot, ext = name.rpartition(".")
        candidate = f"{stem}-{n}.{ext}" if dot and stem else f"{name}-{n}"
    used.add(candidate)
    return candidate


def _save_one(
    folder: Path,
    key: str,
    name: str,
    attachment: IncomingAttachment,
    max_bytes: int,
    msg: InboundMessage,
    agent_group_id: str,
) -> dict[str, Any]:
    data = attachment.data
    base = Attachment(name=name, mime_type=attachment.mime_type or "application/octet-stream",
                      size=len(data), kind=attachment.kind or "file")
    try:
        local_path = write_inbox_file(folder, key, name, data, max_bytes)
    except (UnsafePath, AttachmentTooLarge, OSError) as err:
        log.error("attachment %r of message %s (%s %s) refused for agent %s: %s",
                  name, msg.message_id, msg.channel_type, msg.platform_id, agent_group_id, err)
        return {**base.to_dict(), "error": f"The file was not saved: {err}"}
    return Attachment(name=base.name, mime_type=base.mime_type, size=base.size, local_path=local_path,
                      kind=base.kind).to_dict()


def build_content(msg: InboundMessage, attachments: list[dict[str, Any]]) -> ChatContent:
    """What the agent reads: text, namespaced sender, attachments with local paths, the quoted reply."""
    reply = None
    if msg.reply_to is not None:
        reply = ReplyTo(text=msg.reply_to.text or "", sender=msg.reply_to.sender or "",
                        message_id=msg.reply_to.message_id).to_dict()
    return ChatContent(
        text=msg.text,
        sender_id=namespaced(msg.channel_type, msg.sender_id),
        sender_name=msg.sender_name,
        attachments=attachments,
        reply_to=reply,
        is_group=msg.is_group,
        is_mention=msg.is_mention,
        platform_message_id=msg.message_id,
        extra=dict(msg.extra),
    )


def _content_json(msg: InboundMessage, attachments: list[dict[str, Any]]) -> str:
    try:
        return build_content(msg, attachments).to_json()
    except (TypeError, ValueError) as err:
        # An adapter put something that is not JSON into ``extra``; the message matters more than the extras.
        log.error("message %s from %s has extras that are not JSON (%s); storing it without them",
                  msg.message_id, msg.channel_type, err)
        return build_content(replace(msg, extra={}), attachments).to_json()


async def write_message(ctx: CoreContext, session: Session, msg: InboundMessage, *, trigger: bool) -> int:
    """Store one message for a session (``trigger`` wakes the agent; otherwise it is context). Returns its seq.

    The row id is the platform message id plus the agent id, so fan-out never collides and routing the same
    platform message again is a no-op that returns the first seq (attachments are not written twice).

    Platform ids are often unique only per chat (Telegram counts per chat), and an ``agent-shared`` session spans
    chats: when the id is taken by a row from another chat, the id is qualified with the chat so neither is lost.
    """
    agent = session.agent_group_id
    folder = ctx.store.dir(agent, session.id)
    timestamp = message_timestamp(msg)
    max_bytes = ctx.settings.max_attachment_bytes

    def run(conn: sqlite3.Connection) -> int:
        platform_key = msg.message_id
        row_id = ids.inbound_row_id(platform_key, agent)
        existing = conn.execute(
            "SELECT seq, channel_type, platform_id FROM messages_in WHERE id = ?", (row_id,)
        ).fetchone()
        if existing is not None and (existing[1], existing[2]) != (msg.channel_type, msg.platform_id):
            platform_key = f"{msg.channel_type}:{msg.platform_id}:{msg.message_id}"
            row_id = ids.inbound_row_id(platform_key, agent)
            existing = conn.execute("SELECT seq FROM messages_in WHERE id = ?", (row_id,)).fetchone()
        if existing is not None:
            return int(existing[0])
        attachments = _save_attachments(folder, msg, platform_key, max_bytes, agent)
        row = NewInbound(
            id=row_id,
            kind=MessageKind.CHAT,
            content=_content_json(msg, attachments),
            timestamp=timestamp,
            trigger=int(trigger),
            platform_id=msg.platform_id,
            channel_type=msg.channel_type,
            thread_id=msg.thread_id,
        )
        seq, _ = insert_inbound(conn, row)
        return seq

    # Attachments are written inside the write transaction, on the store's worker thread: the existence check, the
    # files and the row are one step, and a large file never blocks the event loop.
    try:
        try:
            return await ctx.store.write(folder, run)
        except FileNotFoundError:
            # The session row exists but its files do not (a crash between the two, or a deleted folder).
            log.warning("session %s had no files; recreating them", session.id)
            await ctx.store.create(agent, session.id)
            return await ctx.store.write(folder, run)
    except SessionDamaged as damage:
        # The container replaced a file the host made: set it aside, start afresh, and still deliver this message.
        await repair_session(ctx, session, damage)
        return await ctx.store.write(folder, run)
