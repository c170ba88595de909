"""Sending to Slack: text in parts, files, Block Kit cards, edits and reactions, in the thread a session lives in.

Text is converted to mrkdwn and split at 3500 characters on paragraph, line or word boundaries (Slack shows up to
4000 well). Files go after the text through Slack's upload flow (``files_upload_v2``) into the same thread; the first
text message's ``ts`` is what ``deliver`` returns. A send cut short (the network dropped after two of three parts)
resumes after the parts that went out when delivery retries it in this run. Cards always carry top-level text too:
it is what notifications and old clients show.

Slack's refusals become the app's errors: ``ratelimited`` → ``TransientError(retry_after=…)``; refused tokens →
``AuthError`` (and the link fails); a network error → ``TransientError`` (and the link is checked), or
``ChannelDown`` while the link is known to be down so the message waits; the rest → ``UserError`` in plain words.
"""

from __future__ import annotations

import logging
import mimetypes
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from nanoclaw_app.channels.slack import blocks as kit
from nanoclaw_app.channels.slack.formatting import to_mrkdwn
from nanoclaw_app.channels.slack.link import CHANNEL, REVOKED_NOTICE, Link
from nanoclaw_app.channels.slack.setup import REFUSED
from nanoclaw_app.channels.text import split_text
from nanoclaw_app.core import cards
from nanoclaw_app.core.messages import OutboundMessage, OutgoingFile
from nanoclaw_app.db.database import Database
from nanoclaw_app.errors import AuthError, ChannelDown, TransientError, UserError

log = logging.getLogger(__name__)

T = TypeVar("T")

TEXT_LIMIT = 3500
PROGRESS_KEEP = 200
TRANSIENT = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout",
                       "team_not_ready"})
PLAIN = {
    "channel_not_found": "the conversation was not found (the bot may have been removed from it)",
    "not_in_channel": "the bot is not a member of this channel (invite it with /invite @bot in Slack)",
    "is_archived": "the channel is archived",
    "msg_too_long": "the message is too long",
    "invalid_blocks": "Slack could not show the card",
    "cant_update_message": "only the bot's own messages can be changed",
    "message_not_found": "the message to change is gone",
    "restricted_action": "the workspace does not let the bot post here",
    "user_not_found": "that person is not in the workspace",
}
EMOJI_NAMES = {
    "👍": "+1", "👎": "-1", "❤️": "heart", "❤": "heart", "😂": "joy", "😀": "grinning", "😊": "blush",
    "🎉": "tada", "👀": "eyes", "✅": "white_check_mark", "✔️": "heavy_check_mark", "❌": "x", "🙏": "pray",
    "🔥": "fire", "🚀": "rocket", "🤔": "thinking_face", "👏": "clap", "😢": "cry", "😮": "open_mouth",
    "💯": "100", "⭐": "star", "👌": "ok_hand", "🙌": "raised_hands", "😍": "heart_eyes", "🍕": "pizza",
    "☕": "coffee", "⏳": "hourglass_flowing_sand", "⚠️": "warning", "💡": "bulb", "📌": "pushpin",
}


def reaction_name(emoji: str) -> str | None:
    """The name Slack wants for a reaction (``👍`` → ``+1``, ``:eyes:`` → ``eyes``), or None when unknown."""
    emoji = emoji.strip()
    if emoji in EMOJI_NAMES:
        return EMOJI_NAMES[emoji]
    name = emoji.strip(":").lower()
    if name and all(c.isalnum() or c in "_+-'" for c in name) and name.isascii():
        return name
    return None


def _guess_type(file: OutgoingFile) -> str:
    if file.mime_type and file.mime_type != "application/octet-stream":
        return file.mime_type
    return mimetypes.guess_type(file.name, strict=False)[0] or "application/octet-stream"


