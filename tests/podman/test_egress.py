"""An agent container's only way out is the host's egress proxy, which adds credentials the container never holds.

Real Podman, the shipped agent image and the real proxy; curl and Python run inside the running agent container
(``podman exec``, as anything the agent runs would). The third-party API is a fake HTTPS server on 127.0.0.1 with a
CA of its own, reachable only because the test lists it as an exception to the home-network rule.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from nanoclaw_app.db import agents, credentials
from nanoclaw_app.db.database import Database
from nanoclaw_app.host import Host
from tests.fakes.anthropic_server import FakeAnthropic, Text
from tests.fakes.channel import FakeChannel
from tests.fakes.https_api import FakeHttpsApi
from tests.podman.conftest import ping, podman_settings, seeded_home, wait_for

TOKEN = "ghp_EGRESStokenNEVERinside42"
OWNER = "test:owner"


def _pong(_: dict[str, Any]) -> Text:
    return Text('<message to="owner-dm">pong</message>')


PROBE = """
import json, socket, sys
out = {}
for target in sys.argv[1:]:
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
        out[target] = "CONNECTED"
    except OSError as err:
        out[target] = err.strerror or str(err)
print(json.dumps(out))
"""
"""A program that ignores the proxy variables and connects by itself."""


def _container(host: Host) -> str:
    names: list[str] = subprocess.run(
        ["podman", "ps", "--filter", f"label=io.nanoclaw.install={host.runtime.install}",  # type: ignore[attr-defined]
         "--format", "{{.Names}}"], capture_output=True, text=True, check=True,
    ).stdout.split()
    assert len(names) == 1, names
    return names[0]


async def _exec(name: str, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run a program in the container without blocking the loop (the host's proxy serves it on this loop)."""
    command = ["podman", "exec", name, *(argv if len(argv) > 1 else ("sh", "-c", argv[0]))]
    process = await asyncio.create_subprocess_exec(*command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 90)
    return subprocess.CompletedProcess(command, process.returncode or 0, out.decode(), err.decode())


async def _notes(host: Host, agent_id: str) -> list[str]:
    texts: list[str] = []
    for folder in host.settings.paths.sessions.glob(f"{agent_id}/*"):
        with sqlite3.connect(folder / "inbound.db") as conn:
            rows = conn.execute("SELECT content FROM messages_in WHERE channel_type = 'agent'").fetchall()
        texts += [json.loads(content).get("text", "") for (content,) in rows]
    return texts


@pytest.fixture
async def api() -> Any:
    server = FakeHttpsApi(host="127.0.0.2")  # the agent's NO_PROXY keeps 127.0.0.1 for its own relays
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def model() -> Any:
    server = FakeAnthropic(responder=_pong)
    await server.start()
    yield server
    await server.stop()


async def _host(podman_url: str, factory: Any, api: FakeHttpsApi, model: FakeAnthropic, policy: str,
                **overrides: Any) -> tuple[Host, FakeChannel, str, str]:
    settings = podman_settings(
        podman_url, anthropic_base_url=model.url, egress_private_exceptions=f"{api.host}:{api.port}",
        egress_trusted_ca_file=str(api.ca_file), **overrides,
    )
    seeded = await seeded_home(settings, provider="claude")
    async with Database(settings.paths.central_db) as db:
        made = await credentials.create(db, name="GitHub", host_pattern=f"{api.host}:{api.port}", kind="bearer",
                                        policy=policy)
    channel = FakeChannel()
    host: Host = await factory(settings, channel)
    await host.secrets.set(credentials.secret_name(made.id), TOKEN)
    await channel.inject(ping(1))
    await wait_for(lambda: "pong" in " ".join(channel.texts()), what="the agent's first reply")
    return host, channel, _container(host), seeded.agent_id


async def test_curl_and_python_get_the_credential_added_and_it_is_nowhere_in_the_container(
    podman_url: str, podman_host_factory: Any, api: FakeHttpsApi, model: FakeAnthropic
) -> None:
    host, _, name, _ = await _host(podman_url, podman_host_factory, api, model, "allow")

    curl = await _exec(name, f"curl -sS -H 'Authorization: Bearer nanoclaw' {api.url}/repos/x?page=2")
    python = await _exec(name, "python -c \"import urllib.request,sys; "
                         f"sys.stdout.write(urllib.request.urlopen('{api.url}/py').read().decode())\"")

    assert curl.returncode == 0, curl.stderr
    assert json.loads(curl.stdout)["headers"]["authorization"] == f"Bearer {TOKEN}"  # the placeholder replaced
    assert python.returncode == 0, python.stderr
    assert json.loads(python.stdout)["headers"]["authorization"] == f"Bearer {TOKEN}"
    assert [r["path"] for r in api.requests] == ["/repos/x", "/py"]

    inspect = subprocess.run(["podman", "inspect", name], capture_output=True, text=True, check=True).stdout
    config = json.loads(inspect)[0]
    assert config["HostConfig"]["NetworkMode"] == "none"
    assert "HTTPS_PROXY=http://127.0.0.1:3128" in config["Config"]["Env"]
    assert TOKEN not in inspect
    hits = await _exec(name, f"(cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c -F '{TOKEN}');"
                       f" grep -r -l -F '{TOKEN}' /workspace /app /run /home /tmp /etc /root 2>/dev/null | head")
    assert hits.stdout.strip().splitlines() == ["0"], hits.stdout
    await asyncio.sleep(0.7)  # the activity writer's batch
    for path in Path(host.settings.paths.home).rglob("*"):  # logs, activity database, session folders
        if path.is_file() and path.stat().st_size < 50_000_000:
            assert TOKEN.encode() not in path.read_bytes(), path


