"""A fake Anthropic Messages API on 127.0.0.1: real HTTP, scripted replies, every request recorded.

Real providers (the ``anthropic`` SDK, the claude CLI) talk to it unchanged through ``base_url``, so the tests cover the
actual wire code. Replies come from a queue filled with ``script(...)`` and then from the responder; the default
responder echoes the last user text (``"FAKE: ..."``) and mentions a tool result when the last user turn holds one.

Use it from async tests or fixtures::

    fake = FakeAnthropic()
    await fake.start()
    ...  # AsyncAnthropic(base_url=fake.url, api_key="k")
    await fake.stop()

To stand in for the host's model gateway as a container sees it on Linux, give ``unix_socket=path``: the server then
also listens on that unix socket (clients reach it with any host name in the URL, e.g. ``http://gateway``), and
``prefix="/anthropic"`` serves the API under a route prefix as the gateway does.

The ``HttpFake`` base class is shared with ``tests.fakes.openai_server``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

USAGE = {
    "input_tokens": 21,
    "output_tokens": 13,
    "cache_read_input_tokens": 5,
    "cache_creation_input_tokens": 3,
}
"""The usage every response reports (tests assert these numbers)."""


@dataclass
class Text:
    """An assistant text block."""

    text: str


@dataclass
class ToolUse:
    """An assistant ``tool_use`` block; ``id`` is generated when not given."""

    name: str
    input: dict[str, Any]
    id: str | None = None


@dataclass
class Fail:
    """An HTTP error response in the API's error shape; ``headers`` such as ``retry-after-ms`` or ``x-should-retry``."""

    status: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Cut:
    """Stream ``reply`` but end the response after its first ``events`` events, with no end marker."""

    reply: Any
    events: int


@dataclass
class Hang:
    """Hold the request open until ``release()`` or ``stop()``; then answer with ``then`` (or the responder)."""

    then: Any = None


Reply = Text | ToolUse | list[Text | ToolUse] | Fail | Hang | Cut
Responder = Callable[[dict[str, Any]], Any]
"""Called with the request body; returns a ``Reply`` (or an awaitable of one)."""


