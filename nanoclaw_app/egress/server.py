"""The egress proxy component: a listener of its own for every agent container, which is how it knows who asks.

Like the model gateway, every container gets its own unix socket (bind-mounted into it alone, under ``--network
none``) or loopback port; the ``Caller`` of a connection is the listener's, never anything the client sends. ``revoke``
closes the listener and cuts the connections it accepted. At start the component loads (or makes) the install CA and
writes the bundle of trusted CAs the containers get: the public ones, the network's own, and ours.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import ssl
import tempfile
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import certifi

from nanoclaw_app.egress.addresses import own_addresses
from nanoclaw_app.egress.ca import EgressCA
from nanoclaw_app.egress.caller_token import new_token
from nanoclaw_app.egress.http1 import MAX_HEAD
from nanoclaw_app.egress.mitm import Limits
from nanoclaw_app.egress.policy import Caller, EgressPolicy
from nanoclaw_app.egress.proxy import EgressProxy
from nanoclaw_app.egress.tunnel import NetworkProxy
from nanoclaw_app.errors import ConfigError
from nanoclaw_app.runtime.image import read_ca_certificates
from nanoclaw_app.serving import bind_loopback, bind_unix

log = logging.getLogger(__name__)

BUNDLE_FILE = "ca-bundle.crt"


@dataclass(frozen=True, slots=True)
class EgressAccess:
    """What ``attach`` gives one container: the only listener whose connections count as that container's."""

    socket_path: Path | None
    """Its socket file on the host (unix transport), to bind-mount into that container alone."""
    port: int | None
    """Its own port on 127.0.0.1 (tcp transport)."""
    token: str | None = None
    """With a port: the password every request there must carry (see ``caller_token``)."""


@dataclass(slots=True)
class _Listener:
    server: asyncio.Server
    socket_path: Path | None
    connections: set[asyncio.Task[None]] = field(default_factory=set)


