"""Agent-to-agent delivery: an outbound row with ``channel_type="agent"`` becomes an inbound row of another agent.

The reply must land in the session that started the conversation, not simply the newest one, so the target session is
chosen in tiers: the return address stamped on the message being replied to, then the last session of the peer that
wrote to us, then the target's agent-shared session. Unlike the original (#2063), a conversation between agents is
capped in hops, so two agents cannot ping-pong forever.
"""

from __future__ import annotations

import logging
import mimetypes
import sqlite3
from pathlib import Path

from agent_runner.protocol import (
    AGENT_CHANNEL,
    Attachment,
    CardOut,
    ChatContent,
    MessageKind,
    OutboundRow,
    TextOut,
)
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.notes import write_refusal_note
from nanoclaw_app.core.outbound import decode
from nanoclaw_app.db import agents, destinations
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.rows import Session
from nanoclaw_app.errors import UserError
from nanoclaw_app.ids import new_id
from nanoclaw_app.sessions.files import read_outbox_file, write_inbox_file
from nanoclaw_app.sessions.store import NewInbound
from nanoclaw_app.text_safety import clean_file_name
from nanoclaw_app.timeutil import now_iso

log = logging.getLogger(__name__)


class RouteRefused(UserError):
    """The message was not routed; the source agent has already been told why in a system note."""


def replied_row(conn: sqlite3.Connection, ref: str) -> sqlite3.Row | None:
    """The inbound row an outbound row replies to, by id (or by seq, as the agent sees it)."""
    row: sqlite3.Row | None = conn.execute(
        "SELECT id, hops, channel_type, platform_id, source_session_id FROM messages_in WHERE id = ?", (ref,)
    ).fetchone()
    if row is None and ref.isdigit():
        row = conn.execute(
            "SELECT id, hops, channel_type, platform_id, source_session_id FROM messages_in WHERE seq = ?",
            (int(ref),),
        ).fetchone()
    return row


def last_session_of_peer(conn: sqlite3.Connection, peer_agent_id: str) -> str | None:
    """The session of ``peer_agent_id`` that most recently wrote to this session."""
    row = conn.execute(
        "SELECT source_session_id FROM messages_in WHERE channel_type = ? AND platform_id = ?"
        " AND source_session_id IS NOT NULL ORDER BY seq DESC LIMIT 1",
        (AGENT_CHANNEL, peer_agent_id),
    ).fetchone()
    return None if row is None else str(row[0])


async def _refuse(ctx: CoreContext, source: Session, row: OutboundRow, reason: str) -> RouteRefused:
    log.warning("agent message %s from session %s not routed: %s", row.id, source.id, reason)
    ctx.events.publish("agent.refused", session_id=source.id, message_out_id=row.id, reason=reason)
    await write_refusal_note(ctx, source.id, f"Your message was not delivered: {reason}")
    return RouteRefused(reason)


async def _usable(ctx: CoreContext, session_id: str | None, target_agent_id: str) -> Session | None:
    """A session that may receive the reply: it exists, is active and belongs to the target (no cross-agent hops)."""
    if not session_id:
        return None
    session = await sessions_db.get(ctx.db, session_id)
    if session is None or session.status != "active" or session.agent_group_id != target_agent_id:
        return None
    return session


async def _target_session(
    ctx: CoreContext, source_folder: Path, replied: sqlite3.Row | None, target_agent_id: str
) -> Session:
    if replied is not None:
        found = await _usable(ctx, replied["source_session_id"], target_agent_id)
        if found is not None:
            return found
    peer_session = await ctx.store.read(
        source_folder, lambda conn: last_session_of_peer(conn, target_agent_id), with_outbound=False
    )
    found = await _usable(ctx, peer_session, target_agent_id)
    if found is not None:
        return found
    session, created = await sessions_db.find_or_create(ctx.db, target_agent_id, "agent-shared", None, None)
    if created or not ctx.store.dir(session.agent_group_id, session.id).exists():
        await ctx.store.create(session.agent_group_id, session.id)
    return session


