"""What an agent did in one session, as a timeline a person can read: messages in, model calls, replies, tools.

A home user cannot read a Python log, but everything worth telling is already recorded: the session's own
``inbound.db``/``outbound.db`` (messages in and out, the agent's requests of the host), the gateway's ``usage`` rows
(one per model call), the delivery attempts (was the reply delivered) and the container log's runner lines (when the
container started and stopped, and whether it logged an error). This module joins them by time; the raw log stays one
toggle away on the page.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from agent_runner.protocol import (
    ChatContent,
    ContractError,
    MessageKind,
    SystemAction,
    TaskContent,
    decode_inbound,
    decode_outbound,
)
from nanoclaw_app.core.outbound import preview
from nanoclaw_app.db import delivery_attempts as attempts_db
from nanoclaw_app.db import usage as usage_db
from nanoclaw_app.db.rows import Session
from nanoclaw_app.errors import SessionDamaged, UserError
from nanoclaw_app.services.context import AppServices
from nanoclaw_app.timeutil import parse_utc

log = logging.getLogger(__name__)

MAX_ENTRIES = 100
"""The newest entries kept; a long-lived session has thousands and the page shows the recent ones."""

PREVIEW_CHARS = 120


@dataclass
class TimelineEntry:
    """One thing that happened, in words: ``kind`` picks the sentence on the page, ``text`` adds the specifics."""

    at: str
    """The moment on the user's clock, ``YYYY-MM-DD HH:MM:SS``."""
    kind: str
    """``container_started``, ``container_stopped``, ``received``, ``task``, ``model_called``, ``replied``,
    ``reply_failed``, ``reply_waiting``, ``tool_used`` or ``problem``."""
    text: str = ""
    who: str = ""
    """The sender of a received message, the model of a model call."""


async def session_timeline(services: AppServices, session: Session, log_text: str) -> list[TimelineEntry]:
    """The newest :data:`MAX_ENTRIES` things the session's agent did, oldest first."""
    tz = services.settings.tz
    found: list[tuple[datetime, TimelineEntry]] = []
    found += _container_events(log_text, tz)
    found += await _messages(services, session, tz)
    found += await _model_calls(services, session.id, tz)
    found.sort(key=lambda pair: pair[0])
    return [entry for _, entry in found[-MAX_ENTRIES:]]


# --------------------------------------------------------------------------------------------- the container log

_K8S = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?) (?:stdout|stderr) F ?(.*)$")
_ASCTIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?:,\d+)? (\w+) (\S+): (.*)$")


def _container_events(text: str, tz: ZoneInfo) -> list[tuple[datetime, TimelineEntry]]:
    """Runner start and stop, and logged errors, from the runner's own lines (``<asctime> <LEVEL> <logger>: …``).

    Podman's k8s-file prefix carries the exact time; without it (the local runtime) the runner's time is on the
    user's clock, because the container runs with the user's ``TZ``.
    """
    events: list[tuple[datetime, TimelineEntry]] = []
    for line in text.splitlines():
        moment: datetime | None = None
        match = _K8S.match(line)
        if match is not None:
            moment = _parse(match.group(1), None)
            line = match.group(2)
        runner = _ASCTIME.match(line)
        if runner is None:
            continue
        stamp, level, logger, message = runner.groups()
        moment = moment or _parse(stamp, tz)
        if moment is None or not logger.startswith("agent_runner"):
            continue
        if message.startswith("runner process up"):
            kind = "container_started"
        elif message.startswith("runner stopped"):
            kind = "container_stopped"
        elif level in ("ERROR", "CRITICAL"):
            kind = "problem"
        else:
            continue
        events.append((moment, TimelineEntry(at=_clock(moment, tz), kind=kind)))
    return events


def _parse(stamp: str, tz: ZoneInfo | None) -> datetime | None:
    try:
        if tz is None:
            return parse_utc(stamp)
        return datetime.fromisoformat(stamp.replace(" ", "T")).replace(tzinfo=tz).astimezone(UTC)
    except ValueError:
        return None


