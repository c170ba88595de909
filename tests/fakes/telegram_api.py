"""A fake Telegram Bot API server: a real aiohttp server on 127.0.0.1 speaking the HTTP API that PTB calls.

It implements what the Telegram adapter uses (``getMe``, ``deleteWebhook``, long-polling ``getUpdates`` honouring
``offset``/``timeout``/``limit``, ``sendMessage``, ``editMessageText``, ``editMessageReplyMarkup``, ``sendChatAction``,
``setMessageReaction``, multipart ``sendDocument``/``sendPhoto``, ``getFile`` with downloads under
``/file/bot<token>/<path>``, ``answerCallbackQuery``, ``getChat``), accepts form-encoded, multipart and JSON bodies
and records every call in ``calls`` as ``(method, params)``. HTML messages are checked the way Telegram does (known
tags, nesting, entities), so a formatting mistake is refused with "can't parse entities".

Tests drive it with ``push_message`` / ``push_callback`` (updates the bot then polls), ``fail_next`` (an error for
the next call of a method), ``revoke_token`` (401 from then on) and ``stop``/``start`` (the same port, queued updates
and the update counter kept, like Telegram's servers holding messages while the bot could not poll).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html import unescape
from typing import Any

from aiohttp import web

TOKEN = "123456789:AAHfakeTokenForNanoClawTests-0123456"
BOT_ID = 123456789
BOT_USERNAME = "nano_test_bot"

ALLOWED_TAGS = frozenset({"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a",
                          "code", "pre", "blockquote", "tg-emoji"})
ALLOWED_REACTIONS = frozenset({"👍", "👎", "❤", "🔥", "🥰", "👏", "😁", "🤔", "🤯", "😱", "🎉", "🙏", "👌", "😢", "👀"})
JSON_FIELDS = frozenset({"reply_markup", "reaction", "entities", "caption_entities", "reply_parameters",
                         "link_preview_options", "allowed_updates"})
INT_FIELDS = frozenset({"chat_id", "message_id", "offset", "limit", "timeout", "message_thread_id", "user_id"})
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[a-zA-Z-]+(?:=\"[^\"]*\"|='[^']*')?)*)\s*>")
_ENTITY = re.compile(r"&(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")


@dataclass(frozen=True)
class TgUser:
    """A Telegram account (a person, or the bot itself)."""

    id: int
    first_name: str
    username: str | None = None
    last_name: str | None = None
    is_bot: bool = False

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        if self.username:
            data["username"] = self.username
        if self.last_name:
            data["last_name"] = self.last_name
        return data

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}" if self.last_name else self.first_name


BOT = TgUser(BOT_ID, "Nano", BOT_USERNAME, is_bot=True)
ANN = TgUser(4242, "Ann", "ann_k", "Koch")
SAM = TgUser(5151, "Sam", "sam_t")


@dataclass
class StoredFile:
    """A file Telegram holds (uploaded by the bot, or sent by a person)."""

    file_id: str
    data: bytes
    path: str
    name: str | None = None
    mime_type: str | None = None


class TelegramRefusal(Exception):
    """An error answer: HTTP status, description and optional parameters."""

    def __init__(self, status: int, description: str, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


def visible_text(markup: str) -> str:
    """What a person sees for an HTML message: tags checked and removed, entities decoded (Telegram's rules).

    Raises:
        TelegramRefusal: the markup is what Telegram refuses with "can't parse entities".
    """
    out: list[str] = []
    stack: list[str] = []
    i = 0
    while i < len(markup):
        char = markup[i]
        if char == "<":
            match = _TAG.match(markup, i)
            if match is None:
                raise _parse_error(f"Unexpected start tag at byte offset {i}")
            closing, name = match.group(1), match.group(2).lower()
            if name not in ALLOWED_TAGS:
                raise _parse_error(f'Unsupported start tag "{name}" at byte offset {i}')
            if closing:
                if not stack or stack[-1] != name:
                    expected = stack[-1] if stack else ""
                    raise _parse_error(f'Unmatched end tag at byte offset {i}, expected "</{expected}>", found '
                                       f'"</{name}>"')
                stack.pop()
            else:
                stack.append(name)
            i = match.end()
        elif char == "&":
            match = _ENTITY.match(markup, i)
            if match is None:
                raise _parse_error(f"Unsupported HTML entity at byte offset {i}")
            out.append(unescape(match.group(0)))
            i = match.end()
        elif char == ">":
            raise _parse_error(f"Unexpected end of tag at byte offset {i}")
        else:
            out.append(char)
            i += 1
    if stack:
        raise _parse_error(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"')
    return "".join(out)


def _parse_error(detail: str) -> TelegramRefusal:
    return TelegramRefusal(400, f"Bad Request: can't parse entities: {detail}")


def utf16_len(text: str) -> int:
    """Telegram measures entity offsets in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def mention_entities(text: str) -> list[dict[str, Any]]:
    """``mention`` entities for every ``@username`` in ``text``, as Telegram clients send them."""
    return [{"type": "mention", "offset": utf16_len(text[: m.start()]), "length": utf16_len(m.group(0))}
            for m in re.finditer(r"@[A-Za-z0-9_]{3,}", text)]


@dataclass
class FakeBotApi:
    """The server. ``await start()`` binds a free port (the same one again after ``stop()``)."""

    token: str = TOKEN
    bot: TgUser = BOT
    can_read_all_group_messages: bool = False
    port: int = 0
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    messages: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    """Every message in every chat (people's and the bot's), as Telegram stores it."""
    markup: dict[tuple[int, int], str] = field(default_factory=dict)
    """The HTML the bot sent for a message (when it used parse_mode HTML)."""
    files: dict[str, StoredFile] = field(default_factory=dict)
    chats: dict[int, dict[str, Any]] = field(default_factory=dict)
    reactions: dict[tuple[int, int], list[str]] = field(default_factory=dict)
    polls: int = 0
    """How many ``getUpdates`` calls were answered."""

    def __post_init__(self) -> None:
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(100)
        self._file_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._failures: dict[str, list[TelegramRefusal | None]] = {}
        self._revoked = False
        self._closing = False
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        """What goes into ``telegram_api_base_url``."""
        assert self.port, "the fake Bot API is not started"
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._runner is not None

    async def start(self) -> None:
        """Listen (again) on 127.0.0.1; queued updates and counters are kept across restarts."""
        assert self._runner is None, "already running"
        self._closing = False
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self._runner = runner
        if not self.port:
            self.port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        """Go offline: long polls are answered at once, then nothing listens until ``start``."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._closing = True
        self._notify()
        await runner.cleanup()

    async def __aenter__(self) -> FakeBotApi:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------------------------------ test controls

    def revoke_token(self) -> None:
        """Answer every request with 401 from now on (the token was revoked in @BotFather)."""
        self._revoked = True
        self._notify()

    def fail_next(self, method: str, status: int, description: str, *, retry_after: int | None = None,
                  after: int = 0) -> None:
        """Answer the next call of ``method`` (after ``after`` good ones) with this error; queue several by calling
        again.
        """
        parameters = {"retry_after": retry_after} if retry_after is not None else None
        queue = self._failures.setdefault(method, [])
        queue += [None] * after
        queue.append(TelegramRefusal(status, description, parameters))

    def private_chat(self, user: TgUser) -> dict[str, Any]:
        chat = {"id": user.id, "type": "private", "first_name": user.first_name}
        if user.username:
            chat["username"] = user.username
        self.chats[user.id] = chat
        return chat

    def group_chat(self, chat_id: int, title: str, kind: str = "supergroup") -> dict[str, Any]:
        chat = {"id": chat_id, "type": kind, "title": title}
        self.chats[chat_id] = chat
        return chat

    def push_message(
        self,
        text: str | None = None,
        *,
        user: TgUser = ANN,
        chat: dict[str, Any] | None = None,
        entities: list[dict[str, Any]] | None = None,
        reply_to: dict[str, Any] | None = None,
        photo: bytes | None = None,
        document: tuple[str, bytes, str] | None = None,
        voice: bytes | None = None,
        file_size: int | None = None,
    ) -> dict[str, Any]:
        """A person sends a message (in their DM unless ``chat`` is given); returns the message as stored.

        ``@mentions`` in the text get entities automatically unless ``entities`` is passed. ``file_size`` overrides
        the size Telegram reports for the attachment (to test size limits without big data).
        """
        chat = chat or self.private_chat(user)
        self.chats[chat["id"]] = chat
        message: dict[str, Any] = {"message_id": next(self._message_ids), "date": int(time.time()),
                                   "chat": chat, "from": user.to_dict()}
        field_name = "caption" if (photo or document or voice) else "text"
        if text is not None:
            message[field_name] = text
            found = mention_entities(text) if entities is None else entities
            if found:
                message["caption_entities" if field_name == "caption" else "entities"] = found
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        if photo is not None:
            small = self._store(photo[: max(1, len(photo) // 8)], "photos", "jpg")
            big = self._store(photo, "photos", "jpg")
            message["photo"] = [
                {"file_id": small.file_id, "file_unique_id": "u" + small.file_id, "width": 90, "height": 60,
                 "file_size": len(small.data)},
                {"file_id": big.file_id, "file_unique_id": "u" + big.file_id, "width": 1280, "height": 853,
                 "file_size": file_size or len(big.data)},
            ]
        if document is not None:
            name, data, mime = document
            stored = self._store(data, "documents", name.rpartition(".")[2] or "bin", name=name, mime=mime)
            message["document"] = {"file_id": stored.file_id, "file_unique_id": "u" + stored.file_id,
                                   "file_name": name, "mime_type": mime, "file_size": file_size or len(data)}
        if voice is not None:
            stored = self._store(voice, "voice", "oga", mime="audio/ogg")
            message["voice"] = {"file_id": stored.file_id, "file_unique_id": "u" + stored.file_id, "duration": 3,
                                "mime_type": "audio/ogg", "file_size": file_size or len(voice)}
        self.messages[(chat["id"], message["message_id"])] = message
        self._queue({"message": message})
        return message

    def push_callback(self, message: dict[str, Any], data: str, *, user: TgUser = ANN) -> str:
        """A person taps a button with ``data`` under one of the bot's messages; returns the query id."""
        query_id = f"cq{next(self._callback_ids)}"
        current = self.messages.get((message["chat"]["id"], message["message_id"]), message)
        self._queue({"callback_query": {"id": query_id, "from": user.to_dict(), "chat_instance": "ci-1",
                                        "message": current, "data": data}})
        return query_id

    # ------------------------------------------------------------------------------------------ reading

    def sent(self, method: str | None = None) -> list[dict[str, Any]]:
        """Params of the calls made (of one method)."""
        return [params for name, params in self.calls if method is None or name == method]

    def bot_messages(self, chat_id: int) -> list[dict[str, Any]]:
        """The bot's messages in a chat, oldest first, as they stand now (after edits)."""
        return [m for (c, _), m in sorted(self.messages.items()) if c == chat_id and m["from"]["id"] == self.bot.id]

    def texts(self, chat_id: int) -> list[str]:
        """What a person sees of the bot's messages in a chat (text or caption)."""
        return [m.get("text") or m.get("caption") or "" for m in self.bot_messages(chat_id)]

    async def wait_for(self, condition: Callable[[], Any], timeout: float = 20.0) -> Any:
        """Wait until ``condition()`` is truthy (checked on every call the server answers); returns its value."""
        async with asyncio.timeout(timeout):
            while True:
                value = condition()
                if value:
                    return value
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.2)

    async def wait_call(self, method: str, count: int = 1, timeout: float = 20.0) -> list[dict[str, Any]]:
        """Wait until ``method`` was called ``count`` times; returns all its calls."""
        return list(await self.wait_for(lambda: len(self.sent(method)) >= count and self.sent(method), timeout))

    # ------------------------------------------------------------------------------------------ internals

    def _notify(self) -> None:
        self._wake.set()
        self._wake = asyncio.Event()
        self._changed.set()

    def _queue(self, update: dict[str, Any]) -> None:
        self._updates.append({"update_id": next(self._update_ids), **update})
        self._notify()

    def _store(self, data: bytes, folder: str, ext: str, *, name: str | None = None,
               mime: str | None = None) -> StoredFile:
        number = next(self._file_ids)
        file_id = f"file{number:04d}"
        stored = StoredFile(file_id, data, f"{folder}/file_{number}.{ext}", name, mime)
        self.files[file_id] = stored
        return stored

    def _new_message(self, chat_id: int, **content: Any) -> dict[str, Any]:
        chat = self.chats.get(chat_id) or {"id": chat_id, "type": "private" if chat_id > 0 else "group",
                                           "first_name": "Someone"} | ({} if chat_id > 0 else {"title": "Group"})
        message = {"message_id": next(self._message_ids), "date": int(time.time()), "chat": chat,
                   "from": self.bot.to_dict(), **{k: v for k, v in content.items() if v is not None}}
        self.messages[(chat_id, message["message_id"])] = message
        return message

    async def _params(self, request: web.Request) -> dict[str, Any]:
        raw: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                raw.update(await request.json())
            else:
                form = await request.post()
                uploads = {k: v for k, v in form.items() if isinstance(v, web.FileField)}
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        raw[key] = {"filename": value.filename, "content_type": value.content_type,
                                    "data": value.file.read()}
                    else:
                        raw[key] = value
                for key, value in list(raw.items()):  # attach://<name> references point at another part
                    if isinstance(value, str) and value.startswith("attach://") and value[9:] in uploads:
                        raw[key] = raw.pop(value[9:])
        params: dict[str, Any] = {}
        for key, value in raw.items():
            params[key] = value
            if isinstance(value, str) and key in JSON_FIELDS:
                params[key] = json.loads(value)
            elif isinstance(value, str) and key in INT_FIELDS:
                with contextlib.suppress(ValueError):
                    params[key] = int(value)
        return params

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        try:
            params = await self._params(request)
        except (ValueError, UnicodeDecodeError) as err:
            return _error(TelegramRefusal(400, f"Bad Request: {err}"))
        self.calls.append((method, params))
        try:
            if request.match_info["token"] != self.token or self._revoked:
                raise TelegramRefusal(401, "Unauthorized")
            failures = self._failures.get(method)
            if failures and (refusal := failures.pop(0)) is not None:
                raise refusal
            handler = getattr(self, "_m_" + method, None)
            if handler is None:
                raise TelegramRefusal(404, "Not Found")
            if method == "getUpdates":
                result = await self._m_getUpdates(params, request.match_info["token"])
            else:
                result = await handler(params)
        except TelegramRefusal as refusal:
            return _error(refusal)
        finally:
            self._changed.set()
        return web.json_response({"ok": True, "result": result})

    async def _download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token or self._revoked:
            return web.Response(status=401)
        path = request.match_info["path"]
        stored = next((f for f in self.files.values() if f.path == path), None)
        if stored is None:
            return web.Response(status=404)
        self.calls.append(("download", {"path": path}))
        return web.Response(body=stored.data, content_type="application/octet-stream")

    # ------------------------------------------------------------------------------------------ methods

    async def _m_getMe(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.bot.to_dict() | {"can_join_groups": True,
                                     "can_read_all_group_messages": self.can_read_all_group_messages,
                                     "supports_inline_queries": False}

    async def _m_deleteWebhook(self, params: dict[str, Any]) -> bool:
        return True

    async def _m_getUpdates(self, params: dict[str, Any], token: str | None = None) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        if offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]  # confirmed: forgotten
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self._revoked or (token is not None and token != self.token):  # revoked during the long poll
                raise TelegramRefusal(401, "Unauthorized")
            ready = self._updates[:limit]
            remaining = deadline - loop.time()
            if ready or remaining <= 0 or self._closing:
                self.polls += 1
                return ready
            wake = self._wake
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), min(remaining, 0.5))  # also notices a changed token

    async def _m_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        text = str(params.get("text", ""))
        shown = self._render(text, params.get("parse_mode"), 4096, "message is too long")
        if not shown.strip():
            raise TelegramRefusal(400, "Bad Request: message text is empty")
        message = self._new_message(chat_id, text=shown, reply_markup=params.get("reply_markup"))
        if params.get("parse_mode"):
            self.markup[(chat_id, message["message_id"])] = text
        return message

    async def _m_editMessageText(self, params: dict[str, Any]) -> dict[str, Any]:
        key = (int(params["chat_id"]), int(params["message_id"]))
        message = self.messages.get(key)
        if message is None:
            raise TelegramRefusal(400, "Bad Request: message to edit not found")
        shown = self._render(str(params.get("text", "")), params.get("parse_mode"), 4096, "MESSAGE_TOO_LONG")
        markup = params.get("reply_markup")
        if message.get("text") == shown and message.get("reply_markup") == markup:
            raise TelegramRefusal(400, "Bad Request: message is not modified: specified new message content and "
                                       "reply markup are exactly the same as a current content and reply markup of "
                                       "the message")
        message["text"] = shown
        message["edit_date"] = int(time.time())
        if markup is None:
            message.pop("reply_markup", None)
        else:
            message["reply_markup"] = markup
        if params.get("parse_mode"):
            self.markup[key] = str(params["text"])
        return message

    async def _m_editMessageReplyMarkup(self, params: dict[str, Any]) -> dict[str, Any]:
        key = (int(params["chat_id"]), int(params["message_id"]))
        message = self.messages.get(key)
        if message is None:
            raise TelegramRefusal(400, "Bad Request: message to edit not found")
        if params.get("reply_markup") is None:
            message.pop("reply_markup", None)
        else:
            message["reply_markup"] = params["reply_markup"]
        return message

    async def _m_sendChatAction(self, params: dict[str, Any]) -> bool:
        return True

    async def _m_setMessageReaction(self, params: dict[str, Any]) -> bool:
        key = (int(params["chat_id"]), int(params["message_id"]))
        if key not in self.messages:
            raise TelegramRefusal(400, "Bad Request: message to react not found")
        emoji = [r.get("emoji", "") for r in params.get("reaction") or []]
        if any(e not in ALLOWED_REACTIONS for e in emoji):
            raise TelegramRefusal(400, "Bad Request: REACTION_INVALID")
        self.reactions[key] = emoji
        return True

    async def _m_sendDocument(self, params: dict[str, Any]) -> dict[str, Any]:
        upload = params.get("document")
        if not isinstance(upload, dict):
            raise TelegramRefusal(400, "Bad Request: there is no document in the request")
        stored = self._store(upload["data"], "documents", "bin", name=upload["filename"],
                             mime=upload["content_type"])
        document = {"file_id": stored.file_id, "file_unique_id": "u" + stored.file_id, "file_name": upload["filename"],
                    "mime_type": upload["content_type"], "file_size": len(upload["data"])}
        return self._media_message(params, document=document)

    async def _m_sendPhoto(self, params: dict[str, Any]) -> dict[str, Any]:
        upload = params.get("photo")
        if not isinstance(upload, dict):
            raise TelegramRefusal(400, "Bad Request: there is no photo in the request")
        stored = self._store(upload["data"], "photos", "jpg", name=upload["filename"], mime=upload["content_type"])
        photo = [{"file_id": stored.file_id, "file_unique_id": "u" + stored.file_id, "width": 640, "height": 480,
                  "file_size": len(upload["data"])}]
        return self._media_message(params, photo=photo)

    def _media_message(self, params: dict[str, Any], **media: Any) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        caption = params.get("caption")
        shown = self._render(str(caption), params.get("parse_mode"), 1024, "message caption is too long") \
            if caption else None
        message = self._new_message(chat_id, caption=shown, reply_markup=params.get("reply_markup"), **media)
        if caption and params.get("parse_mode"):
            self.markup[(chat_id, message["message_id"])] = str(caption)
        return message

    async def _m_getFile(self, params: dict[str, Any]) -> dict[str, Any]:
        stored = self.files.get(str(params.get("file_id")))
        if stored is None:
            raise TelegramRefusal(400, "Bad Request: invalid file_id")
        return {"file_id": stored.file_id, "file_unique_id": "u" + stored.file_id, "file_size": len(stored.data),
                "file_path": stored.path}

    async def _m_answerCallbackQuery(self, params: dict[str, Any]) -> bool:
        return True

    async def _m_getChat(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self.chats.get(int(params["chat_id"]))
        if chat is None:
            raise TelegramRefusal(400, "Bad Request: chat not found")
        return chat | {"accent_color_id": 0, "max_reaction_count": 11,
                       "accepted_gift_types": {"unlimited_gifts": False, "limited_gifts": False,
                                               "unique_gifts": False, "premium_subscription": False}}

    def _render(self, text: str, parse_mode: Any, limit: int, too_long: str) -> str:
        shown = visible_text(text) if parse_mode == "HTML" else text
        if parse_mode not in (None, "", "HTML"):
            raise TelegramRefusal(400, f"Bad Request: unsupported parse_mode {parse_mode}")
        if utf16_len(shown) > limit:
            raise TelegramRefusal(400, f"Bad Request: {too_long}")
        return shown


def _error(refusal: TelegramRefusal) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": refusal.status, "description": refusal.description}
    if refusal.parameters:
        body["parameters"] = refusal.parameters
    return web.json_response(body, status=refusal.status)
