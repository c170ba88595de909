"""The final-output protocol: only text inside ``<message to="name">…</message>`` reaches anyone.

Everything else the model writes at the end of a turn is its scratchpad: ``<internal>…</internal>`` sections and any
unwrapped ("stray") text are logged, never sent. That makes addressing explicit when an agent talks to several chats
and agents at once, and keeps thinking-out-loud out of people's phones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_INTERNAL = re.compile(r"<internal\s*>(.*?)(?:</internal\s*>|\Z)", re.DOTALL | re.IGNORECASE)
"""An unclosed ``<internal>`` (a truncated turn) hides everything after it: better unsent than leaked."""
_MESSAGE = re.compile(
    r"<message\s+to\s*=\s*(?:\"([^\"]*)\"|'([^']*)')\s*>(.*?)</message\s*>", re.DOTALL | re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class ParsedOutput:
    """A turn's final text, split into what is sent and what is only logged."""

    blocks: list[tuple[str, str]] = field(default_factory=list)
    """``(destination name, body)`` in the order written; bodies are stripped and never empty."""
    internal: list[str] = field(default_factory=list)
    stray: str = ""
    """Text outside any block or internal section, whitespace-normalised at the edges."""

    @property
    def wrapped_anything(self) -> bool:
        """True when at least one block addresses someone."""
        return bool(self.blocks)


def parse_output(text: str) -> ParsedOutput:
    """Split ``text`` into message blocks, internal notes and stray text.

    Internal sections are removed first, so a ``<message>`` quoted inside one is never sent, and an internal note
    inside a block is cut out of what the recipient sees.
    """
    internal: list[str] = []

    def keep_internal(match: re.Match[str]) -> str:
        note = match.group(1).strip()
        if note:
            internal.append(note)
        return ""

    visible = _INTERNAL.sub(keep_internal, text or "")
    blocks: list[tuple[str, str]] = []

    def keep_block(match: re.Match[str]) -> str:
        name = (match.group(1) if match.group(1) is not None else match.group(2) or "").strip()
        body = match.group(3).strip()
        if name and body:
            blocks.append((name, body))
        return "\n"

    stray = _MESSAGE.sub(keep_block, visible)
    stray = "\n".join(line.rstrip() for line in stray.strip().splitlines() if line.strip())
    return ParsedOutput(blocks=blocks, internal=internal, stray=stray)


def strip_internal(text: str) -> str:
    """``text`` without its internal sections (for text that is sent as-is, e.g. a slash command's output)."""
    return _INTERNAL.sub("", text or "").strip()


__all__ = ["ParsedOutput", "parse_output", "strip_internal"]
