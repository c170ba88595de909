"""The ``openai`` provider: any OpenAI-compatible Chat Completions server, with our own tool loop and built-in tools.

OpenAI, Ollama, LM Studio, vLLM and OpenRouter all serve this API; we talk to it through the ``openai`` SDK.

``base_url`` is used as given, so it carries the server's version path (``http://localhost:11434/v1``); in a
container it is the host's model gateway.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, cast

import httpx2
import openai
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from agent_runner.providers.toolloop import (
    ModelCallError,
    ModelReply,
    ToolCall,
    Turn,
    error_detail,
    http_error_message,
    usage_numbers,
)
from agent_runner.providers.toolloop_provider import ToolLoopProvider, lost_gateway
from agent_runner.tools.base import ToolSpec

DEFAULT_MODEL = "gpt-4o-mini"


class OpenAIProvider(ToolLoopProvider):
    """Creates tool-loop queries against an OpenAI-compatible Chat Completions API."""

    name = "openai"
    default_model = DEFAULT_MODEL

    def _client(self) -> OpenAIClient:
        http = self._gateway_http()
        sdk = openai.AsyncOpenAI(
            base_url=self._base_url, api_key=self._api_key, max_retries=self._max_retries, http_client=http
        )
        return OpenAIClient(sdk, model=self.model, owns_http=http is None, over_socket=http is not None)

    def _http_client(self, transport: httpx2.AsyncHTTPTransport) -> httpx2.AsyncClient:
        return openai.DefaultAsyncHttpxClient(transport=transport)


class OpenAIClient:
    """One query's connection to a Chat Completions server (``toolloop.ModelClient``)."""

    def __init__(
        self, sdk: openai.AsyncOpenAI, *, model: str, owns_http: bool = True, over_socket: bool = False
    ) -> None:
        self.model = model
        self._sdk = sdk
        self._owns_http = owns_http
        self._over_socket = over_socket
        """Calls go over the gateway's unix socket: a connection failure there means the host is gone."""

    async def aclose(self) -> None:
        """Close the SDK's HTTP client, unless it is the provider's shared gateway client."""
        if self._owns_http:
            await self._sdk.close()

    async def complete(
        self, *, system: str, history: list[Turn], tools: list[ToolSpec], on_delta: Callable[[], None]
    ) -> ModelReply:
        """Stream one completion, assembling text and tool calls from the chunks."""
        kwargs: dict[str, Any] = {}
        if tools:
            kwargs["tools"] = [
                cast(
                    ChatCompletionToolParam,
                    {
                        "type": "function",
                        "function": {"name": t.name, "description": t.description, "parameters": t.input_schema},
                    },
                )
                for t in tools
            ]
        text: list[str] = []
        partial: dict[int, dict[str, Any]] = {}
        usage: dict[str, int] | None = None
        finish: str | None = None
        try:
            stream = await self._sdk.chat.completions.create(
                model=self.model,
                messages=to_messages(system, history),
                stream=True,
                stream_options={"include_usage": True},
                **kwargs,
            )
            async with stream:
                async for chunk in stream:
                    if chunk.usage is not None:
                        usage = _usage(chunk.usage)
                    for choice in chunk.choices:
                        delta = choice.delta
                        finish = choice.finish_reason or finish
                        if delta.content:
                            text.append(delta.content)
                            on_delta()
                        elif getattr(delta, "reasoning_content", None) or getattr(delta, "reasoning", None):
                            on_delta()
                        for piece in delta.tool_calls or []:
                            slot = partial.setdefault(piece.index, {"id": None, "name": "", "arguments": ""})
                            slot["id"] = piece.id or slot["id"]
                            if piece.function is not None:
                                slot["name"] += piece.function.name or ""
                                slot["arguments"] += piece.function.arguments or ""
                            on_delta()
        except openai.APIStatusError as exc:
            raise ModelCallError(http_error_message(exc.status_code, error_detail(exc.body, exc.message))) from exc
        except openai.APITimeoutError as exc:
            raise ModelCallError("The model service did not answer in time.") from exc
        except openai.APIConnectionError as exc:
            raise ModelCallError(
                f"Could not reach the model service at {self._sdk.base_url}: {exc}",
                gateway_lost=self._over_socket and lost_gateway(exc),
            ) from exc
        except openai.OpenAIError as exc:
            raise ModelCallError(f"The model service sent something unexpected: {exc}") from exc
        calls = [_tool_call(index, slot) for index, slot in sorted(partial.items())]
        return ModelReply(text="".join(text), tool_calls=calls, usage=usage, stop_reason=finish)


def _tool_call(index: int, slot: dict[str, Any]) -> ToolCall:
    """Arguments arrive as a JSON string (sometimes empty for no arguments); a bad one is reported to the model."""
    call_id = slot["id"] or f"call_{index}"
    raw = slot["arguments"].strip() or "{}"
    try:
        arguments = json.loads(raw)
    except ValueError as exc:
        return ToolCall(id=call_id, name=slot["name"], input={}, input_error=f"{exc} in {raw[:200]!r}")
    if not isinstance(arguments, dict):
        return ToolCall(id=call_id, name=slot["name"], input={}, input_error=f"expected an object, got {raw[:200]!r}")
    return ToolCall(id=call_id, name=slot["name"], input=arguments)


def _usage(usage: Any) -> dict[str, int]:
    """OpenAI counts cached tokens inside ``prompt_tokens``; we report them apart, as Anthropic does."""
    details = getattr(usage, "prompt_tokens_details", None)
    cached = int(getattr(details, "cached_tokens", 0) or 0)
    written = int(getattr(details, "cache_write_tokens", 0) or 0)
    prompt = int(usage.prompt_tokens or 0)
    return usage_numbers(max(0, prompt - cached - written), int(usage.completion_tokens or 0), cached, written)


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
    return cast(list[ChatCompletionMessageParam], messages)
