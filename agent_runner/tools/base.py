"""A tool defined once and adapted by every provider (SDK MCP server, Anthropic tools, OpenAI functions)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

ToolHandler = Callable[[dict[str, Any]], Awaitable[str]]


class ToolError(Exception):
    """A tool refused its input or failed; the message is shown to the model, which may try again."""


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """Name, description and JSON schema of a tool, and the coroutine that runs it."""

    name: str
    description: str
    input_schema: dict[str, Any]
    handler: ToolHandler
    declared_timeout_ms: int | None = None
