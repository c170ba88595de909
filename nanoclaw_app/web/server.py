"""Serve the ASGI app with uvicorn inside the host's own event loop (no second loop, no signal handlers)."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from litestar import Litestar

from nanoclaw_app.errors import ConfigError

log = logging.getLogger(__name__)


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handling: the host owns SIGINT/SIGTERM and stops the server in order."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class WebServer:
    """Owns the uvicorn server task; ``port`` is known once started (0 picks a free port)."""

    def __init__(self, app: Litestar, host: str, port: int) -> None:
        self._app = app
        self._host = host
        self._port = port
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None
        self.port: int | None = None

    async def start(self) -> None:
        """Bind and serve; raises ``ConfigError`` with a fix when the port is taken."""
        sock = socket.socket(socket.AF_INET6 if ":" in self._host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self._host, self._port))
        except OSError as err:
            sock.close()
            raise ConfigError(
                f"cannot listen on {self._host}:{self._port} ({err.strerror}); "
                "another NanoClaw may be running, or choose another port with --port"
            ) from err
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self._app, log_level="warning", access_log=False, lifespan="on")
        server = _EmbeddedServer(config)
        self._server = server
        self._task = asyncio.create_task(server.serve(sockets=[sock]), name="web-server")
        while not server.started:
            if self._task.done():
                await self._task
                raise ConfigError("the web server stopped while starting; see the log")
            await asyncio.sleep(0.005)
        log.info("web UI listening on http://%s:%s/", self._host, self.port)

    async def stop(self) -> None:
        """Ask uvicorn to exit and wait for it."""
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            await self._task
        self._server = self._task = None
