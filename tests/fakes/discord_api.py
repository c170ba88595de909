"""A fake Discord: a real aiohttp server on 127.0.0.1 serving the REST API (v10) and the gateway that discord.py uses.

Point discord.py at it with two class attributes (there is no per-client setting for either):
``discord.http.Route.BASE = fake.api_base`` and ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY =
yarl.URL(fake.gateway_url)`` (the plain ``Client`` never asks ``/gateway/bot``; it connects to ``DEFAULT_GATEWAY`` and
then resumes at READY's ``resume_gateway_url``, which is this server too).

The world: one guild ("Nano Home") with a text channel ``#general``, the bot as a member, its owner ``OWNER`` and a
``STRANGER``; DM channels appear when a person writes or the bot opens one. REST covers what a bot adapter calls
(messages as JSON or multipart with ``files[n]``, edits, reactions, typing, DMs, threads, interaction callbacks and
their webhook follow-ups), checks ``Authorization: Bot <token>`` (401 otherwise), refuses what Discord refuses
(content over 2000 characters, an empty message, a custom id over 100 characters, unknown channels and messages), and
records every call in ``calls``. Attachments, the bot's and people's, are served under ``/attachments/...``.

Tests drive it with ``push_message`` / ``push_dm`` / ``push_component_click`` / ``create_thread`` (gateway events),
``fail_next`` (an error, or a 429 with ``retry_after``, for the next call of a route), ``stop``/``start`` (the same
port; sessions and their event logs kept, so the client resumes and gets what it missed exactly once) and read back
with ``sent_messages``, ``interaction_responses``, ``reactions``, ``typing``. The gateway lives in ``discord_gateway``,
the people and ids (``BOT``, ``OWNER``, ``STRANGER``, ``GENERAL_ID``, ``TOKEN``) in ``discord_model``, reading request
bodies and checking content in ``discord_payloads``, the interaction routes in ``discord_interactions``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.discord_gateway import (
    INTENT_DIRECT_MESSAGES,
    INTENT_GUILD_MESSAGES,
    PRIVILEGED_INTENTS,
    FakeGateway,
)
from tests.fakes.discord_interactions import InteractionRoutes
from tests.fakes.discord_model import (
    BOT,
    BOT_PERMISSIONS,
    GENERAL_ID,
    GUILD_ID,
    MENTION,
    OWNER,
    STRANGER,
    TOKEN,
    Call,
    DcUser,
    DiscordRefusal,
    StoredFile,
    json_answer,
    now,
    snowflake,
)
from tests.fakes.discord_payloads import checked_content, read_body, with_files

Handler = Callable[[web.Request, dict[str, str], Any], Awaitable[Any]]


@dataclass
class FakeDiscord(InteractionRoutes):
    """The server. ``await start()`` binds a free port (the same one again after ``stop()``)."""

    token: str = TOKEN
    bot: DcUser = BOT
    people: tuple[DcUser, ...] = (OWNER, STRANGER)
    heartbeat_interval_ms: int = 41250
    granted_intents: int = PRIVILEGED_INTENTS
    port: int = 0
    calls: list[Call] = field(default_factory=list)
    channels: dict[int, dict[str, Any]] = field(default_factory=dict)
    """Guild text channels, threads and DM channels by id."""
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    """Every message (people's and the bot's) by id, as it stands now."""
    files: dict[int, StoredFile] = field(default_factory=dict)
    reactions: dict[int, list[str]] = field(default_factory=dict)
    """The bot's reactions by message id."""
    typing: list[int] = field(default_factory=list)
    """The channel of every typing indicator the bot sent."""
    interactions: dict[int, dict[str, Any]] = field(default_factory=dict)
    interaction_responses: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    """What the bot answered each interaction: the callback, then any follow-ups and edits."""
    dms_closed: set[int] = field(default_factory=set)
    """People who accept no DMs from the bot (Discord answers 50007)."""

    def __post_init__(self) -> None:
        self._ids = itertools.count(100)
        self._failures: dict[str, list[DiscordRefusal | None]] = {}
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.gateway = FakeGateway(ready=self._ready, guilds=lambda: [self.guild_payload()],
                                   members=lambda _gid: self._members(), token_ok=lambda t: t == self.token,
                                   heartbeat_interval_ms=self.heartbeat_interval_ms,
                                   granted_intents=self.granted_intents)
        self.channels[GENERAL_ID] = {"id": str(GENERAL_ID), "type": 0, "guild_id": str(GUILD_ID), "name": "general",
                                     "position": 0, "permission_overwrites": [], "nsfw": False, "parent_id": None,
                                     "topic": None, "last_message_id": None, "rate_limit_per_user": 0}
        self._routes: list[tuple[str, str, re.Pattern[str], Handler]] = []
        for method, template, handler in self._route_table():
            pattern = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$")
            self._routes.append((method, template, pattern, handler))

    # ------------------------------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        assert self.port, "the fake Discord is not started"
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        """What goes into ``discord.http.Route.BASE``."""
        return f"{self.base_url}/api/v10"

    @property
    def gateway_url(self) -> str:
        """What goes into ``DiscordWebSocket.DEFAULT_GATEWAY`` (and what ``/gateway`` and READY announce)."""
        return f"ws://127.0.0.1:{self.port}/gateway"

    @property
    def running(self) -> bool:
        return self._runner is not None

    async def start(self) -> None:
        """Listen (again) on 127.0.0.1; every message, session and event log is kept across restarts."""
        assert self._runner is None, "already running"
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_route("*", "/api/{version:v\\d+}/{tail:.*}", self._api)
        app.router.add_get("/attachments/{channel_id}/{file_id}/{filename}", self._download)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port, reuse_address=True).start()
        self._runner = runner
        if not self.port:
            self.port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        """Go offline: gateway sockets are closed (1001, so clients resume later), then nothing listens."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        await self.gateway.close_all(1001)
        await runner.cleanup()

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------------------------------ test controls

    def fail_next(self, route: str, status: int, message: str = "error", *, code: int = 0,
                  retry_after: float | None = None, after: int = 0) -> None:
        """Answer the next call of ``route`` (after ``after`` good ones) with this error; call again to queue more.

        ``route`` is discord.py's route key, e.g. ``"POST /channels/{channel_id}/messages"``; status 429 answers
        "You are being rate limited." with ``retry_after`` seconds, which discord.py waits and retries.
        """
        queue = self._failures.setdefault(route, [])
        queue += [None] * after
        if status == 429:
            message = "You are being rate limited." if message == "error" else message
        queue.append(DiscordRefusal(status, code, message, retry_after=retry_after))

    def dm_channel(self, user: DcUser) -> dict[str, Any]:
        """The DM channel between the bot and ``user`` (created on first use, as Discord does)."""
        for channel in self.channels.values():
            if channel["type"] == 1 and channel["recipients"][0]["id"] == str(user.id):
                return channel
        channel = {"id": str(self._new_id()), "type": 1, "recipients": [user.to_dict()], "last_message_id": None}
        self.channels[int(channel["id"])] = channel
        return channel

    def add_text_channel(self, name: str) -> int:
        """Another text channel in the guild (CHANNEL_CREATE is sent); returns its id."""
        channel_id = self._new_id()
        self.channels[channel_id] = self.channels[GENERAL_ID] | {"id": str(channel_id), "name": name, "position": 1}
        self.gateway.dispatch("CHANNEL_CREATE", self.channels[channel_id])
        return channel_id

    def push_message(self, channel_id: int, author: DcUser, content: str = "", *,
                     mentions: Sequence[DcUser] = (), attachments: Sequence[tuple[str, bytes, str]] = (),
                     thread: int | None = None, reply_to: int | None = None) -> dict[str, Any]:
        """A person writes in a channel (or in ``thread``, a thread of it); returns the message as stored.

        ``<@id>`` mentions in ``content`` are found like Discord finds them; ``mentions`` adds more. ``attachments``
        are ``(filename, data, content_type)``.
        """
        target = thread if thread is not None else channel_id
        channel = self._channel(target)
        if thread is not None and channel.get("parent_id") != str(channel_id):
            raise ValueError(f"thread {thread} is not in channel {channel_id}")
        return self._post(target, author, {"content": content}, mentions=mentions, uploads=list(attachments),
                          reply_to=reply_to)

    def push_dm(self, author: DcUser, content: str = "", *,
                attachments: Sequence[tuple[str, bytes, str]] = ()) -> dict[str, Any]:
        """A person writes to the bot directly."""
        channel = self.dm_channel(author)
        return self._post(int(channel["id"]), author, {"content": content}, uploads=list(attachments))

    def create_thread(self, channel_id: int, name: str, *, owner: DcUser = OWNER,
                      message_id: int | None = None) -> dict[str, Any]:
        """A person starts a public thread in a channel (from a message, whose id the thread then takes)."""
        return self._thread(channel_id, name, owner, message_id)

    def push_component_click(self, message_id: int, custom_id: str, user: DcUser = OWNER, *,
                             component_type: int = 2, values: Sequence[str] = ()) -> int:
        """A person clicks a button (or picks from a select) under one of the bot's messages; returns the
        interaction id (the bot's answers appear in ``interaction_responses``).
        """
        message = self._message(message_id)
        channel = self._channel(int(message["channel_id"]))
        interaction_id = self._new_id()
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component_type}
        if component_type != 2:
            data["values"] = list(values)
        payload: dict[str, Any] = {
            "id": str(interaction_id), "application_id": str(self.bot.id), "type": 3, "data": data,
            "token": f"itoken-{interaction_id}", "version": 1, "message": message, "channel_id": channel["id"],
            "channel": channel, "app_permissions": str(BOT_PERMISSIONS), "locale": "en-US", "entitlements": [],
            "attachment_size_limit": 10 * 1024 * 1024}
        if "guild_id" in channel:
            payload |= {"guild_id": str(GUILD_ID), "guild_locale": "en-US", "context": 0,
                        "guild": {"id": str(GUILD_ID), "locale": "en-US", "features": []},
                        "member": self._member(user) | {"user": user.to_dict(), "permissions": str(BOT_PERMISSIONS)},
                        "authorizing_integration_owners": {"0": str(GUILD_ID)}}
        else:
            payload |= {"user": user.to_dict(), "context": 1, "authorizing_integration_owners": {"0": "0"}}
        self.interactions[interaction_id] = payload
        self.gateway.dispatch("INTERACTION_CREATE", payload)
        self._notify()
        return interaction_id

    # ------------------------------------------------------------------------------------------ reading

    def sent(self, route: str | None = None) -> list[Call]:
        """The calls made (of one route key, e.g. ``"PUT /channels/{channel_id}/messages/{message_id}/..."``)."""
        return [c for c in self.calls if route is None or self._route_key(c) == route]

    def sent_messages(self, channel_id: int) -> list[dict[str, Any]]:
        """The bot's messages in a channel, oldest first, as they stand now (content, components, attachments,
        message_reference...).
        """
        return [m for m in self.messages.values()
                if m["channel_id"] == str(channel_id) and m["author"]["id"] == str(self.bot.id)]

    def texts(self, channel_id: int) -> list[str]:
        return [m["content"] for m in self.sent_messages(channel_id)]

    async def wait_for(self, condition: Callable[[], Any], timeout: float = 20.0) -> Any:
        """Wait until ``condition()`` is truthy (checked whenever the server answers a call); returns its value."""
        async with asyncio.timeout(timeout):
            while True:
                value = condition()
                if value:
                    return value
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.2)

    # ------------------------------------------------------------------------------------------ payloads

    def guild_payload(self) -> dict[str, Any]:
        everyone = {"id": str(GUILD_ID), "name": "@everyone", "color": 0,
                    "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
                    "hoist": False, "position": 0, "permissions": str(BOT_PERMISSIONS), "managed": False,
                    "mentionable": False, "flags": 0}
        channels = [c for c in self.channels.values() if c["type"] == 0]
        threads = [c for c in self.channels.values() if c["type"] == 11]
        return {"id": str(GUILD_ID), "name": "Nano Home", "owner_id": str(OWNER.id), "unavailable": False,
                "roles": [everyone], "channels": channels, "threads": threads, "members": self._members(),
                "member_count": 1 + len(self.people), "large": False, "joined_at": now(), "features": [],
                "emojis": [], "stickers": [], "voice_states": [], "presences": [], "preferred_locale": "en-US"}

    def _ready(self, session_id: str) -> dict[str, Any]:
        return {"v": 10, "user": self.bot.to_dict() | {"verified": True, "mfa_enabled": False, "flags": 0},
                "guilds": [{"id": str(GUILD_ID), "unavailable": True}], "session_id": session_id,
                "resume_gateway_url": self.gateway_url, "application": {"id": str(self.bot.id), "flags": 0},
                "private_channels": [], "relationships": []}

    def _members(self) -> list[dict[str, Any]]:
        return [self._member(u) | {"user": u.to_dict()} for u in (self.bot, *self.people)]

    @staticmethod
    def _member(user: DcUser) -> dict[str, Any]:
        return {"roles": [], "joined_at": "2024-01-01T00:00:00+00:00", "deaf": False, "mute": False, "flags": 0,
                "nick": None, "pending": False}

    def _new_id(self) -> int:
        return snowflake(int(time.time() * 1000), next(self._ids))

    def _notify(self) -> None:
        self._changed.set()

    def _channel(self, channel_id: int) -> dict[str, Any]:
        channel = self.channels.get(channel_id)
        if channel is None:
            raise DiscordRefusal(404, 10003, "Unknown Channel")
        return channel

    def _message(self, message_id: int, channel_id: int | None = None) -> dict[str, Any]:
        message = self.messages.get(message_id)
        if message is None or (channel_id is not None and message["channel_id"] != str(channel_id)):
            raise DiscordRefusal(404, 10008, "Unknown Message")
        return message

    def _store(self, channel_id: int, filename: str, data: bytes, content_type: str) -> dict[str, Any]:
        file_id = self._new_id()
        self.files[file_id] = StoredFile(file_id, filename, data, content_type)
        url = f"{self.base_url}/attachments/{channel_id}/{file_id}/{filename}"
        return {"id": str(file_id), "filename": filename, "size": len(data), "url": url, "proxy_url": url,
                "content_type": content_type}

    def _post(self, channel_id: int, author: DcUser, content: dict[str, Any], *, mentions: Sequence[DcUser] = (),
              uploads: list[tuple[str, bytes, str]] | None = None, reply_to: int | None = None,
              flags: int = 0) -> dict[str, Any]:
        """Store a new message by anyone and send MESSAGE_CREATE (Discord echoes the bot's own messages too)."""
        channel = self._channel(channel_id)
        text = str(content.get("content") or "")
        known = {u.id: u for u in (self.bot, *self.people, *mentions)}
        mentioned = {u.id: u for u in mentions} | {
            int(i): known[int(i)] for i in MENTION.findall(text) if int(i) in known}
        attachments = [self._store(channel_id, *upload) for upload in uploads or []]
        message: dict[str, Any] = {
            "id": str(self._new_id()), "channel_id": str(channel_id), "author": author.to_dict(), "content": text,
            "timestamp": now(), "edited_timestamp": None, "tts": False, "mention_everyone": False,
            "mentions": [u.to_dict() for u in mentioned.values()], "mention_roles": [],
            "attachments": attachments + list(content.get("attachments") or []),
            "embeds": list(content.get("embeds") or []), "components": list(content.get("components") or []),
            "pinned": False, "type": 0, "flags": flags}
        guild = "guild_id" in channel
        if guild:
            message |= {"guild_id": str(GUILD_ID), "member": self._member(author)}
        if reply_to is not None:
            referenced = self._message(reply_to)
            message |= {"type": 19, "referenced_message": referenced,
                        "message_reference": {"type": 0, "message_id": referenced["id"],
                                              "channel_id": referenced["channel_id"]}
                        | ({"guild_id": str(GUILD_ID)} if guild else {})}
        self.messages[int(message["id"])] = message
        channel["last_message_id"] = message["id"]
        if channel["type"] == 11:
            channel["message_count"] += 1
            channel["total_message_sent"] += 1
        exempt = not guild or author.id == self.bot.id or self.bot.id in mentioned
        self.gateway.dispatch("MESSAGE_CREATE", message, intent=INTENT_GUILD_MESSAGES if guild
                              else INTENT_DIRECT_MESSAGES, gated=not exempt)
        self._notify()
        return message

    def _thread(self, channel_id: int, name: str, owner: DcUser, message_id: int | None,
                auto_archive: int = 1440) -> dict[str, Any]:
        parent = self._channel(channel_id)
        if parent["type"] != 0:
            raise DiscordRefusal(400, 50024, "Cannot execute action on this channel type")
        if message_id is not None:
            starter = self._message(message_id, channel_id)
            if "thread" in starter:
                raise DiscordRefusal(400, 160004, "A thread has already been created for this message")
        thread_id = message_id if message_id is not None else self._new_id()
        thread: dict[str, Any] = {
            "id": str(thread_id), "type": 11, "guild_id": str(GUILD_ID), "parent_id": str(channel_id),
            "owner_id": str(owner.id), "name": name, "member_count": 1, "message_count": 0,
            "total_message_sent": 0, "rate_limit_per_user": 0, "last_message_id": None, "flags": 0,
            "thread_metadata": {"archived": False, "auto_archive_duration": auto_archive, "locked": False,
                                "archive_timestamp": now(), "create_timestamp": now()}}
        self.channels[thread_id] = thread
        if message_id is not None:
            self.messages[message_id]["thread"] = thread
        self.gateway.dispatch("THREAD_CREATE", thread | {"newly_created": True})
        self._notify()
        return thread

    # ------------------------------------------------------------------------------------------ HTTP plumbing

    def _route_table(self) -> list[tuple[str, str, Handler]]:
        return [
            ("GET", "/users/@me", self._r_me),
            ("GET", "/users/{user_id}", self._r_user),
            ("GET", "/oauth2/applications/@me", self._r_application),
            ("GET", "/applications/@me", self._r_application),
            ("GET", "/gateway", self._r_gateway),
            ("GET", "/gateway/bot", self._r_gateway),
            ("POST", "/users/@me/channels", self._r_open_dm),
            ("GET", "/guilds/{guild_id}", self._r_guild),
            ("GET", "/guilds/{guild_id}/channels", self._r_guild_channels),
            ("GET", "/guilds/{guild_id}/members/{user_id}", self._r_member),
            ("GET", "/channels/{channel_id}", self._r_channel),
            ("GET", "/channels/{channel_id}/messages", self._r_history),
            ("POST", "/channels/{channel_id}/messages", self._r_send),
            ("GET", "/channels/{channel_id}/messages/{message_id}", self._r_get_message),
            ("PATCH", "/channels/{channel_id}/messages/{message_id}", self._r_edit),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}", self._r_delete),
            ("PUT", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me", self._r_react),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me", self._r_unreact),
            ("POST", "/channels/{channel_id}/typing", self._r_typing),
            ("POST", "/channels/{channel_id}/messages/{message_id}/threads", self._r_thread_from_message),
            ("POST", "/channels/{channel_id}/threads", self._r_thread),
            ("PUT", "/channels/{channel_id}/thread-members/@me", self._r_no_content),
            ("POST", "/interactions/{interaction_id}/{token}/callback", self._r_callback),
            ("POST", "/webhooks/{application_id}/{token}", self._r_followup),
            ("GET", "/webhooks/{application_id}/{token}/messages/{message_id}", self._r_webhook_message),
            ("PATCH", "/webhooks/{application_id}/{token}/messages/{message_id}", self._r_webhook_edit),
            ("DELETE", "/webhooks/{application_id}/{token}/messages/{message_id}", self._r_webhook_delete),
        ]

    def _match(self, method: str, path: str) -> tuple[str, Handler, dict[str, str]] | None:
        for route_method, template, pattern, handler in self._routes:
            if route_method == method and (found := pattern.match(path)):
                return f"{method} {template}", handler, found.groupdict()
        return None

    def _route_key(self, call: Call) -> str | None:
        found = self._match(call.method, call.path)
        return found[0] if found else None

    async def _api(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        try:
            body = await read_body(request)
        except (ValueError, UnicodeDecodeError) as err:
            return DiscordRefusal(400, 50109, f"The request body contains invalid JSON: {err}").response()
        self.calls.append(Call(request.method, path, body))
        try:
            found = self._match(request.method, path)
            if found is None:
                raise DiscordRefusal(404, 0, "404: Not Found")
            key, handler, params = found
            webhook = path.startswith(("/interactions/", "/webhooks/"))  # these authenticate by their token
            if not webhook and request.headers.get("Authorization") != f"Bot {self.token}":
                raise DiscordRefusal(401, 0, "401: Unauthorized")
            failures = self._failures.get(key)
            if failures and (refusal := failures.pop(0)) is not None:
                raise refusal
            result = await handler(request, params, with_files(body))
        except DiscordRefusal as refusal:
            return refusal.response()
        finally:
            self._notify()
        if result is None:
            return web.Response(status=204)
        return json_answer(result)

    async def _download(self, request: web.Request) -> web.Response:
        stored = self.files.get(int(request.match_info["file_id"]))
        if stored is None or stored.filename != request.match_info["filename"]:
            return web.Response(status=404, text="Not Found")
        self.calls.append(Call("GET", request.path, None))
        return web.Response(body=stored.data, content_type=stored.content_type)

    # ------------------------------------------------------------------------------------------ REST routes

    async def _r_me(self, request: web.Request, params: dict[str, str], body: Any) -> Any:
        return self.bot.to_dict() | {"verified": True, "mfa_enabled": False, "flags": 0}

    async def _r_user(self, request: web.Request, params: dict[str, str], body: Any) -> Any:
        for user in (self.bot, *self.people):
            if str(user.id) == params["user_id"]:
                return user.to_dict()
        raise DiscordRefusal(404, 10013, "Unknown User")

    async def _r_application(self, request: web.Request, params: dict[str, str], body: Any) -> Any:
        return {"id": str(self.bot.id), "name": "Nano", "description": "", "icon": None, "bot_public": False,
                "bot_require_code_grant": False, "owner": OWNER.to_dict(), "verify_key": "00" * 32, "flags": 0,
                "team": None, "summary": "", "rpc_origins": [], "redirect_uris": [],
                "interactions_endpoint_url": None, "bot": self.bot.to_dict(), "approximate_guild_count": 1}

    async def _r_gateway(self, request: web.Request, params: dict[str, str], body: Any) -> Any:
        return {"url": self.gateway_url, "shards": 1,
                "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}}

    async def _r_open_dm(self, request: web.Request, params: dict[str, str], body: Any) -> Any:
        wanted = str((body or {}).get("recipient_id"))
        user = next((u for u in self.people if str(u.id) == wanted), None)
        if user is None:
            raise DiscordRefusal(400, 50033, "Invalid Recipient(s)")
        return self.dm_channel(user)

    async def _r_guild(self, request: web.Request, params: dict[str, str], body: Any) -> Any:
        if params["guild_id"] != str(GUILD_ID):
            raise DiscordRefusal(404, 10004, "Unknown Guild")
        return {k: v for k, v in self.guild_payload().items() if k not in ("channels", "threads", "members")}

    async def _r_guild_channels(self, request: web.Request, params: dict[str, str], body: Any) -> Any:
        return [c for c in self.channels.values() if c["type"] == 0]

    async def _r_member(self, request: web.Request, params: dict[str, str], body: Any) -> Any:
        for member in self._members():
            if member["user"]["id"] == params["user_id"]:
                return member
        raise DiscordRefusal(404, 10007, "Unknown Member")

    async def _r_channel(self, request: web.Request, params: dict[str, str], body: Any) -> Any:
        return self._channel(int(params["channel_id"]))

    async def _r_history(self, request: web.Request, params: dict[str, str], body: Any) -> Any:
        channel_id = params["channel_id"]
        self._channel(int(channel_id))
        limit = int(request.query.get("limit", "50"))
        found = [m for m in self.messages.values() if m["channel_id"] == channel_id]
        if "before" in request.query:
            found = [m for m in found if int(m["id"]) < int(request.query["before"])]
        if "after" in request.query:
            found = [m for m in found if int(m["id"]) > int(request.query["after"])]
        return sorted(found, key=lambda m: int(m["id"]), reverse=True)[:limit]

    async def _r_send(self, request: web.Request, params: dict[str, str], body: Any) -> Any:
        channel_id = int(params["channel_id"])
        channel = self._channel(channel_id)
        if channel["type"] == 1 and int(channel["recipients"][0]["id"]) in self.dms_closed:
            raise DiscordRefusal(403, 50007, "Cannot send messages to this user")
        payload = body or {}
        fields, uploads = checked_content(payload)
        if not (fields.get("content") or fields.get("embeds") or fields.get("components") or uploads):
            raise DiscordRefusal(400, 50006, "Cannot send an empty message")
        reference = payload.get("message_reference")
        reply_to = int(reference["message_id"]) if reference else None
        return self._post(channel_id, self.bot, fields, uploads=uploads, reply_to=reply_to,
                          flags=int(payload.get("flags") or 0))

    async def _r_get_message(self, request: web.Request, params: dict[str, str], body: Any) -> Any:
        return self._message(int(params["message_id"]), int(params["channel_id"]))

    def _apply_edit(self, message: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
        if message["author"]["id"] != str(self.bot.id):
            raise DiscordRefusal(403, 50005, "Cannot edit a message authored by another user")
        channel_id = int(message["channel_id"])
        fields, uploads = checked_content(payload, existing=message["attachments"])
        if "attachments" not in payload:
            fields.pop("attachments")
        message.update(fields)
        message["attachments"] = list(message["attachments"]) + [self._store(channel_id, *u) for u in uploads]
        message["edited_timestamp"] = now()
        self.gateway.dispatch("MESSAGE_UPDATE", message, intent=INTENT_GUILD_MESSAGES if "guild_id" in message
                              else INTENT_DIRECT_MESSAGES)
        return message

    async def _r_edit(self, request: web.Request, params: dict[str, str], body: Any) -> Any:
        return self._apply_edit(self._message(int(params["message_id"]), int(params["channel_id"])), body or {})

    async def _r_delete(self, request: web.Request, params: dict[str, str], body: Any) -> Any:
        message = self._message(int(params["message_id"]), int(params["channel_id"]))
        del self.messages[int(message["id"])]
        self.gateway.dispatch("MESSAGE_DELETE", {"id": message["id"], "channel_id": message["channel_id"]}
                              | ({"guild_id": message["guild_id"]} if "guild_id" in message else {}))
        return None

    async def _r_react(self, request: web.Request, params: dict[str, str], body: Any) -> Any:
        message = self._message(int(params["message_id"]), int(params["channel_id"]))
        emoji = params["emoji"]
        if not emoji or (emoji.isascii() and ":" not in emoji):
            raise DiscordRefusal(400, 10014, "Unknown Emoji")
        mine = self.reactions.setdefault(int(message["id"]), [])
        if emoji not in mine:
            mine.append(emoji)
        message["reactions"] = [{"count": 1, "me": True, "emoji": {"id": None, "name": e}} for e in mine]
        return None

    async def _r_unreact(self, request: web.Request, params: dict[str, str], body: Any) -> Any:
        message = self._message(int(params["message_id"]), int(params["channel_id"]))
        mine = self.reactions.get(int(message["id"]), [])
        if params["emoji"] in mine:
            mine.remove(params["emoji"])
        return None

    async def _r_typing(self, request: web.Request, params: dict[str, str], body: Any) -> Any:
        channel_id = int(params["channel_id"])
        self._channel(channel_id)
        self.typing.append(channel_id)
        return None

    async def _r_thread_from_message(self, request: web.Request, params: dict[str, str], body: Any) -> Any:
        payload = body or {}
        return self._thread(int(params["channel_id"]), str(payload.get("name", "thread")), self.bot,
                            int(params["message_id"]), int(payload.get("auto_archive_duration") or 1440))

    async def _r_thread(self, request: web.Request, params: dict[str, str], body: Any) -> Any:
        payload = body or {}
        return self._thread(int(params["channel_id"]), str(payload.get("name", "thread")), self.bot, None,
                            int(payload.get("auto_archive_duration") or 1440))

    async def _r_no_content(self, request: web.Request, params: dict[str, str], body: Any) -> Any:
        self._channel(int(params["channel_id"]))
        return None
