"""The wire contract between host and container: row shapes, content JSON, session DB schemas, protocol version.

Stdlib only, because it runs on both sides: the host imports it, and the runner uses it inside the container.
Host rows in ``inbound.db`` carry even ``seq`` numbers, container rows in ``outbound.db`` odd ones; the seq is the
message id the agent sees, so its parity says which table it refers to.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any, ClassVar, TypeVar

PROTOCOL_VERSION = 1


class ContractError(ValueError):
    """A row or content blob does not match the contract (malformed JSON, missing field, wrong type)."""


class MessageKind(StrEnum):
    """What an inbound or outbound row carries."""

    CHAT = "chat"
    TASK = "task"
    SYSTEM = "system"


class InboundStatus(StrEnum):
    """Lifecycle of an inbound row; "processing" lives only in the container's ack table."""

    PENDING = "pending"
    COMPLETED = "completed"
    FAILED = "failed"
    PAUSED = "paused"


class AckStatus(StrEnum):
    """Progress the container reports for an inbound row."""

    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


class DeliveryStatus(StrEnum):
    """Outcome the host records for an outbound row."""

    DELIVERED = "delivered"
    FAILED = "failed"


class DestinationType(StrEnum):
    """Where a named destination points."""

    CHANNEL = "channel"
    AGENT = "agent"


AGENT_CHANNEL = "agent"
"""``channel_type`` of agent-to-agent rows."""


# --------------------------------------------------------------------------------------------- seq parity


def is_host_seq(seq: int) -> bool:
    """True for host (inbound) seq numbers, which are even."""
    return seq % 2 == 0


def next_host_seq(current_max: int | None) -> int:
    """Next even seq above ``current_max`` (2 for an empty table)."""
    if not current_max or current_max < 2:
        return 2
    return current_max + 2 if current_max % 2 == 0 else current_max + 1


def next_container_seq(current_max: int | None) -> int:
    """Next odd seq above ``current_max`` taken across both DBs (1 for empty ones)."""
    if not current_max or current_max < 1:
        return 1
    return current_max + 2 if current_max % 2 == 1 else current_max + 1


# --------------------------------------------------------------------------------------------- content shapes

_T = TypeVar("_T", bound="_Content")


@dataclass(frozen=True, slots=True)
class _Content:
    """Base of content blobs: strict from-dict (unknown keys kept in ``extra``) and to-dict."""

    TYPE: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict; ``extra`` keys are merged back at top level."""
        data = asdict(self)
        extra = data.pop("extra", None) or {}
        data = {k: v for k, v in data.items() if v is not None}
        if self.TYPE:
            data["type"] = self.TYPE
        return {**extra, **data}

    @classmethod
    def from_dict(cls: type[_T], data: Any) -> _T:
        """Validate and build from a decoded JSON object."""
        if not isinstance(data, dict):
            raise ContractError(f"{cls.__name__} content must be a JSON object, got {type(data).__name__}")
        known = {f.name: f for f in fields(cls) if f.name != "extra"}
        kwargs: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in data.items():
            if key in known:
                kwargs[key] = value
            elif key != "type":
                extra[key] = value
        if any(f.name == "extra" for f in fields(cls)):
            kwargs["extra"] = extra
        try:
            obj = cls(**kwargs)
        except TypeError as err:
            raise ContractError(f"{cls.__name__}: {err}") from err
        obj._check()
        return obj

    def _check(self) -> None:
        """Type checks beyond presence; subclasses raise ``ContractError``."""

    def to_json(self) -> str:
        """Serialize for a ``content`` column."""
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))


def _is_int(value: object) -> bool:
    """An integer that is not a bool (JSON ``true`` must not pass as message 1)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise ContractError(message)


@dataclass(frozen=True, slots=True)
class Attachment(_Content):
    """A file that came with a message. ``local_path`` is relative to the session dir once written to ``inbox/``."""

    name: str
    mime_type: str = "application/octet-stream"
    size: int | None = None
    local_path: str | None = None
    kind: str = "file"  # image | audio | voice | video | document | file

    def _check(self) -> None:
        _require(isinstance(self.name, str) and bool(self.name), "attachment needs a non-empty name")
        _require(self.size is None or _is_int(self.size), "attachment size must be an integer")