class HttpFake:
    """An aiohttp server on 127.0.0.1 with a random port (and optionally a unix socket), recording requests, with a
    prompt ``stop()``."""

    def __init__(
        self, responder: Responder | None = None, *, unix_socket: Path | None = None, prefix: str = ""
    ) -> None:
        self.responder: Responder = responder or self.default_reply
        self.unix_socket = unix_socket
        """Also listen here when set (the gateway socket a container gets)."""
        self.prefix = prefix.rstrip("/")
        """Routes are served under this path prefix; other paths are recorded 404s."""
        self.requests: list[dict[str, Any]] = []
        """JSON bodies of the model calls, in order."""
        self.headers: list[dict[str, str]] = []
        """Lower-cased headers of the model calls, parallel to ``requests``."""
        self.calls: list[tuple[str, str]] = []
        """``(method, path)`` of every request, including unknown paths."""
        self.via: list[str] = []
        """``"tcp"`` or ``"unix"`` for every request, parallel to ``calls``: which listener it came in on."""
        self.not_found: list[str] = []
        """Paths answered with 404 (e.g. the claude CLI's extra calls)."""
        self.usage = dict(USAGE)
        self._queue: list[Any] = []
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._stopping = asyncio.Event()
        self._release = asyncio.Event()
        self._changed = asyncio.Condition()
        self._ids = itertools.count(1)

    # -- lifecycle -------------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1, and on ``unix_socket`` when set."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = next(int(address[1]) for address in self._runner.addresses if isinstance(address, tuple))
        if self.unix_socket is not None:
            await web.UnixSite(self._runner, str(self.unix_socket)).start()

    async def stop(self) -> None:
        """Wake held requests and close the server (removing its unix socket)."""
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.unix_socket is not None:
            self.unix_socket.unlink(missing_ok=True)

    async def __aenter__(self) -> HttpFake:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """Base URL over TCP, with the prefix and without ``/v1`` (what the SDKs take as ``base_url`` for Anthropic)."""
        return f"http://127.0.0.1:{self._port}{self.prefix}"

    def socket_url(self, host: str = "gateway") -> str:
        """Base URL for a client connected to ``unix_socket``: the host name is only a label there."""
        return f"http://{host}{self.prefix}"

    # -- scripting -------------------------------------------------------------------------------------------------

    def script(self, *replies: Any) -> None:
        """Queue replies, used in order before falling back to the responder."""
        self._queue.extend(replies)

    def release(self) -> None:
        """Let every ``Hang`` reply (held now or later) answer."""
        self._release.set()

    async def wait_for_requests(self, count: int, timeout: float = 10.0) -> None:
        """Wait until at least ``count`` model calls were received."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(self.requests) >= count)

    def default_reply(self, body: dict[str, Any]) -> Any:
        """Overridden per API."""
        raise NotImplementedError

    def new_id(self, prefix: str) -> str:
        """A unique id for messages and tool calls."""
        return f"{prefix}{next(self._ids):04d}"

    # -- plumbing --------------------------------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        self.calls.append((request.method, request.path))
        sockname = request.transport.get_extra_info("sockname") if request.transport is not None else None
        self.via.append("unix" if isinstance(sockname, str) else "tcp")
        path = request.path
        if self.prefix:
            path = path[len(self.prefix):] if path.startswith(self.prefix + "/") else ""
        handler = self.routes().get((request.method, path))
        if handler is None:
            self.not_found.append(request.path)
            log.info("fake server: no route for %s %s", request.method, request.path)
            return self.not_found_response(request.path)
        return await handler(request)

    def routes(self) -> dict[tuple[str, str], Callable[[web.Request], Awaitable[web.StreamResponse]]]:
        """Overridden per API."""
        return {}

    def not_found_response(self, path: str) -> web.Response:
        """Overridden per API."""
        return web.json_response({"error": f"not found: {path}"}, status=404)

    async def record(self, request: web.Request) -> dict[str, Any]:
        """Parse and record a model call's body and headers."""
        body: dict[str, Any] = await request.json()
        async with self._changed:
            self.requests.append(body)
            self.headers.append({k.lower(): v for k, v in request.headers.items()})
            self._changed.notify_all()
        return body

    async def next_reply(self, body: dict[str, Any]) -> Any:
        """The scripted reply, else the responder's; ``Hang`` waits here."""
        reply = self._queue.pop(0) if self._queue else self.responder(body)
        if inspect.isawaitable(reply):
            reply = await reply
        while isinstance(reply, Hang):
            await self._wait_released()
            if self._stopping.is_set():
                return Fail(503, "fake server stopping")
            reply = reply.then if reply.then is not None else self.responder(body)
            if inspect.isawaitable(reply):
                reply = await reply
        return reply

    async def _wait_released(self) -> None:
        waiters = [asyncio.create_task(self._stopping.wait()), asyncio.create_task(self._release.wait())]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waiters:
                task.cancel()
            for task in waiters:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    @staticmethod
    async def sse(request: web.Request, chunks: AsyncIterator[str] | list[str]) -> web.StreamResponse:
        """Write pre-formatted SSE chunks."""
        response = web.StreamResponse(
            status=200, headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        if isinstance(chunks, list):
            for chunk in chunks:
                await response.write(chunk.encode())
        else:
            async for chunk in chunks:
                await response.write(chunk.encode())
        await response.write_eof()
        return response


def _blocks(reply: Any) -> list[Text | ToolUse]:
    items = reply if isinstance(reply, list) else [reply]
    for item in items:
        if not isinstance(item, Text | ToolUse):
            raise TypeError(f"not an Anthropic reply block: {item!r}")
    return items


_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def last_user_content(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The blocks of the last user message (a string content becomes one text block)."""
    for message in reversed(body.get("messages", [])):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return [{"type": "text", "text": content}]
            return list(content or [])
    return []


def _result_text(block: dict[str, Any]) -> str:
    content = block.get("content")
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content or [] if isinstance(part, dict))


class FakeAnthropic(HttpFake):
    """``POST /v1/messages`` (JSON and SSE) and ``POST /v1/messages/count_tokens``; anything else is a recorded 404."""

    def default_reply(self, body: dict[str, Any]) -> Any:
        """Echo the last user text, or mention the tool result the model was given."""
        blocks = last_user_content(body)
        results = [b for b in blocks if b.get("type") == "tool_result"]
        if results:
            return Text("FAKE: tool result: " + " | ".join(_result_text(b) for b in results))
        texts = [b.get("text", "") for b in blocks if b.get("type") == "text"]
        return Text("FAKE: " + (texts[-1] if texts else ""))

    def routes(self) -> dict[tuple[str, str], Callable[[web.Request], Awaitable[web.StreamResponse]]]:
        return {("POST", "/v1/messages"): self._messages, ("POST", "/v1/messages/count_tokens"): self._count_tokens}

    def not_found_response(self, path: str) -> web.Response:
        return _error(404, f"fake server has no {path}")

    async def _count_tokens(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        return web.json_response({"input_tokens": max(1, len(json.dumps(body)) // 4)})

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body = await self.record(request)
        reply = await self.next_reply(body)
        if isinstance(reply, Fail):
            return _error(reply.status, reply.message, reply.headers)
        reply, events = (reply.reply, reply.events) if isinstance(reply, Cut) else (reply, None)
        blocks = [self._block(b) for b in _blocks(reply)]
        stop_reason = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
        message_id = self.new_id("msg_fake_")
        model = str(body.get("model", "fake-model"))
        if not body.get("stream"):
            return web.json_response(
                {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": blocks,
                    "stop_reason": stop_reason,
                    "stop_sequence": None,
                    "usage": dict(self.usage),
                }
            )
        return await self.sse(request, self._stream(message_id, model, blocks, stop_reason)[:events])

    def _block(self, item: Text | ToolUse) -> dict[str, Any]:
        if isinstance(item, Text):
            return {"type": "text", "text": item.text}
        return {"type": "tool_use", "id": item.id or self.new_id("toolu_fake_"), "name": item.name, "input": item.input}

    def _stream(self, message_id: str, model: str, blocks: list[dict[str, Any]], stop_reason: str) -> list[str]:
        start_usage = dict(self.usage, output_tokens=1)
        events: list[tuple[str, dict[str, Any]]] = [
            (
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": message_id,
                        "type": "message",
                        "role": "assistant",
                        "model": model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": start_usage,
                    },
                },
            )
        ]
        for index, block in enumerate(blocks):
            if block["type"] == "text":
                events.append(
                    (
                        "content_block_start",
                        {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
                    )
                )
                deltas = [{"type": "text_delta", "text": piece} for piece in _split(block["text"])]
            else:
                events.append(
                    (
                        "content_block_start",
                        {
                            "type": "content_block_start",
                            "index": index,
                            "content_block": {**block, "input": {}},
                        },
                    )
                )
                deltas = [
                    {"type": "input_json_delta", "partial_json": piece} for piece in _split(json.dumps(block["input"]))
                ]
            events.extend(
                ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
                for delta in deltas
            )
            events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        events.append(
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                    "usage": dict(self.usage),
                },
            )
        )
        events.append(("message_stop", {"type": "message_stop"}))
        return [f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events]


def _split(text: str) -> list[str]:
    """Two or more pieces, so clients see several deltas."""
    if len(text) < 2:
        return [text]
    middle = len(text) // 2
    return [text[:middle], text[middle:]]


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    kind = _ERROR_TYPES.get(status, "api_error")
    body = {"type": "error", "error": {"type": kind, "message": message}}
    return web.json_response(body, status=status, headers=headers)
