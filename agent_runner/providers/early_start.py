"""An optional provider ability: start the next query's session before its first message is known.

A provider whose sessions take long to start (``claude`` spawns the Claude Code CLI, about a second) implements it, and
the runner calls it as soon as it knows what the first query will be started with: its continuation, working folder,
system prompt and tools, none of which depend on the messages. The session then starts while the runner reads and
formats its first batch instead of after.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from agent_runner.tools.base import ToolSpec


@runtime_checkable
class StartsEarly(Protocol):
    """A provider that can start a session ahead of its first ``query``."""

    def start_early(self, *, continuation: str | None, cwd: Path, system_prompt: str, tools: list[ToolSpec]) -> None:
        """Start the session the next ``query`` with exactly these arguments takes over.

        A ``query`` with other arguments closes it and starts its own; ``aclose`` closes it if no query took it.
        """


__all__ = ["StartsEarly"]
