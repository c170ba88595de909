"""Event-driven delivery: react to a container writing its ``outbound.db`` instead of polling it every second.

The sessions root is watched recursively (inotify on Linux bind mounts). A write to ``<agent>/<session>/outbound.db``,
or the ``outbound.db-journal`` going away (SQLite's commit point in DELETE journal mode), calls
``on_change(session_id)``. Bursts are coalesced per session: while a session's callback runs, further changes only
mark it dirty, and it runs once more afterwards. Where the kernel does not share file events (VM mounts on macOS and
Windows) nothing arrives here, and delivery's slow fallback poll covers it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from watchfiles import Change, awatch

from nanoclaw_app.sessions.store import OUTBOUND

log = logging.getLogger(__name__)

JOURNAL = f"{OUTBOUND}-journal"
PROBE = ".watch-probe"
"""Touched in the root by :meth:`OutboundWatcher.wait_ready` until the watch reports it."""
DEBOUNCE_MS = 5
STEP_MS = 2


def _interesting(change: Change, path: str) -> bool:
    """Outbound DB writes, and the journal's removal (the commit)."""
    name = Path(path).name
    return name in (OUTBOUND, PROBE) or (name == JOURNAL and change == Change.deleted)


class OutboundWatcher:
    """Calls ``on_change(session_id)`` soon after a session's ``outbound.db`` changes."""

    def __init__(self, sessions_root: Path, on_change: Callable[[str], Awaitable[None]]) -> None:
        self._root = sessions_root
        self._on_change = on_change
        self._stop_event = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._dirty: set[str] = set()

    async def start(self) -> None:
        """Start watching (the root is created if it does not exist yet)."""
        if self._task is not None:
            return
        self._root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._stop_event.clear()
        self._ready.clear()
        self._task = asyncio.create_task(self._watch(), name="outbound-watcher")

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
            await task
        pending = list(self._running.values())
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        self._dirty.clear()

    async def _watch(self) -> None:
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
        sessions: set[str] = set()
        for _change, path in changes:
            try:
                relative = Path(path).relative_to(self._root)
            except ValueError:
                continue
            if len(relative.parts) == 3:  # <agent>/<session>/outbound.db
                sessions.add(relative.parts[1])
            elif relative.parts == (PROBE,):
                self._ready.set()
        for session_id in sessions:
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


__all__ = ["OutboundWatcher"]
