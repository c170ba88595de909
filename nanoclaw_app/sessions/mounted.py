"""The one way the host touches a folder that a container can write (a session folder, an agent folder).

Whatever runs in the container may swap any entry of such a folder for a symlink, a FIFO, a hard link, a directory or
a huge file at any moment, between any two system calls of ours. So nothing here resolves a path inside the folder:

- the folder itself is opened once as a directory descriptor (``O_DIRECTORY | O_NOFOLLOW``); its own path is made by
  the host in host-only parents, so it is trustworthy, its contents are not;
- every entry is opened *relative to that descriptor* with ``O_NOFOLLOW`` (a symlink fails, it is never followed),
  ``O_NONBLOCK`` (a FIFO cannot hang us) and checked with ``fstat`` on the open descriptor (regular file, one link,
  size under a cap) — the check and the use are the same open file, so a later swap changes nothing;
- writes create a fresh file with ``O_EXCL`` and rename it into place inside the same descriptor (a rename replaces a
  planted link, it never writes through it);
- removal walks by descriptor and never follows a link (``shutil.rmtree`` with ``dir_fd``, which is link-safe where
  the platform allows it; elsewhere we refuse rather than risk it).

Subfolders are opened the same way, one component at a time. Callers use :class:`MountedDir` as a context manager.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import stat
from pathlib import Path
from types import TracebackType

from nanoclaw_app.errors import UnsafePath

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOCTTY = getattr(os, "O_NOCTTY", 0)
_BINARY = getattr(os, "O_BINARY", 0)
SUPPORTED = bool(_NOFOLLOW and _DIRECTORY) and os.open in os.supports_dir_fd
"""Whether this platform can open relative to a directory descriptor without following links (Linux, macOS)."""


def plain_name(name: str) -> str:
    """``name`` if it is one path component we may open relative to a folder, else ``UnsafePath``."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise UnsafePath(f"{name!r} is not a plain file name")
    return name


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symlink"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


