"""The only two doors from an agent container to the host: its own model-gateway listener and its own egress listener.

On Linux both are unix sockets bind-mounted into that container alone, and the container has no network at all
(``--network none``: only its own loopback). Every other address, the home network, the host's services and the
internet alike, is unreachable at the network level, so a program that ignores the proxy variables and opens a raw
socket gets ``ENETUNREACH``. The runner relays ``127.0.0.1:3128`` inside the container to the egress socket, and the
usual proxy variables point there, so curl, pip, git, Python and the Claude CLI go out through the host's egress proxy,
which decides, logs and adds credentials.

On a Podman machine (macOS/Windows, tcp transport) host sockets cannot be mounted into the VM, so the containers keep
the VM's network and reach both doors on the host's loopback ports, each with its own token (another container or
program finding the port cannot use it); the proxy variables still route every well-behaved client through the
proxy, but there the network does not enforce it (see the README).

Each container also gets the egress CA: the combined bundle (public roots, the network's extra CAs and ours) is
mounted read-only over the image's system bundle, which every tool reads; nothing is baked into the image, so a new
install or a new CA never rebuilds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from nanoclaw_app.egress.caller_token import proxy_url
from nanoclaw_app.runtime.base import SessionSpec
from nanoclaw_app.runtime.podman_api import BindMount

if TYPE_CHECKING:
    from nanoclaw_app.egress.server import EgressAccess, EgressServer
    from nanoclaw_app.gateway.server import ContainerAccess, ModelGateway

CONTAINER_GATEWAY_SOCKET = "/run/nanoclaw/gateway.sock"
CONTAINER_EGRESS_SOCKET = "/run/nanoclaw/egress.sock"
EGRESS_RELAY_PORT = 3128
"""Where the runner relays the egress socket inside the container (its own loopback; nothing else listens there)."""
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
HOST_ALIAS = "host.containers.internal"
DROPPED_CAPABILITIES = ("NET_RAW", "NET_ADMIN", "MKNOD")
"""Not needed by an agent, and the ones a raw-socket or device trick would start from."""
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy")
_NO_PROXY = "127.0.0.1,localhost,::1"


@dataclass(frozen=True, slots=True)
class Access:
    """What one container start was given; revoked together when it ends."""

    gateway: ContainerAccess | None = None
    egress: EgressAccess | None = None


class HostDoors:
    """Attaches, describes and revokes one container's doors; the runtime asks it for env, mounts and network."""

    def __init__(self, gateway: ModelGateway | None, egress: EgressServer | None) -> None:
        self._gateway = gateway
        self._egress = egress

    @property
    def unix(self) -> bool:
        """Whether the doors are mounted sockets (Linux), so the container can do without a network."""
        return self._gateway is None or self._gateway.transport == "unix"

    @property
    def network(self) -> str | None:
        """``none`` on Linux; None (the engine's default) where the doors are host ports."""
        return "none" if self.unix else None

    async def attach(self, spec: SessionSpec) -> Access:
        """Open this container's own listeners; on a failure the ones opened are closed again."""
        gateway = egress = None
        try:
            if self._gateway is not None:
                gateway = await self._gateway.attach(spec.session_id, spec.agent_group_id, spec.provider)
            if self._egress is not None:
                egress = await self._egress.attach(spec.session_id, spec.agent_group_id)
        except BaseException:
            self.revoke(spec.session_id)
            raise
        return Access(gateway, egress)

    def revoke(self, session_id: str) -> None:
        """Close every listener of the session (connections in flight finish)."""
        if self._gateway is not None:
            self._gateway.revoke(session_id)
        if self._egress is not None:
            self._egress.revoke(session_id)

    def environment(self, spec: SessionSpec, access: Access | None) -> dict[str, str]:
        """The variables that point the runner and every tool at the two doors (never a secret)."""
        env: dict[str, str] = {}
        if access is None:
            return env
        unix = self.unix
        if self._gateway is not None and access.gateway is not None:
            env.update(self._gateway.runner_env(
                access.gateway, spec.provider,
                socket_in_runner=CONTAINER_GATEWAY_SOCKET if unix else None,
                host_alias=None if unix else HOST_ALIAS,
            ))
        if access.egress is not None:
            if unix:
                proxy = f"http://127.0.0.1:{EGRESS_RELAY_PORT}"
                env["NANOCLAW_EGRESS_SOCKET"] = CONTAINER_EGRESS_SOCKET
                env["NANOCLAW_EGRESS_PORT"] = str(EGRESS_RELAY_PORT)
            elif access.egress.port is not None and access.egress.token is not None:
                proxy = proxy_url(HOST_ALIAS, access.egress.port, access.egress.token)
            else:
                raise ValueError("an egress listener on a port comes with its token")
            # Set every spelling: Podman copies the host's own proxy variables into containers unless overridden.
            env.update(dict.fromkeys(_PROXY_VARIABLES, proxy))
            env.update({"NO_PROXY": _NO_PROXY, "no_proxy": _NO_PROXY, "NODE_USE_ENV_PROXY": "1",
                        "CURL_CA_BUNDLE": SYSTEM_CA_BUNDLE})
        return env

    def mounts(self, access: Access | None) -> list[BindMount]:
        """This container's own sockets, and the CA bundle that trusts the egress proxy."""
        mounts: list[BindMount] = []
        if access is None:
            return mounts
        if access.gateway is not None and access.gateway.socket_path is not None:
            mounts.append(BindMount(access.gateway.socket_path, CONTAINER_GATEWAY_SOCKET, read_only=False))
        if access.egress is not None:
            if access.egress.socket_path is not None:
                mounts.append(BindMount(access.egress.socket_path, CONTAINER_EGRESS_SOCKET, read_only=False))
            if self._egress is not None:
                mounts.append(BindMount(self._egress.bundle_path, SYSTEM_CA_BUNDLE, read_only=True))
        return mounts