def _clock(moment: datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


# --------------------------------------------------------------------------------------------- the session's DBs

_IN = "SELECT id, kind, timestamp, content FROM messages_in ORDER BY seq DESC LIMIT ?"
_OUT = "SELECT id, kind, timestamp, content FROM ob.messages_out ORDER BY seq DESC LIMIT ?"


async def _messages(services: AppServices, session: Session, tz: ZoneInfo) -> list[tuple[datetime, TimelineEntry]]:
    """Messages in and out (a request of the host counts as a tool the agent used), with each reply's delivery."""
    store = services.ctx.store

    def run(conn: sqlite3.Connection) -> tuple[list[sqlite3.Row], list[sqlite3.Row]]:
        return conn.execute(_IN, (MAX_ENTRIES,)).fetchall(), conn.execute(_OUT, (MAX_ENTRIES,)).fetchall()

    try:
        folder = store.dir(session.agent_group_id, session.id)
        inbound, outbound = await store.read(folder, run)
    except (FileNotFoundError, sqlite3.Error, SessionDamaged, UserError) as err:
        log.warning("activity: cannot read the messages of session %s for its timeline: %s", session.id, err)
        return []
    events: list[tuple[datetime, TimelineEntry]] = []
    for row in inbound:
        entry = _inbound_entry(row["kind"], row["content"])
        if entry is not None:
            events += _at(row["timestamp"], entry, tz)
    for row in outbound:
        attempt = None if row["kind"] == MessageKind.SYSTEM else await attempts_db.get(services.ctx.db, session.id,
                                                                                       row["id"])
        entry = _outbound_entry(row["kind"], row["content"], None if attempt is None else attempt.state)
        if entry is not None:
            events += _at(row["timestamp"], entry, tz)
    return events


def _inbound_entry(kind: str, raw: str) -> TimelineEntry | None:
    try:
        content = decode_inbound(kind, raw)
    except (ContractError, ValueError):
        return None
    if isinstance(content, ChatContent):
        return TimelineEntry(at="", kind="received", text=_short(content.text), who=content.sender_name)
    if isinstance(content, TaskContent):
        return TimelineEntry(at="", kind="task", text=_short(content.prompt))
    return None  # the host's answers to the agent's own requests: part of the tool use already shown


def _outbound_entry(kind: str, raw: str, state: str | None) -> TimelineEntry | None:
    try:
        content = decode_outbound(kind, raw)
    except (ContractError, ValueError):
        return None
    if kind == MessageKind.SYSTEM and isinstance(content, SystemAction):
        return TimelineEntry(at="", kind="tool_used", text=content.action.replace("_", " "))
    outcome = {"delivered": "replied", "failed": "reply_failed"}.get(state or "", "reply_waiting")
    return TimelineEntry(at="", kind=outcome, text=_short(preview(content, PREVIEW_CHARS)))


def _at(stored: str, entry: TimelineEntry, tz: ZoneInfo) -> list[tuple[datetime, TimelineEntry]]:
    try:
        moment = parse_utc(stored)
    except ValueError:
        return []
    entry.at = _clock(moment, tz)
    return [(moment, entry)]


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


# --------------------------------------------------------------------------------------------- model calls


async def _model_calls(services: AppServices, session_id: str, tz: ZoneInfo) -> list[tuple[datetime, TimelineEntry]]:
    calls = (await usage_db.calls_of_session(services.ctx.db, session_id))[-MAX_ENTRIES:]
    events: list[tuple[datetime, TimelineEntry]] = []
    for call in calls:
        tokens = call.input_tokens + call.output_tokens + call.cache_read_tokens
        entry = TimelineEntry(at="", kind="model_called", text=f"{tokens:,}", who=call.model)
        events += _at(call.created_at, entry, tz)
    return events
