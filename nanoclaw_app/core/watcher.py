"""Event-driven delivery: react to a container writing its ``outbound.db`` instead of polling it every second.

On Linux the sessions tree is watched with inotify (``asyncinotify``): one watch on the root (new agent folders, the
probe), one per agent folder (new session folders) and one per session folder (its files). Nothing wakes this process
while nothing changes; watchfiles' loop, the fallback, wakes every ``STEP_MS`` even when idle (~0.7 % of a core).
A session counts as changed when its ``outbound.db-journal`` goes away (SQLite's commit point in DELETE journal mode),
when ``outbound.db`` is written while no journal is open (a writer without a rollback journal) or moved into place.
``on_change(session_id)`` runs at once; while it runs, further changes only mark the session dirty, and it runs once
more afterwards.

watchfiles stays the fallback where inotify does not exist (macOS, Windows; there the kernel does not share file
events from the Podman VM either, and delivery's slow poll covers it). Where the kernel refuses inotify (too low
``max_user_instances``/``max_user_watches``) this stats every ``outbound.db`` every ``FALLBACK_POLL_MS`` instead:
watchfiles' own backend needs inotify too, and its polling mode compares modification times in whole seconds, so it
misses a second commit within the same second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from watchfiles import Change, awatch

from agent_runner import inotify
from agent_runner.inotify import (
    FALLBACK_POLL_MS,
    IN_ATTRIB,
    IN_CREATE,
    IN_DELETE,
    IN_DONT_FOLLOW,
    IN_IGNORED,
    IN_ISDIR,
    IN_MODIFY,
    IN_MOVED_FROM,
    IN_MOVED_TO,
    IN_ONLYDIR,
    IN_Q_OVERFLOW,
    InotifyRefused,
    Signature,
)
from agent_runner.inotify import (
    recent as recently_modified,
)
from agent_runner.inotify import (
    signature as stat_signature,
)
from nanoclaw_app.sessions.store import OUTBOUND

if TYPE_CHECKING:
    from asyncinotify import Event, Inotify, Watch

log = logging.getLogger(__name__)

JOURNAL = f"{OUTBOUND}-journal"
PROBE = ".watch-probe"
"""Touched in the root by :meth:`OutboundWatcher.wait_ready` until the watch reports it."""
DEBOUNCE_MS = 5
STEP_MS = 2
READ_EVENTS = 64
"""Events read per ``read(2)`` (asyncinotify's ``cache_size``): a whole burst is handled before any callback runs."""

Backend = Literal["inotify", "watchfiles", "polling"]

ROOT, AGENT, SESSION = 0, 1, 2
MASKS = {
    ROOT: IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_ATTRIB | IN_MODIFY | IN_ONLYDIR,
    AGENT: IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_ONLYDIR | IN_DONT_FOLLOW,
    SESSION: IN_CREATE | IN_DELETE | IN_MODIFY | IN_MOVED_FROM | IN_MOVED_TO | IN_ONLYDIR | IN_DONT_FOLLOW,
}
"""The root also sees the probe being touched; agent folders only matter for their new session folders."""


def open_inotify() -> Inotify:
    """A new inotify instance; module-level so tests can make the kernel refuse one."""
    return inotify.open_inotify(cache_size=READ_EVENTS)


def _interesting(change: Change, path: str) -> bool:
    """Outbound DB writes, and the journal's removal (the commit)."""
    name = Path(path).name
    return name in (OUTBOUND, PROBE) or (name == JOURNAL and change == Change.deleted)


def _subdir_paths(path: str) -> list[str]:
    with os.scandir(path) as entries:
        return [entry.path for entry in entries if entry.is_dir(follow_symlinks=False)]


def _subdirs(path: Path) -> list[Path]:
    return [Path(sub) for sub in _subdir_paths(str(path))]


@dataclass(slots=True)
class _Folder:
    path: Path
    level: int
    watch: Watch


class _SessionsTree:
    """The watches over ``<root>/<agent>/<session>/`` and what each inotify event means for it."""

    def __init__(self, inotify: Inotify, root: Path, changed: Callable[[str], None],
                 probed: Callable[[], None]) -> None:
        self.inotify = inotify
        self.root = root
        self.root_lost = False
        """The root has no watch (the folder was deleted or unmounted): re-create and rescan it."""
        self._root_wd: int | None = None
        self._changed = changed
        self._probed = probed
        self._folders: dict[int, _Folder] = {}
        self._journals: set[int] = set()
        """Session watches whose ``outbound.db-journal`` exists: a transaction is open, writes are not commits."""

    def scan(self, *, announce: bool) -> None:
        """Watch the whole tree; with ``announce`` every session is treated as changed (events may have been lost)."""
        self._root_wd = None
        self.root_lost = True
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._add(self.root, ROOT, announce=announce)
        self.root_lost = self._root_wd is None

    def close(self) -> None:
        self.inotify.close()

    def _add(self, path: Path, level: int, *, announce: bool) -> None:
        """Watch ``path``, then list it: a child created meanwhile is both listed and reported, never neither."""
        from asyncinotify import Mask

        try:
            watch = self.inotify.add_watch(path, Mask(MASKS[level]))
        except (FileNotFoundError, NotADirectoryError):
            return  # gone again, or a symlink/file where a folder was expected
        except PermissionError as err:
            log.warning("cannot watch %s (%s); its replies are noticed by delivery's slow poll only", path, err)
            return
        except OSError as err:
            raise InotifyRefused(f"watching {path}: {err}") from err
        self._folders[watch.wd] = _Folder(path, level, watch)
        if level == ROOT:
            self._root_wd = watch.wd
        if level == SESSION:
            if (path / JOURNAL).exists():
                self._journals.add(watch.wd)
            else:
                self._journals.discard(watch.wd)
            if announce and (path / OUTBOUND).exists():
                self._changed(path.name)
            return
        try:
            children = _subdirs(path)
        except (FileNotFoundError, NotADirectoryError):
            return
        except PermissionError as err:
            log.warning("cannot list %s (%s); sessions under it are noticed by delivery's slow poll only", path, err)
            return
        for child in children:
            self._add(child, level + 1, announce=announce)

    def _drop(self, path: Path) -> None:
        """Stop watching a folder moved away, and everything under it."""
        for wd, folder in list(self._folders.items()):
            if folder.path == path or path in folder.path.parents:
                with contextlib.suppress(OSError):
                    self.inotify.rm_watch(folder.watch)
                self._forget(wd)

    def _forget(self, wd: int) -> None:
        self._folders.pop(wd, None)
        self._journals.discard(wd)

    def handle(self, event: Event) -> None:
        mask = int(event.mask)
        if mask & IN_Q_OVERFLOW:
            log.warning("inotify dropped events under %s (queue overflow); rescanning every session", self.root)
            self._journals.clear()
            self.scan(announce=True)
            return
        watch = event.watch
        folder = None if watch is None else self._folders.get(watch.wd)
        if watch is None or folder is None:
            return
        if mask & IN_IGNORED:  # the folder was deleted (or unmounted): the kernel dropped its watch
            self._forget(watch.wd)
            if watch.wd == self._root_wd:
                self._root_wd = None
                self.root_lost = True
            return
        if event.name is None:
            return
        name = str(event.name)
        if mask & IN_ISDIR:
            if folder.level < SESSION:
                child = folder.path / name
                if mask & (IN_CREATE | IN_MOVED_TO):
                    self._add(child, folder.level + 1, announce=True)
                elif mask & IN_MOVED_FROM:
                    self._drop(child)
            return
        if folder.level == ROOT:
            if name == PROBE:
                self._probed()
        elif folder.level == SESSION:
            self._session_file(watch.wd, folder.path.name, name, mask)

    def _session_file(self, wd: int, session_id: str, name: str, mask: int) -> None:
        if name == JOURNAL:
            if mask & IN_CREATE:
                self._journals.add(wd)
            elif mask & (IN_DELETE | IN_MOVED_FROM):
                self._journals.discard(wd)
                self._changed(session_id)
        elif name == OUTBOUND and (mask & IN_MOVED_TO or (mask & IN_MODIFY and wd not in self._journals)):
            self._changed(session_id)


class OutboundWatcher:
    """Calls ``on_change(session_id)`` soon after a session's ``outbound.db`` changes."""

    def __init__(self, sessions_root: Path, on_change: Callable[[str], Awaitable[None]], *,
                 inotify: bool = True) -> None:
        """``inotify=False`` forces the watchfiles fallback (tests, and comparing the two in ``bench/``)."""
        self._root = sessions_root
        self._on_change = on_change
        self._use_inotify = inotify and sys.platform.startswith("linux")
        self._stop_event = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._tree: _SessionsTree | None = None
        self._ready = asyncio.Event()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._dirty: set[str] = set()
        self.backend: Backend = "watchfiles"
        """What delivers the events since :meth:`start`: ``inotify``, ``watchfiles``, or ``polling`` (stat)."""

    async def start(self) -> None:
        """Start watching (the root is created if it does not exist yet).

        With inotify the watches are in place when this returns; :meth:`wait_ready` proves events arrive.
        """
        if self._task is not None:
            return
        self._root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._stop_event.clear()
        self._ready.clear()
        tree, self.backend = self._open_tree() if self._use_inotify else (None, "watchfiles")
        if tree is not None:
            self._tree = tree
            watch = self._watch_inotify(tree)
        elif self.backend == "polling":
            watch = self._poll()
        else:
            watch = self._watch_files()
        self._task = asyncio.create_task(watch, name="outbound-watcher")

    async def wait_ready(self) -> None:
        """Wait until the watch demonstrably delivers events (a probe file in the root is seen).

        Changes made before the watch is installed are missed; the host and tests call this after :meth:`start`,
        inside ``asyncio.timeout`` (on a kernel without file events it never becomes ready).
        """
        while not self._ready.is_set():
            (self._root / PROBE).touch()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.05):
                    await self._ready.wait()

    async def stop(self) -> None:
        """Stop promptly and wait for running callbacks."""
        self._stop_event.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()  # watchfiles sees the stop event within STEP_MS anyway; inotify waits for the next event
            await asyncio.wait({task})
        tree, self._tree = self._tree, None
        if tree is not None:
            tree.close()  # the task may have been cancelled before it ran
        pending = list(self._running.values())
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        self._dirty.clear()

    # ------------------------------------------------------------------------------------------ inotify

    def _open_tree(self) -> tuple[_SessionsTree | None, Backend]:
        """Watch the tree with inotify, or say which fallback to use instead (and why, once)."""
        try:
            inotify = open_inotify()
        except ImportError:
            log.warning("asyncinotify is not installed; watching %s with watchfiles", self._root)
            return None, "watchfiles"
        except InotifyRefused as err:
            log.warning("the kernel refused inotify (%s; raise fs.inotify.max_user_instances); polling %s every "
                        "%d ms instead", err, self._root, FALLBACK_POLL_MS)
            return None, "polling"
        tree = _SessionsTree(inotify, self._root, self._changed, self._ready.set)
        try:
            tree.scan(announce=False)
        except InotifyRefused as err:
            tree.close()
            log.warning("the kernel refused an inotify watch (%s; raise fs.inotify.max_user_watches); polling %s "
                        "every %d ms instead", err, self._root, FALLBACK_POLL_MS)
            return None, "polling"
        if tree.root_lost:
            tree.close()
            log.warning("cannot watch %s with inotify; trying watchfiles", self._root)
            return None, "watchfiles"
        return tree, "inotify"

    async def _watch_inotify(self, tree: _SessionsTree) -> None:
        try:
            async for event in tree.inotify:
                try:
                    tree.handle(event)
                    if tree.root_lost:
                        await self._recover_root(tree)
                except InotifyRefused:
                    raise
                except Exception:
                    log.exception("handling the inotify event %r under %s failed", event, self._root)
        except InotifyRefused as err:
            log.warning("the kernel refused an inotify watch (%s; raise fs.inotify.max_user_watches); polling %s "
                        "every %d ms from now on", err, self._root, FALLBACK_POLL_MS)
        except Exception:
            log.exception("reading inotify events for %s failed; polling every %d ms from now on", self._root,
                          FALLBACK_POLL_MS)
        finally:
            tree.close()
            self._tree = None
        self.backend = "polling"
        self._announce_all()  # whatever happened since the last event went unseen
        await self._poll()

    async def _recover_root(self, tree: _SessionsTree) -> None:
        """Re-create and rescan a deleted root, every second until it works (or the watcher stops)."""
        log.warning("the sessions folder %s went away; re-creating and watching it again", self._root)
        while not self._stop_event.is_set():
            try:
                tree.scan(announce=True)
            except OSError as err:
                log.error("cannot re-create %s (%s); retrying in 1 s", self._root, err)
            if not tree.root_lost:
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._stop_event.wait()

    def _announce_all(self) -> None:
        try:
            for agent in _subdirs(self._root):
                for session in _subdirs(agent):
                    if (session / OUTBOUND).exists():
                        self._changed(session.name)
        except OSError as err:
            log.warning("cannot list the sessions under %s: %s", self._root, err)

    # ------------------------------------------------------------------------------------------ fallbacks

    async def _poll(self) -> None:
        """Stat the probe and every session's ``outbound.db`` every ``FALLBACK_POLL_MS`` (inotify was refused)."""
        seen: dict[str, tuple[str, Signature]] | None = None
        recent: set[str] = set()
        while not self._stop_event.is_set():
            current = self._stat_tree()
            if seen is not None:
                for path, (session_id, signature) in current.items():
                    if path not in recent and (previous := seen.get(path)) is not None and previous[1] == signature:
                        continue
                    if session_id:
                        self._changed(session_id)
                    else:
                        self._ready.set()
            seen, recent = current, recently_modified({path: signature for path, (_, signature) in current.items()})
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FALLBACK_POLL_MS / 1000):
                    await self._stop_event.wait()

    def _stat_tree(self) -> dict[str, tuple[str, Signature]]:
        """``{path: (session id, or "" for the probe; its signature)}``.

        Plain ``os`` calls on strings: this runs several times a second, and pathlib would make it four times as costly.
        """
        found: dict[str, tuple[str, Signature]] = {}
        probe = stat_signature(os.path.join(self._root, PROBE))  # noqa: PTH118
        if probe is not None:
            found[PROBE] = ("", probe)
        try:
            agents = _subdir_paths(str(self._root))
        except FileNotFoundError:
            with contextlib.suppress(OSError):
                self._root.mkdir(parents=True, exist_ok=True, mode=0o700)
            return found
        except OSError:
            return found
        for agent in agents:
            try:
                sessions = _subdir_paths(agent)
            except OSError:
                continue
            for session in sessions:
                path = os.path.join(session, OUTBOUND)  # noqa: PTH118
                signature = stat_signature(path)
                if signature is not None:
                    found[path] = (os.path.basename(session), signature)  # noqa: PTH119
        return found

    async def _watch_files(self) -> None:
        while not self._stop_event.is_set():
            try:
                watcher = awatch(
                    self._root,
                    watch_filter=_interesting,
                    debounce=DEBOUNCE_MS,
                    step=STEP_MS,
                    stop_event=self._stop_event,
                    recursive=True,
                    ignore_permission_denied=True,
                )
                async for changes in watcher:
                    self._dispatch(changes)
            except Exception:
                log.exception("watching %s failed; retrying in 1 s (delivery falls back to polling)", self._root)
                self._root.mkdir(parents=True, exist_ok=True, mode=0o700)
                try:
                    async with asyncio.timeout(1.0):
                        await self._stop_event.wait()
                except TimeoutError:
                    continue

    def _dispatch(self, changes: set[tuple[Change, str]]) -> None:
        for _change, path in changes:
            try:
                relative = Path(path).relative_to(self._root)
            except ValueError:
                continue
            if len(relative.parts) == 3:  # <agent>/<session>/outbound.db
                self._changed(relative.parts[1])
            elif relative.parts == (PROBE,):
                self._ready.set()

    # ------------------------------------------------------------------------------------------ callbacks

    def _changed(self, session_id: str) -> None:
        if session_id in self._running:
            self._dirty.add(session_id)
        else:
            task = asyncio.create_task(self._notify(session_id), name=f"outbound-changed-{session_id}")
            self._running[session_id] = task

    async def _notify(self, session_id: str) -> None:
        try:
            while True:
                self._dirty.discard(session_id)
                try:
                    await self._on_change(session_id)
                except Exception:
                    log.exception("handling an outbound change of session %s failed", session_id)
                if session_id not in self._dirty or self._stop_event.is_set():
                    return
        finally:
            self._running.pop(session_id, None)


__all__ = ["InotifyRefused", "OutboundWatcher"]
