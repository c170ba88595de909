"""Slash commands the runner itself acts on: ``/clear``, and commands a provider runs natively (Claude Code's).

The host's command gate has already dropped filtered commands and checked admin rights; what reaches the runner is
allowed. A command must be the first input of a fresh query, which is why the loop handles it apart from chat.
"""

from __future__ import annotations

import json
from typing import Literal

from agent_runner.protocol import ChatContent, ContractError, InboundRow, MessageKind

Command = Literal["clear", "native"]


def command_of(row: InboundRow, *, native: bool) -> Command | None:
    """``clear`` for ``/clear``, ``native`` for another slash command the provider runs itself, else None.

    Only rows addressed to the agent count: a ``/clear`` stored as context (trigger 0) is just chat.
    """
    if row.kind != MessageKind.CHAT or row.trigger != 1:
        return None
    try:
        text = ChatContent.from_dict(json.loads(row.content)).text.strip()
    except (ValueError, ContractError):
        return None
    if not text.startswith("/") or len(text) < 2:
        return None
    words = text.split()
    name = words[0].split("@", 1)[0].lower()  # Telegram groups append the bot name: /clear@my_bot
    if name == "/clear" and len(words) == 1:
        return "clear"
    return "native" if native else None


def raw_text(row: InboundRow) -> str:
    """A command row's text, as the provider receives it."""
    return ChatContent.from_dict(json.loads(row.content)).text.strip()


__all__ = ["Command", "command_of", "raw_text"]
