"""The central database: one writer connection behind a lock, one reader connection, WAL, foreign keys on.

All writes go through :meth:`Database.transaction` (``BEGIN IMMEDIATE``), so there is exactly one door for writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from nanoclaw_app.errors import NanoClawError

log = logging.getLogger(__name__)

Params = Sequence[Any] | dict[str, Any]

_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=5000",
    # WAL + NORMAL survives a process crash (only an OS crash may lose the last commit), and is much faster.
    "PRAGMA synchronous=NORMAL",
)


class Database:
    """Owns the connections to ``nanoclaw.db``; use :meth:`open` / :meth:`close` or ``async with``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()

    async def open(self) -> None:
        """Open both connections (idempotent)."""
        if self._writer is not None:
            return
        opened: list[aiosqlite.Connection] = []
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Tried with plain sqlite3 first: aiosqlite leaves its worker thread behind when its own connect fails.
            await asyncio.to_thread(_probe, self.path)
            for _ in range(2):
                conn = await aiosqlite.connect(self.path, isolation_level=None)
                opened.append(conn)
                conn.row_factory = sqlite3.Row
                for pragma in _PRAGMAS:
                    await conn.execute(pragma)
        except (sqlite3.Error, OSError) as err:
            for conn in opened:
                await conn.close()
            # Said in words by the CLI and the window: a traceback would tell a home user nothing.
            raise NanoClawError(
                f"NanoClaw cannot open its database {self.path} ({err}); make sure that folder belongs to you, "
                "the disk is not full, and no other program holds the file"
            ) from err
        self._writer, self._reader = opened

    async def close(self) -> None:
        """Close both connections; safe to call twice or after a failed open."""
        for conn in (self._reader, self._writer):
            if conn is not None:
                await conn.close()
        self._writer = self._reader = None

    async def __aenter__(self) -> Database:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def writer(self) -> aiosqlite.Connection:
        """The single write connection; use only inside :meth:`transaction`."""
        if self._writer is None:
            raise RuntimeError("database is not open")
        return self._writer

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """Run a block of writes atomically (``BEGIN IMMEDIATE`` ... ``COMMIT``, rollback on error)."""
        async with self._write_lock:
            conn = self.writer
            try:
                await conn.execute("BEGIN IMMEDIATE")
            except BaseException:
                # Cancelled while waiting, aiosqlite still runs the BEGIN in its thread; a ROLLBACK queued behind it
                # ends that transaction, or every later write would fail with "transaction within a transaction".
                with contextlib.suppress(sqlite3.OperationalError):  # the BEGIN itself failed: nothing to end
                    await asyncio.shield(conn.execute("ROLLBACK"))
                raise
            try:
                yield conn
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
            else:
                await conn.execute("COMMIT")

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one write statement in its own transaction; returns the affected row count."""
        async with self.transaction() as conn:
            cursor = await conn.execute(sql, params)
            return cursor.rowcount

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        """Run one write statement for many parameter sets, atomically."""
        async with self.transaction() as conn:
            await conn.executemany(sql, rows)

    async def fetchone(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        """Read one row through the reader connection."""
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        """Read all rows through the reader connection."""
        if self._reader is None:
            raise RuntimeError("database is not open")
        # One hop to the connection's thread instead of three (execute, fetch, close).
        return list(await self._reader.execute_fetchall(sql, params))

    async def fetchval(self, sql: str, params: Params = ()) -> Any:
        """Read the first column of the first row, or None."""
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]


def _probe(path: Path) -> None:
    """Open the file and read its header, so that a folder or a file that is not a database fails here."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA schema_version").fetchone()
    finally:
        conn.close()
