"""Our tools as an in-process SDK MCP server, so their handlers run in the runner's own process.

The original ran them in a separate MCP process and lost per-turn state (``in_reply_to``) across that boundary; here a
tool call from Claude Code comes back over the SDK's control channel and awaits the ``ToolSpec`` handler directly.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from claude_agent_sdk import McpSdkServerConfig, SdkMcpTool, create_sdk_mcp_server

from agent_runner.tools.base import ToolError, ToolSpec

log = logging.getLogger(__name__)

SERVER_NAME = "nanoclaw"
"""Claude Code names our tools ``mcp__nanoclaw__<tool>``."""

McpResult = dict[str, Any]


def mcp_tool_name(tool_name: str, server: str = SERVER_NAME) -> str:
    """The name the model (and the PreToolUse hook) sees for one of our tools."""
    return f"mcp__{server}__{tool_name}"


def build_tool_server(tools: Sequence[ToolSpec]) -> McpSdkServerConfig:
    """One SDK MCP server holding every tool of this query."""
    return create_sdk_mcp_server(SERVER_NAME, tools=[_adapt(spec) for spec in tools])


def _adapt(spec: ToolSpec) -> SdkMcpTool[Any]:
    return SdkMcpTool(
        name=spec.name,
        description=spec.description,
        input_schema=_object_schema(spec.input_schema),
        handler=_handler(spec),
    )


def _object_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The SDK reads a dict without ``properties`` as a ``{name: type}`` map; always hand it a full JSON schema."""
    return {"type": "object", **schema, "properties": schema.get("properties", {})}


def _handler(spec: ToolSpec) -> Callable[[dict[str, Any]], Awaitable[McpResult]]:
    async def run(arguments: dict[str, Any]) -> McpResult:
        try:
            text = await spec.handler(arguments)
        except ToolError as exc:
            # The model sees the refusal and may try again with better input.
            return _text(str(exc) or f"{spec.name} failed", is_error=True)
        except Exception as exc:
            log.exception("tool %s raised on input %r", spec.name, arguments)
            return _text(f"{spec.name} failed unexpectedly: {exc}", is_error=True)
        return _text(text, is_error=False)

    return run


def _text(text: str, *, is_error: bool) -> McpResult:
    return {"content": [{"type": "text", "text": text}], "is_error": is_error}
