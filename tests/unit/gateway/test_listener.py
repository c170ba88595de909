"""Where the gateway listens (never reachable from other machines) and what runners are told to reach it."""

from __future__ import annotations

import socket
import stat

import psutil
import pytest

from nanoclaw_app.errors import ConfigError
from tests.unit.gateway.conftest import StartGateway


def other_addresses() -> list[str]:
    """This machine's IPv4 addresses that other machines could connect to."""
    return [a.address for addrs in psutil.net_if_addrs().values() for a in addrs
            if a.family == socket.AF_INET and not a.address.startswith("127.")]


async def test_tcp_listener_is_bound_to_loopback_only(start_gateway: StartGateway) -> None:
    gw = await start_gateway(transport="tcp")
    port = gw.gateway.port
    assert port is not None

    listening = [c.laddr for c in psutil.net_connections("tcp") if c.status == psutil.CONN_LISTEN and c.laddr]
    assert [addr.ip for addr in listening if isinstance(addr, tuple) and addr[1] == port] == ["127.0.0.1"]
    for address in other_addresses():
        with socket.socket() as probe:
            probe.settimeout(5)
            with pytest.raises(ConnectionRefusedError):
                probe.connect((address, port))
    response = await (await gw.http()).post("/anthropic/v1/messages", json={})
    assert response.status_code == 401  # loopback answers (and wants a token)


async def test_unix_socket_is_private_and_gone_after_stop(start_gateway: StartGateway) -> None:
    gw = await start_gateway(transport="unix")
    path = gw.gateway.socket_path
    assert path is not None
    assert gw.gateway.port is None

    assert stat.S_ISSOCK(path.stat().st_mode)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    await gw.gateway.stop()
    await gw.gateway.stop()
    assert not path.exists()


async def test_a_socket_left_by_a_crashed_run_is_replaced(start_gateway: StartGateway) -> None:
    first = await start_gateway(transport="unix")
    path = first.gateway.socket_path
    assert path is not None
    await first.gateway.stop()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))  # bound, never listening: what a killed process leaves behind
    stale.close()

    second = await start_gateway(transport="unix")

    response = await (await second.http()).post("/openai/chat/completions", json={})
    assert response.status_code == 401


async def test_a_socket_another_gateway_serves_is_not_taken_over(start_gateway: StartGateway) -> None:
    await start_gateway(transport="unix")

    with pytest.raises(ConfigError, match="another NanoClaw may be running"):
        await start_gateway(transport="unix")


async def test_runner_env_names_the_url_token_and_socket_for_each_transport(start_gateway: StartGateway) -> None:
    unix = await start_gateway(transport="unix")
    env = unix.gateway.runner_env("tok", "claude", socket_in_runner="/run/nanoclaw/gateway.sock", host_alias=None)
    assert env == {"NANOCLAW_MODEL_TOKEN": "tok", "NANOCLAW_MODEL_BASE_URL": "http://gateway/anthropic",
                   "NANOCLAW_GATEWAY_SOCKET": "/run/nanoclaw/gateway.sock"}
    local = unix.gateway.runner_env("tok", "openai", socket_in_runner=None, host_alias=None)
    assert local["NANOCLAW_MODEL_BASE_URL"] == "http://gateway/openai"
    assert local["NANOCLAW_GATEWAY_SOCKET"] == str(unix.gateway.socket_path)
    await unix.gateway.stop()

    tcp = await start_gateway(transport="tcp")
    port = tcp.gateway.port
    assert tcp.gateway.runner_env("tok", "anthropic", socket_in_runner=None, host_alias=None) == {
        "NANOCLAW_MODEL_TOKEN": "tok", "NANOCLAW_MODEL_BASE_URL": f"http://127.0.0.1:{port}/anthropic"}
    machine = tcp.gateway.runner_env("tok", "openai", socket_in_runner=None, host_alias="host.containers.internal")
    assert machine["NANOCLAW_MODEL_BASE_URL"] == f"http://host.containers.internal:{port}/openai"
    with pytest.raises(ConfigError):
        tcp.gateway.runner_env("tok", "gemini", socket_in_runner=None, host_alias=None)
