"""Receiving from WhatsApp: a neonize ``MessageEv`` becomes an ``InboundMessage`` for the host, or answers a card.

Rules, in order:

* our own sent messages never come back (their ids are remembered), which is what keeps the "Message yourself" chat
  from looping;
* the user's own messages from their phone (``IsFromMe``) never reach an agent, except in their own chat when
  WhatsApp runs in self mode (``app_state`` ``whatsapp.mode`` = ``self``);
* every chat that writes is remembered for the reply-only guardrail;
* a bare number in a chat with an open card answers that card instead of reaching the agent;
* media is downloaded (up to ``max_attachment_bytes``; a bigger file leaves a note in the text, so the message still
  arrives); quotes, mentions of us (in groups; a DM always counts), group names and push names come along.

Messages of one chat are handled one at a time in arrival order (a download must not let a later message overtake).
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import re
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from nanoclaw_app.channels.manifest import ChannelDeps
from nanoclaw_app.channels.text import parse_choice
from nanoclaw_app.channels.whatsapp import contacts, native
from nanoclaw_app.channels.whatsapp.connection import Connection
from nanoclaw_app.channels.whatsapp.jids import Me, bare, bare_text, is_chat, is_group, to_jid
from nanoclaw_app.channels.whatsapp.memory import MessageMemory
from nanoclaw_app.channels.whatsapp.state_keys import MODE_KEY, SELF_MODE
from nanoclaw_app.core import cards
from nanoclaw_app.core.adapter_contract import HostCallbacks
from nanoclaw_app.core.messages import InboundMessage, IncomingAttachment, Quoted
from nanoclaw_app.db import app_state
from nanoclaw_app.timeutil import iso

log = logging.getLogger(__name__)

CHANNEL = "whatsapp"
_NUMBER = re.compile(r"^\s*\d{1,2}\s*[.)]?\s*$")
_EXTENSIONS = {
    "image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "image/gif": ".gif",
    "audio/ogg": ".ogg", "audio/mpeg": ".mp3", "audio/mp4": ".m4a", "audio/aac": ".aac", "audio/amr": ".amr",
    "video/mp4": ".mp4", "video/3gpp": ".3gp", "application/pdf": ".pdf",
}
_LABELS = {"image": "Image", "voice": "Voice note", "audio": "Audio", "video": "Video", "document": "Document"}


@dataclass(frozen=True, slots=True)
class Media:
    """The downloadable part of a message."""

    kind: str
    name: str
    mime: str
    size: int


@dataclass(frozen=True, slots=True)
class Parsed:
    """What a message says: its text (or caption), its media and its context (quote, mentions)."""

    text: str
    media: Media | None
    context: Any | None


def parse(message: Any, message_id: str) -> Parsed | None:
    """Read a WhatsApp ``Message``; None for kinds no agent needs (reactions, receipts, protocol and poll updates)."""
    if message.HasField("extendedTextMessage"):
        ext = message.extendedTextMessage
        return Parsed(str(ext.text), None, ext.contextInfo if ext.HasField("contextInfo") else None)
    if message.conversation:
        return Parsed(str(message.conversation), None, None)
    for field, kind in (("imageMessage", "image"), ("audioMessage", "audio"), ("videoMessage", "video"),
                        ("documentMessage", "document"), ("stickerMessage", "image")):
        if not message.HasField(field):
            continue
        part = getattr(message, field)
        mime = str(part.mimetype or "").split(";")[0].strip().lower() or _default_mime(kind, field)
        if field == "audioMessage" and part.PTT:
            kind = "voice"
        caption = str(getattr(part, "caption", "") or "")
        prefix = "sticker" if field == "stickerMessage" else kind
        name = f"{prefix}-{_safe_id(message_id)}{_extension(mime)}"
        if field == "documentMessage":
            name = _safe_name(str(part.fileName or part.title or ""), fallback=name)
        context = part.contextInfo if part.HasField("contextInfo") else None
        return Parsed(caption, Media(kind, name, mime, int(part.fileLength or 0)), context)
    return None


def quoted_text(message: Any) -> str:
    """The text of a quoted message, or a word for what it was (``[image]``)."""
    parsed = parse(message, "quoted")
    if parsed is None:
        return ""
    if parsed.text:
        return parsed.text
    return f"[{parsed.media.kind}]" if parsed.media is not None else ""


class Inbound:
    """Handles ``MessageEv`` for the adapter."""

    def __init__(
        self,
        deps: ChannelDeps,
        connection: Connection,
        memory: MessageMemory,
        *,
        reply: Callable[[str, str], Awaitable[object]],
    ) -> None:
        """``reply(platform_id, text)`` sends a short confirmation (the adapter's own notice path)."""
        self._deps = deps
        self._connection = connection
        self._memory = memory
        self._reply = reply
        self.host: HostCallbacks | None = None
        self._group_names: dict[str, str | None] = {}
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def handle(self, event: Any) -> None:
        """One incoming message."""
        info = event.Info
        source = info.MessageSource
        message_id = str(info.ID or "")
        if not message_id or self._memory.is_ours(message_id):
            return  # our own message, shown back to us (the self chat) — never to the agent again
        chat = bare(source.Chat)
        sender = bare(source.Sender) or chat
        if not chat or not is_chat(chat):
            return
        me = self._connection.me
        group = bool(source.IsGroup) or is_group(chat)
        own_chat = not group and me is not None and me.is_me(chat)
        from_me = bool(source.IsFromMe) or (me is not None and me.is_me(sender))
        if from_me and not (own_chat and await self._self_mode()):
            return  # the user writing to someone from their phone: not for the agent
        if own_chat and me is not None:
            chat = sender = me.jid
        lock = self._locks.get(chat)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[chat] = lock
        async with lock:
            await self._handle(event, message_id, chat, sender, group, from_me, me)

    async def _handle(
        self, event: Any, message_id: str, chat: str, sender: str, group: bool, from_me: bool, me: Me | None,
    ) -> None:
        host = self.host
        if host is None:
            return
        self._memory.theirs(message_id, sender)
        if not from_me:
            await contacts.record(self._deps.db, chat)
        parsed = parse(event.Message, message_id)
        if parsed is None:
            return
        if parsed.media is None and _NUMBER.match(parsed.text) and await self._answer_card(chat, sender,
                                                                                             parsed.text):
            return
        attachments: list[IncomingAttachment] = []
        text = parsed.text
        if parsed.media is not None:
            attachment, note = await self._download(event.Message, parsed.media)
            if attachment is not None:
                attachments.append(attachment)
            if note:
                text = f"{text}\n{note}".strip()
        message = InboundMessage(
            channel_type=CHANNEL,
            platform_id=chat,
            message_id=message_id,
            sender_id=sender,
            text=text,
            sender_name=str(event.Info.Pushname or ""),
            is_group=group,
            is_mention=not group or self._mentions_us(parsed.context, me),
            chat_name=await self._group_name(chat) if group else None,
            timestamp=_timestamp(int(event.Info.Timestamp or 0)),
            reply_to=self._quote(parsed.context),
            attachments=tuple(attachments),
        )
        try:
            await host.on_inbound(message)
        except Exception:
            log.exception("WhatsApp message %s from %s could not be routed", message_id, chat)

    # ------------------------------------------------------------------------------------------ parts

    async def _self_mode(self) -> bool:
        return await app_state.get(self._deps.db, MODE_KEY) == SELF_MODE

    async def _answer_card(self, chat: str, sender: str, text: str) -> bool:
        """A bare number answers the newest open card of the chat; True when it did (the message is consumed)."""
        db = self._deps.db
        card = await cards.open_in_chat(db, CHANNEL, chat)
        if card is None:
            return False
        index = parse_choice(text, len(card.options))
        if index is None:
            return False
        option = card.options[index]
        if not await cards.mark_answered(db, card.id, option.value):
            await self._confirm(chat, "That question was already answered.")
            return True
        await self._confirm(chat, f"✓ {option.selected_label or option.label}")
        assert self.host is not None
        try:
            await self.host.on_action(card.question_id, option.value, f"{CHANNEL}:{sender}")
        except Exception:
            log.exception("the answer to card %s from %s could not be applied", card.question_id, sender)
        return True

    async def _confirm(self, chat: str, text: str) -> None:
        try:
            await self._reply(chat, text)
        except Exception as err:
            log.warning("could not confirm a card answer in %s: %s", chat, err)

    async def _download(self, message: Any, media: Media) -> tuple[IncomingAttachment | None, str]:
        """The file, or a note saying why it is missing (too large, download failed): the message arrives anyway."""
        cap = self._deps.settings.max_attachment_bytes
        label = _LABELS.get(media.kind, "File")
        what = f"{label} “{media.name}”" if media.kind == "document" else label
        if media.size > cap:
            return None, f"[{what} not downloaded: {_size(media.size)} is over the {_size(cap)} limit]"
        client = self._connection.client
        if client is None:
            return None, f"[{what} could not be downloaded: WhatsApp disconnected]"
        try:
            data = await client.download_any(message)
        except native.NeonizeError as err:
            log.warning("downloading %s failed: %s", media.name, err)
            return None, f"[{what} could not be downloaded: {err}]"
        data = bytes(data or b"")
        if len(data) > cap:
            return None, f"[{what} not downloaded: {_size(len(data))} is over the {_size(cap)} limit]"
        return IncomingAttachment(media.name, data, media.mime, media.kind), ""

    def _mentions_us(self, context: Any | None, me: Me | None) -> bool:
        """In a group: we were @-mentioned (by number or alias), or the message replies to one of ours."""
        if context is None or me is None:
            return False
        if any(me.is_me(bare_text(str(jid))) for jid in context.mentionedJID):
            return True
        if context.stanzaID and self._memory.is_ours(str(context.stanzaID)):
            return True
        return bool(context.HasField("quotedMessage") and context.participant
                    and me.is_me(bare_text(str(context.participant))))

    def _quote(self, context: Any | None) -> Quoted | None:
        if context is None or not context.HasField("quotedMessage"):
            return None
        sender = bare_text(str(context.participant)) if context.participant else ""
        return Quoted(quoted_text(context.quotedMessage), sender, str(context.stanzaID) or None)

    async def _group_name(self, chat: str) -> str | None:
        """The group's name, asked of WhatsApp once per group (and told to the host)."""
        if chat in self._group_names:
            return self._group_names[chat]
        name: str | None = None
        client = self._connection.client
        if client is not None:
            try:
                info = await client.get_group_info(to_jid(native, chat))
                name = str(info.GroupName.Name or "") or None
            except native.NeonizeError as err:
                log.info("WhatsApp did not give the name of group %s: %s", chat, err)
        self._group_names[chat] = name
        if name and self.host is not None:
            try:
                await self.host.on_metadata(CHANNEL, chat, name, True)
            except Exception:
                log.exception("recording the name of group %s failed", chat)
        return name


def _timestamp(millis: int) -> str | None:
    """Neonize gives message times in milliseconds since the epoch."""
    if millis <= 0:
        return None
    seconds = millis / 1000 if millis > 10**11 else float(millis)
    return iso(datetime.fromtimestamp(seconds, UTC))


def _default_mime(kind: str, field: str) -> str:
    if field == "stickerMessage":
        return "image/webp"
    return {"image": "image/jpeg", "audio": "audio/ogg", "video": "video/mp4"}.get(kind, "application/octet-stream")


def _extension(mime: str) -> str:
    return _EXTENSIONS.get(mime) or mimetypes.guess_extension(mime) or ".bin"


def _safe_id(message_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "", message_id)[:40] or "file"


def _safe_name(name: str, *, fallback: str) -> str:
    """A document's own file name, without folders or control characters (the inbox refuses unsafe names)."""
    cleaned = PurePosixPath(name.replace("\\", "/")).name
    cleaned = re.sub(r"[\x00-\x1f\x7f]", "", cleaned).strip().lstrip(".")
    return cleaned[:120] or fallback


def _size(count: int) -> str:
    if count >= 1024 * 1024:
        return f"{count / (1024 * 1024):.1f} MB"
    if count >= 1024:
        return f"{count / 1024:.0f} KB"
    return f"{count} bytes"
