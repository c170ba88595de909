"""Wake on the host's writes to ``inbound.db`` instead of polling it every second.

On Linux the session folder is watched with inotify (``asyncinotify``): the host's commit removes
``inbound.db-journal`` (SQLite's commit point in DELETE journal mode), and that wakes the loop at once. Nothing wakes
this process while nothing changes; watchfiles, the fallback where inotify does not exist, wakes every ``STEP_MS`` even
when idle. Where the kernel refuses inotify (too low ``max_user_instances``/``max_user_watches``) ``inbound.db`` is
stat'ed every ``FALLBACK_POLL_MS`` instead: watchfiles' own backend needs inotify too, and its polling mode compares
modification times in whole seconds. Where events never arrive (VM mounts on macOS/Windows) the loop's slow fallback
poll covers it; :attr:`InboundWatcher.ready` tells which case this is, by writing a probe file until the watch reports
it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from agent_runner.inotify import (
    FALLBACK_POLL_MS,
    IN_CREATE,
    IN_DELETE,
    IN_IGNORED,
    IN_MODIFY,
    IN_MOVED_FROM,
    IN_MOVED_TO,
    IN_ONLYDIR,
    IN_Q_OVERFLOW,
    InotifyRefused,
    Signature,
    open_inotify,
)
from agent_runner.inotify import (
    recent as recently_modified,
)
from agent_runner.inotify import (
    signature as stat_signature,
)
from agent_runner.session_db import INBOUND

if TYPE_CHECKING:
    from asyncinotify import Inotify
    from watchfiles import Change

log = logging.getLogger(__name__)

JOURNAL = f"{INBOUND}-journal"
PROBE = ".inbound-watch-probe"
"""Not the host's ``.watch-probe``: the host watches the same folder for its own probe."""
PROBE_SECONDS = 5.0
"""How long to wait for the probe before concluding that file events do not arrive here."""
DEBOUNCE_MS = 50
STEP_MS = 2
RETRY_SECONDS = 1.0

Backend = Literal["inotify", "watchfiles", "polling"]

WATCH_MASK = IN_CREATE | IN_DELETE | IN_MODIFY | IN_MOVED_FROM | IN_MOVED_TO | IN_ONLYDIR


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
    return name in (INBOUND, PROBE) or (name == JOURNAL and change.name == "deleted")


