"""Text shaping shared by phone channels: splitting long replies and cards as numbered options."""

from __future__ import annotations

import re
from collections.abc import Sequence

from agent_runner.protocol import QuestionOption


def split_text(text: str, limit: int) -> list[str]:
    """Split ``text`` into chunks of at most ``limit`` characters: at paragraphs, else lines, else words, else hard.

    Chunks keep their inner formatting; whitespace at the cut is dropped. An empty text gives one empty chunk, so a
    caller always has a first message to attach files to.
    """
    if limit <= 0:
        raise ValueError("limit must be positive")
    text = text.strip("\n")
    chunks: list[str] = []
    while len(text) > limit:
        window = text[: limit + 1]
        cut = -1
        for sep in ("\n\n", "\n", " "):
            cut = window.rfind(sep, 0, limit + 1)
            if cut > 0:
                break
        if cut <= 0:
            cut = limit
            head, text = text[:cut], text[cut:]
        else:
            head, text = text[:cut], text[cut:].lstrip("\n ")
        head = head.rstrip()
        if head:
            chunks.append(head)
    if text or not chunks:
        chunks.append(text)
    return chunks


def numbered_card(title: str, body: str, options: Sequence[QuestionOption], *, hint: str) -> str:
    """A question card as plain text: the title, the body, ``1. label`` lines and a hint on how to answer."""
    lines: list[str] = []
    if title:
        lines.append(title)
    if body and body != title:
        lines.append(body)
    numbered = "\n".join(f"{i}. {option.label}" for i, option in enumerate(options, start=1))
    parts = ["\n".join(lines), numbered, hint]
    return "\n\n".join(p for p in parts if p)


_CHOICE = re.compile(r"^\s*(\d{1,2})\s*[.)]?\s*$")


def parse_choice(text: str, count: int) -> int | None:
    """The 0-based option a reply picks (``2``, ``2.``, ``2)``), or None when it is not a number in range."""
    match = _CHOICE.match(text)
    if match is None:
        return None
    number = int(match.group(1))
    return number - 1 if 1 <= number <= count else None
