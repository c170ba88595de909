"""Sending to Telegram: text in parts, files, edits, reactions, typing, question cards and display cards.

Text is split at 4000 characters (Telegram allows 4096) on paragraph, line or word boundaries and sent as HTML
converted from the agent's markdown; if Telegram refuses the markup, that part is sent again as plain text. Files ride
with the first part (as its caption when it is short enough) and the first message's id is what ``deliver`` returns.
A send cut short (the network dropped after two of three parts) resumes after the parts that went out when delivery
retries it in this run, so retries do not repeat them.

Library errors become the app's: flood control → ``TransientError(retry_after=…)``; a network error →
``TransientError`` (and the link is probed), or ``ChannelDown`` while the link is known to be down so the message
waits; a blocked bot → ``UserError``; a revoked token → ``AuthError``.
"""

from __future__ import annotations

import logging
import mimetypes
import warnings
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, TypeVar

from telegram import InputFile, Message
from telegram.constants import ChatAction, ReactionEmoji
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.warnings import PTBDeprecationWarning

from nanoclaw_app.channels.telegram import formatting
from nanoclaw_app.channels.telegram.keyboards import link_keyboard, question_keyboard
from nanoclaw_app.channels.telegram.link import CHANNEL, REVOKED_NOTICE, Link
from nanoclaw_app.channels.text import split_text
from nanoclaw_app.core import cards
from nanoclaw_app.core.messages import OutboundMessage, OutgoingFile
from nanoclaw_app.db.database import Database
from nanoclaw_app.errors import AuthError, ChannelDown, TransientError, UserError

if TYPE_CHECKING:
    from telegram import Bot, InlineKeyboardMarkup

log = logging.getLogger(__name__)

T = TypeVar("T")

TEXT_LIMIT = 4000
"""Characters per message part (Telegram's limit is 4096; the margin covers reopened code fences)."""
CAPTION_LIMIT = 1024
PHOTO_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
PHOTO_MAX_BYTES = 10 * 1024 * 1024
FILE_MAX_BYTES = 50 * 1024 * 1024
"""What a bot may upload through Telegram's Bot API."""
PROGRESS_KEEP = 200
ALLOWED_REACTIONS = frozenset(e.value for e in ReactionEmoji)


def chat_ref(platform_id: str) -> int | str:
    """A chat id as the Bot API wants it: a number, or a public ``@username``."""
    try:
        return int(platform_id)
    except ValueError:
        return platform_id


def message_ref(message_id: str | None, what: str) -> int:
    """A Telegram message id from our stored string form."""
    try:
        return int(message_id or "")
    except ValueError:
        raise UserError(f"a {what} needs the Telegram message it changes (got {message_id!r})") from None


def reaction_emoji(emoji: str) -> str | None:
    """The emoji in the form Telegram accepts as a reaction (``❤️`` → ``❤``), or None when it is not one of them."""
    for candidate in (emoji, emoji.replace("\ufe0f", "")):
        if candidate in ALLOWED_REACTIONS:
            return candidate
    return None


def is_parse_error(err: BadRequest) -> bool:
    """Telegram could not read the HTML markup."""
    return "parse entities" in str(err).lower()


def _retry_after(err: RetryAfter) -> float:
    with warnings.catch_warnings():  # the attribute's type is changing (int → timedelta); both are handled
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = err.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _guess_type(file: OutgoingFile) -> str:
    if file.mime_type and file.mime_type != "application/octet-stream":
        return file.mime_type
    return mimetypes.guess_type(file.name, strict=False)[0] or "application/octet-stream"


Step = tuple[str, str, OutgoingFile | None]
"""One message of a text delivery: ``("text", chunk, None)`` or ``("file", caption, file)``."""


def plan(text: str, files: Sequence[OutgoingFile]) -> list[Step]:
    """The messages a text with files becomes, in order; files ride on the first part."""
    chunks = formatting.balance_fences(split_text(text, TEXT_LIMIT))
    if not files:
        return [("text", chunk, None) for chunk in chunks]
    first, rest = chunks[0], chunks[1:]
    steps: list[Step] = []
    caption = first if len(first) <= CAPTION_LIMIT else ""
    if first and not caption:
        steps.append(("text", first, None))
    steps += [("file", caption if i == 0 else "", f) for i, f in enumerate(files)]
    steps += [("text", chunk, None) for chunk in rest]
    return steps


