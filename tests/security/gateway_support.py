"""What the model gateway attack tests share: an upstream that echoes headers, and HTTP sent byte for byte.

The attacks need request lines no HTTP client sends (clients normalise ``/openai/../x`` away), so requests are written
to the socket as raw bytes. The same request code runs on the host (``raw_call``) and inside a container
(``CONTAINER_SCRIPT``, stdlib only, run with ``podman exec``).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from aiohttp import web

from tests.fakes.anthropic_server import Responder
from tests.fakes.openai_server import FakeOpenAI

MODEL_BODY = json.dumps({"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]})

TRAVERSALS = [
    "/openai/../_calls",
    "/openai/%2e%2e/_calls",
    "/openai/%2E%2E/%2E%2E/_calls",
    "/openai/chat/completions/../../_calls",
    "/openai/./chat/completions",
    "/openai/chat%2Fcompletions",
    "/openai/chat%2fcompletions",
    "/openai//chat/completions",
    "/openai/chat\\completions",
    "/anthropic/../_calls",
    "/anthropic/v1/messages/..%2F..%2F_calls",
    "/anthropic/v1%2Fmessages",
]
"""Request targets that leave the upstream's base path, or that a server may decode into another path."""

UNLISTED = [
    ("POST", "/openai/embeddings"),
    ("POST", "/openai/files"),
    ("POST", "/openai/responses"),
    ("GET", "/openai/models/fake-model"),
    ("POST", "/anthropic/v1/messages/batches"),
    ("GET", "/anthropic/v1/files"),
    ("GET", "/anthropic/v1/models"),
]
"""Real endpoints of both APIs that no model client of ours calls (files, batches bypass the metering)."""

WRONG_METHODS = [
    ("DELETE", "/openai/chat/completions"),
    ("GET", "/openai/chat/completions"),
    ("PUT", "/openai/models"),
    ("GET", "/anthropic/v1/messages"),
    ("DELETE", "/anthropic/v1/messages"),
]


class HeaderEcho(FakeOpenAI):
    """An OpenAI-compatible fake that answers any path it does not serve by echoing the request's headers.

    Servers that reflect headers exist (debug endpoints, httpbin-like pages on the same host): a key the gateway
    forwarded to such a path would come straight back to the container. ``echoed`` lists what reached it that way.
    """

    def __init__(self, responder: Responder | None = None) -> None:
        super().__init__(responder)
        self.echoed: list[tuple[str, str]] = []

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if (request.method, request.path) in self.routes():
            return await super()._dispatch(request)
        self.echoed.append((request.method, request.path_qs))
        return web.json_response({"method": request.method, "path": request.path_qs,
                                  "headers": dict(request.headers)})


async def raw_call(where: Path | int, method: str, target: str, token: str, body: str = "") -> tuple[int, str]:
    """Send one request exactly as written to a unix socket (a Path) or a loopback port; (status, whole reply)."""
    if isinstance(where, Path):
        reader, writer = await asyncio.open_unix_connection(str(where))
    else:
        reader, writer = await asyncio.open_connection("127.0.0.1", where)
    try:
        writer.write(_request(method, target, token, body))
        await writer.drain()
        async with asyncio.timeout(30):
            reply = await reader.read(-1)
    finally:
        writer.close()
    text = reply.decode("latin-1")
    return int(text.split(" ", 2)[1]), text


def _request(method: str, target: str, token: str, body: str) -> bytes:
    data = body.encode()
    head = (f"{method} {target} HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {token}\r\nx-api-key: {token}\r\n"
            f"anthropic-version: 2023-06-01\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
            "Connection: close\r\n\r\n")
    return head.encode() + data


CONTAINER_SCRIPT = r"""
import json, os, socket, sys
token = sys.argv[1] or os.environ["NANOCLAW_MODEL_TOKEN"]
for method, target, body in json.loads(sys.argv[2]):
    data = body.encode()
    head = (f"{method} {target} HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {token}\r\nx-api-key: {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\nConnection: close\r\n\r\n")
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(30)
    conn.connect(os.environ["NANOCLAW_GATEWAY_SOCKET"])
    conn.sendall(head.encode() + data)
    reply = b""
    while chunk := conn.recv(65536):
        reply += chunk
    conn.close()
    text = reply.decode("latin-1")
    print(json.dumps({"target": target, "status": int(text.split(" ", 2)[1]), "reply": text}))
"""
"""Run as ``python -c CONTAINER_SCRIPT <token or ''> <json [[method, target, body], ...]>`` inside a container: each
request goes over the container's own gateway socket, with its own token unless another is given."""