class Sender:
    """Turns ``OutboundMessage``s into Web API calls."""

    def __init__(self, client: AsyncWebClient, db: Database, link: Link,
                 on_network_error: Callable[[BaseException], None]) -> None:
        self._client = client
        self._db = db
        self._link = link
        self._on_network_error = on_network_error
        self._progress: OrderedDict[str, list[str]] = OrderedDict()
        self._edits: list[tuple[int, str, str]] = []
        self._edit_seq = 0

    async def deliver(self, channel: str, thread_ts: str | None, message: OutboundMessage) -> str | None:
        """Send one outbound message; returns the ``ts`` of the (first) message sent."""
        if not self._link.up:
            raise self._link.down()
        thread = thread_ts or None
        if message.kind == "edit":
            return await self._edit(channel, self._target(message, "edit"), message.text)
        if message.kind == "reaction":
            await self._react(channel, self._target(message, "reaction"), message.emoji or "")
            return None
        if message.kind == "question":
            return await self._question(channel, thread, message)
        if message.kind == "card":
            return await self._card(channel, thread, message)
        return await self._text(channel, thread, message)

    @staticmethod
    def _target(message: OutboundMessage, what: str) -> str:
        if not message.target_message_id:
            raise UserError(f"a {what} needs the Slack message it changes")
        return message.target_message_id

    async def open_dm(self, user: str) -> str | None:
        """The id of the bot's DM with ``user``; None when Slack knows no such person."""
        try:
            answer = await self._api(lambda: self._client.conversations_open(users=user))
        except UserError as err:
            cause = err.__cause__
            if isinstance(cause, SlackApiError) and cause.response.get("error") in ("user_not_found",
                                                                                      "cannot_dm_bot"):
                log.info("slack: no DM with %s (%s)", user, cause.response.get("error"))
                return None
            raise
        channel = answer.get("channel") or {}
        return str(channel.get("id") or "") or None

    # ------------------------------------------------------------------------------------------ kinds

    async def _text(self, channel: str, thread: str | None, message: OutboundMessage) -> str | None:
        chunks = [c for c in split_text(message.text, TEXT_LIMIT) if c.strip()]
        if not chunks and not message.files:
            raise UserError("there is nothing to send: the message is empty")
        sent = self._progress.setdefault(message.delivery_id, [])
        steps: list[tuple[str, OutgoingFile | None]] = [(c, None) for c in chunks]
        steps += [("", f) for f in message.files]
        for index, (chunk, file) in enumerate(steps):
            if index < len(sent):
                continue  # went out on an earlier attempt
            if file is not None:
                sent.append(await self._upload(channel, thread, file))
            else:
                answer = await self._api(lambda c=chunk: self._client.chat_postMessage(  # type: ignore[misc]
                    channel=channel, text=to_mrkdwn(c), thread_ts=thread, unfurl_links=False, unfurl_media=False))
                sent.append(str(answer["ts"]))
            self._remember_progress(message.delivery_id)
        self._progress.pop(message.delivery_id, None)
        return sent[0] if chunks else None

    async def _upload(self, channel: str, thread: str | None, file: OutgoingFile) -> str:
        answer = await self._api(lambda: self._client.files_upload_v2(
            channel=channel, thread_ts=thread, content=file.data, filename=file.name, title=file.name))
        uploaded = answer.get("file") or {}
        log.debug("slack: uploaded %s (%s, %d bytes) as %s", file.name, _guess_type(file), len(file.data),
                  uploaded.get("id"))
        return str(uploaded.get("id") or "")

    async def _question(self, channel: str, thread: str | None, message: OutboundMessage) -> str:
        if not message.options or not message.question_id:
            raise UserError("a question card needs a question id and options")
        title = message.title or ""
        card = await cards.record(self._db, CHANNEL, channel, message.question_id, title, message.options)
        body = message.text.strip() if message.text.strip() != title.strip() else ""
        chunks = split_text(body, kit.SECTION_LIMIT - len(title) - 10) if body else [""]
        for chunk in chunks[:-1]:
            await self._post(channel, thread, chunk)
        blocks = kit.question_blocks(card.id, title, chunks[-1], message.options)
        answer = await self._api(lambda: self._client.chat_postMessage(
            channel=channel, thread_ts=thread, text=kit.fallback(title, chunks[-1]), blocks=blocks))
        ts = str(answer["ts"])
        await cards.set_message(self._db, card.id, ts)
        return ts

    async def _card(self, channel: str, thread: str | None, message: OutboundMessage) -> str:
        title = message.title or ""
        body = message.text
        if len(body) > kit.SECTION_LIMIT - len(title) - 10:
            chunks = split_text(body, kit.SECTION_LIMIT - len(title) - 10)
            for chunk in chunks[:-1]:
                await self._post(channel, thread, chunk)
            body = chunks[-1]
        blocks, leftovers = kit.link_blocks(title, body, message.links)
        text = kit.fallback(title, "\n".join([body, *leftovers]))
        answer = await self._api(lambda: self._client.chat_postMessage(
            channel=channel, thread_ts=thread, text=text, blocks=blocks, unfurl_links=False))
        return str(answer["ts"])

    async def _post(self, channel: str, thread: str | None, text: str) -> str:
        answer = await self._api(lambda: self._client.chat_postMessage(
            channel=channel, thread_ts=thread, text=to_mrkdwn(text), unfurl_links=False, unfurl_media=False))
        return str(answer["ts"])

    async def _edit(self, channel: str, ts: str, text: str) -> str:
        chunk = split_text(text, TEXT_LIMIT)[0]
        if len(chunk) < len(text.strip("\n")):
            chunk = chunk[: TEXT_LIMIT - 1] + "…"  # an edit cannot add messages; the start is what matters
        await self.replace(channel, ts, to_mrkdwn(chunk) or "…")
        return ts

    async def _react(self, channel: str, ts: str, emoji: str) -> None:
        name = reaction_name(emoji)
        if name is None:
            log.warning("slack: no reaction name known for %r; no reaction sent", emoji)
            return
        try:
            await self._api(lambda: self._client.reactions_add(channel=channel, timestamp=ts, name=name))
        except UserError as err:
            cause = err.__cause__
            error = cause.response.get("error") if isinstance(cause, SlackApiError) else None
            if error == "already_reacted":
                return
            if error in ("invalid_name", "no_reaction"):
                log.warning("slack refused the reaction %r on %s in %s: %s", name, ts, channel, error)
                return
            raise

    # ------------------------------------------------------------------------------------------ edits

    def edit_mark(self) -> int:
        """A point in time for :meth:`edited_since`."""
        return self._edit_seq

    def edited_since(self, mark: int, channel: str, ts: str) -> bool:
        """Whether ``ts`` was edited through :meth:`replace` after ``mark`` (the host wrote an outcome on it)."""
        return any(seq > mark and c == channel and m == ts for seq, c, m in self._edits)

    async def replace(self, channel: str, ts: str, mrkdwn: str) -> None:
        """Replace a message's text and drop its buttons (``chat.update``)."""
        self._edit_seq += 1
        self._edits = [*self._edits[-(PROGRESS_KEEP - 1):], (self._edit_seq, channel, ts)]
        await self._api(lambda: self._client.chat_update(channel=channel, ts=ts, text=mrkdwn, blocks=[]))

    # ------------------------------------------------------------------------------------------ errors

    async def _api(self, call: Callable[[], Awaitable[T]]) -> T:
        """One Web API call with Slack's answers translated into the app's errors."""
        try:
            return await call()
        except SlackApiError as err:
            error = str(err.response.get("error", ""))
            if error == "ratelimited":
                retry = err.response.headers.get("Retry-After", "1") if err.response.headers else "1"
                raise TransientError("Slack asks to slow down", retry_after=float(retry or 1)) from err
            if error in REFUSED and error not in ("missing_scope", "no_permission"):
                self._link.refused()
                raise AuthError(REVOKED_NOTICE) from err
            if error in TRANSIENT:
                raise TransientError(f"Slack: {error}") from err
            raise UserError(f"Slack refused the message: {PLAIN.get(error, error)}") from err
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            was_down = not self._link.up
            self._on_network_error(err)
            if was_down:
                raise ChannelDown(CHANNEL, "Slack cannot be reached") from err
            raise TransientError(f"Slack could not be reached ({type(err).__name__})") from err

    def _remember_progress(self, delivery_id: str) -> None:
        self._progress.move_to_end(delivery_id)
        while len(self._progress) > PROGRESS_KEEP:
            self._progress.popitem(last=False)