class Sender:
    """Turns ``OutboundMessage``s into Bot API calls on a PTB bot."""

    def __init__(self, bot: Bot, db: Database, link: Link, on_network_error: Callable[[BaseException], None]) -> None:
        self._bot = bot
        self._db = db
        self._link = link
        self._on_network_error = on_network_error
        self._progress: OrderedDict[str, list[str]] = OrderedDict()
        self._edits: list[tuple[int, str, str]] = []
        self._edit_seq = 0

    # ------------------------------------------------------------------------------------------ dispatch

    async def deliver(self, platform_id: str, message: OutboundMessage) -> str | None:
        """Send one outbound message; returns the platform id of the (first) message sent."""
        if not self._link.can_send:
            raise self._link.down()
        chat = chat_ref(platform_id)
        try:
            if message.kind == "edit":
                return await self._edit(chat, message_ref(message.target_message_id, "edit"), message.text)
            if message.kind == "reaction":
                await self._react(chat, message_ref(message.target_message_id, "reaction"), message.emoji or "")
                return None
            if message.kind == "question":
                return await self._question(platform_id, chat, message)
            if message.kind == "card":
                return await self._card(chat, message)
            return await self._text(chat, message)
        except BadRequest as err:
            raise UserError(f"Telegram refused the message: {err}") from err

    async def typing(self, platform_id: str) -> None:
        """Show "typing…" for a few seconds; a failure only costs the indicator."""
        if not self._link.up:
            return
        try:
            await self._bot.send_chat_action(chat_ref(platform_id), ChatAction.TYPING)
        except TelegramError as err:
            log.debug("telegram: typing indicator in %s failed: %s", platform_id, err)

    # ------------------------------------------------------------------------------------------ kinds

    async def _text(self, chat: int | str, message: OutboundMessage) -> str:
        steps = plan(message.text, message.files)
        if len(steps) == 1 and steps[0][0] == "text" and not steps[0][1].strip():
            raise UserError("there is nothing to send: the message is empty")
        for file in message.files:
            if len(file.data) > FILE_MAX_BYTES:
                raise UserError(f"{file.name} is {len(file.data) // (1024 * 1024)} MB; Telegram bots can send files "
                                "of up to 50 MB")
        sent = self._progress.setdefault(message.delivery_id, [])
        for index, (kind, text, attached) in enumerate(steps):
            if index < len(sent):
                continue  # went out on an earlier attempt
            if kind == "file" and attached is not None:
                result = await self._send_file(chat, attached, text)
            else:
                result = await self._send_text(chat, text)
            sent.append(str(result.message_id))
            self._remember_progress(message.delivery_id)
        self._progress.pop(message.delivery_id, None)
        return sent[0]

    async def _question(self, platform_id: str, chat: int | str, message: OutboundMessage) -> str:
        if not message.options or not message.question_id:
            raise UserError("a question card needs a question id and options")
        title = message.title or ""
        card = await cards.record(self._db, CHANNEL, platform_id, message.question_id, title, message.options)
        keyboard = question_keyboard(card.id, message.options)
        sent = await self._send_card_text(chat, title, message.text, keyboard)
        await cards.set_message(self._db, card.id, str(sent.message_id))
        return str(sent.message_id)

    async def _card(self, chat: int | str, message: OutboundMessage) -> str:
        keyboard = link_keyboard(message.links)
        body = message.text
        if keyboard is None and message.links:
            lines = [f"{link.get('label') or link.get('url', '')}: {link.get('url', '')}" for link in message.links]
            body = "\n".join([body, *lines]) if body else "\n".join(lines)
        sent = await self._send_card_text(chat, message.title or "", body, keyboard)
        return str(sent.message_id)

    async def _edit(self, chat: int | str, message_id: int, text: str) -> str:
        chunk = split_text(text, TEXT_LIMIT)[0]
        if len(chunk) < len(text.strip("\n")):
            chunk = chunk[: TEXT_LIMIT - 1] + "…"  # an edit cannot add messages; the start is what matters
        await self.replace(chat, message_id, formatting.to_html(chunk), chunk)
        return str(message_id)

    async def _react(self, chat: int | str, message_id: int, emoji: str) -> None:
        accepted = reaction_emoji(emoji)
        if accepted is None:
            log.warning("telegram: %r is not one of the emoji Telegram allows as a reaction; no reaction sent", emoji)
            return
        try:
            await self._api(lambda: self._bot.set_message_reaction(chat, message_id, reaction=accepted))
        except BadRequest as err:
            log.warning("telegram refused the reaction %r on message %s in %s: %s", accepted, message_id, chat, err)

    # ------------------------------------------------------------------------------------------ edits

    def edit_mark(self) -> int:
        """A point in time for :meth:`edited_since`."""
        return self._edit_seq

    def edited_since(self, mark: int, chat: int | str, message_id: int) -> bool:
        """Whether ``message_id`` was edited through :meth:`replace` after ``mark`` (the host wrote an outcome)."""
        return any(seq > mark and c == str(chat) and m == str(message_id) for seq, c, m in self._edits)

    async def replace(self, chat: int | str, message_id: int, markup: str, plain: str) -> None:
        """Replace a message's text (and drop its buttons); an unchanged text counts as done."""
        self._edit_seq += 1
        self._edits = [*self._edits[-(PROGRESS_KEEP - 1):], (self._edit_seq, str(chat), str(message_id))]
        try:
            await self._with_plain_fallback(
                lambda: self._bot.edit_message_text(markup, chat_id=chat, message_id=message_id,
                                                    parse_mode=formatting.PARSE_MODE),
                lambda: self._bot.edit_message_text(plain, chat_id=chat, message_id=message_id),
            )
        except BadRequest as err:
            if "not modified" not in str(err).lower():
                raise

    # ------------------------------------------------------------------------------------------ sends

    async def _send_text(self, chat: int | str, text: str, keyboard: InlineKeyboardMarkup | None = None) -> Message:
        markup = formatting.to_html(text)
        return await self._with_plain_fallback(
            lambda: self._bot.send_message(chat, markup, parse_mode=formatting.PARSE_MODE, reply_markup=keyboard),
            lambda: self._bot.send_message(chat, text, reply_markup=keyboard),
        )

    async def _send_card_text(
        self, chat: int | str, title: str, body: str, keyboard: InlineKeyboardMarkup | None
    ) -> Message:
        """A card: bold title, then the body; long bodies go first in parts and the buttons sit on the last one."""
        head = title.strip()
        body = body.strip() if body.strip() != head else ""
        head = head if len(head) <= CAPTION_LIMIT else head[: CAPTION_LIMIT - 1] + "…"
        chunks = split_text(body, TEXT_LIMIT - len(head) - 2) if body else [""]
        for chunk in chunks[:-1]:
            await self._send_text(chat, chunk)
        last = chunks[-1]
        markup = "\n\n".join(p for p in (f"<b>{formatting.escape(head)}</b>" if head else "",
                                         formatting.to_html(last) if last else "") if p)
        plain = "\n\n".join(p for p in (head, last) if p) or "…"
        return await self._with_plain_fallback(
            lambda: self._bot.send_message(chat, markup or "…", parse_mode=formatting.PARSE_MODE,
                                           reply_markup=keyboard),
            lambda: self._bot.send_message(chat, plain, reply_markup=keyboard),
        )

    async def _send_file(self, chat: int | str, file: OutgoingFile, caption: str) -> Message:
        mime = _guess_type(file)
        markup = formatting.to_html(caption) if caption else None
        mode = formatting.PARSE_MODE if caption else None
        plain = caption or None

        def upload() -> InputFile:
            return InputFile(file.data, filename=file.name)

        if mime in PHOTO_TYPES and len(file.data) <= PHOTO_MAX_BYTES:
            try:
                return await self._with_plain_fallback(
                    lambda: self._bot.send_photo(chat, upload(), caption=markup, parse_mode=mode),
                    lambda: self._bot.send_photo(chat, upload(), caption=plain),
                )
            except BadRequest as err:  # a picture Telegram cannot process (odd dimensions): send the file itself
                log.info("telegram refused %s as a photo (%s); sending it as a document", file.name, err)
        return await self._with_plain_fallback(
            lambda: self._bot.send_document(chat, upload(), caption=markup, parse_mode=mode),
            lambda: self._bot.send_document(chat, upload(), caption=plain),
        )

    async def _with_plain_fallback(self, formatted: Callable[[], Awaitable[T]], plain: Callable[[], Awaitable[T]]) -> T:
        try:
            return await self._api(formatted)
        except BadRequest as err:
            if not is_parse_error(err):
                raise
            log.warning("telegram could not read our formatting (%s); sending plain text instead", err)
        return await self._api(plain)

    async def _api(self, call: Callable[[], Awaitable[T]]) -> T:
        """One Bot API call with its errors translated (``BadRequest`` is left to the caller)."""
        try:
            return await call()
        except BadRequest:
            raise
        except RetryAfter as err:
            raise TransientError("Telegram asks to slow down", retry_after=_retry_after(err)) from err
        except Forbidden as err:
            raise UserError(f"Telegram does not let the bot write there: {_forbidden(err)}") from err
        except InvalidToken as err:
            self._link.refused()
            raise AuthError(REVOKED_NOTICE) from err
        except ChatMigrated as err:
            raise UserError("this Telegram group became a supergroup with a new id; the bot answers there once "
                            "someone writes in it") from err
        except TimedOut as err:
            raise TransientError("Telegram did not answer in time") from err
        except NetworkError as err:
            was_down = not self._link.can_send
            self._on_network_error(err)
            if was_down:
                raise ChannelDown(CHANNEL, "Telegram cannot be reached") from err
            raise TransientError(f"Telegram could not be reached ({err})") from err
        except TelegramError as err:
            raise TransientError(f"Telegram: {err}") from err

    def _remember_progress(self, delivery_id: str) -> None:
        self._progress.move_to_end(delivery_id)
        while len(self._progress) > PROGRESS_KEEP:
            self._progress.popitem(last=False)


def _forbidden(err: Forbidden) -> str:
    text = str(err).lower()
    if "blocked" in text:
        return "the person blocked the bot (they can unblock it in Telegram)"
    if "kicked" in text or "not a member" in text:
        return "the bot was removed from this group (add it again in Telegram)"
    if "initiate" in text:
        return "the person has not started a chat with the bot yet (they need to open it and press Start)"
    return str(err)