@dataclass(frozen=True, slots=True)
class ReplyTo(_Content):
    """The message being replied to, quoted for the agent."""

    text: str = ""
    sender: str = ""
    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class ChatContent(_Content):
    """An inbound chat message from a person (or from another agent)."""

    text: str = ""
    sender_id: str = ""
    sender_name: str = ""
    attachments: list[dict[str, Any]] = field(default_factory=list)
    reply_to: dict[str, Any] | None = None
    is_group: bool = False
    is_mention: bool = False
    platform_message_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def _check(self) -> None:
        _require(isinstance(self.text, str), "chat text must be a string")
        _require(isinstance(self.attachments, list), "attachments must be a list")
        for item in self.attachments:
            Attachment.from_dict(item)
        if self.reply_to is not None:
            ReplyTo.from_dict(self.reply_to)

    @property
    def attachment_list(self) -> list[Attachment]:
        """Attachments as typed objects."""
        return [Attachment.from_dict(a) for a in self.attachments]


@dataclass(frozen=True, slots=True)
class TaskContent(_Content):
    """A scheduled task firing: a prompt for the agent, an optional bash pre-check script."""

    prompt: str
    script: str | None = None
    script_output: Any = None

    def _check(self) -> None:
        _require(isinstance(self.prompt, str), "task prompt must be a string")


@dataclass(frozen=True, slots=True)
class QuestionResponse(_Content):
    """The answer to an ``ask_user_question`` card, written by the host as a system row."""

    TYPE: ClassVar[str] = "question_response"
    question_id: str
    selected_option: str
    user_id: str = ""


@dataclass(frozen=True, slots=True)
class TextOut(_Content):
    """An outbound message: text, with optional file names read from ``outbox/<message id>/``."""

    text: str = ""
    files: list[str] = field(default_factory=list)

    def _check(self) -> None:
        _require(isinstance(self.text, str), "text must be a string")
        _require(isinstance(self.files, list) and all(isinstance(f, str) for f in self.files),
                 "files must be a list of names")


@dataclass(frozen=True, slots=True)
class EditOut(_Content):
    """Edit an earlier message, addressed by the seq the agent saw."""

    TYPE: ClassVar[str] = "edit"
    message_seq: int
    text: str

    def _check(self) -> None:
        _require(_is_int(self.message_seq), "edit needs an integer message_seq")


@dataclass(frozen=True, slots=True)
class ReactionOut(_Content):
    """React to a message, addressed by the seq the agent saw."""

    TYPE: ClassVar[str] = "reaction"
    message_seq: int
    emoji: str

    def _check(self) -> None:
        _require(_is_int(self.message_seq), "reaction needs an integer message_seq")


@dataclass(frozen=True, slots=True)
class QuestionOption(_Content):
    """One button of a question card."""

    label: str
    value: str
    selected_label: str | None = None


@dataclass(frozen=True, slots=True)
class AskQuestionOut(_Content):
    """A question card with options; the answer comes back as a ``QuestionResponse``."""

    TYPE: ClassVar[str] = "ask_question"
    question_id: str
    title: str
    question: str
    options: list[dict[str, Any]]

    def _check(self) -> None:
        _require(isinstance(self.options, list) and len(self.options) > 0, "a question needs options")
        for opt in self.options:
            QuestionOption.from_dict(opt)

    @property
    def option_list(self) -> list[QuestionOption]:
        """Options as typed objects."""
        return [QuestionOption.from_dict(o) for o in self.options]


@dataclass(frozen=True, slots=True)
class CardOut(_Content):
    """A display-only card (title, description, link buttons) with a plain-text fallback."""

    TYPE: ClassVar[str] = "card"
    title: str
    description: str = ""
    links: list[dict[str, str]] = field(default_factory=list)
    fallback_text: str = ""


