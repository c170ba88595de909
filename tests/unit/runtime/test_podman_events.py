"""Container exits are followed over a ``tcp://`` engine too (the app's relay to a Windows machine's named pipe)."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from nanoclaw_app.runtime.podman_api import PodmanApi


async def test_exit_events_stream_from_a_tcp_engine() -> None:
    died = {"Type": "container", "Action": "died",
            "Actor": {"Attributes": {"name": "nanoclaw-x-s1-1", "containerExitCode": "3", "io.nanoclaw.session": "s1"}}}
    asked: list[str] = []
    done = asyncio.Event()

    async def events(request: web.Request) -> web.StreamResponse:
        asked.append(request.query.get("filters", ""))
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write((json.dumps(died) + "\n").encode())
        await done.wait()  # a live stream stays open
        return response

    app = web.Application()
    app.router.add_get("/v4.0.0/libpod/events", events)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    api = PodmanApi(f"tcp://127.0.0.1:{port}")
    try:
        stream = api.exits({"io.nanoclaw.install": "x"})
        async with asyncio.timeout(10):
            event = await anext(stream)
        await stream.aclose()
    finally:
        done.set()
        await api.close()
        await runner.cleanup()

    assert (event.name, event.exit_code, event.labels["io.nanoclaw.session"]) == ("nanoclaw-x-s1-1", 3, "s1")
    assert "io.nanoclaw.install=x" in asked[0]
