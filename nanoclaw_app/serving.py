"""Serve an ASGI app (the web app, the model gateway) with uvicorn inside the host's own event loop.

No second loop and no signal handlers: the host owns both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import uvicorn
from litestar import Litestar

from nanoclaw_app.errors import ConfigError
from nanoclaw_app.tls import ensure_certificate

log = logging.getLogger(__name__)

GRACEFUL_SECONDS = 3
"""Open responses (a live event stream, a slow upload) get this long to finish when the host stops."""
TICK_SECONDS = 0.1
"""uvicorn's own tick: the Date header is refreshed every ten of them."""


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handling: the host owns SIGINT/SIGTERM and stops the server in order.

    Its tick loop also wakes at once when asked to exit, rather than at the next tenth of a second: the app, the
    gateway and the LAN server each stop in turn, so quitting (and every test's host) would wait for each tick.
    """

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._exit_now: asyncio.Event | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def main_loop(self) -> None:
        self._exit_now = asyncio.Event()
        if self.should_exit:
            self._exit_now.set()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exit_now.wait(), TICK_SECONDS)
            should_exit = await self.on_tick(counter)

    def exit_now(self) -> None:
        """Ask the server to stop serving and wake its loop to notice."""
        self.should_exit = True
        if self._exit_now is not None:
            self._exit_now.set()


class WebServer:
    """Owns the uvicorn server task; ``port`` is known once started (0 picks a free port).

    With ``uds`` it serves on that unix socket instead of ``host:port`` (the model gateway on Linux): the socket file
    is created with mode 0600 and removed on stop; a stale file from a crashed run is replaced, a live one refused.
    With ``tls_home`` it serves HTTPS with the install's certificate kept there (made on first start).
    """

    def __init__(self, app: Litestar, host: str, port: int, *, uds: str | None = None, label: str = "web UI",
                 tls_home: Path | None = None) -> None:
        self._app = app
        self._host = host
        self._port = port
        self._uds = uds
        self._label = label
        self._tls_home = tls_home
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None
        self.port: int | None = None

    async def start(self) -> None:
        """Bind and serve; raises ``ConfigError`` with a fix when the port (or socket) is taken."""
        if self._uds is not None:
            sock = bind_unix(self._uds)
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
        certfile = keyfile = None
        if self._tls_home is not None:
            try:
                cert = ensure_certificate(self._tls_home)
            except (OSError, ValueError) as err:
                sock.close()
                raise ConfigError(f"cannot make or read the HTTPS certificate in {self._tls_home} ({err}); "
                                  "check that folder, or turn HTTPS for LAN access off in Settings") from err
            certfile, keyfile = str(cert.cert_file), str(cert.key_file)
            log.info("%s certificate SHA-256 fingerprint %s", self._label, cert.fingerprint)
        config = uvicorn.Config(self._app, log_level="warning", access_log=False, lifespan="on",
                                timeout_graceful_shutdown=GRACEFUL_SECONDS, ssl_certfile=certfile, ssl_keyfile=keyfile)
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
            scheme = "https" if self._tls_home is not None else "http"
            log.info("%s listening on %s://%s:%s/", self._label, scheme, self._host, self.port)

    async def add_listener(self, sock: socket.socket, app: Callable[..., Awaitable[None]]) -> asyncio.Server:
        """Serve ``app`` on one more listening socket, as part of this running server, until the result is closed.

        The model gateway opens one per container, so what a request may do can depend on where it came in. The
        listener costs no task of its own, and its connections are this server's: ``stop()`` ends them too. Its
        config only carries ``app``; protocol, headers and the shared connection state are the running server's.
        """
        server = self._server
        if server is None or not server.started:
            sock.close()
            raise ConfigError(f"the {self._label} is not running")
        main = server.config
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off", proxy_headers=False,
                                ws="none", http=main.http, timeout_keep_alive=main.timeout_keep_alive)
        config.load()
        state = server.server_state

        def protocol() -> asyncio.Protocol:
            return config.http_protocol_class(config=config, server_state=state, app_state={})  # type: ignore[call-arg]

        try:
            return await asyncio.get_running_loop().create_server(protocol, sock=sock)
        except BaseException:
            sock.close()
            raise

    async def stop(self) -> None:
        """Ask uvicorn to exit and wait for it."""
        if self._server is not None:
            self._server.exit_now()
        if self._task is not None:
            await self._task
        self._server = self._task = None
        if self._uds is not None:
            _remove(self._uds)


def _remove(path: str) -> None:
    """Remove our socket file; gone already is fine (a fast unlink, no thread needed)."""
    Path(path).unlink(missing_ok=True)


def bind_loopback() -> socket.socket:
    """A listening-ready socket on a free port of 127.0.0.1 (``IPPROTO_TCP``: see ``start``)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.bind(("127.0.0.1", 0))
    except OSError as err:
        sock.close()
        raise ConfigError(f"cannot listen on a free port of 127.0.0.1 ({err.strerror})") from err
    return sock


def bind_unix(path: str) -> socket.socket:
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
