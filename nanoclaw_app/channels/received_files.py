"""Files people send over a chat channel: their names, their types and the notes left when one is not kept.

Names and types come from strangers, so a name is reduced to a plain file name (no folders, nothing invisible, not
hidden) and an image type is believed only when the bytes are one: the agent's model is handed images as images.
A file that is too large or cannot be fetched is not dropped silently: a note in the message text says so, in the same
words on every channel.
"""

from __future__ import annotations

import mimetypes
import re

from nanoclaw_app.text_safety import clean_file_name

MAX_NAME = 120
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")
_MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def safe_name(name: object, fallback: str) -> str:
    """A file name that stays inside the session inbox (no folders, no control characters, not hidden)."""
    clean = _UNSAFE_NAME.sub("_", clean_file_name(name if isinstance(name, str) else "")).strip(". ")
    return clean[:MAX_NAME] or fallback


def sniff_image(data: bytes) -> str | None:
    """The image type the bytes themselves show (PNG, JPEG, GIF, WebP), or None."""
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def file_type(declared: str | None, name: str, data: bytes) -> tuple[str, str]:
    """``(mime type, kind)`` for a received file, never trusting what the sender declared.

    An image only when its bytes are one; else the declared type when it is well formed and not an image claim, else a
    guess from the name.
    """
    image = sniff_image(data)
    if image is not None:
        return image, "image"
    mime = (declared or "").split(";")[0].strip().lower()
    if not _MIME.fullmatch(mime) or mime.startswith("image/"):
        guessed = mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"
        mime = "application/octet-stream" if guessed.startswith("image/") else guessed
    kind = ("audio" if mime.startswith("audio/") else "video" if mime.startswith("video/") else "document")
    return mime, kind


def _megabytes(size: int) -> float:
    return size / (1024 * 1024)


def too_large(name: str, size: int, max_bytes: int) -> str:
    """The note for a file announced larger than the limit (so it was not downloaded at all)."""
    return (f"[{name} was not downloaded: it is {_megabytes(size):.1f} MB, over the {_megabytes(max_bytes):g} MB "
            "limit]")


def not_kept(name: str, max_bytes: int) -> str:
    """The note for a file that turned out larger than the limit while downloading (the announced size was wrong)."""
    return f"[{name} was not kept: it is over the {_megabytes(max_bytes):g} MB limit]"


def with_notes(text: str, notes: list[str]) -> str:
    """The message text with the notes about files (and other content) not passed on below it."""
    return "\n\n".join(p for p in (text, "\n".join(notes)) if p)
