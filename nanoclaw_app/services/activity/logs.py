"""Container logs: which sessions have one, and the end of it with credentials masked.

Logs grow without bound, so only the end is read; and a log can carry a token or a pasted key, so nothing leaves the
host process unmasked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.errors import NotFound, UserError
from nanoclaw_app.services.activity.shared import load_directory, local_time
from nanoclaw_app.services.activity.timeline import TimelineEntry, session_timeline
from nanoclaw_app.services.context import AppServices
from nanoclaw_app.timeutil import iso

DEFAULT_TAIL_KB = 64
MAX_TAIL_KB = 1024


@dataclass
class SessionView:
    """A session whose container log can be read."""

    session_id: str
    agent_group_id: str
    agent_name: str
    chat: str | None
    container_status: str
    last_active: str | None
    log_bytes: int


@dataclass
class LogTail:
    """The end of one session's container log, secrets masked."""

    session_id: str
    agent_name: str
    chat: str | None
    container_status: str
    size_bytes: int
    shown_bytes: int
    truncated: bool
    modified: str | None
    text: str
    timeline: list[TimelineEntry] = field(default_factory=list)
    """What the agent did, in words (``services/activity/timeline.py``); the raw ``text`` is for a closer look."""


async def list_sessions(services: AppServices) -> list[SessionView]:
    """Active sessions, most recently active first, with the size of each one's log."""
    ctx = services.ctx
    directory = await load_directory(ctx.db)
    sessions = await sessions_db.list_active(ctx.db)
    paths = services.settings.paths
    sizes = await ctx.store.run_io(lambda: [_size(paths.container_log(s.id)) for s in sessions])
    tz = services.settings.tz
    views = [
        SessionView(session_id=s.id, agent_group_id=s.agent_group_id, agent_name=directory.agent(s.agent_group_id),
                    chat=directory.chat(s.messaging_group_id), container_status=s.container_status,
                    last_active=local_time(s.last_active or s.created_at, tz), log_bytes=size)
        for s, size in zip(sessions, sizes, strict=True)
    ]
    order = {s.id: s.last_active or s.created_at for s in sessions}
    views.sort(key=lambda v: order[v.session_id], reverse=True)
    return views


async def log_tail(services: AppServices, session_id: str, *, kb: int = DEFAULT_TAIL_KB) -> LogTail:
    """The last ``kb`` KiB of the session's container log, read from the end (logs grow without bound)."""
    if not 1 <= kb <= MAX_TAIL_KB:
        raise UserError(f"show between 1 and {MAX_TAIL_KB} KB of a log, not {kb}")
    ctx = services.ctx
    session = await sessions_db.get(ctx.db, session_id.strip())
    if session is None:
        raise NotFound(f"no session {session_id!r}; `nanoclaw activity sessions` lists them")
    directory = await load_directory(ctx.db)
    path = services.settings.paths.container_log(session.id)  # host-only: never a file a container could swap
    tz = services.settings.tz
    size, data, truncated, mtime = await ctx.store.run_io(lambda: _read_tail(path, kb * 1024))
    raw = data.decode("utf-8", errors="replace")
    text = mask_secrets(render_log(raw, tz))
    timeline = await session_timeline(services, session, raw)
    return LogTail(
        session_id=session.id, agent_name=directory.agent(session.agent_group_id),
        chat=directory.chat(session.messaging_group_id), container_status=session.container_status,
        size_bytes=size, shown_bytes=len(data), truncated=truncated,
        modified=None if mtime is None else local_time(iso(datetime.fromtimestamp(mtime, UTC)), tz), text=text,
        timeline=timeline,
    )


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _read_tail(path: Path, max_bytes: int) -> tuple[int, bytes, bool, float | None]:
    """(file size, the last whole lines within ``max_bytes``, whether earlier lines were left out, mtime)."""
    try:
        with path.open("rb") as file:
            size = file.seek(0, 2)
            start = max(0, size - max_bytes)
            file.seek(start)
            data = file.read(max_bytes)
            mtime = path.stat().st_mtime
    except FileNotFoundError:
        return 0, b"", False, None
    if start > 0:
        cut = data.find(b"\n")
        if 0 <= cut < len(data) - 1:
            data = data[cut + 1:]
    return size, data, start > 0, mtime


_K8S_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:?\d\d)? (stdout|stderr) ([FP]) ?(.*)$")


def render_log(text: str, tz: ZoneInfo) -> str:
    """Podman's k8s-file lines (``<time> <stream> <F|P> <text>``) as ``<local time> <text>``, partial lines joined.

    The local runtime writes raw output without that prefix; such lines pass through unchanged.
    """
    out: list[str] = []
    partial = ""
    for line in text.splitlines():
        match = _K8S_LINE.match(line)
        if match is None:
            out.append(line)
            continue
        stamp, _fraction, offset, _stream, flag, body = match.groups()
        if flag == "P":
            partial += body
            continue
        try:
            moment = datetime.fromisoformat(stamp + _offset(offset))
            when = moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
        except ValueError:
            when = stamp
        out.append(f"{when}  {partial}{body}")
        partial = ""
    if partial:
        out.append(partial)
    return "\n".join(out)


def _offset(text: str | None) -> str:
    if not text or text == "Z":
        return "+00:00"
    return text if ":" in text else f"{text[:3]}:{text[3:]}"


_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"ncgw-[A-Za-z0-9_\-]{8,}"), "ncgw-[hidden]"),
    (re.compile(r"sk-ant-[A-Za-z0-9_\-]{8,}"), "sk-ant-[hidden]"),
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}"), "sk-[hidden]"),
    (re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=\-]{8,}", re.IGNORECASE), r"\1 [hidden]"),
    (re.compile(r"\b\d{6,12}:[A-Za-z0-9_\-]{30,}\b"), "[hidden bot token]"),
    (re.compile(r"(?i)\b([A-Z0-9_\-]*(?:TOKEN|API_?KEY|SECRET|PASSWORD|PASSWD|AUTHORIZATION|X-API-KEY)[A-Z0-9_\-]*)"
                r"(\"?'?\s*[:=]\s*\"?'?)(?!\S*\[hidden|Bearer|Basic|\d+\b)([^\s\"',;]{4,})"), r"\1\2[hidden]"),
)


def mask_secrets(text: str) -> str:
    """Hide anything that looks like a credential before a log leaves the host process.

    A container never holds the user's real keys (the model gateway injects them), but its output can still carry its
    gateway token (``ncgw-…``: the Claude CLI gets it as ``ANTHROPIC_API_KEY``), an authorization header in a debug
    dump, or a key the user pasted to the agent. Known shapes and ``NAME=value`` pairs with secret-sounding names are
    masked; the rest of the line stays readable.
    """
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text
