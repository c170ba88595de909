"""All container-side access to the session's two SQLite files.

``inbound.db`` belongs to the host: every read here opens a fresh read-only connection (``mode=ro``, mmap off), so the
host's latest commit is always visible and no long-lived handle freezes the view across a VM file mount.
``outbound.db`` belongs to the runner: every write opens it, runs one ``BEGIN IMMEDIATE`` transaction and closes it.
Both use ``journal_mode=DELETE`` (WAL breaks across VM mounts) and a 5 s busy timeout. The methods block; the loop and
the tools call them through ``asyncio.to_thread``.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from agent_runner.protocol import (
    OUTBOUND_SCHEMA,
    AckStatus,
    ContractError,
    Destination,
    InboundRow,
    InboundStatus,
    MessageKind,
    QuestionResponse,
    TaskSeries,
    list_task_series,
    next_container_seq,
    row_from_mapping,
)

log = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 5.0
INBOUND = "inbound.db"
OUTBOUND = "outbound.db"
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"

Routing = tuple[str | None, str | None, str | None]
"""``(channel_type, platform_id, thread_id)`` of the session's own chat; all None when it has none."""


# --------------------------------------------------------------------------------------------- ids and times


def _base36(number: int) -> str:
    digits = ""
    while True:
        number, rem = divmod(number, 36)
        digits = _ALPHABET[rem] + digits
        if not number:
            return digits


def new_id(prefix: str) -> str:
    """``<prefix>-<ms timestamp base36>-<random base36>``, the host's id shape (sortable by creation time)."""
    return f"{prefix}-{_base36(time.time_ns() // 1_000_000)}-{_base36(secrets.randbits(48)).rjust(10, '0')}"


def short_id(prefix: str) -> str:
    """A short random id (``q-`` + 10 chars) for places with a length limit, e.g. Telegram's 64-byte callback data."""
    return f"{prefix}-{_base36(secrets.randbits(50)).rjust(10, '0')}"


