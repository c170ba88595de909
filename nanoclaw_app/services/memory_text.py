"""The text of a memory file the owner edits (an agent's, or a person's with an agent): checked, versioned, decoded.

Both files are also written by the agent from inside its container, so saves carry the version the owner opened and
reads keep bytes that are not UTF-8 visible rather than failing.
"""

from __future__ import annotations

import hashlib

from agent_runner.prompt import MAX_FILE_CHARS
from nanoclaw_app.errors import UserError


def encode(text: str, max_bytes: int) -> bytes:
    """The text as UTF-8, refused in words when it holds a NUL, a broken character, or more than ``max_bytes``."""
    if "\x00" in text:
        raise UserError("the memory text contains a NUL character; memory is plain text")
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise UserError(f"the memory text is not valid Unicode ({err.reason}); remove the broken character") from err
    if len(data) > max_bytes:
        raise UserError(f"the memory is {len(data):,} bytes; the limit is {max_bytes:,}. Shorten it (the agent "
                        f"only sees the first {MAX_FILE_CHARS:,} characters in its prompt anyway)")
    return data


def version(data: bytes) -> str:
    """A short fingerprint of the file's bytes: a save with an older one is refused."""
    return hashlib.sha256(data).hexdigest()[:16]


def decode(data: bytes) -> tuple[str, bool]:
    """The text, and whether bytes that are not UTF-8 were shown as U+FFFD (saving then writes those instead)."""
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace"), True


def cut_in_prompt(text: str) -> bool:
    """Whether the prompt shows only the start of this text (the agent reads the rest with its file tools)."""
    return len(text.strip()) > MAX_FILE_CHARS
