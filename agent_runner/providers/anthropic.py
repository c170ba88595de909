"""The ``anthropic`` provider: the Anthropic Messages API over ``httpx2``, with our own tool loop.

Lighter than ``claude`` (no Claude Code CLI): the conversation lives in our continuation, tools are ours plus the
built-ins of ``agent_runner.tools.builtin``. Any Anthropic-compatible endpoint works through ``base_url`` (the host's
model gateway in a container).

The request is sent with the HTTP client directly rather than through the ``anthropic`` SDK: importing the SDK takes
about a second (its hundreds of pydantic types), all of it on a fresh container's path to its first answer, and on
this path the SDK would only add a JSON body, an event-stream parser and retries. The SDK's types still check the
request shape (typing only).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import httpx2

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

if TYPE_CHECKING:
    from anthropic.types import MessageParam, TextBlockParam, ToolParam

DEFAULT_MODEL = "claude-sonnet-4-6"
"""Used when the agent sets no model; any model id or alias the endpoint knows works."""
DEFAULT_MAX_TOKENS = 8192
DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"
CACHE = {"type": "ephemeral"}
TIMEOUT = httpx2.Timeout(600.0, connect=5.0)
"""The SDK's defaults: a long answer may take minutes, a connection may not."""
RETRY_STATUSES = frozenset({408, 409, 429})
"""Besides every 5xx: what the API documents as worth retrying."""
MAX_RETRY_DELAY = 8.0
MAX_RETRY_AFTER = 60.0


class AnthropicProvider(ToolLoopProvider):
    """Creates tool-loop queries against the Anthropic Messages API."""

    name = "anthropic"
    default_model = DEFAULT_MODEL

    def __init__(self, config: RunnerConfig, *, max_tokens: int = DEFAULT_MAX_TOKENS, **options: Any) -> None:
        super().__init__(config, **options)
        self._max_tokens = max_tokens

    def _client(self) -> AnthropicClient:
        api_key = self._api_key or os.environ.get("ANTHROPIC_API_KEY")
        if not api_key:
            raise ValueError("no API key: set the model token (or ANTHROPIC_API_KEY)")
        base_url = self._base_url or os.environ.get("ANTHROPIC_BASE_URL") or DEFAULT_BASE_URL
        shared = self._gateway_http()
        return AnthropicClient(
            shared or httpx2.AsyncClient(timeout=TIMEOUT),
            base_url=base_url,
            api_key=api_key,
            model=self.model,
            max_tokens=self._max_tokens,
            max_retries=self._max_retries,
            owns_http=shared is None,
            over_socket=shared is not None,
        )

    def _http_client(self, transport: httpx2.AsyncHTTPTransport) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(transport=transport, timeout=TIMEOUT)


class _Retryable(Exception):
    """A failed call worth another try; ``delay`` is the server's ``retry-after``, if it gave a usable one."""

    def __init__(self, error: ModelCallError, delay: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.delay = delay


class AnthropicClient:
    """One query's connection to the Messages API (``toolloop.ModelClient``)."""

    def __init__(
        self,
        http: httpx2.AsyncClient,
        *,
        base_url: str,
        api_key: str,
        model: str,
        max_tokens: int,
        max_retries: int = 0,
        owns_http: bool = True,
        over_socket: bool = False,
    ) -> None:
        self.model = model
        self.base_url = base_url
        self._http = http
        self._url = base_url.rstrip("/") + "/v1/messages"
        self._headers = {
            "authorization": f"Bearer {api_key}", "anthropic-version": API_VERSION, "accept": "text/event-stream",
        }
        self._max_tokens = max_tokens
        self._max_retries = max_retries
        self._owns_http = owns_http
        self._over_socket = over_socket
        """Calls go over the gateway's unix socket: a connection failure there means the host is gone."""

    async def aclose(self) -> None:
        """Close the HTTP client, unless it is the provider's shared gateway client."""
        if self._owns_http:
            await self._http.aclose()

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
        attempt = 0
        while True:
            try:
                return await self._call(body, on_delta)
            except _Retryable as retry:
                if attempt >= self._max_retries:
                    raise retry.error from retry.__cause__
                delay = retry.delay if retry.delay is not None else min(0.5 * 2**attempt, MAX_RETRY_DELAY)
                attempt += 1
                await asyncio.sleep(delay * (1 - 0.25 * random.random()))  # noqa: S311 -- jitter, not a secret

    async def _call(self, body: dict[str, Any], on_delta: Callable[[], None]) -> ModelReply:
        try:
            async with self._http.stream("POST", self._url, json=body, headers=self._headers) as response:
                if response.status_code >= 400:
                    raise await _status_error(response)
                return await _read_stream(response, on_delta)
        except httpx2.TimeoutException as exc:
            raise _Retryable(ModelCallError("The model service did not answer in time.")) from exc
        except httpx2.TransportError as exc:
            error = ModelCallError(
                f"Could not reach the model service at {self.base_url}: {exc or type(exc).__name__}",
                gateway_lost=self._over_socket and lost_gateway(exc),
            )
            raise _Retryable(error) from exc


async def _status_error(response: httpx2.Response) -> Exception:
    """The error for an HTTP error answer: ``_Retryable`` when the status (or ``x-should-retry``) says so."""
    raw = await response.aread()
    try:
        parsed: object = json.loads(raw)
    except ValueError:
        parsed = None
    fallback = raw.decode("utf-8", "replace").strip()[:500] or response.reason_phrase
    status = response.status_code
    error = ModelCallError(http_error_message(status, error_detail(parsed, fallback)))
    should = response.headers.get("x-should-retry")
    if should == "false" or (should != "true" and status not in RETRY_STATUSES and status < 500):
        return error
    try:
        after: float | None = float(response.headers.get("retry-after", ""))
    except ValueError:
        after = None
    return _Retryable(error, after if after is not None and 0 < after <= MAX_RETRY_AFTER else None)


async def _read_stream(response: httpx2.Response, on_delta: Callable[[], None]) -> ModelReply:
    """Assemble a streamed message from its server-sent events (each ``data:`` is one JSON event)."""
    blocks: dict[int, dict[str, Any]] = {}
    usage: dict[str, Any] = {}
    stop_reason: str | None = None
    data: list[str] = []
    finished = False
    async for line in response.aiter_lines():
        if line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
            continue
        if line or not data:
            continue  # ``event:`` lines repeat the data's own type; comments and keep-alives carry nothing
        event = json.loads("\n".join(data))
        data = []
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
        raise httpx2.RemoteProtocolError("the answer ended before the message was complete")
    texts: list[str] = []
    calls: list[ToolCall] = []
    for _, block in sorted(blocks.items()):
        if block.get("type") == "text":
            texts.append(block.get("text", ""))
        elif block.get("type") == "tool_use":
            calls.append(_tool_call(block))
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


def _tool_call(block: dict[str, Any]) -> ToolCall:
    """A streamed ``tool_use`` block; arguments that are not a JSON object are reported to the model, not raised."""
    text = block["partial_json"]
    try:
        arguments = json.loads(text) if text else block.get("input", {})
    except ValueError as exc:
        return ToolCall(id=block["id"], name=block["name"], input={}, input_error=f"{exc} in {text!r}")
    if not isinstance(arguments, dict):
        return ToolCall(id=block["id"], name=block["name"], input={}, input_error=f"expected an object, got {text!r}")
    return ToolCall(id=block["id"], name=block["name"], input=arguments)


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
