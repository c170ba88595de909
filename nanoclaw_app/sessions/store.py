"""The session store: folders and the two per-session SQLite files, opened, used and closed for every operation.

``inbound.db`` is written only by the host, ``outbound.db`` only by the container (the host may delete orphan acks
once no container runs). Both use ``journal_mode=DELETE``: WAL does not survive VM file mounts on macOS/Windows, and a
long-lived connection would freeze the other side's view. The blocking sqlite3 calls run on this store's own small
thread pool, so they never stall the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
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
from nanoclaw_app.errors import SessionDamaged, UnsafePath
from nanoclaw_app.sessions.files import check_basename
from nanoclaw_app.sessions.mounted import MountedDir
from nanoclaw_app.timeutil import now_iso

T = TypeVar("T")

INBOUND = "inbound.db"
OUTBOUND = "outbound.db"
HEARTBEAT = ".heartbeat"
BUSY_TIMEOUT_S = 5.0
MAX_DB_BYTES = 2 * 1024**3
"""A session DB larger than this is not ours to read: the container grew it to stall the host."""
SET_ASIDE = "set-aside"
"""Beside ``sessions/``: damaged session folders and files are moved here, never deleted."""


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
        self._repair_locks: dict[str, asyncio.Lock] = {}

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

    def repair_lock(self, session_id: str) -> asyncio.Lock:
        """Held while a damaged session is set aside, so two callers never move the fresh folder again."""
        return self._repair_locks.setdefault(session_id, asyncio.Lock())

    async def set_aside(self, folder: Path, file: str | None) -> Path:
        """Move a damaged session (or its ``outbound.db``) to ``<home>/set-aside/`` and start it afresh.

        Only call while no container runs for the session: a running one keeps the old folder mounted.
        """
        stamp = time.strftime("%Y%m%d-%H%M%S")
        suffix = "" if file in (None, INBOUND) else "-outbound"
        target = self.root.parent / SET_ASIDE / folder.parent.name / f"{folder.name}-{stamp}{suffix}"
        n = 1
        while target.exists():
            n += 1
            target = target.with_name(f"{folder.name}-{stamp}{suffix}-{n}")

        def run() -> Path:
            moved = set_aside(folder, file, target)
            _create(folder)
            return moved

        return await self._call(run)

    async def has_files(self, folder: Path) -> bool:
        """Whether the session's ``inbound.db`` entry exists (a link counts: it is found and refused on use)."""
        return await self._call(lambda: os.path.lexists(folder / INBOUND))

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
            return max(0.0, time.time() - (folder / HEARTBEAT).lstat().st_mtime)
        except FileNotFoundError:
            return None

    @staticmethod
    def clear_heartbeat(folder: Path) -> None:
        """Remove a stale heartbeat before a fresh container starts."""
        with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
            (folder / HEARTBEAT).unlink()  # unlink removes a planted link itself, never its target


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
    """Make the folder, ``inbox/``, ``outbox/`` and any missing DB; an entry the container swapped raises."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    with MountedDir.open(folder) as where:
        for sub in ("inbox", "outbox"):
            where.ensure_subdir(sub)
        for name, schema in ((INBOUND, INBOUND_SCHEMA), (OUTBOUND, OUTBOUND_SCHEMA)):
            if where.lstat(name) is None:
                where.write_new(name, b"")  # ours, made by descriptor: SQLite never creates through a planted link
            conn = _connect(folder, name, write=True)
            try:
                conn.execute("PRAGMA journal_mode=DELETE")
                conn.executescript(schema)
                conn.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('protocol_version', ?)", (str(PROTOCOL_VERSION),)
                )
            except sqlite3.DatabaseError as err:
                conn.close()
                if _broken(err):
                    raise _damaged(folder, name, err) from err
                raise
            conn.close()
    folder.chmod(0o700)


def _check_file(folder: Path, name: str) -> None:
    """``FileNotFoundError`` when the DB is missing; ``SessionDamaged`` when anything but the host's file is there."""
    with MountedDir.open(folder) as where:
        try:
            if where.regular(name, max_bytes=MAX_DB_BYTES) is None:
                raise FileNotFoundError(f"session database {folder / name} is missing")
            # SQLite opens its journal with O_NOFOLLOW, but a folder or pipe planted there would wedge every write.
            journal = where.lstat(f"{name}-journal")
            if journal is not None:
                where.regular(f"{name}-journal")
        except UnsafePath as err:
            raise SessionDamaged(folder, name, str(err).split(": ", 1)[-1]) from err


