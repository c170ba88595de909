"""Sending to WhatsApp: texts (WhatsApp formatting, split at 4000), files, reactions, edits, typing and cards.

Order of checks for every send: the link must be up (else ``ChannelDown``: delivery parks the message, persisted, and
sends it when the channel reports connected), then the reply-only guardrail (``UserError``), then the rate limit
(waits). WhatsApp cannot edit a message sent by a linked device reliably, so an edit goes out as a new message. Cards
are numbered text; a reply with the number answers them (see :mod:`.inbound`).

A message sent in several parts remembers how far it got, so a retry after a dropped connection continues with the
next part instead of repeating the first ones.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from functools import partial
from io import BytesIO
from typing import Any

from nanoclaw_app.channels.manifest import ChannelDeps
from nanoclaw_app.channels.text import numbered_card, split_text
from nanoclaw_app.channels.whatsapp import contacts, native
from nanoclaw_app.channels.whatsapp.connection import Connection
from nanoclaw_app.channels.whatsapp.jids import is_group, to_jid
from nanoclaw_app.channels.whatsapp.markdown import to_whatsapp
from nanoclaw_app.channels.whatsapp.memory import MessageMemory
from nanoclaw_app.channels.whatsapp.ratelimit import TokenBucket
from nanoclaw_app.channels.whatsapp.settings import WhatsAppSettings
from nanoclaw_app.core import cards
from nanoclaw_app.core.messages import OutboundMessage, OutgoingFile
from nanoclaw_app.errors import ChannelDown, TransientError, UserError

log = logging.getLogger(__name__)

CHANNEL = "whatsapp"
TEXT_LIMIT = 4000
CARD_HINT = "Reply with the number of your choice."
EDIT_MARK = "✏️ "
IMAGE_TYPES = frozenset({"image/jpeg", "image/png"})
"""Sent as photos; anything else (GIF, WebP, PDFs, audio, …) goes as a document, which keeps the file as it is."""
PROGRESS_SIZE = 256
_DOWN_WORDS = ("not connected", "not logged in", "no device", "client is nil", "websocket", "disconnected")

Step = Callable[[], Awaitable[str]]


class Outbound:
    """Turns ``OutboundMessage`` into WhatsApp sends over the connection's current client."""

    def __init__(self, deps: ChannelDeps, connection: Connection, memory: MessageMemory, limiter: TokenBucket) -> None:
        self._deps = deps
        self._connection = connection
        self._memory = memory
        self._limiter = limiter
        self._progress: OrderedDict[str, list[str]] = OrderedDict()

    # ------------------------------------------------------------------------------------------ entry points

    async def deliver(self, platform_id: str, message: OutboundMessage) -> str | None:
        """Send one message; returns the platform id of its first part."""
        self._require_up()
        await self._guardrail(platform_id)
        if message.kind == "text":
            return await self._run(message.delivery_id, self._text_steps(platform_id, message.text, message.files))
        if message.kind == "edit":
            text = EDIT_MARK + (message.text or "")
            return await self._run(message.delivery_id, self._text_steps(platform_id, text, ()))
        if message.kind == "reaction":
            return await self._reaction(platform_id, message)
        if message.kind == "question":
            return await self._question(platform_id, message)
        if message.kind == "card":
            return await self._run(message.delivery_id, self._text_steps(platform_id, _display_card(message), ()))
        raise UserError(f"WhatsApp cannot send a {message.kind!r} message")

    async def send_text(self, platform_id: str, text: str) -> str:
        """A short notice of the adapter's own (a card confirmation): no guardrail, it answers a message just in."""
        self._require_up()
        return await self._send(platform_id, native.Message(conversation=text))

    async def typing(self, platform_id: str) -> None:
        """Show "typing…" in a chat; a failure only costs the indicator."""
        client = self._connection.client
        if client is None or not self._connection.connected:
            return
        try:
            await client.send_chat_presence(to_jid(native, platform_id), native.ChatPresence.CHAT_PRESENCE_COMPOSING,
                                            native.ChatPresenceMedia.CHAT_PRESENCE_MEDIA_TEXT)
        except native.NeonizeError as err:
            log.debug("typing indicator in %s failed: %s", platform_id, err)

    # ------------------------------------------------------------------------------------------ checks

    def _require_up(self) -> None:
        if not self._connection.connected:
            state = self._connection.state.replace("_", " ")
            raise ChannelDown(CHANNEL, f"WhatsApp is {state}: {self._connection.detail}")

    async def _guardrail(self, platform_id: str) -> None:
        """Reply-only: no cold messages to chats that never wrote to this number (the user's own chat is fine)."""
        if not self._deps.settings.channel(WhatsAppSettings).reply_only:
            return
        me = self._connection.me
        if me is not None and platform_id == me.jid:
            return
        if await contacts.wrote_first(self._deps.db, platform_id):
            return
        raise UserError(
            f"NanoClaw did not send this WhatsApp message because {platform_id} never wrote to this number first. "
            "Messaging people first is how WhatsApp numbers get banned, so the reply-only guardrail blocks it; turn "
            "off “WhatsApp reply-only” in Settings if you really want NanoClaw to start conversations."
        )

    # ------------------------------------------------------------------------------------------ kinds

    def _text_steps(self, platform_id: str, text: str, files: tuple[OutgoingFile, ...]) -> list[Step]:
        steps: list[Step] = []
        if text.strip():
            steps += [partial(self._send_text_part, platform_id, part)
                      for part in split_text(to_whatsapp(text), TEXT_LIMIT)]
        steps += [partial(self._file, platform_id, file) for file in files]
        return steps

    async def _send_text_part(self, platform_id: str, text: str) -> str:
        return await self._send(platform_id, native.Message(conversation=text))

    async def _question(self, platform_id: str, message: OutboundMessage) -> str | None:
        if not message.question_id or not message.options:
            raise UserError("a question card needs a question id and options")
        title = message.title or ""
        text = numbered_card(f"**{title}**" if title else "", message.text, message.options, hint=CARD_HINT)
        # Recorded before sending: the answer may arrive before this call returns.
        card = await cards.record(self._deps.db, CHANNEL, platform_id, message.question_id, title, message.options)
        first = await self._run(message.delivery_id, self._text_steps(platform_id, text, ()))
        await cards.set_message(self._deps.db, card.id, first)
        return first

    async def _reaction(self, platform_id: str, message: OutboundMessage) -> str:
        target = message.target_message_id
        if not target:
            raise UserError("a reaction needs the message it reacts to")
        sender = self._memory.sender(target)
        me = self._connection.me
        if sender == "":
            if me is None:
                raise TransientError("WhatsApp has not told NanoClaw its own number yet")
            sender = me.jid
        elif sender is None:
            if is_group(platform_id):
                raise UserError("NanoClaw no longer remembers who sent that WhatsApp message, so it cannot react to it")
            sender = platform_id  # in a one-to-one chat the other person sent it
        client = self._client()
        try:
            reaction = await client.build_reaction(to_jid(native, platform_id), to_jid(native, sender), target,
                                                   message.emoji or "")
        except native.NeonizeError as err:
            raise _wrap(err) from err
        return await self._send(platform_id, reaction)

    async def _file(self, platform_id: str, file: OutgoingFile) -> str:
        client = self._client()
        mime = (file.mime_type or "application/octet-stream").split(";")[0].strip().lower()
        if mime in IMAGE_TYPES:
            try:
                upload = await client.upload(file.data, native.MediaType.MediaImage)
            except native.NeonizeError as err:
                raise _wrap(err) from err
            # Built here rather than with send_image, which sniffs the type with libmagic (absent when frozen).
            image = native.ImageMessage(
                URL=upload.url, directPath=upload.DirectPath, fileEncSHA256=upload.FileEncSHA256,
                fileLength=upload.FileLength, fileSHA256=upload.FileSHA256, mediaKey=upload.MediaKey, mimetype=mime,
            )
            thumbnail = _thumbnail(file.data)
            if thumbnail is not None:
                image.JPEGThumbnail = thumbnail
            return await self._send(platform_id, native.Message(imageMessage=image))
        await self._limiter.acquire()
        client = self._client()
        try:
            # mimetype= given, so neonize does not sniff it with libmagic.
            response = await client.send_document(to_jid(native, platform_id), file.data, filename=file.name,
                                                  title=file.name, mimetype=mime)
        except native.NeonizeError as err:
            raise _wrap(err) from err
        return self._sent(response)

    # ------------------------------------------------------------------------------------------ sending

    async def _run(self, delivery_id: str, steps: list[Step]) -> str | None:
        """Run the parts of one message, continuing after the last part that went out on an earlier try."""
        ids = list(self._progress.get(delivery_id, ()))
        for step in steps[len(ids):]:
            ids.append(await step())
            self._progress[delivery_id] = list(ids)
            self._progress.move_to_end(delivery_id)
            while len(self._progress) > PROGRESS_SIZE:
                self._progress.popitem(last=False)
        self._progress.pop(delivery_id, None)
        return ids[0] if ids else None

    async def _send(self, platform_id: str, message: Any) -> str:
        await self._limiter.acquire()
        client = self._client()
        try:
            response = await client.send_message(to_jid(native, platform_id), message)
        except native.NeonizeError as err:
            raise _wrap(err) from err
        return self._sent(response)

    def _sent(self, response: Any) -> str:
        message_id = str(response.ID)
        self._memory.ours(message_id)
        return message_id

    def _client(self) -> Any:
        client = self._connection.client
        if client is None or not self._connection.connected:
            self._require_up()
            raise ChannelDown(CHANNEL, "WhatsApp is reconnecting")
        return client


def _wrap(err: Exception) -> Exception:
    """Neonize's error as ours: a lost link waits for the channel, anything else is retried with backoff."""
    text = str(err) or type(err).__name__
    if any(word in text.lower() for word in _DOWN_WORDS):
        return ChannelDown(CHANNEL, f"WhatsApp is not connected ({text})")
    return TransientError(f"WhatsApp did not take the message: {text}")


def _display_card(message: OutboundMessage) -> str:
    lines: list[str] = []
    if message.title:
        lines.append(f"**{message.title}**")
    if message.text:
        lines.append(message.text)
    links = [f"{link['label']}: {link['url']}" if link.get("label") else link["url"]
             for link in message.links if link.get("url")]
    if links:
        lines.append("\n".join(links))
    return "\n\n".join(lines)


def _thumbnail(data: bytes) -> bytes | None:
    """A small JPEG preview for the chat list; None when the image cannot be read (it is sent anyway)."""
    try:
        from PIL import Image

        with Image.open(BytesIO(data)) as image:
            image.thumbnail((96, 96))
            preview = BytesIO()
            image.convert("RGB").save(preview, format="JPEG", quality=60)
            return preview.getvalue()
    except Exception:
        return None
