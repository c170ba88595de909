"""The ``anthropic`` provider: the Anthropic Messages API through the ``anthropic`` SDK, with our own tool loop.

Lighter than ``claude`` (no Claude Code CLI): the conversation lives in our continuation, tools are ours plus the
built-ins of ``agent_runner.tools.builtin``. Any Anthropic-compatible endpoint works through ``base_url`` (the host's
model gateway in a container).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import anthropic
import httpx2
from anthropic.types import MessageParam, TextBlockParam, ToolParam

from agent_runner.config import RunnerConfig
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

DEFAULT_MODEL = "claude-sonnet-4-6"
"""Used when the agent sets no model; any model id or alias the endpoint knows works."""
DEFAULT_MAX_TOKENS = 8192
CACHE = {"type": "ephemeral"}


class AnthropicProvider(ToolLoopProvider):
    """Creates tool-loop queries against the Anthropic Messages API."""

    name = "anthropic"
    default_model = DEFAULT_MODEL

    def __init__(self, config: RunnerConfig, *, max_tokens: int = DEFAULT_MAX_TOKENS, **options: Any) -> None:
        super().__init__(config, **options)
        self._max_tokens = max_tokens

    def _client(self) -> AnthropicClient:
        http = self._gateway_http()
        sdk = anthropic.AsyncAnthropic(
            base_url=self._base_url, api_key=self._api_key, max_retries=self._max_retries, http_client=http
        )
        return AnthropicClient(
            sdk, model=self.model, max_tokens=self._max_tokens, owns_http=http is None, over_socket=http is not None
        )

    def _http_client(self, transport: httpx2.AsyncHTTPTransport) -> httpx2.AsyncClient:
        return anthropic.DefaultAsyncHttpxClient(transport=transport)


class AnthropicClient:
    """One query's connection to the Messages API (``toolloop.ModelClient``)."""

    def __init__(
        self,
        sdk: anthropic.AsyncAnthropic,
        *,
        model: str,
        max_tokens: int,
        owns_http: bool = True,
        over_socket: bool = False,
    ) -> None:
        self.model = model
        self._sdk = sdk
        self._max_tokens = max_tokens
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
        """Stream one response; SDK errors become ``ModelCallError`` with a plain message."""
        kwargs: dict[str, Any] = {}
        if system:
            kwargs["system"] = [cast(TextBlockParam, {"type": "text", "text": system, "cache_control": CACHE})]
        if tools:
            kwargs["tools"] = [
                cast(ToolParam, {"name": t.name, "description": t.description, "input_schema": t.input_schema})
                for t in tools
            ]
        try:
            async with self._sdk.messages.stream(
                model=self.model, max_tokens=self._max_tokens, messages=to_messages(history), **kwargs
            ) as stream:
                async for event in stream:
                    if event.type in ("text", "input_json", "thinking"):
                        on_delta()
                final = await stream.get_final_message()
        except anthropic.APIStatusError as exc:
            raise ModelCallError(http_error_message(exc.status_code, error_detail(exc.body, exc.message))) from exc
        except anthropic.APITimeoutError as exc:
            raise ModelCallError("The model service did not answer in time.") from exc
        except anthropic.APIConnectionError as exc:
            raise ModelCallError(
                f"Could not reach the model service at {self._sdk.base_url}: {exc}",
                gateway_lost=self._over_socket and lost_gateway(exc),
            ) from exc
        except anthropic.AnthropicError as exc:
            raise ModelCallError(f"The model service sent something unexpected: {exc}") from exc
        texts: list[str] = []
        calls: list[ToolCall] = []
        for block in final.content:
            if block.type == "text":
                texts.append(block.text)
            elif block.type == "tool_use":
                arguments = block.input if isinstance(block.input, dict) else {}
                error = None if isinstance(block.input, dict) else f"expected an object, got {block.input!r}"
                calls.append(ToolCall(id=block.id, name=block.name, input=arguments, input_error=error))
        usage = final.usage
        return ModelReply(
            text="".join(texts),
            tool_calls=calls,
            usage=usage_numbers(
                usage.input_tokens,
                usage.output_tokens,
                usage.cache_read_input_tokens or 0,
                usage.cache_creation_input_tokens or 0,
            ),
            stop_reason=final.stop_reason,
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
    return cast(list[MessageParam], messages)
