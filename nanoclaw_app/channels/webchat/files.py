"""Files of the in-app chat under ``<home>/webchat/<message id>/<name>``: safe names in, checked paths out.

Blocking file work; callers run it off the event loop (``SessionStore.run_io``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nanoclaw_app.errors import NotFound, UnsafePath
from nanoclaw_app.sessions.files import check_basename
from nanoclaw_app.text_safety import clean_file_name

MAX_NAME = 120
INLINE_IMAGES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp"})
"""Raster images the page may show inline; anything else (SVG and HTML included) is only ever downloaded."""

_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"|?*]')


def clean_name(name: str, fallback: str = "file") -> str:
    """A plain, portable file name from whatever a browser or platform sent (path parts and odd characters dropped)."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = clean_file_name(_UNSAFE.sub("_", base)).strip(".") or fallback  # then no bidirectional override either
    if len(base) > MAX_NAME:
        _, dot, ext = base.rpartition(".")
        keep = ext if dot and 0 < len(ext) <= 10 else ""
        base = base[: MAX_NAME - len(keep) - 1].rstrip() + (f".{keep}" if keep else "")
    return check_basename(base, "file name")


def unique_names(names: Sequence[str]) -> list[str]:
    """Two files with the same name in one message both survive (``a.png``, ``a-2.png``)."""
    used: set[str] = set()
    result = []
    for name in names:
        candidate, n = name, 1
        while candidate in used:
            n += 1
            stem, dot, ext = name.rpartition(".")
            candidate = f"{stem}-{n}.{ext}" if dot and stem else f"{name}-{n}"
        used.add(candidate)
        result.append(candidate)
    return result


def save_files(files_dir: Path, message_id: str, files: Sequence[tuple[str, bytes, str]]) -> list[dict[str, Any]]:
    """Write a message's files; returns their records (paths relative to ``files_dir``).

    Files of an earlier, interrupted try of the same delivery are overwritten.
    """
    check_basename(message_id, "message id")
    if not files:
        return []
    files_dir.mkdir(parents=True, exist_ok=True)
    folder = files_dir / message_id
    if files_dir.is_symlink() or folder.is_symlink():
        raise UnsafePath(f"the chat file folder {folder} is a symlink")
    folder.mkdir(mode=0o700, exist_ok=True)
    records = []
    names = unique_names([clean_name(name) for name, _, _ in files])
    for name, (_, data, mime) in zip(names, files, strict=True):
        target = folder / name
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
        fd = os.open(target, flags, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        records.append({"name": name, "mime_type": mime or "application/octet-stream", "size": len(data),
                        "path": f"{message_id}/{name}"})
    return records


def stored_file(files_dir: Path, relative: str) -> Path:
    """The checked path of a stored file: inside ``files_dir``, a regular file, never through a symlink."""
    parts = relative.split("/")
    if len(parts) != 2:
        raise UnsafePath(f"chat file path {relative!r} is malformed")
    for part in parts:
        check_basename(part, "chat file path part")
    target = files_dir / parts[0] / parts[1]
    if (files_dir / parts[0]).is_symlink() or target.is_symlink():
        raise UnsafePath(f"chat file {relative!r} is a symlink")
    if not target.is_file():
        raise NotFound("that file is no longer there; it may have been deleted from the NanoClaw folder")
    try:
        target.resolve().relative_to(files_dir.resolve())
    except ValueError as err:
        raise UnsafePath(f"chat file {relative!r} resolves outside the chat folder") from err
    return target


def inline_ok(mime_type: str) -> bool:
    """Whether the browser may show the file in the page rather than download it."""
    return mime_type.lower() in INLINE_IMAGES
