"""The window app's control listener: how a second launch asks the running one to bring its window forward.

One JSON line in, one JSON line out, over loopback TCP (the same on every OS; Windows has no unix sockets in Python).
Only a caller that read the random token from ``instance.json`` (0600, in the user's 0700 run folder) is answered, so
other users of the machine and web pages in a browser cannot drive it.

Commands: ``show`` (bring the window forward, or say there is none), ``status`` (the assistant's state in words and
whether a tray icon shows) and ``tray`` (do what a click on a tray menu entry does; how tests and scripts drive the
tray without screen coordinates).
"""

from __future__ import annotations

import hmac
import json
import logging
import socket
import socketserver
import threading
from collections.abc import Callable
from typing import Any

from nanoclaw_app.desktop.instance import InstanceRecord

log = logging.getLogger(__name__)

MAX_LINE = 64 * 1024
READ_SECONDS = 5.0

Handler = Callable[[str, dict[str, Any]], dict[str, Any]]


class _Server(socketserver.TCPServer):
    allow_reuse_address = False
    daemon_threads = True

    def __init__(self, token: str, handler: Handler) -> None:
        self.token = token
        self.handler = handler
        super().__init__(("127.0.0.1", 0), _Request)


class _Request(socketserver.StreamRequestHandler):
    timeout = READ_SECONDS
    server: _Server

    def handle(self) -> None:
        try:
            line = self.rfile.readline(MAX_LINE)
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("not an object")
        except (OSError, ValueError) as err:
            log.warning("control: an unreadable request was refused: %s", err)
            return
        token = request.get("token")
        if not isinstance(token, str) or not hmac.compare_digest(token, self.server.token):
            log.warning("control: a request without the right token was refused")
            self._reply({"ok": False, "error": "refused"})
            return
        command = str(request.get("command", ""))
        args = request.get("args")
        try:
            reply = self.server.handler(command, args if isinstance(args, dict) else {})
        except Exception as err:
            log.exception("control: %s failed", command)
            reply = {"ok": False, "error": str(err)}
        self._reply(reply)

    def _reply(self, reply: dict[str, Any]) -> None:
        try:
            self.wfile.write(json.dumps(reply).encode() + b"\n")
        except OSError as err:
            log.info("control: the caller left before the answer: %s", err)


class ControlServer:
    """Serves commands on a thread of its own until :meth:`stop`."""

    def __init__(self, handler: Handler) -> None:
        import secrets

        self.token = secrets.token_urlsafe(32)
        self._server = _Server(self.token, handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.5},
                                        name="nanoclaw-control", daemon=True)

    @property
    def port(self) -> int:
        """The loopback port it listens on."""
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Start answering."""
        self._thread.start()

    def stop(self) -> None:
        """Stop answering and close the socket (idempotent)."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()


def send_command(record: InstanceRecord, command: str, *, timeout: float = 10.0,
                 **args: Any) -> dict[str, Any] | None:
    """Ask the running window app; None when it has no listener or does not answer."""
    if record.port is None or record.token is None:
        return None
    request = json.dumps({"token": record.token, "command": command, "args": args}).encode() + b"\n"
    try:
        with socket.create_connection(("127.0.0.1", record.port), timeout=timeout) as sock:
            sock.sendall(request)
            with sock.makefile("rb") as stream:
                line = stream.readline(MAX_LINE)
    except OSError as err:
        log.info("the running NanoClaw (process %d) did not answer: %s", record.pid, err)
        return None
    try:
        reply = json.loads(line)
    except ValueError:
        return None
    return reply if isinstance(reply, dict) else None