@dataclass(frozen=True, slots=True)
class SystemAction(_Content):
    """A request the container makes of the host (schedule a task, create an agent, ...)."""

    TYPE: ClassVar[str] = "action"
    action: str
    payload: dict[str, Any] = field(default_factory=dict)
    request_id: str | None = None

    def _check(self) -> None:
        _require(isinstance(self.action, str) and bool(self.action), "system action needs a name")
        _require(isinstance(self.payload, dict), "system action payload must be an object")


OutboundContent = TextOut | EditOut | ReactionOut | AskQuestionOut | CardOut | SystemAction
InboundContent = ChatContent | TaskContent | QuestionResponse

_OUT_BY_TYPE: dict[str, type[_Content]] = {
    "edit": EditOut,
    "reaction": ReactionOut,
    "ask_question": AskQuestionOut,
    "card": CardOut,
    "action": SystemAction,
}


def _load(raw: str | bytes) -> Any:
    try:
        return json.loads(raw)
    except (TypeError, ValueError) as err:
        raise ContractError(f"content is not valid JSON: {err}") from err


def decode_outbound(kind: str, raw: str | bytes) -> OutboundContent:
    """Parse an outbound row's content by its kind and ``type`` field."""
    data = _load(raw)
    if not isinstance(data, dict):
        raise ContractError("outbound content must be a JSON object")
    if kind == MessageKind.SYSTEM:
        return SystemAction.from_dict(data)
    cls = _OUT_BY_TYPE.get(str(data.get("type", "")), TextOut)
    if cls is SystemAction:
        raise ContractError("system actions must use kind='system'")
    return cls.from_dict(data)  # type: ignore[return-value]


def decode_inbound(kind: str, raw: str | bytes) -> InboundContent:
    """Parse an inbound row's content by its kind."""
    data = _load(raw)
    if kind == MessageKind.CHAT:
        return ChatContent.from_dict(data)
    if kind == MessageKind.TASK:
        return TaskContent.from_dict(data)
    if kind == MessageKind.SYSTEM:
        return QuestionResponse.from_dict(data)
    raise ContractError(f"unknown inbound kind {kind!r}")


# --------------------------------------------------------------------------------------------- rows


@dataclass(frozen=True, slots=True)
class InboundRow:
    """A ``messages_in`` row."""

    id: str
    seq: int
    kind: str
    timestamp: str
    content: str
    status: str = InboundStatus.PENDING
    process_after: str | None = None
    recurrence: str | None = None
    series_id: str | None = None
    tries: int = 0
    trigger: int = 1
    platform_id: str | None = None
    channel_type: str | None = None
    thread_id: str | None = None
    source_session_id: str | None = None
    on_wake: int = 0
    hops: int = 0


@dataclass(frozen=True, slots=True)
class OutboundRow:
    """A ``messages_out`` row."""

    id: str
    seq: int
    kind: str
    timestamp: str
    content: str
    in_reply_to: str | None = None
    deliver_after: str | None = None
    platform_id: str | None = None
    channel_type: str | None = None
    thread_id: str | None = None


@dataclass(frozen=True, slots=True)
class Destination:
    """A name the agent may address, projected into ``inbound.db``."""

    name: str
    display_name: str
    type: str
    channel_type: str | None = None
    platform_id: str | None = None
    agent_group_id: str | None = None


def row_from_mapping(cls: type[Any], mapping: Any) -> Any:
    """Build a row dataclass from a ``sqlite3.Row`` or dict, ignoring unknown columns."""
    names = {f.name for f in fields(cls)}
    keys = mapping.keys()
    return cls(**{k: mapping[k] for k in keys if k in names})


# --------------------------------------------------------------------------------------------- shared reads


@dataclass(frozen=True, slots=True)
class TaskSeries:
    """One scheduled series as ``list_tasks`` shows it: its earliest live occurrence."""

    series_id: str
    id: str
    status: str
    process_after: str | None
    recurrence: str | None
    prompt_preview: str


