"""Hardened attachment files: inbox writes and outbox reads never leave the session folder.

Rules: ids and names are plain basenames; every folder on the way is opened by descriptor without following links
(:mod:`nanoclaw_app.sessions.mounted`); files are created exclusively so nothing existing is overwritten; only regular,
singly linked files are read; a size cap applies both ways.
"""

from __future__ import annotations

from pathlib import Path

from nanoclaw_app.errors import AttachmentTooLarge, UnsafePath
from nanoclaw_app.sessions.mounted import MountedDir
from nanoclaw_app.text_safety import has_unsafe

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


def _message_dir(session_dir: Path, area: str, message_id: str, *, create: bool) -> MountedDir:
    """``<area>/<message_id>`` opened by descriptor, one component at a time, never through a link."""
    check_basename(message_id, "message id")
    with MountedDir.open(session_dir) as session:
        return session.walk(area, message_id, create=create)


def write_inbox_file(session_dir: Path, message_id: str, name: str, data: bytes, max_bytes: int) -> str:
    """Write an attachment to ``inbox/<message_id>/<name>``; returns the path relative to the session dir."""
    check_basename(name, "attachment name")
    if has_unsafe(name):  # callers clean names where they enter (``clean_file_name``); this is the backstop
        raise UnsafePath(f"attachment name {name!r} has control or right-to-left characters")
    if len(data) > max_bytes:
        raise AttachmentTooLarge(f"attachment {name!r} is {len(data)} bytes; the limit is {max_bytes}")
    with _message_dir(session_dir, "inbox", message_id, create=True) as folder:
        folder.write_new(name, data)
    return f"inbox/{message_id}/{name}"


def read_outbox_file(session_dir: Path, message_id: str, name: str, max_bytes: int) -> bytes:
    """Read ``outbox/<message_id>/<name>`` (the container wrote it): a regular file within the cap, or refused."""
    check_basename(name, "file name")
    try:
        where = _message_dir(session_dir, "outbox", message_id, create=False)
    except FileNotFoundError as err:
        raise UnsafePath(f"outbox/{message_id}/{name} does not exist") from err
    with where as folder:
        info = folder.regular(name)
        if info is None:
            raise UnsafePath(f"outbox/{message_id}/{name} does not exist")
        if info.st_size > max_bytes:
            raise AttachmentTooLarge(f"outbox file {name!r} is {info.st_size} bytes; the limit is {max_bytes}")
        try:
            return folder.read_bytes(name, max_bytes=max_bytes)
        except UnsafePath as err:
            if "grew beyond" in str(err):
                raise AttachmentTooLarge(f"outbox file {name!r} exceeds the limit of {max_bytes} bytes") from err
            raise
