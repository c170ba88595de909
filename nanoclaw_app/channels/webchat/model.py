"""What the chat page sees of a message: a stored row with its edits, reactions and card answer folded in.

These shapes are the API's response bodies and the ``chat.message`` / ``chat.update`` event payloads alike, so the
page renders one thing whichever way a message reached it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import quote

from nanoclaw_app.db.webchat import WebchatRow

log = logging.getLogger(__name__)


@dataclass
class ChatFile:
    """A file attached to a message; ``url`` downloads it (images are shown inline)."""

    name: str
    mime_type: str
    size: int
    url: str
    transcript: str = ""
    """For a recording: the line the agent got (its words, or why there are none)."""


@dataclass
class ChatOption:
    """One button of a question or approval card."""

    label: str
    value: str
    selected_label: str | None = None


@dataclass
class ChatLink:
    """A link button of a display card."""

    label: str
    url: str


@dataclass
class ChatCard:
    """A question/approval card (``question_id`` and options) or a display card (links)."""

    title: str
    question_id: str | None = None
    options: list[ChatOption] = field(default_factory=list)
    links: list[ChatLink] = field(default_factory=list)
    answer: str | None = None
    """The option value chosen here."""
    outcome: str | None = None
    """What the host said when the card was decided (here, elsewhere, or by expiry)."""
    closed: bool = False
    """No more clicks: answered or decided."""


@dataclass
class ChatMessage:
    """One bubble. ``direction`` is ``in`` (from the person) or ``out`` (from the agent or NanoClaw)."""

    id: str
    platform_id: str
    direction: str
    kind: str
    sender: str
    text: str
    created_at: str
    files: list[ChatFile] = field(default_factory=list)
    card: ChatCard | None = None
    edited: bool = False
    reactions: list[str] = field(default_factory=list)
    status: str = ""
    """``waiting`` while NanoClaw holds the person's message for an agent that could not take it yet; else empty."""

    def to_json(self) -> dict[str, Any]:
        """The event payload form."""
        return asdict(self)


def file_url(message_id: str, name: str) -> str:
    """Where the page downloads a file of a message."""
    return f"/api/chat/files/{quote(message_id, safe='')}/{quote(name, safe='')}"


def _json(raw: str | None, fallback: Any, row_id: str) -> Any:
    if raw is None:
        return fallback
    try:
        return json.loads(raw)
    except ValueError:
        log.warning("chat message %s has an unreadable JSON column; showing it without", row_id)
        return fallback


def _card(raw: dict[str, Any]) -> ChatCard:
    options = [
        ChatOption(str(o.get("label", "")), str(o.get("value", "")), o.get("selected_label"))
        for o in raw.get("options") or [] if isinstance(o, dict)
    ]
    links = [ChatLink(str(k.get("label") or k.get("url", "")), str(k.get("url", "")))
             for k in raw.get("links") or [] if isinstance(k, dict)]
    answer = raw.get("answer")
    return ChatCard(title=str(raw.get("title") or ""), question_id=raw.get("question_id"), options=options,
                    links=links, answer=answer if isinstance(answer, str) else None)


def _outcome(card: ChatCard, text: str) -> str:
    """The decision line of an edited card: the host repeats the title above it, which the card already shows."""
    if card.title and text.startswith(card.title):
        return text[len(card.title):].strip()
    return text.strip()


def fold(row: WebchatRow, changes: Iterable[WebchatRow] = (), *, waiting: bool = False) -> ChatMessage:
    """The message as it looks now: its latest edit, its reactions, the card's answer or outcome, whether it waits."""
    files = [
        ChatFile(str(f.get("name", "")), str(f.get("mime_type") or "application/octet-stream"),
                 int(f.get("size") or 0), file_url(row.id, str(f.get("name", ""))))
        for f in _json(row.files, [], row.id) if isinstance(f, dict)
    ]
    raw_card = _json(row.card, None, row.id)
    card = _card(raw_card) if isinstance(raw_card, dict) else None
    message = ChatMessage(id=row.id, platform_id=row.platform_id, direction=row.direction, kind=row.kind,
                          sender=row.sender, text=row.text, created_at=row.created_at, files=files, card=card,
                          status="waiting" if waiting else "")
    for change in changes:
        if change.kind == "reaction" and change.text:
            message.reactions.append(change.text)
        elif change.kind == "transcript":
            note = _json(change.text, {}, change.id)
            for file in files:
                if isinstance(note, dict) and file.name == note.get("name"):
                    file.transcript = str(note.get("line") or "")
        elif change.kind == "edit":
            if card is not None:
                card.outcome = _outcome(card, change.text)
            else:
                message.text = change.text
                message.edited = True
    if card is not None:
        card.closed = card.answer is not None or card.outcome is not None
    return message
