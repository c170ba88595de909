"""The ``openai`` provider: any OpenAI-compatible Chat Completions server, with our own tool loop and built-in tools.

OpenAI, Ollama, LM Studio, vLLM and OpenRouter all serve this API. The request is sent with the HTTP client directly
rather than through the ``openai`` SDK, which takes about a second to import (see ``model_http``); the SDK's types
still check the request shape (typing only).

``base_url`` is used as given, so it carries the server's version path (``http://localhost:11434/v1``); in a
container it is the host's model gateway.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import httpx2

from agent_runner.providers.model_http import EndpointClient, IncompleteAnswer, sse_data
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
    from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

DEFAULT_MODEL = "gpt-4o-mini"
HEADERS = {"accept": "application/json"}
"""What the SDK sends, streaming or not; servers answer a ``stream`` request with events either way."""
DONE = "[DONE]"
"""The ``data`` that ends a stream."""


class OpenAIProvider(ToolLoopProvider):
    """Creates tool-loop queries against an OpenAI-compatible Chat Completions API."""

    name = "openai"
    default_model = DEFAULT_MODEL
    default_base_url = "https://api.openai.com/v1"
    api_key_env = "OPENAI_API_KEY"
    base_url_env = "OPENAI_BASE_URL"

    def _client(self) -> OpenAIClient:
        return OpenAIClient(self._endpoint("/chat/completions", HEADERS), model=self.model)


class OpenAIClient(EndpointClient):
    """One query's connection to a Chat Completions server (``toolloop.ModelClient``)."""

    async def complete(
        self, *, system: str, history: list[Turn], tools: list[ToolSpec], on_delta: Callable[[], None]
    ) -> ModelReply:
        """Stream one completion, retrying what is worth it; failures become ``ModelCallError`` with a plain message."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": to_messages(system, history),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if tools:
            body["tools"] = [
                cast(
                    "ChatCompletionToolParam",
                    {
                        "type": "function",
                        "function": {"name": t.name, "description": t.description, "parameters": t.input_schema},
                    },
                )
                for t in tools
            ]
        return await self._endpoint.stream(body, lambda response: _read_stream(response, on_delta))


async def _read_stream(response: httpx2.Response, on_delta: Callable[[], None]) -> ModelReply:
    """Assemble a completion from its chunks.

    Text deltas, tool calls pieced together by index, the finish reason, and the usage chunk (last, and only from
    servers that honour ``include_usage``).
    """
    text: list[str] = []
    partial: dict[int, dict[str, Any]] = {}
    usage: dict[str, int] | None = None
    finish: str | None = None
    done = False
    async for data in sse_data(response):
        if data.strip() == DONE:
            done = True
            continue  # read on to the end, so the connection can be reused
        chunk = json.loads(data)
        if not isinstance(chunk, dict):
            raise ValueError(f"a chunk that is not an object: {data[:200]!r}")
        if chunk.get("error"):
            raise ModelCallError(f"The model service failed mid-answer: {error_detail(chunk, 'no details')}")
        if chunk.get("usage"):
            usage = _usage(chunk["usage"])
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            finish = choice.get("finish_reason") or finish
            if delta.get("content"):
                text.append(delta["content"])
                on_delta()
            elif delta.get("reasoning_content") or delta.get("reasoning"):
                on_delta()
            for piece in delta.get("tool_calls") or []:
                slot = partial.setdefault(piece["index"], {"id": None, "name": "", "arguments": ""})
                slot["id"] = piece.get("id") or slot["id"]
                function = piece.get("function") or {}
                slot["name"] += function.get("name") or ""
                slot["arguments"] += function.get("arguments") or ""
                on_delta()
    if not done and finish is None:
        raise IncompleteAnswer(f"no {DONE} and no finish_reason")
    calls = [
        parse_tool_call(slot["id"] or f"call_{index}", slot["name"], slot["arguments"])
        for index, slot in sorted(partial.items())
    ]
    return ModelReply(text="".join(text), tool_calls=calls, usage=usage, stop_reason=finish)


def _usage(usage: dict[str, Any]) -> dict[str, int]:
    """OpenAI counts cached tokens inside ``prompt_tokens``; we report them apart, as Anthropic does."""
    details = usage.get("prompt_tokens_details") or {}
    cached = int(details.get("cached_tokens") or 0)
    written = int(details.get("cache_write_tokens") or 0)
    prompt = int(usage.get("prompt_tokens") or 0)
    return usage_numbers(max(0, prompt - cached - written), int(usage.get("completion_tokens") or 0), cached, written)


def to_messages(system: str, history: list[Turn]) -> list[ChatCompletionMessageParam]:
    """Neutral turns to chat messages: one ``tool`` message per result, errors marked in the text."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for turn in history:
        if turn["role"] == "user":
            messages.append({"role": "user", "content": turn["text"]})
        elif turn["role"] == "assistant":
            message: dict[str, Any] = {"role": "assistant", "content": turn.get("text") or None}
            calls = turn.get("tool_calls") or []
            if calls:
                message["tool_calls"] = [
                    {
                        "id": c["id"],
                        "type": "function",
                        "function": {"name": c["name"], "arguments": json.dumps(c["input"], ensure_ascii=False)},
                    }
                    for c in calls
                ]
            elif message["content"] is None:
                message["content"] = ""
            messages.append(message)
        else:
            messages.extend(
                {
                    "role": "tool",
                    "tool_call_id": r["id"],
                    "content": ("Error: " if r.get("is_error") else "") + (r["content"] or "(no output)"),
                }
                for r in turn["results"]
            )
    return cast("list[ChatCompletionMessageParam]", messages)
