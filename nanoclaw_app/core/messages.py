"""Neutral message types: adapters translate platform objects into these, and back. Platform types die at the edge."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from agent_runner.protocol import QuestionOption
from nanoclaw_app.text_safety import clean_text


@dataclass(frozen=True, slots=True)
class IncomingAttachment:
    """A file that came with an inbound message, already downloaded by the adapter."""

    name: str
    data: bytes
    mime_type: str = "application/octet-stream"
    kind: str = "file"  # image | audio | voice | video | document | file


@dataclass(frozen=True, slots=True)
class Quoted:
    """The message an inbound message replies to."""

    text: str
    sender: str = ""
    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One message from a chat platform, as an adapter hands it to the router."""

    channel_type: str
    platform_id: str
    message_id: str
    sender_id: str
    text: str
    sender_name: str = ""
    thread_id: str | None = None
    is_group: bool = False
    is_mention: bool = False
    chat_name: str | None = None
    timestamp: str | None = None
    reply_to: Quoted | None = None
    attachments: tuple[IncomingAttachment, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """The platform's names are cleaned here, where every channel's message enters, before anything stores them.

        A sender or group can pick any name: control characters and bidirectional overrides would reach the
        people page, approval cards and log lines as they are.
        """
        if isinstance(self.sender_name, str):  # odd types are the router's to coerce and report
            object.__setattr__(self, "sender_name", clean_text(self.sender_name))
        if isinstance(self.chat_name, str):
            object.__setattr__(self, "chat_name", clean_text(self.chat_name) or None)

    def to_json(self) -> str:
        """Serialize (attachments base64) so a held message can be replayed after an approval."""
        data: dict[str, Any] = {
            "channel_type": self.channel_type,
            "platform_id": self.platform_id,
            "message_id": self.message_id,
            "sender_id": self.sender_id,
            "text": self.text,
            "sender_name": self.sender_name,
            "thread_id": self.thread_id,
            "is_group": self.is_group,
            "is_mention": self.is_mention,
            "chat_name": self.chat_name,
            "timestamp": self.timestamp,
            "reply_to": None
            if self.reply_to is None
            else {"text": self.reply_to.text, "sender": self.reply_to.sender, "message_id": self.reply_to.message_id},
            "attachments": [
                {"name": a.name, "mime_type": a.mime_type, "kind": a.kind, "data": base64.b64encode(a.data).decode()}
                for a in self.attachments
            ],
            "extra": self.extra,
        }
        return json.dumps(data, ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str) -> InboundMessage:
        """Inverse of :meth:`to_json`."""
        data = json.loads(raw)
        reply = data.get("reply_to")
        return cls(
            channel_type=data["channel_type"],
            platform_id=data["platform_id"],
            message_id=data["message_id"],
            sender_id=data["sender_id"],
            text=data.get("text", ""),
            sender_name=data.get("sender_name", ""),
            thread_id=data.get("thread_id"),
            is_group=bool(data.get("is_group")),
            is_mention=bool(data.get("is_mention")),
            chat_name=data.get("chat_name"),
            timestamp=data.get("timestamp"),
            reply_to=None if reply is None else Quoted(reply.get("text", ""), reply.get("sender", ""),
                                                       reply.get("message_id")),
            attachments=tuple(
                IncomingAttachment(
                    a["name"], base64.b64decode(a["data"]), a.get("mime_type", ""), a.get("kind", "file")
                )
                for a in data.get("attachments", [])
            ),
            extra=data.get("extra") or {},
        )


@dataclass(frozen=True, slots=True)
class OutgoingFile:
    """A file to upload with an outbound message."""

    name: str
    data: bytes
    mime_type: str = "application/octet-stream"


OutboundKind = Literal["text", "edit", "reaction", "question", "card"]


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """What delivery asks an adapter to send. ``delivery_id`` is stable across retries (for idempotent adapters)."""

    kind: OutboundKind
    delivery_id: str
    text: str = ""
    files: tuple[OutgoingFile, ...] = ()
    target_message_id: str | None = None
    emoji: str | None = None
    question_id: str | None = None
    title: str | None = None
    options: tuple[QuestionOption, ...] = ()
    links: tuple[dict[str, str], ...] = ()
