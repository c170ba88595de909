"""Wake on the host's writes to ``inbound.db`` instead of polling it every second.

``watchfiles`` reports the file's modification (inotify where the kernel shares the file, i.e. Linux bind mounts)
and the removal of ``inbound.db-journal`` (SQLite's commit point in DELETE journal mode). Where events never arrive
(VM mounts on macOS/Windows), the loop's slow fallback poll covers it; :meth:`InboundWatcher.ready` tells which case
this is, by touching a probe file until the watch reports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from watchfiles import Change, awatch

from agent_runner.session_db import INBOUND

log = logging.getLogger(__name__)

JOURNAL = f"{INBOUND}-journal"
PROBE = ".inbound-watch-probe"
"""Not the host's ``.watch-probe``: the host watches the same folder for its own probe."""
PROBE_SECONDS = 5.0
"""How long to wait for the probe before concluding that file events do not arrive here."""
DEBOUNCE_MS = 50
STEP_MS = 2


class ChangeSignal:
    """A version counter that many waiters can wait on without missing a change (unlike a shared, cleared Event)."""

    def __init__(self) -> None:
        self._version = 0
        self._event = asyncio.Event()

    @property
    def version(self) -> int:
        """Increases on every change; remember it before reading, pass it to :meth:`wait` after."""
        return self._version

    def notify(self) -> None:
        """Something changed: wake every waiter."""
        self._version += 1
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait(self, since: int, within: float | None) -> bool:
        """Wait until the version moves past ``since``, at most ``within`` seconds; True on a change."""
        if self._version != since:
            return True
        event = self._event
        try:
            async with asyncio.timeout(within):
                await event.wait()
        except TimeoutError:
            return False
        return True


def _interesting(change: Change, path: str) -> bool:
    name = Path(path).name
    return name in (INBOUND, PROBE) or (name == JOURNAL and change == Change.deleted)


class InboundWatcher:
    """Owns the watch task; calls ``signal.notify()`` when the host commits to ``inbound.db``."""

    def __init__(self, session_dir: Path, signal: ChangeSignal) -> None:
        self._dir = session_dir
        self._signal = signal
        self._stop = asyncio.Event()
        self._seen_probe = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._probe_task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()
        """Set once the watch demonstrably delivers events (tests wait for it before relying on them)."""

    async def start(self) -> None:
        """Start watching and probing (idempotent)."""
        if self._task is not None:
            return
        self._stop.clear()
        self._task = asyncio.create_task(self._watch(), name="inbound-watch")
        self._probe_task = asyncio.create_task(self._probe(), name="inbound-watch-probe")

    async def stop(self) -> None:
        """Stop promptly and wait for the tasks."""
        self._stop.set()
        self._seen_probe.set()
        for task in (self._probe_task, self._task):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._probe_task = None
        with contextlib.suppress(OSError):
            (self._dir / PROBE).unlink(missing_ok=True)

    async def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                async for changes in awatch(
                    self._dir, watch_filter=_interesting, debounce=DEBOUNCE_MS, step=STEP_MS,
                    stop_event=self._stop, recursive=False, ignore_permission_denied=True,
                ):
                    if any(Path(p).name == PROBE for _, p in changes):
                        self._seen_probe.set()
                    if any(Path(p).name != PROBE for _, p in changes):
                        self._signal.notify()
            except Exception:
                log.exception("watching %s failed; retrying in 1 s (the fallback poll covers the gap)", self._dir)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        await self._stop.wait()

    async def _probe(self) -> None:
        probe = self._dir / PROBE
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PROBE_SECONDS
        try:
            while not self._seen_probe.is_set() and loop.time() < deadline:
                probe.write_text(str(loop.time()))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.05):
                        await self._seen_probe.wait()
        except OSError as err:
            log.warning("cannot write the watch probe in %s: %s", self._dir, err)
        finally:
            with contextlib.suppress(OSError):
                probe.unlink(missing_ok=True)
        if self._stop.is_set():
            return
        if self._seen_probe.is_set():
            self.ready.set()
            log.debug("file events arrive for %s", self._dir)
        else:
            log.warning("no file events arrive for %s (a VM mount?); new messages are noticed by polling only",
                        self._dir)


__all__ = ["ChangeSignal", "InboundWatcher"]