class MountedDir:
    """A folder a container can write, held open by descriptor; every method refuses links and non-regular files."""

    def __init__(self, fd: int, path: Path) -> None:
        self.fd = fd
        self.path = path

    @classmethod
    def open(cls, path: Path, *, create: bool = False) -> MountedDir:
        """Open ``path`` (made by the host; its parents are host-only) as a directory, never through a link.

        ``create`` makes the last component (mode 0700) when it is missing. Raises ``FileNotFoundError`` when the
        folder is missing and ``UnsafePath`` when something else sits at its place.
        """
        if not SUPPORTED:
            raise UnsafePath("this platform cannot open files without following links")
        if create:
            with contextlib.suppress(FileExistsError):
                path.mkdir(mode=0o700, parents=True)
        try:
            fd = os.open(path, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC)
        except OSError as err:
            if err.errno in (errno.ELOOP, errno.ENOTDIR):
                raise UnsafePath(f"{path} is not a folder (a link or a file stands in its place)") from err
            raise
        return cls(fd, path)

    def close(self) -> None:
        """Release the descriptor (idempotent)."""
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)

    def __enter__(self) -> MountedDir:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------ looking

    def lstat(self, name: str) -> os.stat_result | None:
        """The entry's own status (a link is reported as a link), or None when there is no such entry."""
        try:
            return os.stat(plain_name(name), dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def regular(self, name: str, *, max_bytes: int | None = None) -> os.stat_result | None:
        """The status of a regular, singly linked file within ``max_bytes``; None when absent; else ``UnsafePath``."""
        info = self.lstat(name)
        if info is None:
            return None
        self._check_regular(name, info, max_bytes)
        return info

    def _check_regular(self, name: str, info: os.stat_result, max_bytes: int | None) -> None:
        if not stat.S_ISREG(info.st_mode):
            raise UnsafePath(f"{self._where(name)} is {_kind(info.st_mode)}")
        if info.st_nlink != 1:
            raise UnsafePath(f"{self._where(name)} has {info.st_nlink} hard links")
        if max_bytes is not None and info.st_size > max_bytes:
            raise UnsafePath(f"{self._where(name)} is {info.st_size:,} bytes; the limit is {max_bytes:,}")

    def _where(self, name: str) -> str:
        return f"{self.path.name}/{name}"

    # ------------------------------------------------------------------------------------------ folders

    def subdir(self, name: str, *, create: bool = False) -> MountedDir:
        """Open a subfolder by descriptor (``create`` makes a missing one, 0700); a link or file there is refused."""
        plain_name(name)
        if create:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o700, dir_fd=self.fd)
        try:
            fd = os.open(name, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=self.fd)
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise UnsafePath(f"{self._where(name)} is a symlink") from err
            if err.errno == errno.ENOTDIR:
                info = self.lstat(name)
                raise UnsafePath(f"{self._where(name)} is {_kind(info.st_mode) if info else 'gone'}") from err
            raise
        return MountedDir(fd, self.path / name)

    def ensure_subdir(self, name: str) -> None:
        """Make sure ``name`` is a real folder of ours: a link, file or pipe planted in its place is removed first."""
        info = self.lstat(name)
        if info is not None and not stat.S_ISDIR(info.st_mode):
            self.unlink(name)  # unlink removes the link itself, never what it points to
        self.subdir(name, create=True).close()

    def walk(self, *names: str, create: bool = False) -> MountedDir:
        """Open nested subfolders one component at a time (each checked like :meth:`subdir`)."""
        current = MountedDir(os.dup(self.fd), self.path)
        try:
            for name in names:
                child = current.subdir(name, create=create)
                current.close()
                current = child
        except BaseException:
            current.close()
            raise
        return current

    # ------------------------------------------------------------------------------------------ files

    def open_regular(self, name: str, *, max_bytes: int | None = None, write: bool = False) -> int:
        """A descriptor on a regular, singly linked file within ``max_bytes`` (checked on the open file itself)."""
        flags = (os.O_RDWR if write else os.O_RDONLY) | _NOFOLLOW | _NONBLOCK | _NOCTTY | _CLOEXEC | _BINARY
        try:
            fd = os.open(plain_name(name), flags, dir_fd=self.fd)
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise UnsafePath(f"{self._where(name)} is a symlink") from err
            if err.errno in (errno.EISDIR, errno.ENXIO, errno.EOPNOTSUPP):
                raise UnsafePath(f"{self._where(name)} is not a regular file") from err
            raise
        try:
            self._check_regular(name, os.fstat(fd), max_bytes)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def read_bytes(self, name: str, *, max_bytes: int) -> bytes:
        """The whole file, at most ``max_bytes`` (a file growing while read is cut and refused, not trusted)."""
        fd = self.open_regular(name, max_bytes=max_bytes)
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise UnsafePath(f"{self._where(name)} grew beyond {max_bytes:,} bytes while being read")
        return data

    def read_tail(self, name: str, *, max_bytes: int) -> tuple[int, bytes, float]:
        """(size, the last ``max_bytes`` bytes, mtime) of a regular file of any size."""
        fd = self.open_regular(name)
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            start = max(0, info.st_size - max_bytes)
            handle.seek(start)
            return info.st_size, handle.read(max_bytes), info.st_mtime

    def write_new(self, name: str, data: bytes, *, mode: int = 0o600) -> None:
        """Create ``name`` with ``data``; refuses to touch anything already there."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC | _BINARY
        try:
            fd = os.open(plain_name(name), flags, mode, dir_fd=self.fd)
        except FileExistsError as err:
            raise UnsafePath(f"{self._where(name)} already exists; refusing to overwrite it") from err
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)

    def replace(self, name: str, data: bytes, *, mode: int = 0o600) -> None:
        """Write ``data`` to a fresh file and rename it over ``name``: readers see the old or the new, never half."""
        tmp = f".{plain_name(name)}.{secrets.token_hex(6)}.tmp"
        self.write_new(tmp, b"", mode=mode)
        try:
            fd = self.open_regular(tmp, write=True)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=self.fd)
            raise

    def unlink(self, name: str) -> bool:
        """Remove a file, link or pipe (never what a link points to); False when absent. Folders are refused."""
        try:
            os.unlink(plain_name(name), dir_fd=self.fd)
        except FileNotFoundError:
            return False
        except IsADirectoryError as err:
            raise UnsafePath(f"{self._where(name)} is a folder") from err
        return True

    def remove_tree(self, name: str) -> bool:
        """Delete an entry and, if it is a folder, everything below it, without following any link; False if absent."""
        info = self.lstat(name)
        if info is None:
            return False
        if not stat.S_ISDIR(info.st_mode):
            return self.unlink(name)
        if not shutil.rmtree.avoids_symlink_attacks:
            raise UnsafePath("this platform cannot delete a folder without risking to follow links in it")
        shutil.rmtree(name, dir_fd=self.fd)
        return True

    def move_out(self, name: str, target_dir: Path, target_name: str) -> bool:
        """Rename an entry to a host-only folder on the same disk (never copies: a copy would read through links)."""
        target = MountedDir.open(target_dir, create=True)
        try:
            os.rename(plain_name(name), plain_name(target_name), src_dir_fd=self.fd, dst_dir_fd=target.fd)
        except FileNotFoundError:
            return False
        finally:
            target.close()
        return True


def read_bytes(folder: Path, name: str, *, max_bytes: int) -> bytes | None:
    """The file ``folder/name`` under the same rules, or None when it is absent (a one-call convenience)."""
    with MountedDir.open(folder) as where:
        try:
            return where.read_bytes(name, max_bytes=max_bytes)
        except FileNotFoundError:
            return None


__all__ = ["SUPPORTED", "MountedDir", "plain_name", "read_bytes"]
