"""The ``anthropic`` provider: the Anthropic Messages API over ``httpx2``, with our own tool loop.

Lighter than ``claude`` (no Claude Code CLI): the conversation lives in our continuation, tools are ours plus the
built-ins of ``agent_runner.tools.builtin``. Any Anthropic-compatible endpoint works through ``base_url`` (the host's
model gateway in a container).

The request is sent with the HTTP client directly rather than through the ``anthropic`` SDK, which takes about a
second to import (see ``model_http``); the SDK's types still check the request shape (typing only).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import httpx2

from agent_runner.config import RunnerConfig
from agent_runner.providers.model_http import EndpointClient, IncompleteAnswer, ModelEndpoint, sse_data
from agent_runner.providers.toolloop import (
    ModelCallError,
    ModelReply,
    Turn,
    error_detail,
    parse_tool_call,
    usage_numbers,
)
from agent_runner.providers.toolloop_provider import ToolLoopProvider
from agent_runner.tools.base import ToolSpec

if TYPE_CHECKING:
    from anthropic.types import MessageParam, TextBlockParam, ToolParam

DEFAULT_MODEL = "claude-sonnet-4-6"
"""Used when the agent sets no model; any model id or alias the endpoint knows works."""
DEFAULT_MAX_TOKENS = 8192
API_VERSION = "2023-06-01"
CACHE = {"type": "ephemeral"}
HEADERS = {"anthropic-version": API_VERSION, "accept": "text/event-stream"}


class AnthropicProvider(ToolLoopProvider):
    """Creates tool-loop queries against the Anthropic Messages API."""

    name = "anthropic"
    default_model = DEFAULT_MODEL
    default_base_url = "https://api.anthropic.com"
    api_key_env = "ANTHROPIC_API_KEY"
    base_url_env = "ANTHROPIC_BASE_URL"

    def __init__(self, config: RunnerConfig, *, max_tokens: int = DEFAULT_MAX_TOKENS, **options: Any) -> None:
        super().__init__(config, **options)
        self._max_tokens = max_tokens

    def _client(self) -> AnthropicClient:
        return AnthropicClient(self._endpoint("/v1/messages", HEADERS), model=self.model, max_tokens=self._max_tokens)


class AnthropicClient(EndpointClient):
    """One query's connection to the Messages API (``toolloop.ModelClient``)."""

    def __init__(self, endpoint: ModelEndpoint, *, model: str, max_tokens: int) -> None:
        super().__init__(endpoint, model=model)
        self._max_tokens = max_tokens

    async def complete(
        self, *, system: str, history: list[Turn], tools: list[ToolSpec], on_delta: Callable[[], None]
    ) -> ModelReply:
        """Stream one response, retrying what is worth it; failures become ``ModelCallError`` with a plain message."""
        body: dict[str, Any] = {
            "model": self.model, "max_tokens": self._max_tokens, "messages": to_messages(history), "stream": True,
        }
        if system:
            body["system"] = [cast("TextBlockParam", {"type": "text", "text": system, "cache_control": CACHE})]
        if tools:
            body["tools"] = [
                cast("ToolParam", {"name": t.name, "description": t.description, "input_schema": t.input_schema})
                for t in tools
            ]
        return await self._endpoint.stream(body, lambda response: _read_stream(response, on_delta))


async def _read_stream(response: httpx2.Response, on_delta: Callable[[], None]) -> ModelReply:
    """Assemble a streamed message from its server-sent events (each ``data:`` is one JSON event)."""
    blocks: dict[int, dict[str, Any]] = {}
    usage: dict[str, Any] = {}
    stop_reason: str | None = None
    finished = False
    async for data in sse_data(response):  # ``event:`` lines repeat the data's own type
        event = json.loads(data)
        kind = event.get("type")
        if kind == "message_start":
            usage.update(event["message"].get("usage") or {})
        elif kind == "content_block_start":
            blocks[event["index"]] = {**event["content_block"], "partial_json": ""}
        elif kind == "content_block_delta":
            delta, block = event["delta"], blocks.get(event["index"], {})
            if delta.get("type") == "text_delta":
                block["text"] = block.get("text", "") + delta["text"]
            elif delta.get("type") == "input_json_delta":
                block["partial_json"] += delta["partial_json"]
            if delta.get("type") in ("text_delta", "input_json_delta", "thinking_delta"):
                on_delta()
        elif kind == "message_delta":
            stop_reason = event.get("delta", {}).get("stop_reason") or stop_reason
            usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
        elif kind == "message_stop":
            finished = True
        elif kind == "error":
            detail = error_detail(event, "no details")
            raise ModelCallError(f"The model service failed mid-answer: {detail}")
    if not finished:
        raise IncompleteAnswer("no message_stop")
    texts: list[str] = []
    calls = []
    for _, block in sorted(blocks.items()):
        if block.get("type") == "text":
            texts.append(block.get("text", ""))
        elif block.get("type") == "tool_use":
            # The input streams in as JSON text, or comes whole in the block's start event.
            json_input = block["partial_json"] or json.dumps(block.get("input", {}))
            calls.append(parse_tool_call(block["id"], block["name"], json_input))
    return ModelReply(
        text="".join(texts),
        tool_calls=calls,
        usage=usage_numbers(
            usage.get("input_tokens") or 0,
            usage.get("output_tokens") or 0,
            usage.get("cache_read_input_tokens") or 0,
            usage.get("cache_creation_input_tokens") or 0,
        ),
        stop_reason=stop_reason,
    )


def to_messages(history: list[Turn]) -> list[MessageParam]:
    """Neutral turns to Messages API messages: tool results are user content; same-role neighbours are merged."""
    messages: list[dict[str, Any]] = []
    for turn in history:
        if turn["role"] == "user":
            role, blocks = "user", [{"type": "text", "text": turn["text"] or "(empty message)"}]
        elif turn["role"] == "assistant":
            role = "assistant"
            blocks = [{"type": "text", "text": turn["text"]}] if turn.get("text", "").strip() else []
            blocks += [
                {"type": "tool_use", "id": c["id"], "name": c["name"], "input": c["input"]}
                for c in turn.get("tool_calls", [])
            ]
        else:
            role = "user"
            blocks = [
                {
                    "type": "tool_result",
                    "tool_use_id": r["id"],
                    "content": r["content"] or "(no output)",
                    "is_error": bool(r.get("is_error")),
                }
                for r in turn["results"]
            ]
        if not blocks:
            continue
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})
    if messages and messages[-1]["role"] == "user":
        # Cache the whole prefix: the next call of this tool loop re-sends it unchanged.
        last = messages[-1]["content"][-1]
        messages[-1]["content"][-1] = {**last, "cache_control": CACHE}
    return cast("list[MessageParam]", messages)
