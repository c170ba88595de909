"""The slash-command gate: which commands never reach an agent, which need an admin, which pass through.

The container runs Claude Code's native slash commands, so a chat member typing ``/login`` or ``/config`` must never
reach it, and ``/clear`` (which wipes the agent's conversation) is an admin's decision.
"""

from __future__ import annotations

from typing import Literal

CommandClass = Literal["filtered", "admin", "passthrough"]

FILTERED = frozenset({"/help", "/login", "/logout", "/doctor", "/config", "/remote-control"})
"""Commands that act on the container's CLI itself; dropped (and recorded) before any agent sees them."""

ADMIN = frozenset({"/clear", "/compact", "/context", "/cost", "/files"})
"""Commands that change or reveal the agent's session; only an owner or an admin of that agent may send them."""


def command_name(text: str) -> str | None:
    """The command a message starts with, lowercased, without a ``@botname`` suffix; None for plain text.

    Telegram appends the bot's name in groups (``/clear@my_bot``); that must not let a command slip past the gate.
    """
    stripped = text.lstrip()
    if not stripped.startswith("/"):
        return None
    word = stripped.split(maxsplit=1)[0]
    name = word.split("@", 1)[0].lower()
    return name if len(name) > 1 else None


def classify(text: str) -> CommandClass | None:
    """``filtered``, ``admin`` or ``passthrough`` for a slash command; None when the text is not a command."""
    name = command_name(text)
    if name is None:
        return None
    if name in FILTERED:
        return "filtered"
    if name in ADMIN:
        return "admin"
    return "passthrough"


def denial_text(text: str) -> str:
    """The reply a non-admin gets for an admin command."""
    return f"Permission denied: {command_name(text) or text.strip()} requires admin access."
