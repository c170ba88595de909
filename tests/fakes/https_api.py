"""A fake third-party HTTPS API on 127.0.0.1 with a CA of its own, standing in for GitHub, Vercel and the like.

A real aiohttp server (its own HTTP parser, not the proxy's), so what arrives is what a service would see:

- any path: the request echoed as JSON (method, path, query, lower-cased headers, body length and SHA-256);
- ``/chunked``: a chunked answer in three parts; ``/big?n=BYTES``: a body of that length, sent in pieces;
- ``/status/<code>``: an empty answer with that status; ``/sse``: server-sent events, the second one only after
  ``release_sse()`` (so a test sees the first arrive while the stream is still open); ``/ws``: a WebSocket echo.

Every request is recorded with the client port it came from, so a test can count the connections the proxy opened.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

from aiohttp import web

from nanoclaw_app.egress.ca import CERT_FILE, EgressCA

PATTERN = b"0123456789abcdef"


class FakeHttpsApi:
    """``await start()``, then ``url``/``port``; ``ca_file`` is the PEM a client must trust to reach it directly."""

    def __init__(self, *, tls: bool = True, host: str = "127.0.0.1") -> None:
        self._tls = tls
        self.host = host
        """Any loopback address; ``127.0.0.2`` is one the agent's ``NO_PROXY`` (``127.0.0.1``) does not cover."""
        self._tmp = tempfile.TemporaryDirectory(prefix="fake-https-")
        self.ca_file = Path(self._tmp.name) / CERT_FILE
        self.requests: list[dict[str, Any]] = []
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._sse_release = asyncio.Event()

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        context = EgressCA(Path(self._tmp.name)).context_for(self.host) if self._tls else None
        site = web.TCPSite(self._runner, self.host, 0, ssl_context=context)
        await site.start()
        self.port = next(int(address[1]) for address in self._runner.addresses if isinstance(address, tuple))

    async def stop(self) -> None:
        self._sse_release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._tmp.cleanup()

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://{self.host}:{self.port}"

    def release_sse(self) -> None:
        self._sse_release.set()

    @property
    def connections(self) -> set[int]:
        """The client ports requests came from: one per connection."""
        return {request["peer_port"] for request in self.requests}

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/ws":
            return await self._ws(request)
        body = await request.read()
        peer = request.transport.get_extra_info("peername") if request.transport is not None else None
        seen = {
            "method": request.method, "path": request.path, "query": request.query_string,
            "headers": {key.lower(): value for key, value in request.headers.items()},
            "body_len": len(body), "body_sha256": hashlib.sha256(body).hexdigest(),
            "chunked": request.headers.get("Transfer-Encoding", "").lower() == "chunked",
            "peer_port": peer[1] if peer else 0,
        }
        self.requests.append(seen)
        if request.path == "/chunked":
            response = web.StreamResponse(headers={"Content-Type": "text/plain"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            for part in (b"one,", b"two,", b"three"):
                await response.write(part)
            await response.write_eof()
            return response
        if request.path == "/big":
            return await self._big(request, int(request.query.get("n", "0")))
        if request.path.startswith("/status/"):
            return web.Response(status=int(request.path.rsplit("/", 1)[1]))
        if request.path == "/sse":
            return await self._sse(request)
        return web.json_response(seen)

    async def _big(self, request: web.Request, size: int) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = size
        await response.prepare(request)
        piece = PATTERN * 4096
        sent = 0
        while sent < size:
            part = piece[: size - sent]
            await response.write(part)
            sent += len(part)
        await response.write_eof()
        return response

    async def _sse(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        await response.write(b"data: first\n\n")
        await self._sse_release.wait()
        await response.write(b"data: second\n\n")
        await response.write(b"data: done\n\n")
        await response.write_eof()
        return response

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        self.requests.append({"method": request.method, "path": request.path, "query": request.query_string,
                              "headers": {key.lower(): value for key, value in request.headers.items()},
                              "peer_port": 0})
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            if message.type == web.WSMsgType.TEXT:
                await ws.send_str("echo:" + message.data)
        return ws


def echo(data: bytes) -> dict[str, Any]:
    """The echo JSON of a response body."""
    result: dict[str, Any] = json.loads(data)
    return result
