"""The outbound watcher calls back with the session id soon after a container commits to its outbound.db."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from agent_runner.protocol import OUTBOUND_SCHEMA
from nanoclaw_app.core.watcher import OutboundWatcher
from nanoclaw_app.sessions.store import SessionStore
from nanoclaw_app.settings import Settings
from nanoclaw_app.timeutil import now_iso

TIMEOUT = 10.0

Watching = Callable[[Path, Callable[[str], Awaitable[None]]], Awaitable[OutboundWatcher]]


def container_commit(folder: Path, n: int = 1) -> None:
    """Write a reply row the way a container does (DELETE journal, open/commit/close)."""
    conn = sqlite3.connect(folder / "outbound.db")
    try:
        for _ in range(n):
            seq = (conn.execute("SELECT MAX(seq) FROM messages_out").fetchone()[0] or -1) + 2
            conn.execute("INSERT INTO messages_out (id, seq, timestamp, kind, content) VALUES (?, ?, ?, 'chat', '{}')",
                         (f"out-{seq}", seq, now_iso()))
            conn.commit()
    finally:
        conn.close()


def create_outbound(folder: Path) -> None:
    """Just an outbound.db with the contract's schema, as a container would find it."""
    conn = sqlite3.connect(folder / "outbound.db")
    try:
        conn.executescript(OUTBOUND_SCHEMA)
        conn.commit()
    finally:
        conn.close()


class Calls:
    """Records on_change calls and lets a test await a session's next call."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self._events: dict[str, asyncio.Event] = {}

    def event(self, session_id: str) -> asyncio.Event:
        return self._events.setdefault(session_id, asyncio.Event())

    async def __call__(self, session_id: str) -> None:
        self.seen.append(session_id)
        self.event(session_id).set()


# Every test runs on both backends: inotify on Linux (always in CI), watchfiles everywhere (macOS, Windows, fallback).
BACKENDS = [
    pytest.param("inotify", marks=pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")),
    "watchfiles",
]


@pytest.fixture(params=BACKENDS)
async def watching(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Watching]:
    """Every test runs against inotify (Linux) and against the watchfiles fallback."""
    backend: str = request.param
    started: list[OutboundWatcher] = []

    async def start(root: Path, on_change: Callable[[str], Awaitable[None]]) -> OutboundWatcher:
        watcher = OutboundWatcher(root, on_change, inotify=backend == "inotify")
        await watcher.start()
        assert watcher.backend == backend
        async with asyncio.timeout(TIMEOUT):
            await watcher.wait_ready()
        started.append(watcher)
        return watcher

    yield start
    for watcher in started:
        async with asyncio.timeout(TIMEOUT):
            await watcher.stop()


async def test_a_container_write_calls_back_with_its_session_id(
    settings: Settings, store: SessionStore, watching: Watching
) -> None:
    calls = Calls()
    await watching(settings.paths.sessions, calls)
    folder = await store.create("ag-1", "sess-a")

    container_commit(folder)

    async with asyncio.timeout(TIMEOUT):
        await calls.event("sess-a").wait()


async def test_a_session_created_after_the_watch_started_is_seen(
    settings: Settings, store: SessionStore, watching: Watching
) -> None:
    calls = Calls()
    await watching(settings.paths.sessions, calls)
    await store.create("ag-1", "sess-early")
    late = await store.create("ag-2", "sess-late")

    container_commit(late)

    async with asyncio.timeout(TIMEOUT):
        await calls.event("sess-late").wait()


async def test_inbound_writes_do_not_call_back(
    settings: Settings, store: SessionStore, watching: Watching
) -> None:
    calls = Calls()
    await watching(settings.paths.sessions, calls)
    host_side = await store.create("ag-1", "sess-host")
    other = await store.create("ag-1", "sess-other")
    calls.seen.clear()  # creating the files is not a container write we care about

    conn = sqlite3.connect(host_side / "inbound.db")
    conn.execute("INSERT INTO meta (key, value) VALUES ('x', 'y')")
    conn.commit()
    conn.close()
    container_commit(other)

    async with asyncio.timeout(TIMEOUT):
        await calls.event("sess-other").wait()
    assert "sess-host" not in calls.seen


async def test_a_missing_root_is_created(tmp_path: Path, watching: Watching) -> None:
    root = tmp_path / "not" / "there"
    calls = Calls()
    await watching(root, calls)
    assert root.is_dir()

    folder = root / "ag-1" / "sess-x"
    folder.mkdir(parents=True)
    create_outbound(folder)
    container_commit(folder)

    async with asyncio.timeout(TIMEOUT):
        await calls.event("sess-x").wait()


async def test_a_burst_is_coalesced_and_one_session_never_runs_twice_at_once(
    settings: Settings, store: SessionStore, watching: Watching
) -> None:
    gate = asyncio.Event()
    first_started = asyncio.Event()
    rerun = asyncio.Event()
    active = 0
    most_active = 0
    calls = 0

    async def slow(session_id: str) -> None:
        nonlocal active, most_active, calls
        calls += 1
        active += 1
        most_active = max(most_active, active)
        first_started.set()
        if calls > 1:
            rerun.set()
        await gate.wait()
        active -= 1

    await watching(settings.paths.sessions, slow)
    folder = await store.create("ag-1", "sess-burst")
    container_commit(folder)
    async with asyncio.timeout(TIMEOUT):
        await first_started.wait()
    container_commit(folder, n=20)  # while the first callback is still busy

    gate.set()
    async with asyncio.timeout(TIMEOUT):
        await rerun.wait()

    assert most_active == 1
    assert calls < 21


async def test_a_failing_callback_does_not_stop_the_watch(
    settings: Settings, store: SessionStore, watching: Watching
) -> None:
    failed = asyncio.Event()
    seen = asyncio.Event()
    calls: list[str] = []

    async def flaky(session_id: str) -> None:
        calls.append(session_id)
        if len(calls) == 1:
            failed.set()
            raise RuntimeError("delivery exploded")
        seen.set()

    await watching(settings.paths.sessions, flaky)
    first = await store.create("ag-1", "sess-1")
    container_commit(first)
    async with asyncio.timeout(TIMEOUT):
        await failed.wait()
    second = await store.create("ag-1", "sess-2")
    container_commit(second)

    async with asyncio.timeout(TIMEOUT):
        await seen.wait()
