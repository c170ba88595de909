"""The session store: folders and the two per-session SQLite files, opened, used and closed for every operation.

``inbound.db`` is written only by the host, ``outbound.db`` only by the container (the host may delete orphan acks
once no container runs). Both use ``journal_mode=DELETE``: WAL does not survive VM file mounts on macOS/Windows, and a
long-lived connection would freeze the other side's view. The blocking sqlite3 calls run on this store's own small
thread pool, so they never stall the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

from agent_runner.protocol import (
    INBOUND_SCHEMA,
    OUTBOUND_SCHEMA,
    PROTOCOL_VERSION,
    Destination,
    OutboundRow,
    next_host_seq,
    row_from_mapping,
)
from nanoclaw_app.sessions.files import check_basename
from nanoclaw_app.timeutil import now_iso

T = TypeVar("T")

INBOUND = "inbound.db"
OUTBOUND = "outbound.db"
HEARTBEAT = ".heartbeat"
BUSY_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class NewInbound:
    """A row for ``messages_in``; the store assigns the even seq."""

    id: str
    kind: str
    content: str
    timestamp: str
    trigger: int = 1
    platform_id: str | None = None
    channel_type: str | None = None
    thread_id: str | None = None
    process_after: str | None = None
    recurrence: str | None = None
    series_id: str | None = None
    source_session_id: str | None = None
    on_wake: int = 0
    hops: int = 0
    status: str = "pending"


def _uri(path: Path, mode: str) -> str:
    return f"file:{quote(str(path))}?mode={mode}"


class SessionStore:
    """Creates session folders and runs short operations against their DB files."""

    def __init__(self, root: Path, *, workers: int = 2) -> None:
        self.root = root
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        """Start the store's worker threads (idempotent)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="session-db")

    async def close(self) -> None:
        """Wait for running operations, then stop the worker threads."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True)

    async def _call(self, fn: Callable[[], T]) -> T:
        if self._pool is None:
            raise RuntimeError("session store is not started")
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn)

    # ------------------------------------------------------------------------------------------ folders

    def dir(self, agent_group_id: str, session_id: str) -> Path:
        """The folder of one session (names are checked so they can never escape the root)."""
        check_basename(agent_group_id, "agent id")
        check_basename(session_id, "session id")
        return self.root / agent_group_id / session_id

    async def create(self, agent_group_id: str, session_id: str) -> Path:
        """Create the folder, ``inbox/``, ``outbox/`` and both DBs with their schemas (idempotent)."""
        folder = self.dir(agent_group_id, session_id)
        await self._call(lambda: _create(folder))
        return folder

    # ------------------------------------------------------------------------------------------ generic access

    async def read(self, folder: Path, fn: Callable[[sqlite3.Connection], T], *, with_outbound: bool = True) -> T:
        """Run ``fn`` on a read-only view of ``inbound.db`` (as ``main``) with ``outbound.db`` attached as ``ob``."""
        return await self._call(lambda: _with_conn(folder, fn, write=False, attach=with_outbound))

    async def write(self, folder: Path, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` inside ``BEGIN IMMEDIATE`` on ``inbound.db`` alone; commit, close.

        ``outbound.db`` is never attached here: holding its read lock while committing ``inbound.db`` deadlocks
        with a runner committing ``outbound.db`` while reading ``inbound.db``. Read what you need first.
        """
        return await self._call(lambda: _with_conn(folder, fn, write=True, attach=False))

    async def read_outbound(self, folder: Path, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` on a read-only connection to ``outbound.db`` alone."""
        return await self._call(lambda: _with_outbound(folder, fn, write=False))

    async def run_io(self, fn: Callable[[], T]) -> T:
        """Run blocking file work of a session (reading outbox files, copying attachments) off the event loop."""
        return await self._call(fn)

    async def delete_orphan_acks(self, folder: Path, message_ids: Iterable[str] | None = None) -> int:
        """Delete ``processing`` acks left by a dead container. Only call when no container runs for the session."""
        ids = None if message_ids is None else list(message_ids)

        def run(conn: sqlite3.Connection) -> int:
            if ids is None:
                return conn.execute("DELETE FROM processing_ack WHERE status = 'processing'").rowcount
            return sum(
                conn.execute(
                    "DELETE FROM processing_ack WHERE status = 'processing' AND message_id = ?", (i,)
                ).rowcount
                for i in ids
            )

        return await self._call(lambda: _with_outbound(folder, run, write=True))

    # ------------------------------------------------------------------------------------------ common operations

    async def write_inbound(self, folder: Path, row: NewInbound) -> tuple[int, bool]:
        """Insert a row with the next even seq; re-inserting the same id is a no-op. Returns (seq, inserted)."""
        return await self.write(folder, lambda conn: insert_inbound(conn, row))

    async def due_outbound(self, folder: Path) -> list[OutboundRow]:
        """Outbound rows that are due and not yet recorded in ``delivered``, oldest first."""
        now = now_iso()

        def run(conn: sqlite3.Connection) -> list[OutboundRow]:
            rows = conn.execute(
                "SELECT o.* FROM ob.messages_out o LEFT JOIN delivered d ON d.message_out_id = o.id"
                " WHERE d.message_out_id IS NULL AND (o.deliver_after IS NULL OR o.deliver_after <= ?)"
                " ORDER BY o.seq",
                (now,),
            ).fetchall()
            return [row_from_mapping(OutboundRow, r) for r in rows]

        return await self.read(folder, run)

    async def record_delivery(
        self, folder: Path, message_out_id: str, platform_message_id: str | None, status: str, error: str | None = None
    ) -> None:
        """Record a delivered (or permanently failed) outbound row so it is never sent again."""
        await self.write(
            folder,
            lambda conn: conn.execute(
                "INSERT INTO delivered (message_out_id, platform_message_id, status, error, delivered_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (message_out_id) DO NOTHING",
                (message_out_id, platform_message_id, status, error, now_iso()),
            ),
        )

    async def write_projection(
        self, folder: Path, destinations: list[Destination], routing: tuple[str | None, str | None, str | None]
    ) -> None:
        """Rewrite the destinations the agent sees and its default reply address, in one transaction."""

        def run(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM destinations")
            conn.executemany(
                "INSERT INTO destinations (name, display_name, type, channel_type, platform_id, agent_group_id)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(d.name, d.display_name, d.type, d.channel_type, d.platform_id, d.agent_group_id)
                 for d in destinations],
            )
            conn.execute(
                "INSERT INTO session_routing (id, channel_type, platform_id, thread_id) VALUES (1, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET channel_type = excluded.channel_type,"
                " platform_id = excluded.platform_id, thread_id = excluded.thread_id",
                routing,
            )

        await self.write(folder, run)

    @staticmethod
    def heartbeat_age(folder: Path) -> float | None:
        """Seconds since the container last touched ``.heartbeat``; None when there is no heartbeat file."""
        try:
            return max(0.0, time.time() - (folder / HEARTBEAT).stat().st_mtime)
        except FileNotFoundError:
            return None

    @staticmethod
    def clear_heartbeat(folder: Path) -> None:
        """Remove a stale heartbeat before a fresh container starts."""
        with contextlib.suppress(FileNotFoundError):
            (folder / HEARTBEAT).unlink()


def insert_inbound(conn: sqlite3.Connection, row: NewInbound) -> tuple[int, bool]:
    """Insert into ``messages_in`` with the next even seq (call inside a write transaction)."""
    existing = conn.execute("SELECT seq FROM messages_in WHERE id = ?", (row.id,)).fetchone()
    if existing is not None:
        return int(existing[0]), False
    current = conn.execute("SELECT MAX(seq) FROM messages_in").fetchone()[0]
    seq = next_host_seq(current)
    conn.execute(
        "INSERT INTO messages_in (id, seq, kind, timestamp, status, process_after, recurrence, series_id, tries,"
        " trigger, platform_id, channel_type, thread_id, content, source_session_id, on_wake, hops)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?)",
        (row.id, seq, row.kind, row.timestamp, row.status, row.process_after, row.recurrence, row.series_id,
         row.trigger, row.platform_id, row.channel_type, row.thread_id, row.content, row.source_session_id,
         row.on_wake, row.hops),
    )
    return seq, True


def _create(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    for sub in ("inbox", "outbox"):
        path = folder / sub
        if path.is_symlink():
            path.unlink()
        path.mkdir(exist_ok=True, mode=0o700)
    for name, schema in ((INBOUND, INBOUND_SCHEMA), (OUTBOUND, OUTBOUND_SCHEMA)):
        conn = sqlite3.connect(folder / name, timeout=BUSY_TIMEOUT_S)
        try:
            conn.execute("PRAGMA journal_mode=DELETE")
            conn.executescript(schema)
            conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('protocol_version', ?)", (str(PROTOCOL_VERSION),)
            )
            conn.commit()
        finally:
            conn.close()
    folder.chmod(0o700)


def _open(path: Path, *, write: bool) -> sqlite3.Connection:
    if not path.exists():
        raise FileNotFoundError(f"session database {path} is missing")
    conn = sqlite3.connect(_uri(path, "rw" if write else "ro"), uri=True, timeout=BUSY_TIMEOUT_S,
                           isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def _run(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T], *, write: bool) -> T:
    """Run ``fn`` (inside ``BEGIN IMMEDIATE`` ... ``COMMIT`` when writing), then close the connection."""
    try:
        if not write:
            return fn(conn)
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result
    finally:
        conn.close()


def _with_conn(folder: Path, fn: Callable[[sqlite3.Connection], T], *, write: bool, attach: bool) -> T:
    conn = _open(folder / INBOUND, write=write)
    if attach:
        try:
            conn.execute("ATTACH DATABASE ? AS ob", (_uri(folder / OUTBOUND, "ro"),))
        except BaseException:
            conn.close()
            raise
    return _run(conn, fn, write=write)


def _with_outbound(folder: Path, fn: Callable[[sqlite3.Connection], T], *, write: bool) -> T:
    return _run(_open(folder / OUTBOUND, write=write), fn, write=write)


__all__ = ["HEARTBEAT", "INBOUND", "OUTBOUND", "NewInbound", "SessionStore", "insert_inbound"]