def list_task_series(conn: sqlite3.Connection, status: str | None = None, *, acked: bool = False) -> list[TaskSeries]:
    """One row per series in ``inbound.db``, soonest first; ``status`` filters pending or paused (else both).

    Both sides need this listing (the agent's ``list_tasks`` tool, the host's pages), so it lives with the schema.
    With ``acked`` (``outbound.db`` attached as ``ob``) a one-shot task the container has finished is left out at
    once: ``inbound.db`` says so only after the host's next ack sync, up to a sweep interval later.
    """
    live = (InboundStatus.PENDING.value, InboundStatus.PAUSED.value)
    statuses = (status,) if status in live else live
    marks = ", ".join("?" for _ in statuses)
    finished = (
        " AND NOT (COALESCE(recurrence, '') = '' AND EXISTS (SELECT 1 FROM ob.processing_ack a"
        " WHERE a.message_id = messages_in.id AND a.status IN (?, ?)))"
    ) if acked else ""
    rows = conn.execute(
        f"SELECT id, series_id, status, process_after, recurrence, content FROM messages_in"
        f" WHERE kind = 'task' AND status IN ({marks}){finished} ORDER BY COALESCE(process_after, ''), seq",
        (*statuses, *((AckStatus.COMPLETED.value, AckStatus.FAILED.value) if acked else ())),
    ).fetchall()
    seen: set[str] = set()
    result: list[TaskSeries] = []
    for task_id, series_id, task_status, process_after, recurrence, content in rows:
        series = series_id or task_id
        if series in seen:
            continue
        seen.add(series)
        try:
            data = json.loads(content)
            prompt = str(data.get("prompt", "")) if isinstance(data, dict) else ""
        except ValueError:
            prompt = ""
        prompt = " ".join(prompt.split())
        result.append(TaskSeries(
            series_id=series, id=task_id, status=task_status, process_after=process_after, recurrence=recurrence,
            prompt_preview=prompt if len(prompt) <= 80 else prompt[:79] + "…",
        ))
    return result


# --------------------------------------------------------------------------------------------- session DB schemas

INBOUND_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages_in (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE CHECK (seq % 2 = 0),
    kind TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    process_after TEXT,
    recurrence TEXT,
    series_id TEXT,
    tries INTEGER NOT NULL DEFAULT 0,
    trigger INTEGER NOT NULL DEFAULT 1,
    platform_id TEXT,
    channel_type TEXT,
    thread_id TEXT,
    content TEXT NOT NULL,
    source_session_id TEXT,
    on_wake INTEGER NOT NULL DEFAULT 0,
    hops INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS messages_in_due ON messages_in (status, process_after);
CREATE INDEX IF NOT EXISTS messages_in_series ON messages_in (series_id);
CREATE TABLE IF NOT EXISTS delivered (
    message_out_id TEXT PRIMARY KEY,
    platform_message_id TEXT,
    status TEXT NOT NULL DEFAULT 'delivered',
    error TEXT,
    delivered_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS destinations (
    name TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    type TEXT NOT NULL,
    channel_type TEXT,
    platform_id TEXT,
    agent_group_id TEXT
);
CREATE TABLE IF NOT EXISTS session_routing (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    channel_type TEXT,
    platform_id TEXT,
    thread_id TEXT
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

OUTBOUND_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages_out (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE CHECK (seq % 2 = 1),
    in_reply_to TEXT,
    timestamp TEXT NOT NULL,
    deliver_after TEXT,
    kind TEXT NOT NULL,
    platform_id TEXT,
    channel_type TEXT,
    thread_id TEXT,
    content TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS processing_ack (
    message_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    status_changed TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS session_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS container_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    current_tool TEXT,
    tool_declared_timeout_ms INTEGER,
    tool_started_at TEXT
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

SESSION_PRAGMAS = ("PRAGMA journal_mode=DELETE", "PRAGMA busy_timeout=5000")
"""Both session DBs: never WAL (it breaks across VM file mounts), 5 s busy timeout."""
