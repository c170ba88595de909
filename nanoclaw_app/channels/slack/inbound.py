"""Events from Slack → the host: messages become ``InboundMessage``s, button clicks become card answers.

One message can arrive several times: Slack redelivers an event whose ack it did not see (same ``event_id``), and a
mention in a channel comes both as ``message`` and as ``app_mention`` (same channel and ``ts``); each is handed on
once. Events are handled one at a time in arrival order and acked only after the host has the message (bolt runs with
``process_before_response``), so a crash before the ack means Slack sends it again rather than it being lost.

In a channel every top-level message starts its own thread (``thread_id`` is its ``ts``), so each conversation with
the bot is a thread and, on this threaded channel, its own session. Edits, deletions, joins and other bots' posts are
not passed on. Files are fetched with the bot token, only from Slack's own hosts, size-capped before and while
reading, and refused when Slack answers with its HTML sign-in page instead of the file.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from nanoclaw_app.channels.received_files import not_kept, safe_name, too_large, with_notes
from nanoclaw_app.channels.routing import route
from nanoclaw_app.channels.slack.blocks import parse_action
from nanoclaw_app.channels.slack.formatting import escape, to_plain
from nanoclaw_app.channels.slack.link import CHANNEL
from nanoclaw_app.channels.slack.outbound import Sender
from nanoclaw_app.core import cards
from nanoclaw_app.core.adapter_contract import HostCallbacks
from nanoclaw_app.core.messages import InboundMessage, IncomingAttachment
from nanoclaw_app.db.database import Database
from nanoclaw_app.timeutil import iso

log = logging.getLogger(__name__)

SEEN_KEEP = 5000
ALREADY_ANSWERED = "Already answered"
NOT_ACTIVE = "This card is no longer active"
PERSON_SUBTYPES = frozenset({None, "file_share", "thread_broadcast", "me_message"})
"""Message subtypes that are a person writing; edits, deletions, joins and bot posts are not."""
DOWNLOAD_TIMEOUT_SECONDS = 120
_MIME = re.compile(r"[A-Za-z0-9][\w.+-]{0,63}/[A-Za-z0-9][\w.+-]{0,127}")
KINDS = (("image/", "image"), ("audio/", "audio"), ("video/", "video"))


def safe_mime(value: object) -> str:
    """A declared type when it looks like one, else ``application/octet-stream``."""
    text = value.strip().lower() if isinstance(value, str) else ""
    return text if _MIME.fullmatch(text) else "application/octet-stream"


def kind_of(mime: str) -> str:
    """The attachment kind the agent sees."""
    return next((kind for prefix, kind in KINDS if mime.startswith(prefix)), "document")


def slack_time(ts: str) -> str | None:
    """A message ``ts`` as an ISO time."""
    try:
        return iso(datetime.fromtimestamp(float(ts), tz=UTC))
    except (TypeError, ValueError, OverflowError):
        return None


class Seen:
    """Keys already handled, the oldest forgotten first."""

    def __init__(self, keep: int = SEEN_KEEP) -> None:
        self._keys: OrderedDict[object, None] = OrderedDict()
        self._keep = keep

    def add(self, key: object) -> bool:
        """Record ``key``; False when it was there already."""
        if key in self._keys:
            return False
        self._keys[key] = None
        while len(self._keys) > self._keep:
            self._keys.popitem(last=False)
        return True


class Inbound:
    """bolt listeners feeding the host."""

    def __init__(self, client: AsyncWebClient, db: Database, host: HostCallbacks, sender: Sender, *,
                 bot_token: str, api_url: str, max_attachment_bytes: int, bot_user: Callable[[], str | None],
                 on_refused: Callable[[], None]) -> None:
        self._client = client
        self._db = db
        self._host = host
        self._sender = sender
        self._token = bot_token
        self._api_host = urlsplit(api_url).netloc.lower()
        self._max_bytes = max_attachment_bytes
        self._bot_user = bot_user
        self._on_refused = on_refused
        self._events = Seen()
        self._messages = Seen()
        self._lock = asyncio.Lock()
        self._names: dict[str, str] = {}
        self._channels: dict[str, str] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def register(self, app: Any) -> None:
        """Add the listeners to the bolt app (before it connects)."""
        app.event("message")(self.on_message)
        app.event("app_mention")(self.on_message)
        app.event("app_uninstalled")(self.on_uninstalled)
        app.event("tokens_revoked")(self.on_uninstalled)
        app.action(re.compile(r"^c:"))(self.on_click)
        app.action(re.compile(r"^link:"))(self.on_link)
        app.error(self.on_error)

    async def stop(self) -> None:
        """Let card answers already under way finish."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # ------------------------------------------------------------------------------------------ messages

    async def on_message(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        """A ``message`` or ``app_mention`` event; the host has it (or it is logged as dropped) when this returns."""
        async with self._lock:
            if not self._events.add(body.get("event_id") or id(body)):
                log.debug("slack: event %s came again; already handled", body.get("event_id"))
                return
            key = (event.get("channel"), event.get("ts"))
            if not self._is_person(event) or not self._messages.add(key):
                return
            try:
                inbound = await self.convert(event)
            except Exception:
                log.exception("slack message %s in %s could not be read; it was not passed on", event.get("ts"),
                              event.get("channel"))
                return
            if inbound is not None:
                await route(self._host, inbound, log)

    def _is_person(self, event: dict[str, Any]) -> bool:
        if event.get("subtype") not in PERSON_SUBTYPES or event.get("bot_id") or event.get("bot_profile"):
            return False  # edits, deletions, joins, and every bot (ours included: two bots must not talk in a loop)
        user = event.get("user")
        return isinstance(user, str) and bool(user) and user != self._bot_user()

    async def convert(self, event: dict[str, Any]) -> InboundMessage | None:
        """The neutral message, or None when there is nothing to pass on."""
        channel, ts, user = str(event.get("channel") or ""), str(event.get("ts") or ""), str(event["user"])
        kind = event.get("channel_type") or ("im" if channel.startswith("D") else "channel")
        is_group = kind != "im"
        chat_name = await self._channel_name(channel) if is_group else None
        bot = self._bot_user()
        raw = str(event.get("text") or "")
        mentioned = event.get("type") == "app_mention" or (bot is not None and f"<@{bot}>" in raw)
        text = await self._plain(raw)
        attachments, notes = await self._attachments(event)
        if notes:
            text = with_notes(text, notes)
        if not text and not attachments:
            return None
        thread = event.get("thread_ts") or (ts if is_group else None)
        return InboundMessage(
            channel_type=CHANNEL,
            platform_id=channel,
            message_id=ts,
            sender_id=user,
            text=text,
            sender_name=await self._name(user),
            thread_id=str(thread) if thread else None,
            is_group=is_group,
            is_mention=not is_group or mentioned,
            chat_name=chat_name,
            timestamp=slack_time(ts),
            attachments=tuple(attachments),
            extra={"team": str(event.get("team") or "")},
        )

    async def _plain(self, raw: str) -> str:
        mentioned = set(re.findall(r"<@([A-Z0-9]+)(?:\|[^>]*)?>", raw))
        for user in mentioned:
            await self._name(user, handle=True)
        return to_plain(raw, lambda u: self._names.get(f"@{u}")).strip()

    async def _name(self, user: str, *, handle: bool = False) -> str:
        """A person's name (``handle``: their @-name), looked up once; the id when Slack will not say."""
        key = f"@{user}" if handle else user
        if key not in self._names:
            try:
                info = (await self._client.users_info(user=user)).get("user") or {}
                profile = info.get("profile") or {}
                self._names[user] = str(info.get("real_name") or profile.get("real_name") or info.get("name") or
                                        user)
                self._names[f"@{user}"] = str(profile.get("display_name") or info.get("name") or user)
            except (SlackApiError, aiohttp.ClientError, TimeoutError) as err:
                log.info("slack: no name for %s (%s)", user, type(err).__name__)
                return user
        return self._names.get(key, user)

    async def _channel_name(self, channel: str) -> str | None:
        if channel not in self._channels:
            try:
                info = (await self._client.conversations_info(channel=channel)).get("channel") or {}
            except (SlackApiError, aiohttp.ClientError, TimeoutError) as err:
                log.info("slack: no name for conversation %s (%s)", channel, type(err).__name__)
                return None
            name = str(info.get("name") or "")
            self._channels[channel] = f"#{name}" if name else ""
            try:
                await self._host.on_metadata(CHANNEL, channel, self._channels[channel] or None, True)
            except Exception:
                log.exception("slack: recording the name of conversation %s failed", channel)
        return self._channels[channel] or None


    # ------------------------------------------------------------------------------------------ files

    async def _attachments(self, event: dict[str, Any]) -> tuple[list[IncomingAttachment], list[str]]:
        """Download the message's files; anything too large, refused or unavailable becomes a note instead."""
        files = event.get("files")
        if not isinstance(files, list):
            return [], []
        attachments: list[IncomingAttachment] = []
        notes: list[str] = []
        for index, item in enumerate(files[:20], start=1):
            if not isinstance(item, dict):
                continue
            name = safe_name(item.get("name"), f"file-{index}")
            mime = safe_mime(item.get("mimetype"))
            data, note = await self._download(item, name, mime)
            if data is not None:
                attachments.append(IncomingAttachment(name=name, data=data, mime_type=mime, kind=kind_of(mime)))
            if note:
                notes.append(note)
        return attachments, notes

    def _trusted(self, url: str) -> bool:
        """Only Slack's own hosts (or the configured API's) ever see the bot token."""
        parts = urlsplit(url)
        host = parts.netloc.lower()
        if host == self._api_host and parts.scheme in ("http", "https"):
            return True
        return parts.scheme == "https" and (parts.hostname or "").endswith(".slack.com")

    async def _download(self, item: dict[str, Any], name: str, mime: str) -> tuple[bytes | None, str | None]:
        size = item.get("size")
        if isinstance(size, int) and size > self._max_bytes:
            return None, too_large(name, size, self._max_bytes)
        url = item.get("url_private_download") or item.get("url_private")
        if not isinstance(url, str) or not self._trusted(url):
            log.warning("slack: file %s has no Slack address to fetch it from (%r)", item.get("id"), url)
            return None, f"[{name} could not be downloaded from Slack]"
        try:
            timeout = aiohttp.ClientTimeout(total=DOWNLOAD_TIMEOUT_SECONDS)
            async with aiohttp.ClientSession(timeout=timeout) as http, \
                    http.get(url, headers={"Authorization": f"Bearer {self._token}"}) as answer:
                declared_html = mime == "text/html"
                if answer.status != 200:
                    return None, f"[{name} could not be downloaded from Slack (status {answer.status})]"
                if answer.content_type == "text/html" and not declared_html:
                    log.warning("slack: fetching file %s gave an HTML page, not the file (files:read missing?)",
                                item.get("id"))
                    return None, f"[{name} could not be downloaded: Slack answered with a sign-in page instead of " \
                                 "the file (the app may be missing the files:read permission)]"
                if answer.content_length is not None and answer.content_length > self._max_bytes:
                    return None, not_kept(name, self._max_bytes)
                data = bytearray()
                async for piece in answer.content.iter_chunked(64 * 1024):
                    data += piece
                    if len(data) > self._max_bytes:
                        return None, not_kept(name, self._max_bytes)
        except (aiohttp.ClientError, TimeoutError) as err:
            log.warning("slack: downloading file %s failed: %s", item.get("id"), type(err).__name__)
            return None, f"[{name} could not be downloaded: {type(err).__name__}]"
        return bytes(data), None

    # ------------------------------------------------------------------------------------------ buttons

    async def on_click(self, ack: Callable[[], Awaitable[None]], body: dict[str, Any],
                       respond: Callable[..., Awaitable[Any]]) -> None:
        """A click on a card button: acked at once (Slack allows 3 s); the answer is handled in the background."""
        await ack()
        self._spawn(self._answer(body, respond))

    async def on_link(self, ack: Callable[[], Awaitable[None]]) -> None:
        """A click on a link button opens the page in Slack; Slack still wants the ack."""
        await ack()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work, name="slack-card-answer")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, body: dict[str, Any], respond: Callable[..., Awaitable[Any]]) -> None:
        try:
            notice = await self._answer_card(body)
        except Exception:
            log.exception("slack button click %r failed", (body.get("actions") or [{}])[0].get("action_id"))
            notice = "That did not work; please answer in the NanoClaw app"
        if notice is None:
            return
        try:
            await respond(text=notice, response_type="ephemeral", replace_original=False)
        except Exception as err:
            log.info("slack: telling the clicker %r failed: %s", notice, type(err).__name__)

    async def _answer_card(self, body: dict[str, Any]) -> str | None:
        actions = body.get("actions") or [{}]
        parsed = parse_action(str(actions[0].get("action_id") or ""))
        container = body.get("container") or {}
        channel = str(container.get("channel_id") or (body.get("channel") or {}).get("id") or "")
        ts = str(container.get("message_ts") or (body.get("message") or {}).get("ts") or "")
        user = str((body.get("user") or {}).get("id") or "")
        card = await cards.get(self._db, parsed[0]) if parsed is not None else None
        if parsed is None or card is None or not user or card.platform_id != channel or (
            card.platform_message_id is not None and card.platform_message_id != ts
        ) or not 0 <= parsed[1] < len(card.options):
            log.info("slack: click on an unknown or foreign card (%r) by %s", actions[0].get("action_id"), user)
            return NOT_ACTIVE
        option = card.options[parsed[1]]
        if not await cards.mark_answered(self._db, card.id, option.value):
            return ALREADY_ANSWERED
        mark = self._sender.edit_mark()
        await self._host.on_action(card.question_id, option.value, f"{CHANNEL}:{user}")
        if not self._sender.edited_since(mark, channel, ts):  # the host did not write an outcome on it
            chosen = escape(option.selected_label or option.label)
            text = f"*{escape(card.title)}*\n\n✓ {chosen}" if card.title else f"✓ {chosen}"
            try:
                await self._sender.replace(channel, ts, text)
            except Exception:
                log.warning("slack: showing the choice on card %s failed", card.id, exc_info=True)
        return None

    # ------------------------------------------------------------------------------------------ the rest

    async def on_uninstalled(self, event: dict[str, Any]) -> None:
        """The app was removed from the workspace, or its tokens revoked: nothing works until new tokens."""
        log.warning("slack: %s", event.get("type"))
        self._on_refused()

    async def on_error(self, error: Exception, body: dict[str, Any]) -> None:
        """Bolt's last resort: log, with the event's id, and carry on."""
        log.error("slack event %s could not be handled", body.get("event_id") if isinstance(body, dict) else None,
                  exc_info=error)
