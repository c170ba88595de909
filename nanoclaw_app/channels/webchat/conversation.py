"""The in-app chat's record: every message both ways, stored with its files and announced on the event bus.

Events (the page's live view; data is JSON):

* ``chat.message`` ``{"message": ChatMessage}``: a new bubble, ``direction`` ``in`` (the person) or ``out``.
* ``chat.update`` ``{"message": ChatMessage}``: an existing bubble changed (edited, reacted to, card answered or
  decided, started or stopped waiting for its agent); the page replaces the bubble with the same ``id``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from nanoclaw_app.channels.webchat import files as chat_files
from nanoclaw_app.channels.webchat.model import ChatMessage, fold
from nanoclaw_app.core.events import EventBus
from nanoclaw_app.db import held as held_db
from nanoclaw_app.db import webchat as webchat_db
from nanoclaw_app.db.database import Database
from nanoclaw_app.db.webchat import WebchatRow
from nanoclaw_app.errors import NotFound, UserError
from nanoclaw_app.ids import new_id
from nanoclaw_app.timeutil import now_iso

log = logging.getLogger(__name__)

T = TypeVar("T")
IoRunner = Callable[[Callable[[], T]], Awaitable[T]]

NewFile = tuple[str, bytes, str]
"""(name, data, MIME type)."""


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """Bubbles oldest first, and whether older ones exist."""

    messages: list[ChatMessage]
    has_more: bool


def delivery_message_id(platform_id: str, delivery_id: str) -> str:
    """The stored id of a delivery: the same delivery twice is one row, so a resend after a crash shows once."""
    digest = hashlib.sha256(f"{platform_id}\0{delivery_id}".encode("utf-8", "surrogatepass")).hexdigest()[:20]
    return f"msg-o{digest}"


def _json_object(raw: str | None) -> dict[str, Any] | None:
    try:
        value = json.loads(raw) if raw else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _json_list(raw: str) -> list[Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        return []
    return value if isinstance(value, list) else []


async def _inline(fn: Callable[[], Any]) -> Any:
    return fn()


class ChatLog:
    """Reads and writes ``webchat_messages`` plus the files under ``files_dir``.

    ``run_io`` keeps file work off the event loop (the session store's worker threads in the host). A person's
    message that the router holds for an agent (``held_messages`` of ``channel_type``) shows as ``waiting``.
    """

    def __init__(
        self, db: Database, events: EventBus, files_dir: Path, run_io: IoRunner[Any] | None = None, *,
        channel_type: str = "webchat",
    ) -> None:
        self.db = db
        self.events = events
        self.files_dir = files_dir
        self._run_io: IoRunner[Any] = run_io or _inline
        self._channel_type = channel_type

    # ------------------------------------------------------------------------------------------ writing

    async def add(
        self,
        *,
        platform_id: str,
        direction: str,
        kind: str = "text",
        sender: str = "",
        text: str = "",
        files: Sequence[NewFile] = (),
        card: dict[str, Any] | None = None,
        message_id: str | None = None,
    ) -> tuple[ChatMessage, bool]:
        """Store a new bubble and announce it; returns it and whether it was new (False for a repeated delivery)."""
        message_id = message_id or new_id("msg")
        existing = await webchat_db.get(self.db, message_id)
        if existing is not None:
            return await self._folded(existing), False
        records = await self._run_io(lambda: chat_files.save_files(self.files_dir, message_id, files)) if files else []
        inserted = await webchat_db.insert(
            self.db, message_id=message_id, platform_id=platform_id, direction=direction, kind=kind, sender=sender,
            text=text, files=records, card=card, created_at=now_iso(),
        )
        row = await webchat_db.get(self.db, message_id)
        assert row is not None
        message = await self._folded(row)
        if inserted:
            self.events.publish("chat.message", message=message.to_json())
        return message, inserted

    async def change(self, *, platform_id: str, target_id: str, kind: str, text: str, change_id: str) -> ChatMessage:
        """Record an edit or reaction of ``target_id`` and announce the changed bubble."""
        target = await webchat_db.get(self.db, target_id)
        if target is None or target.platform_id != platform_id:
            raise UserError(f"message {target_id} is not in the in-app chat {platform_id!r}, so it cannot be changed")
        await webchat_db.insert(self.db, message_id=change_id, platform_id=platform_id, direction="out", kind=kind,
                                text=text, target_id=target_id, created_at=now_iso())
        return await self.announce(target)

    async def open_card(self, question_id: str, value: str) -> ChatMessage:
        """The bubble of an unanswered card, after checking that ``value`` is one of its options."""
        row = await webchat_db.find_card(self.db, question_id)
        message = None if row is None else await self._folded(row)
        if message is None or message.card is None:
            raise NotFound("that card is not in this chat (it may have been deleted)")
        if message.card.closed:
            raise UserError("this card was already answered")
        if value not in {o.value for o in message.card.options}:
            raise UserError(f"{value!r} is not one of this card's options")
        return message

    async def set_answer(self, message_id: str, value: str) -> ChatMessage:
        """Mark ``value`` as chosen on a card bubble and announce it."""
        row = await webchat_db.get(self.db, message_id)
        card = None if row is None else _json_object(row.card)
        if row is None or card is None:
            raise NotFound("that card is not in this chat")
        card["answer"] = value
        await webchat_db.set_card(self.db, message_id, card)
        return await self.announce(row)

    async def refresh(self, message_id: str) -> None:
        """Announce a bubble's current look (it started or stopped waiting); an unknown id is ignored."""
        row = await webchat_db.get(self.db, message_id)
        if row is not None:
            await self.announce(row)

    async def announce(self, row: WebchatRow) -> ChatMessage:
        """Publish the current look of a bubble as ``chat.update``."""
        fresh = await webchat_db.get(self.db, row.id) or row
        message = await self._folded(fresh)
        self.events.publish("chat.update", message=message.to_json())
        return message

    # ------------------------------------------------------------------------------------------ reading

    async def get(self, message_id: str) -> ChatMessage | None:
        """One bubble as it looks now."""
        row = await webchat_db.get(self.db, message_id)
        return None if row is None else await self._folded(row)

    async def history(self, platform_id: str, *, before: str | None = None, limit: int = 50) -> HistoryPage:
        """A page of bubbles, oldest first, ending just before the bubble ``before`` (the newest when None)."""
        if not 1 <= limit <= 200:
            raise UserError("limit must be between 1 and 200")
        before_seq = None
        if before is not None:
            anchor = await webchat_db.get(self.db, before)
            if anchor is None or anchor.platform_id != platform_id:
                raise NotFound(f"message {before} is not in this chat")
            before_seq = anchor.seq
        rows = await webchat_db.page(self.db, platform_id, before_seq=before_seq, limit=limit + 1)
        has_more = len(rows) > limit
        rows = list(reversed(rows[:limit]))
        changes = await webchat_db.changes_for(self.db, [r.id for r in rows])
        by_target: dict[str, list[WebchatRow]] = {}
        for change in changes:
            by_target.setdefault(change.target_id or "", []).append(change)
        waiting = await held_db.waiting(self.db, self._channel_type, platform_id,
                                        [r.id for r in rows if r.direction == "in"])
        return HistoryPage([fold(r, by_target.get(r.id, ()), waiting=r.id in waiting) for r in rows], has_more)

    async def file(self, message_id: str, name: str) -> tuple[Path, str]:
        """(checked path, MIME type) of a file of a chat message."""
        row = await webchat_db.get(self.db, message_id)
        if row is None:
            raise NotFound("no chat message has that file")
        records = _json_list(row.files)
        record = next((f for f in records if isinstance(f, dict) and f.get("name") == name), None)
        if record is None:
            raise NotFound(f"message {message_id} has no file named {name!r}")
        path = await self._run_io(lambda: chat_files.stored_file(self.files_dir, str(record.get("path", ""))))
        return path, str(record.get("mime_type") or "application/octet-stream")

    async def _folded(self, row: WebchatRow) -> ChatMessage:
        waiting = row.direction == "in" and bool(
            await held_db.waiting(self.db, self._channel_type, row.platform_id, [row.id]))
        return fold(row, await webchat_db.changes_for(self.db, [row.id]), waiting=waiting)