def now_iso() -> str:
    """The stored timestamp form: ISO 8601 in UTC with milliseconds, as the host writes it."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_utc(text: str) -> datetime:
    """Parse a stored timestamp; a naive one (SQLite's ``datetime('now')``) is UTC. Raises ``ValueError``."""
    value = text.strip().replace(" ", "T")
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _uri(path: Path, mode: str) -> str:
    return f"file:{quote(str(path))}?mode={mode}"


# --------------------------------------------------------------------------------------------- rows


@dataclass(frozen=True, slots=True)
class NewOutbound:
    """A row for ``messages_out``; the odd seq is assigned inside the write transaction."""

    kind: str
    content: str
    channel_type: str | None = None
    platform_id: str | None = None
    thread_id: str | None = None
    in_reply_to: str | None = None
    deliver_after: str | None = None
    id: str = field(default_factory=lambda: new_id("out"))


@dataclass(frozen=True, slots=True)
class SeqTarget:
    """What a seq the agent saw refers to: an inbound (even) or outbound (odd) row, and its address."""

    row_id: str
    kind: str
    channel_type: str | None
    platform_id: str | None
    thread_id: str | None


TaskSummary = TaskSeries
"""One scheduled series as ``list_tasks`` shows it (the shape is shared with the host)."""


# --------------------------------------------------------------------------------------------- the DB pair


class SessionDB:
    """Short, blocking operations on one session folder's ``inbound.db`` (read-only) and ``outbound.db``."""

    def __init__(self, session_dir: Path) -> None:
        self.session_dir = session_dir
        self.inbound = session_dir / INBOUND
        self.outbound = session_dir / OUTBOUND

    # ------------------------------------------------------------------------------------------ connections

    @contextmanager
    def _read(self, *, with_outbound: bool = False) -> Iterator[sqlite3.Connection]:
        """A fresh read-only view of ``inbound.db`` (``outbound.db`` attached read-only as ``ob`` on request)."""
        if not self.inbound.exists():
            raise FileNotFoundError(f"{self.inbound} is missing")
        conn = sqlite3.connect(_uri(self.inbound, "ro"), uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA mmap_size=0")
            if with_outbound:
                conn.execute("ATTACH DATABASE ? AS ob", (_uri(self.outbound, "ro"),))
                conn.execute("PRAGMA ob.mmap_size=0")
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction on ``outbound.db`` alone, then close (never with ``inbound.db`` attached: see ``write``)."""
        conn = sqlite3.connect(_uri(self.outbound, "rw"), uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout=5000")
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    def ensure_schema(self) -> None:
        """Create ``outbound.db``'s tables if the host made an older file (or none); the runner owns this file."""
        conn = sqlite3.connect(self.outbound, timeout=BUSY_TIMEOUT_S)
        try:
            conn.execute("PRAGMA journal_mode=DELETE")
            conn.execute("PRAGMA busy_timeout=5000")
            conn.executescript(OUTBOUND_SCHEMA)
            conn.commit()
        finally:
            conn.close()

    # ------------------------------------------------------------------------------------------ state

    def get_state(self, key: str) -> str | None:
        """A value from ``session_state``."""
        with self._write() as conn:
            row = conn.execute("SELECT value FROM session_state WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_state(self, key: str, value: str) -> None:
        """Store a value in ``session_state``."""
        with self._write() as conn:
            _set_state(conn, key, value)

    def delete_state(self, key: str) -> bool:
        """Remove a key; True when it existed."""
        with self._write() as conn:
            return conn.execute("DELETE FROM session_state WHERE key = ?", (key,)).rowcount > 0

    @staticmethod
    def continuation_key(provider: str) -> str:
        """Each provider keeps its own continuation, so switching providers never feeds one another's state."""
        return f"continuation:{provider}"

    def load_continuation(self, provider: str) -> str | None:
        """The stored conversation state of ``provider``, if any."""
        return self.get_state(self.continuation_key(provider))

    def save_continuation(self, provider: str, value: str) -> None:
        """Remember the conversation so a restarted runner resumes it."""
        self.set_state(self.continuation_key(provider), value)

    def clear_continuation(self, provider: str) -> bool:
        """Forget the conversation (``/clear``, or the provider says it cannot be resumed)."""
        return self.delete_state(self.continuation_key(provider))

    # ------------------------------------------------------------------------------------------ inbound rows

    def pending(self, *, include_on_wake: bool, limit: int, now: datetime | None = None) -> list[InboundRow]:
        """The newest ``limit`` due, pending, unacked rows in chronological order; never ``system`` rows.

        ``system`` rows are answers that tools consume; ``on_wake`` rows are for a fresh runner's first poll only,
        so a dying container can never take them.
        """
        return self.pending_and_next(include_on_wake=include_on_wake, limit=limit, now=now)[0]

    def pending_and_next(
        self, *, include_on_wake: bool, limit: int, now: datetime | None = None
    ) -> tuple[list[InboundRow], datetime | None]:
        """:meth:`pending`, and when the next triggering row falls due (None: none waits), from the same read.

        The loop sleeps until that time instead of polling for it: no host write marks the moment a task falls due.
        """
        with self._read(with_outbound=True) as conn:
            rows = conn.execute(
                "SELECT * FROM messages_in m WHERE m.status = ? AND m.kind != ? AND (? OR m.on_wake = 0)"
                " AND NOT EXISTS (SELECT 1 FROM ob.processing_ack a WHERE a.message_id = m.id)"
                " ORDER BY m.seq",
                (InboundStatus.PENDING.value, MessageKind.SYSTEM.value, int(include_on_wake)),
            ).fetchall()
        moment = now or datetime.now(UTC)
        due = [r for r in rows if _is_due(r["process_after"], moment)]
        upcoming = min((_due_time(r["process_after"]) for r in rows if r["trigger"] == 1
                        and not _is_due(r["process_after"], moment)), default=None)
        return ([row_from_mapping(InboundRow, r) for r in due[-limit:]] if limit > 0 else []), upcoming

    def destinations(self) -> list[Destination]:
        """The names the agent may address (the host rewrites them on every wake)."""
        with self._read() as conn:
            rows = conn.execute("SELECT * FROM destinations ORDER BY name").fetchall()
        return [row_from_mapping(Destination, r) for r in rows]

    def routing(self) -> Routing:
        """The session's own chat and thread."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT channel_type, platform_id, thread_id FROM session_routing WHERE id = 1"
            ).fetchone()
        return (None, None, None) if row is None else (row[0], row[1], row[2])

    def latest_from(self, channel_type: str, platform_id: str) -> InboundRow | None:
        """The newest chat or task row that came from this address (for ``in_reply_to`` and the thread)."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT * FROM messages_in WHERE channel_type = ? AND platform_id = ? AND kind != ?"
                " ORDER BY seq DESC LIMIT 1",
                (channel_type, platform_id, MessageKind.SYSTEM.value),
            ).fetchone()
        return None if row is None else row_from_mapping(InboundRow, row)

    def newest_chat(self, channel_type: str, platform_id: str) -> InboundRow | None:
        """The newest chat message from this chat (whether it is a DM, and whose, for household memory)."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT * FROM messages_in WHERE channel_type = ? AND platform_id = ? AND kind = ?"
                " ORDER BY seq DESC LIMIT 1",
                (channel_type, platform_id, MessageKind.CHAT.value),
            ).fetchone()
        return None if row is None else row_from_mapping(InboundRow, row)

    def seq_target(self, seq: int) -> SeqTarget | None:
        """The row behind a seq the agent saw: even seqs are the host's rows, odd ones the runner's."""
        if seq % 2 == 0:
            with self._read() as conn:
                row = conn.execute(
                    "SELECT id, kind, channel_type, platform_id, thread_id FROM messages_in WHERE seq = ?", (seq,)
                ).fetchone()
        else:
            with self._write() as conn:
                row = conn.execute(
                    "SELECT id, kind, channel_type, platform_id, thread_id FROM messages_out WHERE seq = ?", (seq,)
                ).fetchone()
        if row is None:
            return None
        return SeqTarget(row_id=row[0], kind=row[1], channel_type=row[2], platform_id=row[3], thread_id=row[4])

    def seqs_for_platform_messages(self, platform_message_ids: Iterable[str]) -> dict[str, int]:
        """Map platform message ids (from a quoted reply) to the seqs the agent knows them by."""
        wanted = {i for i in platform_message_ids if i}
        if not wanted:
            return {}
        found: dict[str, int] = {}
        with self._read(with_outbound=True) as conn:
            for pid in wanted:
                row = conn.execute(
                    "SELECT seq FROM messages_in WHERE kind = 'chat' AND (id LIKE ? ESCAPE '\\' OR"
                    " json_extract(content, '$.platform_message_id') = ?) ORDER BY seq DESC LIMIT 1",
                    (_like_prefix(pid) + ":%", pid),
                ).fetchone()
                if row is None:
                    row = conn.execute(
                        "SELECT o.seq FROM ob.messages_out o JOIN delivered d ON d.message_out_id = o.id"
                        " WHERE d.platform_message_id = ? ORDER BY o.seq DESC LIMIT 1",
                        (pid,),
                    ).fetchone()
                if row is not None:
                    found[pid] = int(row[0])
        return found

    def question_response(self, question_id: str) -> tuple[str, QuestionResponse] | None:
        """The host's answer row to a question card, if it has arrived: ``(row id, response)``."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT id, content FROM messages_in WHERE kind = ? AND instr(content, ?) > 0 ORDER BY seq",
                (MessageKind.SYSTEM.value, question_id),
            ).fetchall()
        for row in rows:
            try:
                data = json.loads(row["content"])
                if not isinstance(data, dict) or data.get("type") != QuestionResponse.TYPE:
                    continue
                response = QuestionResponse.from_dict(data)
            except (ValueError, ContractError):
                continue
            if response.question_id == question_id:
                return str(row["id"]), response
        return None

    def list_tasks(self, status: str | None = None) -> list[TaskSummary]:
        """One row per scheduled series (its earliest live occurrence), soonest first; one just finished is gone."""
        with self._read(with_outbound=True) as conn:
            return list_task_series(conn, status, acked=True)

    # ------------------------------------------------------------------------------------------ acks

    def clear_stale_claims(self) -> int:
        """Crash recovery at start: ``processing`` claims of a previous life are dropped so the rows are taken again."""
        with self._write() as conn:
            return conn.execute(
                "DELETE FROM processing_ack WHERE status = ?", (AckStatus.PROCESSING.value,)
            ).rowcount

    def claim(self, message_ids: Sequence[str]) -> None:
        """Mark rows as being processed."""
        self.set_acks(message_ids, AckStatus.PROCESSING)

    def set_acks(self, message_ids: Sequence[str], status: AckStatus) -> None:
        """Record progress on inbound rows; the host copies it onto ``messages_in``."""
        if not message_ids:
            return
        with self._write() as conn:
            _set_acks(conn, message_ids, status)

    def release_claims(self, message_ids: Sequence[str]) -> int:
        """Drop our ``processing`` claims (a graceful stop mid-turn) so the next runner takes the rows at once."""
        if not message_ids:
            return 0
        with self._write() as conn:
            return sum(
                conn.execute(
                    "DELETE FROM processing_ack WHERE message_id = ? AND status = ?", (i, AckStatus.PROCESSING.value)
                ).rowcount
                for i in message_ids
            )

    # ------------------------------------------------------------------------------------------ outbound rows

    def write_messages(
        self,
        messages: Sequence[NewOutbound],
        *,
        complete: Sequence[str] = (),
        fail: Sequence[str] = (),
        state: Mapping[str, str] | None = None,
    ) -> list[int]:
        """Insert rows (odd seqs above the max of both DBs), settle acks and store ``state`` in one transaction.

        Returns the seqs. ``state`` lets an answer's continuation be stored together with its rows' completion, so a
        crash can never leave a conversation that holds an answered turn whose rows will be retried.
        """
        # The host's max seq is read first, on its own connection: holding a lock on inbound.db while committing
        # outbound.db deadlocks with a host doing the mirror image (each waits for the other's read lock).
        with self._read() as reader:
            inbound_max = reader.execute("SELECT MAX(seq) FROM messages_in").fetchone()[0] or 0
        with self._write() as conn:
            outbound_max = conn.execute("SELECT MAX(seq) FROM messages_out").fetchone()[0] or 0
            current = max(inbound_max, outbound_max)
            stamp = now_iso()
            seqs: list[int] = []
            for msg in messages:
                seq = next_container_seq(current)
                current = seq
                conn.execute(
                    "INSERT INTO messages_out (id, seq, in_reply_to, timestamp, deliver_after, kind, platform_id,"
                    " channel_type, thread_id, content) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (msg.id, seq, msg.in_reply_to, stamp, msg.deliver_after, msg.kind, msg.platform_id,
                     msg.channel_type, msg.thread_id, msg.content),
                )
                seqs.append(seq)
            _set_acks(conn, complete, AckStatus.COMPLETED)
            _set_acks(conn, fail, AckStatus.FAILED)
            for key, value in (state or {}).items():
                _set_state(conn, key, value)
        return seqs

    # ------------------------------------------------------------------------------------------ container state

    def set_tool(self, name: str, declared_timeout_ms: int | None) -> None:
        """Tell the host which tool runs, so its stuck detection allows the tool's declared timeout."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO container_state (id, current_tool, tool_declared_timeout_ms, tool_started_at)"
                " VALUES (1, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET current_tool = excluded.current_tool,"
                " tool_declared_timeout_ms = excluded.tool_declared_timeout_ms,"
                " tool_started_at = excluded.tool_started_at",
                (name, declared_timeout_ms, now_iso()),
            )

    def clear_tool(self) -> None:
        """No tool runs any more."""
        with self._write() as conn:
            conn.execute(
                "UPDATE container_state SET current_tool = NULL, tool_declared_timeout_ms = NULL,"
                " tool_started_at = NULL WHERE id = 1"
            )


def _set_state(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO session_state (key, value, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        (key, value, now_iso()),
    )


def _set_acks(conn: sqlite3.Connection, message_ids: Iterable[str], status: AckStatus) -> None:
    stamp = now_iso()
    conn.executemany(
        "INSERT INTO processing_ack (message_id, status, status_changed) VALUES (?, ?, ?)"
        " ON CONFLICT (message_id) DO UPDATE SET status = excluded.status, status_changed = excluded.status_changed",
        [(i, status.value, stamp) for i in message_ids],
    )


def _is_due(process_after: str | None, now: datetime) -> bool:
    if not process_after:
        return True
    try:
        return parse_utc(process_after) <= now
    except ValueError:
        # An unreadable time must not hide the row forever: the host wrote it to be processed.
        log.warning("unreadable process_after %r; treating the row as due", process_after)
        return True


def _due_time(process_after: str) -> datetime:
    """The time of a row :func:`_is_due` called not yet due (so its ``process_after`` parses)."""
    return parse_utc(process_after)


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


__all__ = [
    "BUSY_TIMEOUT_S",
    "INBOUND",
    "OUTBOUND",
    "NewOutbound",
    "Routing",
    "SeqTarget",
    "SessionDB",
    "TaskSummary",
    "new_id",
    "now_iso",
    "parse_utc",
    "short_id",
]