def _copy_files(
    ctx: CoreContext, source_folder: Path, row: OutboundRow, target_folder: Path, inbox_id: str, names: list[str]
) -> list[dict[str, object]]:
    """Copy the row's outbox files into the target's inbox (both sides hardened); returns attachment dicts."""
    cap = ctx.settings.max_attachment_bytes
    attachments: list[dict[str, object]] = []
    for name in names:
        data = read_outbox_file(source_folder, row.id, name, cap)
        shown = clean_file_name(name) or "file"
        local_path = write_inbox_file(target_folder, inbox_id, shown, data, cap)
        mime = mimetypes.guess_type(shown)[0] or "application/octet-stream"
        attachments.append(
            Attachment(name=shown, mime_type=mime, size=len(data), local_path=local_path, kind="file").to_dict()
        )
    return attachments


async def route_to_agent(ctx: CoreContext, source: Session, row: OutboundRow) -> None:
    """Deliver an agent-addressed row into the target agent's session and wake it.

    Raises ``RouteRefused`` (after telling the source agent) when the ACL or the hop cap forbids it; file-safety
    errors (``UnsafePath``, ``AttachmentTooLarge``) propagate for delivery to record as permanent failures.
    """
    content = decode(row)
    if isinstance(content, TextOut):
        text, files = content.text, list(content.files)
    elif isinstance(content, CardOut):
        text, files = content.fallback_text or content.title, []
    else:
        raise await _refuse(ctx, source, row, f"another agent can only receive text and files, not a "
                                              f"{type(content).__name__}")
    target_id = row.platform_id
    if not target_id:
        raise await _refuse(ctx, source, row, "the message names no target agent")
    target_agent = await agents.get(ctx.db, target_id)
    if target_agent is None:
        raise await _refuse(ctx, source, row, f"there is no agent {target_id}")
    if target_id != source.agent_group_id and await destinations.find_target(
        ctx.db, source.agent_group_id, "agent", target_id
    ) is None:
        raise await _refuse(ctx, source, row, f"you have no destination for agent {target_agent.name!r}")

    source_folder = ctx.store.dir(source.agent_group_id, source.id)
    ref = row.in_reply_to
    replied = None
    if ref:
        replied = await ctx.store.read(source_folder, lambda conn: replied_row(conn, ref), with_outbound=False)
    hops = (int(replied["hops"]) if replied is not None else 0) + 1
    cap = ctx.settings.agent_hop_cap
    if hops > cap:
        raise await _refuse(
            ctx, source, row,
            f"this conversation between agents has already gone back and forth {cap} times, the most allowed. "
            "Stop here, or ask a person before continuing.",
        )

    target = await _target_session(ctx, source_folder, replied, target_id)
    target_folder = ctx.store.dir(target.agent_group_id, target.id)
    inbox_id = new_id("a2a")
    attachments = (
        await ctx.store.run_io(lambda: _copy_files(ctx, source_folder, row, target_folder, inbox_id, files))
        if files
        else []
    )
    source_agent = await agents.get(ctx.db, source.agent_group_id)
    chat = ChatContent(
        text=text,
        sender_id=f"agent:{source.agent_group_id}",
        sender_name=source_agent.name if source_agent else source.agent_group_id,
        attachments=attachments,
    )
    seq, _ = await ctx.store.write_inbound(target_folder, NewInbound(
        id=inbox_id,
        kind=MessageKind.CHAT,
        content=chat.to_json(),
        timestamp=now_iso(),
        channel_type=AGENT_CHANNEL,
        platform_id=source.agent_group_id,
        source_session_id=source.id,
        hops=hops,
    ))
    await sessions_db.touch(ctx.db, target.id)
    log.info("agent message %s: session %s -> session %s (agent %s, hop %d, seq %d)", row.id, source.id, target.id,
             target_id, hops, seq)
    ctx.events.publish("agent.message", source_session_id=source.id, target_session_id=target.id,
                       message_out_id=row.id, inbound_id=inbox_id, hops=hops)
    await ctx.waker.wake(target)
