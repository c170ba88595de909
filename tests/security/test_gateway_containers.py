"""From inside real agent containers: the gateway forwards only model calls, and a token works only in its container.

A real host on real Podman runs two agent containers (two chats) whose model is an OpenAI-compatible upstream that
echoes request headers on every path it does not serve. The attacker has a shell in a container (``podman exec``) and
writes HTTP byte for byte to the gateway socket mounted there.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import pytest

from nanoclaw_app.db import messaging
from nanoclaw_app.db.database import Database
from nanoclaw_app.db.messaging import WiringSpec
from nanoclaw_app.host import Host
from tests.fakes.channel import FakeChannel
from tests.fakes.openai_server import Text
from tests.podman.conftest import (
    REAL_KEY,
    REAL_OPENAI_KEY,
    ping,
    podman_settings,
    seeded_home,
    wait_for,
)
from tests.security.gateway_support import (
    CONTAINER_SCRIPT,
    MODEL_BODY,
    TRAVERSALS,
    UNLISTED,
    WRONG_METHODS,
    HeaderEcho,
)

pytestmark = pytest.mark.podman


FROM = re.compile(r'from=\\"([^"\\]+)\\"')


def _answer(body: dict[str, Any]) -> Text:
    """Answer the chat the newest message came from."""
    origin = FROM.findall(json.dumps(body.get("messages")))
    return Text(f'<message to="{origin[-1] if origin else "owner-dm"}">pong</message>')


@pytest.fixture
async def echo() -> AsyncIterator[HeaderEcho]:
    upstream = HeaderEcho(responder=_answer)
    await upstream.start()
    try:
        yield upstream
    finally:
        await upstream.stop()


@pytest.fixture
async def two_containers(podman_url: str, podman_host_factory: Any, echo: HeaderEcho
                         ) -> tuple[str, str]:
    """Names of two running agent containers (the owner's DM and chat B), each answered once through the gateway."""
    settings = podman_settings(podman_url, openai_base_url=echo.v1_url)
    seeded = await seeded_home(settings, provider="openai", model="fake-model")
    async with Database(settings.paths.central_db) as db:
        chat = await messaging.create(db, "test", "chat-b", name="Chat B", is_group=False,
                                      unknown_sender_policy="public")
        await messaging.wire(db, chat.id, seeded.agent_id, WiringSpec(engage_mode="pattern", engage_pattern="."))
    channel = FakeChannel()
    host: Host = await podman_host_factory(settings, channel)
    await channel.inject(ping("a"))
    await channel.inject(ping("b", platform_id="chat-b"))
    await wait_for(lambda: {s.platform_id for s in channel.sent} == {"owner", "chat-b"}, timeout=180,
                   what="both chats answered")
    install = host.runtime.install  # type: ignore[attr-defined]
    names = subprocess.run(
        ["podman", "ps", "--filter", f"label=io.nanoclaw.install={install}", "--format", "{{.Names}}"],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    assert len(names) == 2, names
    echo.calls.clear()
    return names[0], names[1]


async def attack(container: str, requests: list[tuple[str, str, str]], token: str = "") -> list[dict[str, Any]]:
    """Send ``requests`` from inside ``container`` over its gateway socket (its own token unless one is given).

    Run without blocking: the gateway that answers lives in this test's event loop.
    """
    proc = await asyncio.create_subprocess_exec(
        "podman", "exec", container, "python", "-c", CONTAINER_SCRIPT, token, json.dumps(requests),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(120):
        out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return [json.loads(line) for line in out.decode().splitlines()]


def token_of(container: str) -> str:
    """What an attacker who read another container's environment (a log, a shared file) would hold."""
    return subprocess.run(["podman", "exec", container, "printenv", "NANOCLAW_MODEL_TOKEN"],
                          capture_output=True, text=True, check=True).stdout.strip()


async def test_a_container_cannot_send_the_key_anywhere_but_a_model_endpoint(
        two_containers: tuple[str, str], echo: HeaderEcho) -> None:
    container, _ = two_containers
    requests = ([("POST", target, MODEL_BODY) for target in TRAVERSALS]
                + [(method, target, MODEL_BODY) for method, target in UNLISTED + WRONG_METHODS])
    answers = await attack(container, requests)

    assert [a["status"] for a in answers] == [400] * len(TRAVERSALS) + [404] * len(UNLISTED) + [405] * len(
        WRONG_METHODS), answers
    for answer in answers:
        assert REAL_OPENAI_KEY not in answer["reply"]
        assert REAL_KEY not in answer["reply"]
    assert echo.echoed == []
    assert echo.calls == []


async def test_a_token_copied_into_another_container_is_refused(
        two_containers: tuple[str, str], echo: HeaderEcho) -> None:
    a, b = two_containers
    stolen = token_of(a)
    call = [("POST", "/openai/chat/completions", MODEL_BODY)]

    (from_b,) = await attack(b, call, token=stolen)
    (from_a,) = await attack(a, call, token=stolen)
    (b_own,) = await attack(b, call)

    assert from_b["status"] == 401, from_b
    assert REAL_OPENAI_KEY not in from_b["reply"]
    assert from_a["status"] == 200, from_a  # the same token still works where it was issued
    assert b_own["status"] == 200, b_own
    assert echo.calls == [("POST", "/v1/chat/completions")] * 2
