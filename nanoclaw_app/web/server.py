"""Serve the ASGI app with uvicorn inside the host's own event loop (no second loop, no signal handlers)."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from litestar import Litestar

from nanoclaw_app.errors import ConfigError

log = logging.getLogger(__name__)

GRACEFUL_SECONDS = 3
"""Open responses (a live event stream, a slow upload) get this long to finish when the host stops."""


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handling: the host owns SIGINT/SIGTERM and stops the server in order."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class WebServer:
    """Owns the uvicorn server task; ``port`` is known once started (0 picks a free port).

    With ``uds`` it serves on that unix socket instead of ``host:port`` (the model gateway on Linux): the socket file
    is created with mode 0600 and removed on stop; a stale file from a crashed run is replaced, a live one refused.
    """

    def __init__(self, app: Litestar, host: str, port: int, *, uds: str | None = None, label: str = "web UI") -> None:
        self._app = app
        self._host = host
        self._port = port
        self._uds = uds
        self._label = label
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None
        self.port: int | None = None

    async def start(self) -> None:
        """Bind and serve; raises ``ConfigError`` with a fix when the port (or socket) is taken."""
        if self._uds is not None:
            sock = _bind_unix(self._uds)
        else:
            # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and accepted
            # sockets inherit it; with proto 0 Nagle's algorithm holds small writes up to 40 ms (delayed ACKs).
            family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
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
        config = uvicorn.Config(self._app, log_level="warning", access_log=False, lifespan="on",
                                timeout_graceful_shutdown=GRACEFUL_SECONDS)
        server = _EmbeddedServer(config)
        self._server = server
        self._task = asyncio.create_task(server.serve(sockets=[sock]), name="web-server")
        while not server.started:
            if self._task.done():
                await self._task
                raise ConfigError("the web server stopped while starting; see the log")
            await asyncio.sleep(0.005)
        if self._uds is not None:
            log.info("%s listening on unix socket %s", self._label, self._uds)
        else:
            log.info("%s listening on http://%s:%s/", self._label, self._host, self.port)

    async def stop(self) -> None:
        """Ask uvicorn to exit and wait for it."""
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            await self._task
        self._server = self._task = None
        if self._uds is not None:
            _remove(self._uds)


def _remove(path: str) -> None:
    """Remove our socket file; gone already is fine (a fast unlink, no thread needed)."""
    Path(path).unlink(missing_ok=True)


def _bind_unix(path: str) -> socket.socket:
    """A listening-ready unix socket at ``path``, private to this user (0600)."""
    file = Path(path)
    if file.exists():
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except OSError:
            file.unlink(missing_ok=True)  # nobody answers: left over from a crashed run
        else:
            raise ConfigError(f"{path} is already served by another process; another NanoClaw may be running")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        file.chmod(0o600)
    except OSError as err:
        sock.close()
        raise ConfigError(f"cannot listen on unix socket {path} ({err.strerror})") from err
    return sock
