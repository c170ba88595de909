"""Updates from Telegram → the host: messages become ``InboundMessage``s, button taps become card answers.

Edited messages are not passed on (PTB is not even asked for them): the agent has already answered the original, and
answering a corrected typo a second time would be noise. Messages from bots are dropped so two bots cannot talk in a
loop. Handlers never raise into PTB: a message that cannot be read or routed is logged with its id, and the next
update is handled.
"""

from __future__ import annotations

import logging
import mimetypes
from typing import TYPE_CHECKING, Any

from telegram import Bot, CallbackQuery, Message, MessageEntity, Update
from telegram.constants import ChatType
from telegram.error import BadRequest, TelegramError
from telegram.ext import CallbackQueryHandler, ContextTypes, MessageHandler, filters

from nanoclaw_app.channels.received_files import not_kept, safe_name, too_large, with_notes
from nanoclaw_app.channels.routing import route
from nanoclaw_app.channels.telegram import formatting
from nanoclaw_app.channels.telegram.keyboards import parse_callback
from nanoclaw_app.channels.telegram.link import CHANNEL
from nanoclaw_app.channels.telegram.outbound import Sender
from nanoclaw_app.core import cards
from nanoclaw_app.core.adapter_contract import HostCallbacks
from nanoclaw_app.core.messages import InboundMessage, IncomingAttachment, Quoted
from nanoclaw_app.db.database import Database
from nanoclaw_app.timeutil import iso

if TYPE_CHECKING:
    from nanoclaw_app.channels.telegram.connection import TelegramApp

log = logging.getLogger(__name__)

ALREADY_ANSWERED = "Already answered"
NOT_ACTIVE = "This card is no longer active"

Context = ContextTypes.DEFAULT_TYPE


def is_mention(message: Message, bot: Bot) -> bool:
    """Whether a group message addresses the bot: ``@username``, a text mention, ``/cmd@username``, or a reply."""
    username = f"@{bot.username}".lower()
    entities = message.parse_entities() if message.text else message.parse_caption_entities()
    for entity, value in entities.items():
        if entity.type == MessageEntity.MENTION and value.lower() == username:
            return True
        if entity.type == MessageEntity.TEXT_MENTION and entity.user is not None and entity.user.id == bot.id:
            return True
        if entity.type == MessageEntity.BOT_COMMAND and value.lower().endswith(username):
            return True
    reply = message.reply_to_message
    return reply is not None and reply.from_user is not None and reply.from_user.id == bot.id


def quoted(message: Message) -> Quoted | None:
    """The message this one replies to (the quoted part only, when the person quoted a part)."""
    reply = message.reply_to_message
    if reply is None:
        return None
    text = message.quote.text if message.quote is not None else (reply.text or reply.caption or "")
    sender = reply.from_user.full_name if reply.from_user is not None else ""
    return Quoted(text=text, sender=sender, message_id=str(reply.message_id))


def _content_notes(message: Message) -> list[str]:
    """Words for content that has no text or file of its own, so the agent knows it arrived."""
    notes: list[str] = []
    if message.sticker is not None:
        notes.append(f"[sticker {message.sticker.emoji or ''}]".replace(" ]", "]"))
    if message.location is not None:
        notes.append(f"[location {message.location.latitude:.5f}, {message.location.longitude:.5f}]")
    if message.contact is not None:
        contact = message.contact
        name = " ".join(p for p in (contact.first_name, contact.last_name) if p)
        notes.append(f"[contact {name} {contact.phone_number}]")
    return notes


