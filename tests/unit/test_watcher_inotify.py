"""The outbound watcher on inotify: folders come and go, bursts and overflows lose nothing, fallbacks still deliver."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import shutil
import sqlite3
import sys
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from nanoclaw_app.core import watcher as watcher_module
from nanoclaw_app.core.watcher import InotifyRefused, OutboundWatcher
from nanoclaw_app.sessions.store import SessionStore
from nanoclaw_app.settings import Settings
from tests.unit.test_watcher import container_commit, create_outbound

TIMEOUT = 10.0
LINUX = sys.platform.startswith("linux")
# inotify exists only on Linux (CI runs there, so these always run in CI); on macOS and Windows the watcher uses
# watchfiles, which tests/unit/test_watcher.py covers on every platform.
linux_only = pytest.mark.skipif(not LINUX, reason="inotify is Linux only")

Watching = Callable[..., Awaitable[OutboundWatcher]]


class Observed:
    """A callback that reads the session's outbound rows the way delivery would, and remembers the most it saw.

    Waiting for "a call saw N rows" proves a call happened after the N-th commit, whatever came before it.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.most: dict[str, int] = defaultdict(int)
        self.calls: dict[str, int] = defaultdict(int)
        self._changed = asyncio.Condition()

    async def __call__(self, session_id: str) -> None:
        self.calls[session_id] += 1
        self.most[session_id] = max(self.most[session_id], self._rows(session_id))
        async with self._changed:
            self._changed.notify_all()

    def _rows(self, session_id: str) -> int:
        folder = next(self.root.glob(f"*/{session_id}"), None)
        if folder is None:
            return 0
        conn = sqlite3.connect(f"file:{folder / 'outbound.db'}?mode=ro", uri=True)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM messages_out").fetchone()[0])
        except sqlite3.Error:
            return 0
        finally:
            conn.close()

    async def saw(self, session_id: str, rows: int) -> None:
        async with asyncio.timeout(TIMEOUT), self._changed:
            await self._changed.wait_for(lambda: self.most[session_id] >= rows)


def inotify_fds() -> list[str]:
    """This process's open inotify instances (so a test can tell one was closed)."""
    found = []
    for link in Path("/proc/self/fd").iterdir():
        fd = link.name
        try:
            if str(link.readlink()) == "anon_inode:inotify":
                found.append(fd)
        except OSError:
            continue
    return found


def inotify_watches() -> int:
    """How many watches this process holds in the kernel, over all its inotify instances."""
    total = 0
    for fd in inotify_fds():
        try:
            total += Path(f"/proc/self/fdinfo/{fd}").read_text().count("inotify wd:")
        except OSError:
            continue
    return total


def our_tasks() -> list[str]:
    return [t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("outbound-")]


@pytest.fixture
async def watching() -> AsyncIterator[Watching]:
    started: list[OutboundWatcher] = []

    async def start(root: Path, on_change: Callable[[str], Awaitable[None]], **kwargs: bool) -> OutboundWatcher:
        watcher = OutboundWatcher(root, on_change, **kwargs)
        await watcher.start()
        started.append(watcher)
        async with asyncio.timeout(TIMEOUT):
            await watcher.wait_ready()
        return watcher

    yield start
    for watcher in started:
        async with asyncio.timeout(TIMEOUT):
            await watcher.stop()


@linux_only
async def test_a_session_folder_made_by_hand_after_start_is_watched(tmp_path: Path, watching: Watching) -> None:
    root = tmp_path / "sessions"
    seen = Observed(root)
    watcher = await watching(root, seen)
    assert watcher.backend == "inotify"

    folder = root / "ag-new" / "sess-new"
    folder.mkdir(parents=True)
    create_outbound(folder)
    container_commit(folder)
    await seen.saw("sess-new", 1)
    container_commit(folder)  # surely after the folder's watch was added: only that watch can report it

    await seen.saw("sess-new", 2)


@pytest.mark.parametrize("inotify", [pytest.param(True, marks=linux_only), False], ids=["inotify", "watchfiles"])
async def test_a_burst_over_many_sessions_calls_back_for_every_last_commit(
    settings: Settings, store: SessionStore, watching: Watching, inotify: bool
) -> None:
    folders = [await store.create(f"ag-{i % 3}", f"sess-{i}") for i in range(10)]
    seen = Observed(settings.paths.sessions)
    await watching(settings.paths.sessions, seen, inotify=inotify)

    for _ in range(20):
        for folder in folders:
            container_commit(folder)
        await asyncio.sleep(0)  # let callbacks run in between, as they would under real load

    for folder in folders:
        await seen.saw(folder.name, 20)