def _connect(folder: Path, name: str, *, write: bool) -> sqlite3.Connection:
    """A connection to the host's own DB file, proven to be that file after SQLite opened it.

    The entry is checked without following links, then SQLite opens it by path; SQLite resolves links in that path
    before it opens (and opens with ``O_NOFOLLOW``), so a link swapped in between shows as a different file in
    ``PRAGMA database_list`` and the connection is refused before anything is read or written.
    """
    _check_file(folder, name)
    path = folder / name
    conn = sqlite3.connect(_uri(path, "rw" if write else "ro"), uri=True, timeout=BUSY_TIMEOUT_S,
                           isolation_level=None, check_same_thread=False)
    try:
        _verify(conn, folder, {"main": name})
    except BaseException:
        conn.close()
        raise
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def _verify(conn: sqlite3.Connection, folder: Path, expected: dict[str, str]) -> None:
    """Refuse the connection unless every named schema is the file of that name in ``folder`` itself."""
    real = Path(os.path.realpath(folder))
    opened = {row[1]: row[2] for row in conn.execute("PRAGMA database_list")}
    for schema, name in expected.items():
        if opened.get(schema) != str(real / name):
            raise SessionDamaged(folder, name, "was swapped for a link while it was being opened")


def _damaged(folder: Path, name: str, err: sqlite3.DatabaseError) -> SessionDamaged:
    return SessionDamaged(folder, name, f"cannot be read as a database ({err})")


def _is_busy(err: sqlite3.DatabaseError) -> bool:
    text = str(err).lower()
    return isinstance(err, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def _corrupt(err: sqlite3.DatabaseError) -> bool:
    """Whether SQLite may be saying the file itself is broken (not a lock, not a bad query of ours)."""
    text = str(err).lower()
    return any(mark in text for mark in ("not a database", "malformed", "disk image", "unable to open"))


def _broken(err: sqlite3.DatabaseError) -> bool:
    """Whether SQLite positively says the file's content is not a database (no resource shortage says this)."""
    text = str(err).lower()
    return "not a database" in text or "malformed" in text


def _culprit(folder: Path, names: tuple[str, ...]) -> SessionDamaged | None:
    """Which of the session's DB files is damaged, each probed alone; None when each looks sound (an error path only).

    Only positive evidence counts (a planted entry, a failed integrity check): a healthy session must never be set
    aside because the machine ran out of file handles for a moment.
    """
    for name in names:
        try:
            conn = _connect(folder, name, write=False)
        except SessionDamaged as damage:
            return damage
        except sqlite3.DatabaseError as probe:
            if _broken(probe):
                return _damaged(folder, name, probe)
            continue
        try:
            ok = conn.execute("PRAGMA quick_check(1)").fetchone()
            if ok is None or ok[0] != "ok":
                return SessionDamaged(folder, name, f"failed its integrity check ({ok[0] if ok else 'no answer'})")
        except sqlite3.DatabaseError as probe:
            if _broken(probe):
                return _damaged(folder, name, probe)
        finally:
            conn.close()
    return None


def _run(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T], *, write: bool) -> T:
    """Run ``fn`` (inside ``BEGIN IMMEDIATE`` ... ``COMMIT`` when writing), then close the connection."""
    try:
        if not write:
            return fn(conn)
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result
    finally:
        conn.close()


def _guarded(folder: Path, names: tuple[str, ...], call: Callable[[], T]) -> T:
    """Run ``call``; SQLite's "this file is broken" becomes ``SessionDamaged`` naming the file (locks stay locks)."""
    try:
        return call()
    except sqlite3.DatabaseError as err:
        if _is_busy(err) or not _corrupt(err):
            raise
        damage = _culprit(folder, names)
        if damage is None:
            raise
        raise damage from err


def _with_conn(folder: Path, fn: Callable[[sqlite3.Connection], T], *, write: bool, attach: bool) -> T:
    names = (INBOUND, OUTBOUND) if attach else (INBOUND,)

    def call() -> T:
        conn = _connect(folder, INBOUND, write=write)
        if attach:
            try:
                _check_file(folder, OUTBOUND)
                conn.execute("ATTACH DATABASE ? AS ob", (_uri(folder / OUTBOUND, "ro"),))
                _verify(conn, folder, {"ob": OUTBOUND})
            except BaseException:
                conn.close()
                raise
        return _run(conn, fn, write=write)

    return _guarded(folder, names, call)


def _with_outbound(folder: Path, fn: Callable[[sqlite3.Connection], T], *, write: bool) -> T:
    return _guarded(folder, (OUTBOUND,), lambda: _run(_connect(folder, OUTBOUND, write=write), fn, write=write))


def set_aside(folder: Path, file: str | None, target: Path) -> Path:
    """Move the whole session folder (``file`` None or ``inbound.db``) or just ``outbound.db`` to ``target``.

    A rename, never a copy: copying would read through whatever links the container planted. The folder's parent is
    host-only, so renaming the folder itself cannot be redirected.
    """
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if file in (None, INBOUND):
        folder.rename(target)
        return target
    with MountedDir.open(folder) as where:
        for name in (file, f"{file}-journal"):
            where.move_out(name, target, name)
    return target


__all__ = ["HEARTBEAT", "INBOUND", "OUTBOUND", "SET_ASIDE", "NewInbound", "SessionStore", "insert_inbound", "set_aside"]
