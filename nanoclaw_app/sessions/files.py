"""Hardened attachment files: inbox writes and outbox reads never leave the session folder.

Rules: ids and names are plain basenames; ``inbox``/``outbox`` and the per-message folder must not be symlinks; the
real path must stay inside the session; files are created exclusively (``O_EXCL | O_NOFOLLOW``) so nothing existing is
overwritten; a size cap applies both ways.
"""

from __future__ import annotations

import os
from pathlib import Path

from nanoclaw_app.errors import AttachmentTooLarge, UnsafePath

MAX_NAME = 200


def check_basename(value: str, what: str) -> str:
    """Return ``value`` if it is a plain file name, else raise ``UnsafePath``."""
    if (
        not value
        or value in (".", "..")
        or "/" in value
        or "\\" in value
        or "\x00" in value
        or len(value) > MAX_NAME
        or value != Path(value).name
    ):
        raise UnsafePath(f"{what} {value!r} is not a plain file name")
    return value


def _inside(child: Path, parent: Path) -> bool:
    try:
        child.relative_to(parent)
    except ValueError:
        return False
    return True


def _safe_dir(session_dir: Path, area: str, message_id: str, *, create: bool) -> Path:
    check_basename(message_id, "message id")
    base = session_dir / area
    if base.is_symlink():
        raise UnsafePath(f"{area}/ of {session_dir.name} is a symlink")
    if create:
        base.mkdir(mode=0o700, exist_ok=True)
    folder = base / message_id
    if folder.is_symlink():
        raise UnsafePath(f"{area}/{message_id} is a symlink")
    if create:
        folder.mkdir(mode=0o700, exist_ok=True)
    real_session = session_dir.resolve()
    if not _inside(folder.resolve(), real_session):
        raise UnsafePath(f"{area}/{message_id} resolves outside its session")
    return folder


def write_inbox_file(session_dir: Path, message_id: str, name: str, data: bytes, max_bytes: int) -> str:
    """Write an attachment to ``inbox/<message_id>/<name>``; returns the path relative to the session dir."""
    check_basename(name, "attachment name")
    if len(data) > max_bytes:
        raise AttachmentTooLarge(f"attachment {name!r} is {len(data)} bytes; the limit is {max_bytes}")
    folder = _safe_dir(session_dir, "inbox", message_id, create=True)
    target = folder / name
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(target, flags, 0o600)
    except FileExistsError as err:
        raise UnsafePath(f"inbox/{message_id}/{name} already exists; refusing to overwrite") from err
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return f"inbox/{message_id}/{name}"


def outbox_file(session_dir: Path, message_id: str, name: str, max_bytes: int) -> Path:
    """Return the checked path of ``outbox/<message_id>/<name>`` for upload (the container wrote it)."""
    check_basename(name, "file name")
    folder = _safe_dir(session_dir, "outbox", message_id, create=False)
    target = folder / name
    if target.is_symlink():
        raise UnsafePath(f"outbox/{message_id}/{name} is a symlink")
    if not target.is_file():
        raise UnsafePath(f"outbox/{message_id}/{name} does not exist")
    if not _inside(target.resolve(), session_dir.resolve()):
        raise UnsafePath(f"outbox/{message_id}/{name} resolves outside its session")
    size = target.stat().st_size
    if size > max_bytes:
        raise AttachmentTooLarge(f"outbox file {name!r} is {size} bytes; the limit is {max_bytes}")
    return target


def read_outbox_file(session_dir: Path, message_id: str, name: str, max_bytes: int) -> bytes:
    """Read an outbox file after the same checks, without following a symlink swapped in meanwhile."""
    path = outbox_file(session_dir, message_id, name, max_bytes)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise AttachmentTooLarge(f"outbox file {name!r} exceeds the limit of {max_bytes} bytes")
    return data