class EgressServer:
    """Owns the proxy, its listeners and every connection task they run."""

    def __init__(self, policy: EgressPolicy, *, ca_folder: Path, run_dir: Path, transport: Literal["unix", "tcp"],
                 exceptions: Collection[str] = (), extra_ca_file: str = "", upstream_ca_file: str = "",
                 network_proxy: str = "", limits: Limits | None = None) -> None:
        self._policy = policy
        self._ca_folder = ca_folder
        self._dir = run_dir / "egress"
        """Sockets (short names: unix paths are limited to ~100 bytes) and the CA bundle; host-only."""
        self._transport = transport
        self._exceptions = tuple(exceptions)
        self._extra_ca_file = extra_ca_file
        """The network's own CAs: trusted by the containers and by the proxy."""
        self._upstream_ca_file = upstream_ca_file
        self._network_proxy = NetworkProxy.from_url(network_proxy) if network_proxy else None
        """The network's own proxy (the host's ``HTTPS_PROXY``), through which every connection out goes."""
        """CAs only the proxy trusts, for services that have a credential (a home server's own certificate)."""
        self._limits = limits or Limits()
        self._ca: EgressCA | None = None
        self._proxy: EgressProxy | None = None
        self._listeners: dict[str, list[_Listener]] = {}

    async def start(self) -> None:
        """Load or make the CA, write the bundle, build the verifying context once; ``ConfigError`` when unusable."""
        if self._proxy is not None:
            return
        ca, upstream = self._prepare()
        own = await own_addresses()
        self._ca = ca
        self._proxy = EgressProxy(self._policy, ca, upstream, exceptions=self._exceptions, own_addresses=own,
                                  limits=self._limits, network_proxy=self._network_proxy)
        log.info("egress proxy ready (%s listeners, CA in %s)", self._transport, self._ca_folder)

    def _prepare(self) -> tuple[EgressCA, ssl.SSLContext]:
        """The CA, the context that verifies services, the bundle file and an emptied socket folder (~60 ms, once)."""
        extra = read_ca_certificates(self._extra_ca_file)
        services = read_ca_certificates(self._upstream_ca_file)
        try:
            ca = EgressCA(self._ca_folder)
            upstream = ssl.create_default_context(cafile=certifi.where())
            for cert in [*extra, *services]:
                upstream.load_verify_locations(cadata=cert.decode("ascii"))
            upstream.set_alpn_protocols(["http/1.1"])
            self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._dir.chmod(0o700)
            for stale in self._dir.glob("*.sock"):
                stale.unlink(missing_ok=True)
            _write_bundle(self._dir / BUNDLE_FILE, Path(certifi.where()).read_bytes(), extra, ca.cert_pem)
        except OSError as err:
            raise ConfigError(f"cannot prepare the egress proxy's files ({err}); check the folders "
                              f"{self._ca_folder} and {self._dir}") from err
        return ca, upstream

    async def stop(self) -> None:
        """Close every listener and end every connection; idempotent."""
        self._proxy = None
        sessions = list(self._listeners)
        tasks = [task for session in sessions for listener in self._listeners[session]
                 for task in listener.connections]
        for session in sessions:
            self.revoke(session)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    @property
    def ca_pem(self) -> bytes:
        """The install CA certificate (PEM), which the agents' tools must trust."""
        if self._ca is None:
            raise ConfigError("the egress proxy is not started")
        return self._ca.cert_pem

    @property
    def bundle_path(self) -> Path:
        """Public CAs, the configured extra CAs and the install CA in one PEM file (0644), written by ``start``."""
        return self._dir / BUNDLE_FILE

    @property
    def transport(self) -> Literal["unix", "tcp"]:
        """``unix`` or ``tcp``, fixed at construction."""
        return self._transport

    async def attach(self, session_id: str, agent_group_id: str) -> EgressAccess:
        """A listener for one container start of ``session_id``: whatever connects there is that container."""
        proxy = self._proxy
        if proxy is None:
            raise ConfigError("the egress proxy is not started; restart NanoClaw")
        caller = Caller(session_id=session_id, agent_group_id=agent_group_id)
        path = self._dir / f"{secrets.token_hex(4)}.sock" if self._transport == "unix" else None
        sock = bind_unix(str(path)) if path is not None else bind_loopback()
        port = None if path is not None else int(sock.getsockname()[1])
        token = None if path is not None else new_token()
        connections: set[asyncio.Task[None]] = set()

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            connections.add(task)
            try:
                await proxy.handle(reader, writer, caller, token=token)
            except asyncio.CancelledError:
                # revoke()/stop() cut it: the task ends normally, because Python 3.11's stream server callback
                # calls task.exception() on it and would log a traceback for a cancelled one
                writer.transport.abort()
            finally:
                connections.discard(task)

        try:
            if path is not None:
                server = await asyncio.start_unix_server(serve, sock=sock, limit=MAX_HEAD)
            else:
                server = await asyncio.start_server(serve, sock=sock, limit=MAX_HEAD)
        except BaseException:
            sock.close()
            if path is not None:
                path.unlink(missing_ok=True)
            raise
        self._listeners.setdefault(session_id, []).append(_Listener(server, path, connections))
        if self._proxy is not proxy:  # stop() ran meanwhile
            self.revoke(session_id)
            raise ConfigError("the egress proxy stopped")
        log.debug("egress: session %s gets listener %s", session_id, path or f"127.0.0.1:{port}")
        return EgressAccess(socket_path=path, port=port, token=token)

    def revoke(self, session_id: str) -> None:
        """Close the listeners of ``session_id``, remove their sockets and cut their connections."""
        for listener in self._listeners.pop(session_id, []):
            listener.server.close()
            if listener.socket_path is not None:
                listener.socket_path.unlink(missing_ok=True)
            for task in listener.connections:
                task.cancel()


def _write_bundle(path: Path, public: bytes, extra: list[bytes], ours: bytes) -> None:
    """Write the bundle by a temporary file and a rename, so a container starting meanwhile reads a whole one."""
    parts = [public.rstrip(b"\n") + b"\n", *(cert.rstrip(b"\n") + b"\n" for cert in extra),
             b"# NanoClaw egress CA (this install only)\n" + ours]
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=".bundle-")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(b"".join(parts))
        Path(name).chmod(0o644)
        Path(name).replace(path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
