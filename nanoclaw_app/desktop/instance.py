"""One NanoClaw per home: an OS file lock that dies with its process, and a record of how to reach that process.

The lock is ``flock`` (``msvcrt.locking`` on Windows) on ``<run>/instance.lock``. The OS drops it when its holder exits
in any way, a crash or ``kill -9`` included, so a stale lock never needs cleaning up; the file itself stays (deleting a
lock file races with the next process opening it). Beside it, ``instance.json`` (0600, in the 0700 run folder) says
who holds it: the pid, the kind of process (the window app or ``nanoclaw serve``) and, for the window app, the loopback
port and random token of its control listener (:mod:`nanoclaw_app.desktop.control`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from nanoclaw_app.errors import ConfigError
from nanoclaw_app.paths import Paths
from nanoclaw_app.processes import pid_alive
from nanoclaw_app.runfile import read_run_file

log = logging.getLogger(__name__)

LOCK_NAME = "instance.lock"
RECORD_NAME = "instance.json"
RECORD_WAIT_SECONDS = 15.0
"""How long a second launch waits for the lock holder's record (it is written right after the lock is taken)."""

Kind = Literal["window", "serve"]


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    """Who holds the lock, and for the window app where its control listener is."""

    pid: int
    kind: Kind
    port: int | None = None
    token: str | None = None


class InstanceLock:
    """The home's single-instance lock; :meth:`acquire` never waits."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self.path = paths.run / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> bool:
        """Take the lock; False when another process (or another open of the file) holds it."""
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            _lock(fd)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        """Give the lock back and forget our record (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        remove_record(self.paths)
        with contextlib.suppress(OSError):
            _unlock(fd)
        os.close(fd)


def _lock(fd: int) -> None:
    if sys.platform == "win32":
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _unlock(fd: int) -> None:
    if sys.platform == "win32":
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_UN)


def record_file(paths: Paths) -> Path:
    """Where the lock holder says who it is."""
    return paths.run / RECORD_NAME


def write_record(paths: Paths, record: InstanceRecord) -> None:
    """Publish the record (0600, replaced atomically: a reader never sees half of it)."""
    file = record_file(paths)
    tmp = file.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(asdict(record), out)
    tmp.replace(file)


def read_record(paths: Paths) -> InstanceRecord | None:
    """The record as written, or None when there is none (or it is not one of ours)."""
    try:
        data = json.loads(record_file(paths).read_text(encoding="utf-8"))
        record = InstanceRecord(**data)
    except (OSError, ValueError, TypeError):
        return None
    if not isinstance(record.pid, int) or record.kind not in ("window", "serve"):
        return None
    return record


def remove_record(paths: Paths) -> None:
    """Forget the record if it is this process's (a newer holder's record stays)."""
    record = read_record(paths)
    if record is not None and record.pid == os.getpid():
        record_file(paths).unlink(missing_ok=True)


def wait_for_holder(lock: InstanceLock, *, seconds: float = RECORD_WAIT_SECONDS) -> InstanceRecord | None:
    """The running instance's record, waiting briefly for a holder that is just starting.

    Returns None when the lock became free meanwhile (the other process ended: the caller may take it now) or when
    the holder wrote no record in time.
    """
    deadline = time.monotonic() + seconds
    while True:
        record = read_record(lock.paths)
        if record is not None and record.pid != os.getpid() and pid_alive(record.pid):
            return record
        if lock.acquire():
            return None
        if time.monotonic() > deadline:
            return None
        time.sleep(0.1)


def already_running_sentence(paths: Paths) -> str:
    """Plain words for "another NanoClaw uses this home", naming where it serves when that is known."""
    record = read_record(paths)
    running = read_run_file(paths)
    where = f" at {running['url']}" if running is not None else ""
    who = f" (process {record.pid}{where})" if record is not None else where
    return (f"NanoClaw is already running for this home{who}. Use that one (`nanoclaw open` prints a sign-in "
            "link), or quit it before starting another.")


@contextlib.contextmanager
def hold_instance(paths: Paths, kind: Kind) -> Iterator[InstanceLock]:
    """Hold the home's lock while the block runs; a second host on the same home is refused in plain words."""
    lock = InstanceLock(paths)
    if not lock.acquire():
        raise ConfigError(already_running_sentence(paths))
    try:
        write_record(paths, InstanceRecord(pid=os.getpid(), kind=kind))
        yield lock
    finally:
        lock.release()