@linux_only
async def test_an_overflowing_event_queue_still_calls_back_for_every_session(
    settings: Settings, store: SessionStore, watching: Watching, caplog: pytest.LogCaptureFixture
) -> None:
    # The flood is sized from the kernel's own limit (16384 by default on Debian/Ubuntu), so it always overflows.
    queue_limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    noisy = await store.create("ag-1", "sess-noisy")
    quiet = await store.create("ag-2", "sess-quiet")
    seen = Observed(settings.paths.sessions)
    await watching(settings.paths.sessions, seen)

    # The loop is blocked while this runs, so nothing reads the queue: it overflows, and later events are lost.
    for i in range(queue_limit // 2 + 100):
        flood = noisy / f"flood-{i}"
        flood.touch()
        flood.unlink()
    container_commit(noisy)
    container_commit(quiet)

    await seen.saw("sess-noisy", 1)
    await seen.saw("sess-quiet", 1)
    assert any("overflow" in r.getMessage() for r in caplog.records)


@linux_only
async def test_a_session_folder_deleted_and_made_again_is_watched_again(
    settings: Settings, store: SessionStore, watching: Watching
) -> None:
    folder = await store.create("ag-1", "sess-again")
    seen = Observed(settings.paths.sessions)
    await watching(settings.paths.sessions, seen)

    shutil.rmtree(folder)
    await store.create("ag-1", "sess-again")
    container_commit(folder)
    await seen.saw("sess-again", 1)
    container_commit(folder)

    await seen.saw("sess-again", 2)


@linux_only
async def test_a_session_folder_moved_out_of_the_tree_is_no_longer_watched(
    settings: Settings, store: SessionStore, tmp_path: Path, watching: Watching
) -> None:
    leaving = await store.create("ag-1", "sess-leaving")
    staying = await store.create("ag-1", "sess-staying")
    seen = Observed(settings.paths.sessions)
    await watching(settings.paths.sessions, seen)
    watches = inotify_watches()

    moved = leaving.rename(tmp_path / "elsewhere")
    container_commit(moved)
    container_commit(staying)
    await seen.saw("sess-staying", 1)  # events arrive in order: the move and the write there were handled before

    assert seen.calls["sess-leaving"] == 0
    assert inotify_watches() == watches - 1


@linux_only
async def test_a_deleted_sessions_root_is_made_again_and_watched(
    settings: Settings, store: SessionStore, watching: Watching
) -> None:
    root = settings.paths.sessions
    await store.create("ag-1", "sess-before")
    seen = Observed(root)
    await watching(root, seen)

    shutil.rmtree(root)
    folder = await store.create("ag-1", "sess-after")
    container_commit(folder)
    await seen.saw("sess-after", 1)
    container_commit(folder)

    await seen.saw("sess-after", 2)


@linux_only
async def test_a_kernel_refusing_inotify_falls_back_to_polling_and_says_so_once(
    settings: Settings, store: SessionStore, watching: Watching, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def refuse() -> None:
        raise InotifyRefused(os.strerror(errno.EMFILE))

    monkeypatch.setattr(watcher_module, "open_inotify", refuse)
    caplog.set_level(logging.WARNING, logger=watcher_module.__name__)
    folder = await store.create("ag-1", "sess-polled")
    seen = Observed(settings.paths.sessions)
    watcher = await watching(settings.paths.sessions, seen)
    assert watcher.backend == "polling"

    container_commit(folder)
    await seen.saw("sess-polled", 1)
    container_commit(folder)

    await seen.saw("sess-polled", 2)
    assert sum("refused" in r.getMessage() for r in caplog.records) == 1


@linux_only
async def test_a_watch_refused_later_switches_to_polling_without_losing_the_session(
    settings: Settings, store: SessionStore, watching: Watching, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from asyncinotify import Inotify

    caplog.set_level(logging.WARNING, logger=watcher_module.__name__)
    seen = Observed(settings.paths.sessions)
    watcher = await watching(settings.paths.sessions, seen)
    assert watcher.backend == "inotify"

    def no_space(self: Inotify, path: object, mask: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Inotify, "add_watch", no_space)  # as if max_user_watches ran out
    folder = await store.create("ag-new", "sess-late")
    container_commit(folder)
    await seen.saw("sess-late", 1)
    container_commit(folder)

    await seen.saw("sess-late", 2)
    assert str(watcher.backend) == "polling"  # (str: mypy still believes the assert above)
    assert sum("refused" in r.getMessage() for r in caplog.records) == 1


async def test_turning_inotify_off_uses_watchfiles(
    settings: Settings, store: SessionStore, watching: Watching
) -> None:
    folder = await store.create("ag-1", "sess-wf")
    seen = Observed(settings.paths.sessions)
    watcher = await watching(settings.paths.sessions, seen, inotify=False)
    assert watcher.backend == "watchfiles"

    container_commit(folder)

    await seen.saw("sess-wf", 1)


@pytest.mark.parametrize("inotify", [pytest.param(True, marks=linux_only), False], ids=["inotify", "watchfiles"])
async def test_stopping_is_prompt_and_leaves_no_task_or_inotify_instance(
    settings: Settings, store: SessionStore, inotify: bool
) -> None:
    before = inotify_fds() if LINUX else []
    folder = await store.create("ag-1", "sess-stop")
    busy = asyncio.Event()
    release = asyncio.Event()

    async def slow(session_id: str) -> None:
        busy.set()
        await release.wait()

    watcher = OutboundWatcher(settings.paths.sessions, slow, inotify=inotify)
    await watcher.start()
    async with asyncio.timeout(TIMEOUT):
        await watcher.wait_ready()
    container_commit(folder)
    async with asyncio.timeout(TIMEOUT):
        await busy.wait()

    stopping = asyncio.create_task(watcher.stop())
    release.set()  # stop waits for a running callback, and for nothing else
    async with asyncio.timeout(TIMEOUT):
        await stopping

    assert our_tasks() == []
    if inotify:  # (watchfiles closes its instance from its own thread, a little later)
        assert set(inotify_fds()) <= set(before)


async def test_stopping_right_after_starting_leaves_nothing_behind(settings: Settings) -> None:
    before = inotify_fds() if LINUX else []

    async def never(session_id: str) -> None:
        raise AssertionError("no change happened")

    watcher = OutboundWatcher(settings.paths.sessions, never)
    await watcher.start()
    async with asyncio.timeout(TIMEOUT):
        await watcher.stop()

    assert our_tasks() == []
    if LINUX:
        assert set(inotify_fds()) <= set(before)