class Inbound:
    """PTB handlers feeding the host."""

    def __init__(self, db: Database, host: HostCallbacks, sender: Sender, *, max_attachment_bytes: int) -> None:
        self._db = db
        self._host = host
        self._sender = sender
        self._max_bytes = max_attachment_bytes
        self._titles: dict[int, str] = {}

    def register(self, app: TelegramApp) -> None:
        """Add the handlers to the application (before it starts)."""
        app.add_handler(MessageHandler(filters.UpdateType.MESSAGE, self.on_message))
        app.add_handler(CallbackQueryHandler(self.on_callback))
        app.add_error_handler(self.on_error)

    # ------------------------------------------------------------------------------------------ messages

    async def on_message(self, update: Update, context: Context) -> None:
        """A new message in a chat the bot is in."""
        message = update.message
        if message is None:
            return
        try:
            inbound = await self.convert(message, context.bot)
        except Exception:
            log.exception("telegram message %s in chat %s could not be read; it was not passed on",
                          message.message_id, message.chat.id)
            return
        if inbound is not None:
            await route(self._host, inbound, log)

    async def convert(self, message: Message, bot: Bot) -> InboundMessage | None:
        """The neutral message, or None for what is not a person's message (service notices, other bots)."""
        chat = message.chat
        is_group = chat.type in (ChatType.GROUP, ChatType.SUPERGROUP)
        if is_group:
            await self._group_seen(chat.id, chat.title)
        author = message.sender_chat  # an anonymous group admin, or a channel writing in its discussion group
        user = message.from_user
        if author is None and (user is None or user.is_bot):
            return None
        sender_id = str(author.id) if author is not None else str(user.id) if user is not None else ""
        sender_name = (author.title or author.full_name or "") if author is not None else (
            user.full_name if user is not None else "")
        text = message.text or message.caption or ""
        notes = _content_notes(message)
        attachments, refused = await self._attachments(message)
        notes += refused
        if notes:
            text = with_notes(text, notes)
        if not text and not attachments:
            return None  # a service message (someone joined, the title changed, …)
        extra: dict[str, Any] = {}
        if author is None and user is not None and user.username:
            extra["username"] = user.username
        return InboundMessage(
            channel_type=CHANNEL,
            platform_id=str(chat.id),
            message_id=str(message.message_id),
            sender_id=sender_id,
            text=text,
            sender_name=sender_name,
            is_group=is_group,
            is_mention=not is_group or is_mention(message, bot),
            chat_name=chat.title if is_group else None,
            timestamp=iso(message.date),
            reply_to=quoted(message),
            attachments=tuple(attachments),
            extra=extra,
        )

    async def _group_seen(self, chat_id: int, title: str | None) -> None:
        if not title or self._titles.get(chat_id) == title:
            return
        self._titles[chat_id] = title
        try:
            await self._host.on_metadata(CHANNEL, str(chat_id), title, True)
        except Exception:
            log.exception("telegram: recording the name of group %s failed", chat_id)

    async def _attachments(self, message: Message) -> tuple[list[IncomingAttachment], list[str]]:
        """Download the message's media; anything too large or unavailable becomes a note in the text instead."""
        mid = message.message_id
        media: list[tuple[Any, str, str, str]] = []
        if message.photo:
            biggest = max(message.photo, key=lambda p: (p.file_size or 0, p.width * p.height))
            media.append((biggest, f"photo-{mid}.jpg", "image/jpeg", "image"))
        if message.document is not None:
            doc = message.document
            name = safe_name(doc.file_name, f"document-{mid}")
            mime = doc.mime_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
            media.append((doc, name, mime, "image" if mime.startswith("image/") else "document"))
        if message.voice is not None:
            media.append((message.voice, f"voice-{mid}.ogg", message.voice.mime_type or "audio/ogg", "voice"))
        if message.audio is not None:
            audio = message.audio
            media.append((audio, safe_name(audio.file_name, f"audio-{mid}.mp3"), audio.mime_type or "audio/mpeg",
                          "audio"))
        if message.video is not None:
            video = message.video
            media.append((video, safe_name(video.file_name, f"video-{mid}.mp4"), video.mime_type or "video/mp4",
                          "video"))
        if message.video_note is not None:
            media.append((message.video_note, f"video-note-{mid}.mp4", "video/mp4", "video"))
        attachments: list[IncomingAttachment] = []
        notes: list[str] = []
        for item, name, mime, kind in media:
            data, note = await self._download(item, name, message)
            if data is not None:
                attachments.append(IncomingAttachment(name=name, data=data, mime_type=mime, kind=kind))
            if note:
                notes.append(note)
        return attachments, notes

    async def _download(self, item: Any, name: str, message: Message) -> tuple[bytes | None, str | None]:
        size = item.file_size
        if size and size > self._max_bytes:
            return None, too_large(name, size, self._max_bytes)
        try:
            file = await item.get_file()
            data = bytes(await file.download_as_bytearray())
        except BadRequest as err:  # Telegram's Bot API serves files up to 20 MB
            log.warning("telegram file %s of message %s in %s not downloadable: %s", name, message.message_id,
                        message.chat.id, err)
            return None, f"[{name} could not be downloaded from Telegram: {err}]"
        except TelegramError as err:
            log.warning("downloading %s of message %s in %s failed: %s", name, message.message_id, message.chat.id,
                        err)
            return None, f"[{name} could not be downloaded: {err}]"
        if len(data) > self._max_bytes:
            return None, not_kept(name, self._max_bytes)
        return data, None


    # ------------------------------------------------------------------------------------------ buttons

    async def on_callback(self, update: Update, context: Context) -> None:
        """A tap on a card button: answer the question once, show the choice on the card, stop the spinner."""
        query = update.callback_query
        if query is None:
            return
        try:
            notice = await self._answer_card(query)
        except Exception:
            log.exception("telegram button tap %s (%r) failed", query.id, query.data)
            notice = "That did not work; please answer in the NanoClaw app"
        try:
            await query.answer(text=notice)
        except TelegramError as err:
            log.info("telegram: acknowledging button tap %s failed: %s", query.id, err)

    async def _answer_card(self, query: CallbackQuery) -> str | None:
        parsed = parse_callback(query.data if isinstance(query.data, str) else None)
        message = query.message
        card = await cards.get(self._db, parsed[0]) if parsed is not None else None
        if parsed is None or card is None or message is None or card.platform_id != str(message.chat.id) or (
            card.platform_message_id is not None and card.platform_message_id != str(message.message_id)
        ) or not 0 <= parsed[1] < len(card.options):
            log.info("telegram: tap on an unknown or foreign card (%r) by %s", query.data, query.from_user.id)
            return NOT_ACTIVE
        option = card.options[parsed[1]]
        if not await cards.mark_answered(self._db, card.id, option.value):
            return ALREADY_ANSWERED
        mark = self._sender.edit_mark()
        await self._host.on_action(card.question_id, option.value, f"{CHANNEL}:{query.from_user.id}")
        chat_id, message_id = message.chat.id, message.message_id
        if not self._sender.edited_since(mark, chat_id, message_id):  # the host did not write an outcome on it
            chosen = option.selected_label or option.label
            markup = f"<b>{formatting.escape(card.title)}</b>\n\n✓ {formatting.escape(chosen)}" if card.title else (
                f"✓ {formatting.escape(chosen)}")
            plain = f"{card.title}\n\n✓ {chosen}" if card.title else f"✓ {chosen}"
            try:
                await self._sender.replace(chat_id, message_id, markup, plain)
            except Exception:
                log.warning("telegram: showing the choice on card %s failed", card.id, exc_info=True)
        return None

    # ------------------------------------------------------------------------------------------ errors

    async def on_error(self, update: object, context: Context) -> None:
        """PTB's last resort: log, with the update's id, and carry on."""
        update_id = update.update_id if isinstance(update, Update) else None
        log.error("telegram update %s could not be handled", update_id, exc_info=context.error)
