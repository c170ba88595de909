"""A fake OpenAI-compatible Chat Completions API on 127.0.0.1 (the shape Ollama, LM Studio, vLLM and OpenRouter serve).

Same scripting as ``tests.fakes.anthropic_server``: ``script(...)`` queues replies, then the responder answers; the
default responder echoes the last user text (``"FAKE: ..."``) and mentions tool results when the conversation ends with
``tool`` messages. ``url`` has no ``/v1``; give the OpenAI SDK ``v1_url``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.fakes.anthropic_server import Cut, Fail, Hang, HttpFake, Responder

__all__ = ["USAGE", "Chunks", "Cut", "Fail", "FakeOpenAI", "Hang", "Reply", "Responder", "Text", "ToolCall"]

USAGE = {"prompt_tokens": 26, "completion_tokens": 13, "total_tokens": 39, "cached_tokens": 5}
"""The usage every response reports; ``cached_tokens`` goes into ``prompt_tokens_details``."""


@dataclass
class Text:
    """Assistant text."""

    text: str


@dataclass
class ToolCall:
    """A function tool call; ``id`` is generated when not given."""

    name: str
    arguments: dict[str, Any]
    id: str | None = None


@dataclass
class Chunks:
    """A stream written exactly as given, for shapes the scripted replies never make.

    Each item is one event's ``data`` (a dict is sent as JSON); no ``[DONE]`` is added.
    """

    data: list[dict[str, Any] | str]


Reply = Text | ToolCall | list[Text | ToolCall] | Fail | Hang | Cut | Chunks


def _usage(numbers: dict[str, int]) -> dict[str, Any]:
    return {
        "prompt_tokens": numbers["prompt_tokens"],
        "completion_tokens": numbers["completion_tokens"],
        "total_tokens": numbers["total_tokens"],
        "prompt_tokens_details": {"cached_tokens": numbers["cached_tokens"]},
    }


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content or [] if isinstance(part, dict))


class FakeOpenAI(HttpFake):
    """``POST /v1/chat/completions`` (JSON and SSE chunks) and ``GET /v1/models``; anything else is a recorded 404."""

    model_ids: tuple[str, ...] = ("fake-model",)

    def __init__(
        self, responder: Responder | None = None, *, unix_socket: Path | None = None, prefix: str = ""
    ) -> None:
        super().__init__(responder, unix_socket=unix_socket, prefix=prefix)
        self.usage = dict(USAGE)
        self.stream_usage = True
        """False acts like servers that ignore ``stream_options.include_usage``."""

    @property
    def v1_url(self) -> str:
        """The base URL OpenAI clients expect (with ``/v1``)."""
        return self.url + "/v1"

    def socket_v1_url(self, host: str = "gateway") -> str:
        """``v1_url`` for a client connected to ``unix_socket``."""
        return self.socket_url(host) + "/v1"

    def default_reply(self, body: dict[str, Any]) -> Any:
        """Echo the last user text, or mention the tool results the conversation ends with."""
        messages = body.get("messages", [])
        results: list[str] = []
        for message in reversed(messages):
            if message.get("role") != "tool":
                break
            results.insert(0, _text_of(message.get("content")))
        if results:
            return Text("FAKE: tool result: " + " | ".join(results))
        for message in reversed(messages):
            if message.get("role") == "user":
                return Text("FAKE: " + _text_of(message.get("content")))
        return Text("FAKE: ")

    def routes(self) -> dict[tuple[str, str], Callable[[web.Request], Awaitable[web.StreamResponse]]]:
        return {("POST", "/v1/chat/completions"): self._completions, ("GET", "/v1/models"): self._models}

    def not_found_response(self, path: str) -> web.Response:
        return _error(404, f"fake server has no {path}")

    async def _models(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {
                "object": "list",
                "data": [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.model_ids],
            }
        )

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        body = await self.record(request)
        reply = await self.next_reply(body)
        if isinstance(reply, Fail):
            return _error(reply.status, reply.message, reply.headers)
        if isinstance(reply, Chunks):
            data = [item if isinstance(item, str) else json.dumps(item) for item in reply.data]
            return await self.sse(request, [f"data: {item}\n\n" for item in data])
        reply, events = (reply.reply, reply.events) if isinstance(reply, Cut) else (reply, None)
        items = reply if isinstance(reply, list) else [reply]
        text = "".join(item.text for item in items if isinstance(item, Text))
        calls: list[dict[str, Any]] = [
            {
                "id": item.id or self.new_id("call_fake_"),
                "type": "function",
                "function": {"name": item.name, "arguments": json.dumps(item.arguments)},
            }
            for item in items
            if isinstance(item, ToolCall)
        ]
        if any(not isinstance(item, Text | ToolCall) for item in items):
            raise TypeError(f"not an OpenAI reply: {reply!r}")
        finish = "tool_calls" if calls else "stop"
        completion_id = self.new_id("chatcmpl-fake-")
        model = str(body.get("model", "fake-model"))
        created = int(time.time())
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": text or None}
            if calls:
                message["tool_calls"] = calls
            return web.json_response(
                {
                    "id": completion_id,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
                    "usage": _usage(self.usage),
                }
            )
        include_usage = self.stream_usage and bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(delta: dict[str, Any] | None, finish_reason: str | None = None, **extra: Any) -> str:
            choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish_reason}]
            data = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": choices,
                **extra,
            }
            return f"data: {json.dumps(data)}\n\n"

        chunks = [chunk({"role": "assistant", "content": ""})]
        if text:
            middle = len(text) // 2
            chunks.extend(chunk({"content": piece}) for piece in (text[:middle], text[middle:]) if piece)
        for index, call in enumerate(calls):
            arguments = call["function"]["arguments"]
            middle = len(arguments) // 2
            chunks.append(
                chunk(
                    {
                        "tool_calls": [
                            {
                                "index": index,
                                "id": call["id"],
                                "type": "function",
                                "function": {"name": call["function"]["name"], "arguments": ""},
                            }
                        ]
                    }
                )
            )
            chunks.extend(
                chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
                for piece in (arguments[:middle], arguments[middle:])
                if piece
            )
        chunks.append(chunk({}, finish))
        if include_usage:
            chunks.append(chunk(None, usage=_usage(self.usage)))
        chunks.append("data: [DONE]\n\n")
        return await self.sse(request, chunks[:events])


_ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_api_key", 404: "not_found", 429: "rate_limit_exceeded"}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    kind = _ERROR_TYPES.get(status, "server_error")
    return web.json_response(
        {"error": {"message": message, "type": kind, "param": None, "code": kind}}, status=status, headers=headers
    )
