"""The runner's inbound watch: every host commit wakes it, on inotify and on each fallback, and it stops cleanly."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import shutil
import sqlite3
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from agent_runner import inbound_watch
from agent_runner.inbound_watch import PROBE, ChangeSignal, InboundWatcher, InotifyRefused
from nanoclaw_app.sessions.store import SessionStore
from tests.runner.conftest import TIMEOUT, Session

LINUX = sys.platform.startswith("linux")
# inotify exists only on Linux, where every agent container runs (and CI too), so these always run there; the
# watchfiles fallback is covered by the same tests' other parameter.
linux_only = pytest.mark.skipif(not LINUX, reason="inotify is Linux only")
BACKENDS = [pytest.param(True, marks=linux_only, id="inotify"), pytest.param(False, id="watchfiles")]

Watching = Callable[..., Awaitable[tuple[InboundWatcher, ChangeSignal]]]


def inbound_rows(folder: Path) -> int:
    conn = sqlite3.connect(f"file:{folder / 'inbound.db'}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM messages_in").fetchone()[0])
    finally:
        conn.close()


async def read_until(folder: Path, signal: ChangeSignal, rows: int) -> None:
    """What the runner loop does: remember the version, read, and sleep until the next change if nothing new.

    With the fallback poll out of the picture, a lost wake-up shows up as a wait that never ends.
    """
    while True:
        version = signal.version
        if inbound_rows(folder) >= rows:
            return
        assert await signal.wait(version, TIMEOUT), f"no wake-up although {rows} rows were due"


def inotify_fds() -> set[str]:
    found = set()
    for link in Path("/proc/self/fd").iterdir():
        fd = link.name
        try:
            if str(link.readlink()) == "anon_inode:inotify":
                found.add(fd)
        except OSError:
            continue
    return found


def our_tasks() -> list[str]:
    return [t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("inbound-watch")]


@pytest.fixture
async def watching() -> AsyncIterator[Watching]:
    started: list[InboundWatcher] = []

    async def start(folder: Path, *, inotify: bool = True) -> tuple[InboundWatcher, ChangeSignal]:
        signal = ChangeSignal()
        watcher = InboundWatcher(folder, signal, inotify=inotify)
        await watcher.start()
        started.append(watcher)
        async with asyncio.timeout(TIMEOUT):
            await watcher.ready.wait()
        return watcher, signal

    yield start
    for watcher in started:
        async with asyncio.timeout(TIMEOUT):
            await watcher.stop()


@pytest.mark.parametrize("inotify", BACKENDS)
async def test_a_burst_of_host_commits_wakes_the_runner_for_the_last_one_too(
    session: Session, watching: Watching, inotify: bool
) -> None:
    watcher, signal = await watching(session.folder, inotify=inotify)
    assert watcher.backend == ("inotify" if inotify else "watchfiles")

    async def host() -> None:
        for i in range(20):
            await session.chat(f"message {i}")

    writer = asyncio.create_task(host())
    await read_until(session.folder, signal, 20)
    await writer


@linux_only
async def test_a_kernel_refusing_inotify_is_said_once_and_polling_still_wakes_the_runner(
    session: Session, watching: Watching, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse() -> None:
        raise InotifyRefused(os.strerror(errno.EMFILE))

    monkeypatch.setattr(inbound_watch, "open_inotify", refuse)
    caplog.set_level(logging.WARNING, logger=inbound_watch.__name__)
    watcher, signal = await watching(session.folder)
    assert watcher.backend == "polling"

    for i in range(3):
        await session.chat(f"message {i}")
        await read_until(session.folder, signal, i + 1)

    assert sum("refused" in r.getMessage() for r in caplog.records) == 1


@linux_only
async def test_a_session_folder_deleted_and_made_again_is_watched_again(
    store: SessionStore, watching: Watching, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inbound_watch, "RETRY_SECONDS", 0.01)
    folder = await store.create("ag-1", "sess-again")
    _, signal = await watching(folder)

    shutil.rmtree(folder)
    await store.create("ag-1", "sess-again")
    session = Session(store, folder, folder.parent)
    await session.chat("hello again")

    await read_until(folder, signal, 1)


@pytest.mark.parametrize("inotify", BACKENDS)
async def test_stopping_is_prompt_and_leaves_no_task_probe_or_inotify_instance(
    session: Session, inotify: bool
) -> None:
    before = inotify_fds() if LINUX else set()
    watcher = InboundWatcher(session.folder, ChangeSignal(), inotify=inotify)
    await watcher.start()
    async with asyncio.timeout(TIMEOUT):
        await watcher.ready.wait()

    async with asyncio.timeout(TIMEOUT):
        await watcher.stop()

    assert our_tasks() == []
    assert not (session.folder / PROBE).exists()
    if inotify:  # (watchfiles closes its instance from its own thread, a little later)
        assert inotify_fds() <= before


async def test_stopping_right_after_starting_leaves_nothing_behind(session: Session) -> None:
    before = inotify_fds() if LINUX else set()
    watcher = InboundWatcher(session.folder, ChangeSignal())
    await watcher.start()

    async with asyncio.timeout(TIMEOUT):
        await watcher.stop()

    assert our_tasks() == []
    assert not (session.folder / PROBE).exists()
    assert not watcher.ready.is_set()
    if LINUX:
        assert inotify_fds() <= before
