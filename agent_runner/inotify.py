"""What both file watchers share: inotify's kernel bits, opening an instance, and stat signatures for the fallback poll.

Stdlib only at import time (asyncinotify is imported lazily, Linux only). The host's watcher imports this module, as it
imports ``protocol``; the runner never imports the host.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from asyncinotify import Inotify

# inotify(7) bits: kernel ABI, the same values as asyncinotify.Mask.
IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_ISDIR = 0x40000000

FALLBACK_POLL_MS = 250
"""How often files are stat'ed when the kernel refuses inotify."""
RECENT_NS = 50_000_000
"""A file modified this recently may be written again within the same timestamp tick (coarse on kernels without
multigrain timestamps), which no stat could tell apart: it counts as changed at the next poll too."""

Signature = tuple[int, int, int, int]
K = TypeVar("K")


class InotifyRefused(Exception):
    """The kernel will not give an inotify instance or watch."""


def open_inotify(cache_size: int | None = None) -> Inotify:
    """A new inotify instance reading up to ``cache_size`` events per ``read(2)``.

    Raises ``ImportError`` where asyncinotify is not installed, ``InotifyRefused`` when the kernel says no.
    """
    from asyncinotify import Inotify

    try:
        return Inotify() if cache_size is None else Inotify(cache_size=cache_size)
    except (OSError, RuntimeError) as err:  # RuntimeError: a libc without inotify
        raise InotifyRefused(str(err)) from err


def signature(path: str | os.PathLike[str]) -> Signature | None:
    """Inode, size, mtime, ctime: stat only.

    Never open a database file here: closing any descriptor of it drops this process's POSIX locks on it, including
    those SQLite connections in other threads hold.
    """
    try:
        stat = os.stat(path)  # noqa: PTH116 - takes str and Path alike
    except OSError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns


def recent(signatures: dict[K, Signature]) -> set[K]:
    """The entries modified within ``RECENT_NS``: poll them again even if their signature does not change."""
    now = time.time_ns()
    return {key for key, sig in signatures.items() if now - sig[2] < RECENT_NS}
