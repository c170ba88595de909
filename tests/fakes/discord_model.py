"""What the fake Discord's world is made of: ids, people, recorded calls, stored files and Discord's error answers.

Kept apart from the server (``discord_api``) so tests can name people and ids without reading the plumbing.
"""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import dataclass
from typing import Any, NamedTuple

from aiohttp import web

TOKEN = "MTEwMDAwMDAwMDAwMDAwMDAwMQ.FakeTk.nanoclaw-tests-discord-token-0123"
DISCORD_EPOCH_MS = 1420070400000
MAX_CONTENT = 2000
MAX_CUSTOM_ID = 100
BOT_PERMISSIONS = sum(1 << bit for bit in (0, 6, 10, 11, 14, 15, 16, 18, 35, 38))
"""Create invite, add reactions, view, send, embed links, attach files, read history, external emoji, create public
threads, send in threads: what the invite link asks for, given to @everyone here."""


def snowflake(when_ms: int, counter: int) -> int:
    """A Discord id: milliseconds since the Discord epoch in the high bits, so ``created_at`` is meaningful."""
    return ((when_ms - DISCORD_EPOCH_MS) << 22) | (counter & 0xFFF)


@dataclass(frozen=True)
class DcUser:
    """A Discord account (a person, or the bot)."""

    id: int
    username: str
    global_name: str | None = None
    bot: bool = False

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": str(self.id), "username": self.username, "discriminator": "0",
                                "global_name": self.global_name, "avatar": None, "public_flags": 0}
        if self.bot:
            data["bot"] = True
        return data

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"


BOT = DcUser(snowflake(1_700_000_000_000, 1), "nano", "Nano", bot=True)
OWNER = DcUser(snowflake(1_600_000_000_000, 2), "ann.k", "Ann Koch")
STRANGER = DcUser(snowflake(1_600_000_000_000, 3), "sam_t", "Sam")
GUILD_ID = snowflake(1_650_000_000_000, 4)
GENERAL_ID = snowflake(1_650_000_000_000, 5)
MENTION = re.compile(r"<@!?(\d+)>")


class Call(NamedTuple):
    """One REST request: method, path after ``/api/v10`` and the JSON body or form (files as name/type/data)."""

    method: str
    path: str
    body: Any


@dataclass
class StoredFile:
    """An attachment Discord holds (uploaded by the bot, or sent by a person)."""

    id: int
    filename: str
    data: bytes
    content_type: str


class DiscordRefusal(Exception):
    """An error answer: HTTP status, Discord's JSON error code and message."""

    def __init__(self, status: int, code: int, message: str, errors: dict[str, Any] | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.errors, self.retry_after = status, code, message, errors, retry_after

    def response(self) -> web.Response:
        if self.status == 429:  # discord.py only retries a 429 that came through Discord's proxy (a Via header)
            body = {"message": self.message, "retry_after": self.retry_after or 0.0, "global": False}
            return json_answer(body, 429, {"Via": "1.1 google", "Retry-After": str(self.retry_after or 0)})
        body = {"message": self.message, "code": self.code} | ({"errors": self.errors} if self.errors else {})
        return json_answer(body, self.status)


def json_answer(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """JSON the way Discord labels it: discord.py parses a body only if the type is exactly ``application/json``."""
    return web.Response(body=json.dumps(data).encode(), status=status,
                        headers={"Content-Type": "application/json"} | (headers or {}))


def form_error(field_name: str, code: str, message: str) -> DiscordRefusal:
    return DiscordRefusal(400, 50035, "Invalid Form Body",
                          {field_name: {"_errors": [{"code": code, "message": message}]}})


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat()
