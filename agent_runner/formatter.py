"""Turn claimed inbound rows into the prompt text the model reads.

The agent sees who wrote (``sender``), where from (``from`` = a destination name it can answer with), when (local
time in the user's timezone, declared in a header so the times it writes back are read the same way), what was quoted,
and where attachments are on disk. It never sees routing fields (platform ids, thread ids): it addresses people only by
destination name, so it cannot be talked into sending somewhere it was not given. Every piece of user text is
XML-escaped, so a message cannot close the element it sits in and pose as another.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agent_runner.protocol import (
    AGENT_CHANNEL,
    Attachment,
    ChatContent,
    ContractError,
    Destination,
    DestinationType,
    InboundRow,
    MessageKind,
    ReplyTo,
    TaskContent,
)
from agent_runner.session_db import parse_utc

log = logging.getLogger(__name__)

SYSTEM_SENDER = "system"
"""Sender id of host notes (approval results, task refusals) that arrive on the ``agent`` channel."""
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_CONTEXT_NOTE = (
    "Others in this chat sent these. You were not addressed in them; they are here so you know the conversation. "
    "Do not answer them as if they were meant for you."
)


def escape(text: str) -> str:
    """Escape the XML-special characters of user text (``&``, ``<``, ``>``, ``"``)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def zone(tz: str | ZoneInfo) -> ZoneInfo:
    """The configured timezone; an unknown name falls back to UTC (logged), never a crash mid-conversation."""
    if isinstance(tz, ZoneInfo):
        return tz
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("unknown timezone %r; showing times in UTC", tz)
        return ZoneInfo("UTC")


def local_time(moment: datetime | str, tz: ZoneInfo) -> str:
    """``Mon 15 Jun 2026, 2:00 PM`` in ``tz``: 12-hour clock, locale-independent names."""
    if isinstance(moment, str):
        try:
            parsed = parse_utc(moment)
        except ValueError:
            return moment
    else:
        parsed = moment
    local = parsed.astimezone(tz)
    hour = local.hour % 12 or 12
    half = "AM" if local.hour < 12 else "PM"
    return f"{_DAYS[local.weekday()]} {local.day} {_MONTHS[local.month - 1]} {local.year}, {hour}:{local:%M} {half}"


def origin_name(row: InboundRow, destinations: Sequence[Destination]) -> str | None:
    """The destination name a row came from, ``unknown:<channel>:<platform>`` if none matches, None if no origin."""
    if row.channel_type == AGENT_CHANNEL:
        for dest in destinations:
            if dest.type == DestinationType.AGENT and dest.agent_group_id == row.platform_id:
                return dest.name
    elif row.channel_type or row.platform_id:
        for dest in destinations:
            if (dest.type == DestinationType.CHANNEL and dest.channel_type == row.channel_type
                    and dest.platform_id == row.platform_id):
                return dest.name
    else:
        return None
    return f"unknown:{row.channel_type or ''}:{row.platform_id or ''}"


def is_system_note(row: InboundRow, content: ChatContent | None = None) -> bool:
    """A note from the host itself (sender ``system`` on the agent channel), not from a person or another agent."""
    if row.kind != MessageKind.CHAT or row.channel_type != AGENT_CHANNEL:
        return False
    if content is None:
        try:
            content = ChatContent.from_dict(json.loads(row.content))
        except (ValueError, ContractError):
            return False
    return content.sender_id == SYSTEM_SENDER


def format_batch(
    rows: Sequence[InboundRow],
    destinations: Sequence[Destination],
    tz: str | ZoneInfo,
    *,
    workspace: Path = Path("/workspace"),
    reply_seqs: Mapping[str, int] | None = None,
    now: datetime | None = None,
) -> str:
    """The prompt for a batch: timezone header, then chat messages, tasks and system notes.

    Args:
        rows: claimed rows, oldest first.
        destinations: the session's named destinations (for ``from``).
        tz: the user's timezone.
        workspace: the session folder as the agent sees it (attachment paths are relative to it).
        reply_seqs: seqs of quoted messages by platform message id, so ``reply_to`` names a message the agent knows.
        now: the current time for the header (tests pin it).
    """
    zinfo = zone(tz)
    moment = now or datetime.now(UTC)
    header = f'<context timezone="{escape(zinfo.key)}" now="{escape(local_time(moment, zinfo))}" />'
    fmt = _Formatter(destinations, zinfo, workspace, reply_seqs or {})
    chats: list[tuple[InboundRow, ChatContent | None, str | None]] = []
    others: list[str] = []
    for row in rows:
        if row.kind == MessageKind.TASK:
            others.append(fmt.task(row))
        elif row.kind == MessageKind.CHAT:
            content, error = _chat_content(row)
            if content is not None and is_system_note(row, content):
                others.append(fmt.system_note(row, content))
            else:
                chats.append((row, content, error))
        else:
            log.warning("row %s has kind %r, which the runner does not know; shown as raw text", row.id, row.kind)
            others.append(f'<message id="{row.seq}" kind="{escape(row.kind)}">{escape(row.content)}</message>')
    parts = [header]
    if chats:
        parts.append(fmt.chats(chats))
    parts.extend(others)
    return "\n".join(parts)


def _chat_content(row: InboundRow) -> tuple[ChatContent | None, str | None]:
    try:
        return ChatContent.from_dict(json.loads(row.content)), None
    except (ValueError, ContractError) as err:
        log.error("chat row %s (seq %s) has unreadable content: %s", row.id, row.seq, err)
        return None, str(err)


class _Formatter:
    """Renders single rows; holds what every row needs."""

    def __init__(self, destinations: Sequence[Destination], tz: ZoneInfo, workspace: Path,
                 reply_seqs: Mapping[str, int]) -> None:
        self.destinations = destinations
        self.tz = tz
        self.workspace = workspace
        self.reply_seqs = reply_seqs

    def _from(self, row: InboundRow) -> str:
        name = origin_name(row, self.destinations)
        return "" if name is None else f' from="{escape(name)}"'

    def _time(self, row: InboundRow) -> str:
        return f' time="{escape(local_time(row.timestamp, self.tz))}"'

    def chats(self, items: Sequence[tuple[InboundRow, ChatContent | None, str | None]]) -> str:
        """One ``<message>``, several in ``<messages>``; context rows (trigger 0) set apart before addressed ones."""
        context = [i for i in items if i[0].trigger != 1]
        addressed = [i for i in items if i[0].trigger == 1]
        if not context:
            if len(items) == 1:
                return self.chat(*items[0])
            return "\n".join(["<messages>", *(self.chat(*i) for i in items), "</messages>"])
        lines = [f'<thread_context note="{escape(_CONTEXT_NOTE)}">', *(self.chat(*i) for i in context),
                 "</thread_context>"]
        if addressed:
            note = "Respond to this." if len(addressed) == 1 else "Respond to these."
            lines += [f'<addressed_to_you note="{note}">', *(self.chat(*i) for i in addressed), "</addressed_to_you>"]
        return "\n".join(lines)

    def chat(self, row: InboundRow, content: ChatContent | None, error: str | None) -> str:
        """One chat message with its quoted reply and attachment lines."""
        if content is None:
            return (f'<message id="{row.seq}"{self._from(row)}{self._time(row)}>'
                    f"[this message could not be read: {escape(error or 'unknown error')}]</message>")
        sender = content.sender_name or content.sender_id or "Unknown"
        reply_attr, quoted = self._reply(content.reply_to)
        body = quoted + escape(content.text) + self._attachments(content.attachments)
        return (f'<message id="{row.seq}"{self._from(row)} sender="{escape(sender)}"{self._time(row)}{reply_attr}>'
                f"{body}</message>")

    def _reply(self, raw: dict[str, Any] | None) -> tuple[str, str]:
        if not raw:
            return "", ""
        try:
            reply = ReplyTo.from_dict(raw)
        except ContractError:
            return "", ""
        seq = self.reply_seqs.get(reply.message_id) if reply.message_id else None
        attr = f' reply_to="{seq}"' if seq is not None else ""
        quoted = ""
        if reply.text:
            who = f' from="{escape(reply.sender)}"' if reply.sender else ""
            quoted = f"<quoted_message{who}>{escape(reply.text)}</quoted_message>\n"
        return attr, quoted

    def _attachments(self, raw: list[dict[str, Any]]) -> str:
        lines: list[str] = []
        for item in raw:
            try:
                att = Attachment.from_dict(item)
            except ContractError as err:
                lines.append(f"[an attachment could not be read: {escape(str(err))}]")
                continue
            if att.local_path:
                size = f", {_size(att.size)}" if att.size is not None else ""
                path = self.workspace / att.local_path
                lines.append(f"[{escape(att.kind)}: {escape(str(path))} ({escape(att.name)}, "
                             f"{escape(att.mime_type)}{size})]")
            else:
                why = item.get("error") or "it was not saved"
                lines.append(f"[{escape(att.kind)} {escape(att.name)} is not available: {escape(str(why))}]")
        return "".join("\n" + line for line in lines)

    def task(self, row: InboundRow) -> str:
        """A scheduled task firing, with its pre-check script's output when there is one."""
        try:
            content = TaskContent.from_dict(json.loads(row.content))
        except (ValueError, ContractError) as err:
            log.error("task row %s has unreadable content: %s", row.id, err)
            return (f'<task id="{row.seq}"{self._time(row)}>[this task could not be read: '
                    f"{escape(str(err))}]</task>")
        parts: list[str] = []
        if content.script_output is not None:
            output = json.dumps(content.script_output, ensure_ascii=False, indent=2)
            parts += ["Script output:", output, ""]
        parts += ["Instructions:", content.prompt]
        return f'<task id="{row.seq}"{self._from(row)}{self._time(row)}>{escape(chr(10).join(parts))}</task>'

    def system_note(self, row: InboundRow, content: ChatContent) -> str:
        """A note from the host (an approval's outcome, a refused request)."""
        return f'<system_note id="{row.seq}"{self._time(row)}>{escape(content.text)}</system_note>'


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


__all__ = ["escape", "format_batch", "is_system_note", "local_time", "origin_name", "zone"]
