"""A fake Slack: a real aiohttp server on 127.0.0.1 with the Web API and the Socket Mode websocket slack-bolt uses.

Point the real libraries at it with ``AsyncWebClient(token=BOT_TOKEN, base_url=fake.api_url)`` given to
``AsyncApp(client=...)`` and ``AsyncSocketModeHandler(app, APP_TOKEN)``: ``apps.connections.open`` answers with the
fake's ``ws://`` URL. Web API calls take form, query or JSON parameters and a ``Bearer`` token (the ``xapp-`` app
token only for ``apps.connections.open``, the ``xoxb-`` bot token for the rest); every call is recorded in ``calls``
as ``(method, params)``. Blocks are checked the way Slack refuses them (``invalid_blocks``).

Socket Mode (``slack_socket.py``) holds every envelope until the app acks it and redelivers after a reconnect.
``stop``/``start`` reuse the port and keep everything (events pushed while down arrive after the reconnect). Files:
the v2 upload flow (``files.getUploadURLExternal``, bytes to the URL it gives, ``files.completeUploadExternal``) and
``url_private`` downloads, which need the bot token (without it Slack answers with its sign-in page, HTML, status
200, as the real one does).

Tests drive it with ``push_message`` / ``push_app_mention`` / ``push_block_action``, ``fail_next``, ``rate_limit``,
``lose_next_acks``, ``revoke_bot_token`` and ``send_disconnect``; they read ``sent_messages``, ``acks``,
``envelopes``, ``files``, ``reactions``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.slack_files import FileRoutes
from tests.fakes.slack_socket import Envelope, SocketModeHub
from tests.fakes.slack_workspace import (
    APP_ID,
    APP_TOKEN,
    BOT,
    BOT_ID,
    BOT_TOKEN,
    MAX_TEXT,
    OWNER,
    REACTION_NAME,
    TEAM_DOMAIN,
    TEAM_ID,
    TEAM_NAME,
    Conversation,
    SlackError,
    SlackUser,
    StoredFile,
    block_actions_payload,
    check_blocks,
    default_workspace,
    events_api_payload,
    find_button,
)

APP_TOKEN_METHODS = frozenset({"apps.connections.open"})
JSON_FIELDS = frozenset({"blocks", "attachments", "files", "metadata"})


@dataclass
class FakeSlack(FileRoutes):
    """The server. ``await start()`` binds a free port (the same one again after ``stop()``)."""

    bot_token: str = BOT_TOKEN
    app_token: str = APP_TOKEN
    port: int = 0
    echo_bot_messages: bool = False
    """Send the bot's own posts back as message events (Slack does when the app subscribes to them)."""
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    messages: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    """Every message in every conversation by ``(channel, ts)`` (people's and the bot's), as it stands now."""
    files: dict[str, StoredFile] = field(default_factory=dict)
    reactions: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    ephemeral: list[dict[str, Any]] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)
    """Bodies posted to the ``response_url`` of clicks."""

    def __post_init__(self) -> None:
        self.users, self.conversations = default_workspace()
        self._ids = itertools.count(1)
        self._last_us = 0
        self._failures: dict[str, list[SlackError | None]] = {}
        self._revoked = False
        self._response_urls: dict[str, tuple[str, str]] = {}
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.socket_mode = SocketModeHub(self._changed.set)

    # ------------------------------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        assert self.port, "the fake Slack is not started"
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """What goes into ``AsyncWebClient(base_url=...)`` (the trailing slash matters to the SDK)."""
        return f"{self.base_url}/api/"

    @property
    def running(self) -> bool:
        return self._runner is not None

    @property
    def envelopes(self) -> list[Envelope]:
        return self.socket_mode.envelopes

    @property
    def acks(self) -> list[dict[str, Any]]:
        """Every ack the app sent over Socket Mode (``envelope_id`` and any ``payload``), in order."""
        return self.socket_mode.acks

    @property
    def connections_opened(self) -> int:
        return self.socket_mode.connections_opened

    @property
    def open_connections(self) -> int:
        return self.socket_mode.open_connections

    async def start(self) -> None:
        """Listen (again) on 127.0.0.1; the workspace, queued envelopes and counters are kept across restarts."""
        assert self._runner is None, "already running"
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/link/", self.socket_mode.handle)
        app.router.add_post("/upload/v1/{secret}", self._upload)
        app.router.add_get("/files-pri/{key}/{rest:.+}", self._download)
        app.router.add_get("/signin", self._signin)
        app.router.add_post("/actions/{secret}", self._respond)
        app.on_shutdown.append(self.socket_mode.close_all)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self._runner = runner
        if not self.port:
            self.port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        """Go offline: stop listening, close every Socket Mode connection (1001), then nothing answers."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> FakeSlack:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------------------------------ test controls

    def fail_next(self, method: str, error: str, *, after: int = 0) -> None:
        """Answer the next call of ``method`` (after ``after`` good ones) with ``{"ok": false, "error": error}``."""
        queue = self._failures.setdefault(method, [])
        queue += [None] * after
        queue.append(SlackError(error))

    def rate_limit(self, method: str, retry_after: int = 1) -> None:
        """Answer the next call of ``method`` with 429, ``Retry-After`` and ``ratelimited``."""
        queue = self._failures.setdefault(method, [])
        queue.append(SlackError("ratelimited", status=429, headers={"Retry-After": str(retry_after)}))

    def lose_next_acks(self, count: int = 1) -> None:
        """Drop the next ``count`` acks on the way (recorded in ``acks`` but not counted), so Slack retries."""
        self.socket_mode.lose_next_acks(count)

    def revoke_bot_token(self) -> None:
        """The app was uninstalled: every bot-token call answers ``token_revoked`` from now on."""
        self._revoked = True

    def add_user(self, user_id: str, name: str, real_name: str) -> SlackUser:
        user = SlackUser(user_id, name, real_name)
        self.users[user_id] = user
        return user

    def add_channel(self, channel_id: str, name: str, *, private: bool = False,
                    bot_is_member: bool = True) -> Conversation:
        conversation = Conversation(channel_id, name, "group" if private else "channel", bot_is_member=bot_is_member)
        self.conversations[channel_id] = conversation
        return conversation

    def dm_with(self, user: SlackUser | str) -> str:
        """The id of the bot's DM with ``user`` (opened now if there was none)."""
        user_id = self._user(user).id
        found = next((c for c in self.conversations.values() if c.kind == "im" and c.user == user_id), None)
        if found is None:
            found = Conversation(f"D0DM{next(self._ids):05d}", kind="im", user=user_id)
            self.conversations[found.id] = found
        return found.id

    def push_message(self, channel: str, user: SlackUser | str, text: str, *, thread_ts: str | None = None,
                     files: list[tuple[str, bytes, str]] | None = None) -> dict[str, Any]:
        """A person writes in ``channel`` (a DM or a channel); ``files`` are ``(name, bytes, mimetype)``.

        Returns the message event as the app receives it (its ``ts`` identifies the message).
        """
        person = self._user(user)
        conversation = self._conversation(channel)
        ts = self._ts()
        event: dict[str, Any] = {"type": "message", "channel": conversation.id, "user": person.id, "text": text,
                                 "ts": ts, "event_ts": ts, "channel_type": conversation.kind, "team": TEAM_ID,
                                 "client_msg_id": str(uuid.uuid4())}
        if thread_ts is not None:
            event["thread_ts"] = thread_ts
            parent = self.messages.get((conversation.id, thread_ts))
            if parent is not None:
                event["parent_user_id"] = parent["user"]
        if files:
            stored = [self._person_file(person, name, data, mime) for name, data, mime in files]
            event |= {"subtype": "file_share", "upload": False, "display_as_bot": False,
                      "files": [f.to_dict(self.base_url) for f in stored]}
            for item in stored:
                item.shares.append((conversation.id, ts))
        self.messages[(conversation.id, ts)] = {k: v for k, v in event.items()
                                                if k not in ("channel", "channel_type", "event_ts")}
        self._queue_event(event)
        return event

    def push_app_mention(self, channel: str, user: SlackUser | str, text: str, *, thread_ts: str | None = None,
                         also_message: bool = True) -> dict[str, Any]:
        """A person mentions the bot in a channel: ``<@bot>`` is put in front unless the text has it.

        Slack sends two events for this (the channel message and an ``app_mention`` with the same ``ts`` but its
        own ``event_id``) when the app subscribes to both; ``also_message=False`` sends only the mention.
        """
        mention = f"<@{BOT.id}>"
        text = text if mention in text else f"{mention} {text}"
        if also_message:
            message = self.push_message(channel, user, text, thread_ts=thread_ts)
            ts = message["ts"]
        else:
            ts = self._ts()
            self.messages[(channel, ts)] = {"type": "message", "user": self._user(user).id, "text": text, "ts": ts,
                                            "team": TEAM_ID} | ({"thread_ts": thread_ts} if thread_ts else {})
        event: dict[str, Any] = {"type": "app_mention", "user": self._user(user).id, "text": text, "ts": ts,
                                 "channel": self._conversation(channel).id, "event_ts": ts, "team": TEAM_ID,
                                 "client_msg_id": str(uuid.uuid4())}
        if thread_ts is not None:
            event["thread_ts"] = thread_ts
        self._queue_event(event)
        return event

    def push_block_action(self, message_ts: str, channel: str, action_id: str, value: str | None = None,
                          user: SlackUser | str = OWNER) -> dict[str, Any]:
        """A person clicks the button ``action_id`` on a message the bot posted; returns the payload sent.

        The button must be on the message as it stands (a person cannot click what Slack does not show).
        ``value`` defaults to the button's own; passing another one forges a click.
        """
        message = self.messages.get((channel, message_ts))
        if message is None:
            raise ValueError(f"no message {message_ts} in {channel}")
        found = find_button(message.get("blocks") or [], action_id)
        if found is None:
            raise ValueError(f"message {message_ts} shows no element with action_id {action_id!r}")
        secret = secrets.token_hex(8)
        self._response_urls[secret] = (channel, message_ts)
        payload: dict[str, Any] = block_actions_payload(
            self._user(user), self._conversation(channel), message, found, value, action_ts=self._ts(),
            response_url=f"{self.base_url}/actions/{secret}")
        self.socket_mode.queue(Envelope("interactive", payload, payload["trigger_id"]))
        return payload

    async def send_disconnect(self, reason: str = "refresh_requested") -> None:
        """Tell every connected client to reconnect (Slack does this every few hours and before deploys)."""
        await self.socket_mode.send_disconnect(reason)

    # ------------------------------------------------------------------------------------------ reading

    def sent(self, method: str | None = None) -> list[dict[str, Any]]:
        """Params of the calls made (of one method)."""
        return [params for name, params in self.calls if method is None or name == method]

    def sent_messages(self, channel: str) -> list[dict[str, Any]]:
        """The bot's messages in ``channel`` as they stand now, oldest first: text, blocks, thread_ts, ts, files."""
        mine = [m for (c, _), m in self.messages.items() if c == channel and m.get("bot_id") == BOT_ID]
        return [{"ts": m["ts"], "text": m.get("text", ""), "blocks": m.get("blocks"),
                 "thread_ts": m.get("thread_ts"), "files": [f["id"] for f in m.get("files", [])],
                 "edited": "edited" in m}
                for m in sorted(mine, key=lambda m: _ts_key(m["ts"]))]

    def envelope_for(self, event_or_payload: dict[str, Any]) -> Envelope:
        """The envelope that carries this pushed event or click payload."""
        for envelope in self.envelopes:
            if envelope.payload is event_or_payload or envelope.payload.get("event") is event_or_payload:
                return envelope
        raise KeyError("not pushed through this fake")

    def pending(self) -> list[Envelope]:
        """Envelopes the app has not acked yet (and clicks not expired)."""
        return self.socket_mode.pending()

    async def wait_for(self, condition: Callable[[], Any], timeout: float = 20.0) -> Any:
        """Wait until ``condition()`` is truthy (checked on every call, ack and connection); returns its value."""
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
        self._changed.set()

    def _ts(self) -> str:
        """Slack's message ids: seconds and microseconds, unique and increasing."""
        micros = max(int(time.time() * 1_000_000), self._last_us + 1)
        self._last_us = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _user(self, user: SlackUser | str) -> SlackUser:
        found = self.users.get(user if isinstance(user, str) else user.id)
        if found is None:
            raise ValueError(f"no user {user} in the workspace")
        return found

    def _conversation(self, channel: str) -> Conversation:
        found = self.conversations.get(channel)
        if found is None:
            raise ValueError(f"no conversation {channel} in the workspace")
        return found

    def _queue_event(self, event: dict[str, Any]) -> None:
        event_id = f"Ev0FAKE{next(self._ids):06d}"
        payload = events_api_payload(event, event_id)
        self.socket_mode.queue(Envelope("events_api", payload, event_id))

    def _person_file(self, person: SlackUser, name: str, data: bytes, mime: str) -> StoredFile:
        stored = StoredFile(f"F0FAKE{next(self._ids):05d}", name, data, mime, user=person.id, length=len(data))
        self.files[stored.id] = stored
        return stored

    def _writable(self, channel: Any) -> Conversation:
        """Where the bot may post: a channel it is in, a DM, or a user id (Slack posts to the DM)."""
        channel = str(channel or "")
        if channel in self.users:
            channel = self.dm_with(channel)
        conversation = self.conversations.get(channel)
        if conversation is None:
            raise SlackError("channel_not_found")
        if not conversation.bot_is_member:
            raise SlackError("not_in_channel")
        return conversation

    def _bot_message(self, channel: str, text: str, *, blocks: list[dict[str, Any]] | None = None,
                     thread_ts: str | None = None, files: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        ts = self._ts()
        message: dict[str, Any] = {"type": "message", "user": BOT.id, "bot_id": BOT_ID, "app_id": APP_ID,
                                   "text": text, "ts": ts, "team": TEAM_ID}
        if blocks:
            message["blocks"] = blocks
        if thread_ts:
            message["thread_ts"] = thread_ts
        if files:
            message["files"] = files
        self.messages[(channel, ts)] = message
        if self.echo_bot_messages:
            self._queue_event(copy.deepcopy(message) | {"channel": channel, "event_ts": ts,
                                                        "channel_type": self.conversations[channel].kind})
        return message

    def _message(self, params: dict[str, Any], key: str = "ts") -> tuple[Conversation, dict[str, Any]]:
        conversation = self.conversations.get(str(params.get("channel", "")))
        if conversation is None:
            raise SlackError("channel_not_found")
        message = self.messages.get((conversation.id, str(params.get(key, ""))))
        if message is None:
            raise SlackError("message_not_found")
        return conversation, message

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                body = await request.json()
                if not isinstance(body, dict):
                    raise ValueError("body is not an object")
                params.update(body)
            else:
                params.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
        for key in JSON_FIELDS & params.keys():
            if isinstance(params[key], str):
                params[key] = json.loads(params[key]) if params[key] else None
        return params

    def _check_token(self, method: str, token: str | None) -> None:
        if not token:
            raise SlackError("not_authed")
        expected = self.app_token if method in APP_TOKEN_METHODS else self.bot_token
        if token != expected:
            known = token in (self.app_token, self.bot_token)
            raise SlackError("not_allowed_token_type" if known else "invalid_auth")
        if self._revoked and token == self.bot_token:
            raise SlackError("token_revoked")

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        try:
            params = await self._params(request)
        except (ValueError, UnicodeDecodeError):
            return _refusal(SlackError("invalid_json"))
        bearer = request.headers.get("Authorization", "")
        token = params.pop("token", None) or (bearer[7:] if bearer.startswith("Bearer ") else None)
        self.calls.append((method, params))
        try:
            self._check_token(method, token)
            failures = self._failures.get(method)
            if failures and (failure := failures.pop(0)) is not None:
                raise failure
            handler = getattr(self, "_m_" + method.replace(".", "_"), None)
            if handler is None:
                raise SlackError("unknown_method")
            result: dict[str, Any] = handler(params)
        except SlackError as err:
            return _refusal(err)
        finally:
            self._changed.set()
        return web.json_response({"ok": True, **result})

    # ------------------------------------------------------------------------------------------ clicks

    async def _respond(self, request: web.Request) -> web.Response:
        target = self._response_urls.get(request.match_info["secret"])
        if target is None:
            return web.Response(status=404, text="no_response_url", content_type="text/plain")
        body = await request.json()
        self.responses.append(body)
        message = self.messages.get(target)
        if body.get("delete_original") and message is not None:
            del self.messages[target]
        elif body.get("replace_original") and message is not None:
            message["text"] = body.get("text", "")
            message.pop("blocks", None)
            if body.get("blocks"):
                message["blocks"] = check_blocks(body["blocks"])
        elif body.get("response_type") == "in_channel":
            self._bot_message(target[0], str(body.get("text", "")), thread_ts=body.get("thread_ts"),
                              blocks=check_blocks(body["blocks"]) if body.get("blocks") else None)
        else:
            self.ephemeral.append(body | {"channel": target[0]})
        self._notify()
        return web.Response(text="ok", content_type="text/plain")

    # ------------------------------------------------------------------------------------------ methods

    def _m_auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"url": f"https://{TEAM_DOMAIN}.slack.com/", "team": TEAM_NAME, "user": BOT.name, "team_id": TEAM_ID,
                "user_id": BOT.id, "bot_id": BOT_ID, "is_enterprise_install": False}

    def _m_apps_connections_open(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"url": self.socket_mode.new_url(self.port)}

    def _content(self, params: dict[str, Any]) -> tuple[str, list[dict[str, Any]] | None]:
        text, blocks = str(params.get("text") or ""), params.get("blocks")
        if not text and not blocks:
            raise SlackError("no_text")
        if len(text) > MAX_TEXT:
            raise SlackError("msg_too_long")
        return text, check_blocks(blocks) if blocks else None

    def _m_chat_postMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        conversation = self._writable(params.get("channel"))
        text, blocks = self._content(params)
        message = self._bot_message(conversation.id, text, blocks=blocks, thread_ts=params.get("thread_ts") or None)
        return {"channel": conversation.id, "ts": message["ts"], "message": message}

    def _m_chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        conversation, message = self._message(params)
        if message.get("bot_id") != BOT_ID:
            raise SlackError("cant_update_message")
        if "blocks" in params and not params.get("blocks") and params.get("text"):
            message.pop("blocks", None)  # an empty list clears the buttons
        text, blocks = self._content(params)
        message["text"] = text
        if blocks is not None:
            message["blocks"] = blocks
        message["edited"] = {"user": BOT.id, "ts": self._ts()}
        return {"channel": conversation.id, "ts": message["ts"], "text": text, "message": message}

    def _m_chat_delete(self, params: dict[str, Any]) -> dict[str, Any]:
        conversation, message = self._message(params)
        if message.get("bot_id") != BOT_ID:
            raise SlackError("cant_delete_message")
        del self.messages[(conversation.id, message["ts"])]
        return {"channel": conversation.id, "ts": message["ts"]}

    def _m_chat_postEphemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        conversation = self._writable(params.get("channel"))
        if str(params.get("user", "")) not in self.users:
            raise SlackError("user_not_found")
        text, blocks = self._content(params)
        ts = self._ts()
        self.ephemeral.append({"channel": conversation.id, "user": params["user"], "text": text, "blocks": blocks,
                               "thread_ts": params.get("thread_ts"), "ts": ts})
        return {"message_ts": ts}

    def _m_reactions_add(self, params: dict[str, Any]) -> dict[str, Any]:
        conversation, message = self._message(params, "timestamp")
        name = str(params.get("name", ""))
        if not REACTION_NAME.match(name):
            raise SlackError("invalid_name")
        names = self.reactions.setdefault((conversation.id, message["ts"]), [])
        if name in names:
            raise SlackError("already_reacted")
        names.append(name)
        return {}

    def _m_reactions_remove(self, params: dict[str, Any]) -> dict[str, Any]:
        conversation, message = self._message(params, "timestamp")
        names = self.reactions.get((conversation.id, message["ts"]), [])
        if str(params.get("name", "")) not in names:
            raise SlackError("no_reaction")
        names.remove(str(params["name"]))
        return {}

    def _m_conversations_open(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("channel"):
            return {"channel": self._writable(params["channel"]).to_dict(), "no_op": True, "already_open": True}
        users = [u for u in str(params.get("users", "")).split(",") if u]
        if len(users) != 1:
            raise SlackError("not_enough_users" if not users else "too_many_users")
        if users[0] not in self.users or users[0] == BOT.id:
            raise SlackError("user_not_found")
        known = set(self.conversations)
        channel = self.dm_with(users[0])
        opened = channel in known
        answer = self.conversations[channel].to_dict() if params.get("return_im") else {"id": channel}
        return {"channel": answer, "no_op": opened, "already_open": opened}

    def _m_conversations_info(self, params: dict[str, Any]) -> dict[str, Any]:
        conversation = self.conversations.get(str(params.get("channel", "")))
        if conversation is None:
            raise SlackError("channel_not_found")
        return {"channel": conversation.to_dict()}

    def _m_users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(params.get("user", "")))
        if user is None:
            raise SlackError("user_not_found")
        return {"user": user.to_dict()}


def _ts_key(ts: str) -> tuple[int, int]:
    seconds, _, micros = ts.partition(".")
    return int(seconds), int(micros or 0)


def _refusal(err: SlackError) -> web.Response:
    return web.json_response({"ok": False, "error": err.error, **err.extra}, status=err.status, headers=err.headers)