class InboundWatcher:
    """Owns the watch task; calls ``signal.notify()`` when the host commits to ``inbound.db``."""

    def __init__(self, session_dir: Path, signal: ChangeSignal, *, inotify: bool = True) -> None:
        """``inotify=False`` forces the watchfiles fallback (tests)."""
        self._dir = session_dir
        self._signal = signal
        self._use_inotify = inotify and sys.platform.startswith("linux")
        self._stop = asyncio.Event()
        self._seen_probe = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._probe_task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()
        """Set once the watch demonstrably delivers events (tests wait for it before relying on them)."""
        self.backend: Backend = "watchfiles"
        """What delivers the events: ``inotify``, ``watchfiles``, or ``polling`` (stat)."""

    async def start(self) -> None:
        """Start watching and probing (idempotent)."""
        if self._task is not None:
            return
        self._stop.clear()
        self._seen_probe.clear()
        self.ready.clear()
        self.backend = "watchfiles"
        self._task = asyncio.create_task(self._watch(), name="inbound-watch")
        self._probe_task = asyncio.create_task(self._probe(), name="inbound-watch-probe")

    async def stop(self) -> None:
        """Stop promptly and wait for the tasks."""
        self._stop.set()
        self._seen_probe.set()
        if self._task is not None:
            self._task.cancel()  # watchfiles sees ``_stop`` within STEP_MS anyway; inotify waits for the next event
        tasks = {task for task in (self._probe_task, self._task) if task is not None}
        if tasks:
            await asyncio.wait(tasks)
        self._task = self._probe_task = None
        with contextlib.suppress(OSError):
            (self._dir / PROBE).unlink(missing_ok=True)

    async def _watch(self) -> None:
        if self._use_inotify:
            try:
                inotify = open_inotify()
            except ImportError:
                log.warning("asyncinotify is not installed; watching %s with watchfiles", self._dir)
            except InotifyRefused as err:
                self._refused(err)
                await self._poll()
                return
            else:
                self.backend = "inotify"
                try:
                    await self._watch_inotify(inotify)
                except InotifyRefused as err:
                    self._refused(err)
                    self._signal.notify()  # whatever happened since the last event went unseen
                except Exception:
                    log.exception("reading inotify events for %s failed; polling it every %d ms from now on",
                                  self._dir, FALLBACK_POLL_MS)
                    self.backend = "polling"
                    self._signal.notify()
                finally:
                    inotify.close()
                await self._poll()
                return
        await self._watch_files()

    def _refused(self, err: InotifyRefused) -> None:
        self.backend = "polling"
        log.warning("the kernel refused inotify for %s (%s; raise fs.inotify.max_user_instances/max_user_watches); "
                    "polling it every %d ms instead", self._dir, err, FALLBACK_POLL_MS)

    async def _watch_inotify(self, inotify: Inotify) -> None:
        """Watch the folder until stopped (cancelled); re-watch it if it is deleted and comes back."""
        from asyncinotify import Mask

        missing_logged = False
        first = True
        while True:
            try:
                inotify.add_watch(self._dir, Mask(WATCH_MASK))
            except (FileNotFoundError, NotADirectoryError) as err:
                if not missing_logged:
                    log.warning("cannot watch %s (%s); retrying every %.0f s", self._dir, err, RETRY_SECONDS)
                    missing_logged = True
                await asyncio.sleep(RETRY_SECONDS)
                continue
            except OSError as err:
                raise InotifyRefused(str(err)) from err
            if not first:
                self._signal.notify()  # the folder came back: anything may have changed
            first = False
            journal_open = (self._dir / JOURNAL).exists()
            async for event in inotify:
                mask = int(event.mask)
                if mask & IN_Q_OVERFLOW:
                    log.warning("inotify dropped events for %s (queue overflow); checking for new rows", self._dir)
                    journal_open = (self._dir / JOURNAL).exists()
                    self._signal.notify()
                    continue
                if mask & IN_IGNORED:  # the folder was deleted or unmounted: its watch is gone
                    log.warning("%s went away; watching for it to come back", self._dir)
                    break
                name = "" if event.name is None else str(event.name)
                if name == PROBE:
                    self._seen_probe.set()
                elif name == JOURNAL:
                    if mask & IN_CREATE:
                        journal_open = True
                    elif mask & (IN_DELETE | IN_MOVED_FROM):
                        journal_open = False
                        self._signal.notify()
                elif name == INBOUND and (mask & (IN_CREATE | IN_MOVED_TO) or (mask & IN_MODIFY and not journal_open)):
                    self._signal.notify()

    async def _poll(self) -> None:
        """Stat ``inbound.db`` and the probe every ``FALLBACK_POLL_MS`` (inotify was refused)."""
        inbound, probe = self._dir / INBOUND, self._dir / PROBE
        seen: dict[Path, Signature] | None = None
        recent: set[Path] = set()
        while not self._stop.is_set():
            current = {path: signature for path in (inbound, probe) if (signature := stat_signature(path)) is not None}
            if seen is not None:
                changed = {path for path in current if seen.get(path) != current[path] or path in recent}
                if inbound in changed:
                    self._signal.notify()
                if probe in changed:
                    self._seen_probe.set()
            seen, recent = current, recently_modified(current)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FALLBACK_POLL_MS / 1000):
                    await self._stop.wait()

    async def _watch_files(self) -> None:
        from watchfiles import awatch  # only this fallback needs it: a runner on inotify never pays for the import

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
                    async with asyncio.timeout(RETRY_SECONDS):
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


__all__ = ["ChangeSignal", "InboundWatcher", "InotifyRefused"]