async def test_raw_sockets_reach_neither_the_home_network_nor_the_host(
    podman_url: str, podman_host_factory: Any, api: FakeHttpsApi, model: FakeAnthropic
) -> None:
    host, _, name, _ = await _host(podman_url, podman_host_factory, api, model, "allow")
    web_app = socket.create_server(("0.0.0.0", 0))  # stands in for the app's own LAN-facing web server
    port = web_app.getsockname()[1]
    try:
        lan = _lan_address()
        targets = [f"{lan}:{port}", f"10.88.0.1:{port}", "192.168.1.1:80", "10.0.0.1:80", "169.254.169.254:80",
                   f"{api.host}:{api.port}", "1.1.1.1:443"]
        result = await _exec(name, "python", "-c", PROBE, *targets)
        reached = json.loads(result.stdout)
        assert "CONNECTED" not in reached.values(), reached
        assert reached["192.168.1.1:80"] == "Network is unreachable"
        socket.create_connection((lan, port), timeout=3).close()  # the host reaches it

        # and the proxy, the one door, refuses the home network too, in words
        through = await _exec(name, f"curl -sS -o /dev/null -w '%{{http_code}}' http://{lan}:{port}/")
        assert through.stdout == "403", through
        await wait_for(lambda: _refused_rows(host), what="the refused connection in the activity")
    finally:
        web_app.close()


def _lan_address() -> str:
    """This computer's address on its network (the interface a packet out would leave by; nothing is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))
        return str(probe.getsockname()[0])


def _refused_rows(host: Host) -> bool:
    with sqlite3.connect(host.settings.paths.central_db) as conn:
        return bool(conn.execute("SELECT 1 FROM egress_events WHERE decision = 'refused'").fetchone())


async def test_only_these_sites_refuses_another_site(
    podman_url: str, podman_host_factory: Any, api: FakeHttpsApi, model: FakeAnthropic
) -> None:
    host, _, name, agent_id = await _host(podman_url, podman_host_factory, api, model, "allow")
    await agents.set_egress(host.db, agent_id, "sites", ["example.com"])
    await asyncio.sleep(1.1)  # the proxy's view of the agent is at most a second old

    refused = await _exec(name, f"curl -sS {api.url}/x")

    assert refused.returncode != 0
    assert "403" in refused.stderr
    assert api.requests == []


async def test_ask_holds_the_request_for_a_card_then_allow_deny_and_expiry(
    podman_url: str, podman_host_factory: Any, api: FakeHttpsApi, model: FakeAnthropic
) -> None:
    host, channel, name, agent_id = await _host(podman_url, podman_host_factory, api, model, "ask",
                                                egress_approval_seconds=8.0)
    curl = f"curl -sS -w '\\n%{{http_code}}' {api.url}/user"

    async def answer(value: str | None) -> subprocess.CompletedProcess[str]:
        before = len(channel.sent)
        held = asyncio.create_task(_exec(name, curl))
        await wait_for(lambda: any(s.message.question_id for s in channel.sent[before:]), 30, "the approval card")
        card = next(s for s in channel.sent[before:] if s.message.question_id)
        assert f"GET {api.host}" in (card.message.text or "")
        assert not held.done()
        if value is not None:
            await host.approvals.on_action(card.message.question_id or "", value, OWNER)
        return await held

    allowed = (await answer("approve")).stdout
    assert allowed.rsplit("\n", 1)[1] == "200"
    assert api.requests[-1]["headers"]["authorization"] == f"Bearer {TOKEN}"
    seen = len(api.requests)

    denied = (await answer("reject")).stdout
    assert denied.rsplit("\n", 1)[1] == "403"
    assert f"denied the use of the GitHub credential for GET {api.host}" in denied

    expired = (await answer(None)).stdout
    assert expired.rsplit("\n", 1)[1] == "403"
    assert "Nobody answered" in expired
    assert len(api.requests) == seen  # neither went out

    notes = await _notes(host, agent_id)
    assert any("was rejected by" in n for n in notes)
    assert any("expired without a response" in n for n in notes)
