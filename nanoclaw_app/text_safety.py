"""Names and file names from people, chat platforms and agents, made safe to store, show and log.

A given name may carry characters that are invisible or that rewrite what is around them: control characters (a NUL,
terminal escape sequences, line breaks that forge log lines) and bidirectional overrides, which make
``invoice<U+202E>fdp.exe`` show as ``invoiceexe.pdf``. Every place where such a name enters the app removes them with
one of these functions, so pages, cards, file names and log lines show what is really there.
"""

from __future__ import annotations

import re
import unicodedata

from nanoclaw_app.errors import UserError

_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ufeff]")
"""C0 and C1 controls, DEL, the bidirectional marks, embeddings, overrides and isolates, line and paragraph
separators and the byte-order mark."""


def _drop(match: re.Match[str]) -> str:
    return " " if match.group().isspace() else ""


def has_unsafe(text: str) -> bool:
    """Whether ``text`` holds a control or bidirectional character."""
    return _UNSAFE.search(text) is not None


def clean_text(text: str) -> str:
    """One line of plain text: unsafe characters removed, line breaks and runs of spaces made single spaces."""
    return " ".join(_UNSAFE.sub(_drop, unicodedata.normalize("NFC", text)).split())


def clean_name(value: object, what: str, max_len: int) -> str:
    """A name someone gave (the owner, a platform or an agent), cleaned; refused when nothing is left or too long."""
    clean = clean_text(value) if isinstance(value, str) else ""
    if not clean:
        raise UserError(f"{what} must not be empty")
    if len(clean) > max_len:
        raise UserError(f"{what} may have at most {max_len} characters")
    return clean


def clean_file_name(name: str) -> str:
    """``name`` with unsafe characters removed (line breaks and tabs become spaces), trimmed; may be empty.

    Path parts are left for the caller's own check (``check_basename``), which refuses them.
    """
    return _UNSAFE.sub(_drop, unicodedata.normalize("NFC", name)).strip()


def escape_controls(text: str, *, keep_newlines: bool = False) -> str:
    r"""``text`` with every unsafe character written as an escape (``\n``, ``\x1b``, ``\u202e``), for log lines."""

    def escape(match: re.Match[str]) -> str:
        char = match.group()
        if keep_newlines and char == "\n":
            return char
        return char.encode("unicode_escape").decode("ascii")

    return _UNSAFE.sub(escape, text)
