"""A gateway outage means "the host is gone; keep the work": no error reply, claims left in place, exit 75.

The fake model server stands in for the host's gateway on a unix socket, as a Linux container sees it. A host crash
mid-turn is the fake holding the model call and then stopping: the held connection is dropped unanswered and the
socket disappears. The runner must then leave the user's message claimed (the restarted host's sweep gives it back) and
exit with ``EXIT_GATEWAY_LOST``; a fresh runner answers it once the gateway is back. Errors the gateway really answers
(a 402/403 refusal such as the daily spend cap, a 502 for an upstream outage) still reach the user, and so does any
failure when the model is reached over TCP.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from agent_runner.__main__ import EXIT_GATEWAY_LOST
from agent_runner.config import RunnerConfig
from agent_runner.gateway_relay import RELAY_HEADER, GatewayRelay
from agent_runner.loop import RunnerLoop
from agent_runner.providers.base import GatewayLost
from agent_runner.providers.registry import build_provider
from tests.fakes import anthropic_server, openai_server
from tests.fakes.anthropic_server import Fail, FakeAnthropic, HttpFake
from tests.fakes.openai_server import FakeOpenAI
from tests.runner.conftest import Session, until

REPO = Path(__file__).resolve().parents[2]
TOKEN = "per-container-token-75"
MODEL = "fake-model-1"
SAFETY = 90.0
"""Only guards against a hang (the Claude CLI starts slowly and retries with backoff); never a synchronisation point."""


# ------------------------------------------------------------------------------------------------ one adapter each


@dataclass(frozen=True)
class Backend:
    """How one provider's fake gateway is made, addressed and scripted."""

    provider: str
    make: Callable[[Path, Any], HttpFake]
    base_url: Callable[[HttpFake], str]
    text: Callable[[str], Any]


BACKENDS = {
    "anthropic": Backend(
        "anthropic",
        lambda path, responder: FakeAnthropic(responder, unix_socket=path, prefix="/anthropic"),
        lambda fake: fake.socket_url(),
        anthropic_server.Text,
    ),
    "openai": Backend(
        "openai",
        lambda path, responder: FakeOpenAI(responder, unix_socket=path, prefix="/openai"),
        lambda fake: fake.socket_url() + "/v1",
        openai_server.Text,
    ),
    "claude": Backend(  # the real bundled CLI, through the loopback relay
        "claude",
        lambda path, responder: FakeAnthropic(responder, unix_socket=path, prefix="/anthropic"),
        lambda fake: fake.socket_url(),
        anthropic_server.Text,
    ),
}


async def held_until_the_host_dies(body: dict[str, Any]) -> Any:
    """Never answer: stopping the fake then drops the call unanswered, as a crashing host does."""
    await asyncio.get_running_loop().create_future()


def say(text: str) -> str:
    return f'<message to="family">{text}</message>'


# ------------------------------------------------------------------------------------------------ the runner


def runner_env(session: Session, backend: Backend, fake: HttpFake, gateway: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NANOCLAW_")}
    env.update({
        "NANOCLAW_SESSION_DIR": str(session.folder),
        "NANOCLAW_AGENT_DIR": str(session.agent_dir),
        "NANOCLAW_SKILLS_DIR": str(session.skills_dir),
        "NANOCLAW_PROVIDER": backend.provider,
        "NANOCLAW_MODEL": MODEL,
        "NANOCLAW_MODEL_BASE_URL": backend.base_url(fake),
        "NANOCLAW_MODEL_TOKEN": TOKEN,
        "NANOCLAW_GATEWAY_SOCKET": str(gateway),
        "NANOCLAW_MODEL_MAX_RETRIES": "1",  # the retry meets the vanished socket
        "NANOCLAW_POLL_SECONDS": "0.5",
        "NANOCLAW_TZ_NAME": "Europe/Berlin",
    })
    return env


@contextlib.asynccontextmanager
async def runner_process(env: dict[str, str], log: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """``python -m agent_runner`` as the container runs it; killed on exit if it is still running."""
    with log.open("wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "agent_runner", cwd=REPO, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=sink,
        )
        try:
            yield proc
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def exit_code(proc: asyncio.subprocess.Process) -> int:
    async with asyncio.timeout(SAFETY):
        return await proc.wait()


@contextlib.asynccontextmanager
async def running_loop(session: Session, provider: str, base_url: str,
                       gateway: Path | None) -> AsyncIterator[asyncio.Task[None]]:
    """The real loop in this process with the registry's provider; stopped by its event on exit if still running."""
    config = session.config(provider=provider, base_url=base_url, api_key=TOKEN, model=MODEL, gateway_socket=gateway,
                            model_max_retries=0)
    built = build_provider(provider, config)
    stop = asyncio.Event()
    task = asyncio.create_task(RunnerLoop(config, built).run(stop))
    try:
        yield task
    finally:
        try:
            stop.set()
            async with asyncio.timeout(SAFETY):
                with contextlib.suppress(GatewayLost):
                    await task
        finally:
            await built.aclose()


# ------------------------------------------------------------------------------------------------ the host crashes


@pytest.mark.parametrize("name", list(BACKENDS))
async def test_a_host_crash_mid_turn_keeps_the_message_for_a_fresh_runner(
    session: Session, gateway_socket: Path, tmp_path: Path, name: str
) -> None:
    backend = BACKENDS[name]
    row_id, _ = await session.chat("hello before the crash", thread="th-1")
    gateway = backend.make(gateway_socket, held_until_the_host_dies)
    await gateway.start()
    try:
        env = runner_env(session, backend, gateway, gateway_socket)
        async with runner_process(env, tmp_path / "first.log") as proc:
            await gateway.wait_for_requests(1, timeout=SAFETY)
            assert session.acks() == {row_id: "processing"}
            await gateway.stop()  # the host dies: the call is dropped unanswered and the socket goes away
            code = await exit_code(proc)
    finally:
        await gateway.stop()
    log = (tmp_path / "first.log").read_text()
    assert code == EXIT_GATEWAY_LOST, log
    assert session.outbound() == [], "no error reply was written"
    assert session.acks() == {row_id: "processing"}, "the claim is left for the host's sweep"
    assert "gateway" in log

    # The host is back: a fresh runner takes the message again and answers it.
    gateway = backend.make(gateway_socket, None)
    gateway.script(backend.text(say("answered after all")))
    await gateway.start()
    try:
        env = runner_env(session, backend, gateway, gateway_socket)
        async with runner_process(env, tmp_path / "second.log") as proc:
            await until(lambda: session.acks().get(row_id) == "completed", "the answer from the fresh runner")
            proc.send_signal(signal.SIGTERM)
            code = await exit_code(proc)
    finally:
        await gateway.stop()
    assert code == 0, (tmp_path / "second.log").read_text()
    assert session.texts() == ["answered after all"]
    assert "hello before the crash" in str(gateway.requests[-1])


@pytest.mark.parametrize("name", ["anthropic", "claude"])
async def test_a_gateway_already_gone_keeps_the_message_and_ends_the_loop(
    session: Session, gateway_socket: Path, name: str
) -> None:
    row_id, _ = await session.chat("hello while the host restarts")
    async with running_loop(session, name, "http://gateway/anthropic", gateway_socket) as task:  # nothing listens
        with pytest.raises(GatewayLost):
            async with asyncio.timeout(SAFETY):
                await task
    assert session.outbound() == []
    assert session.acks() == {row_id: "processing"}


# ------------------------------------------------------------------------------------------------ errors the user hears


@pytest.mark.parametrize(
    ("name", "status", "message"),
    [
        ("anthropic", 402, "daily spend cap of $5.00 reached"),
        ("anthropic", 403, "this agent may not use the model"),
        ("anthropic", 502, "upstream model service unreachable"),
        ("openai", 403, "daily spend cap of $5.00 reached"),
        ("claude", 403, "daily spend cap of $5.00 reached"),
        ("claude", 502, "upstream model service unreachable"),
    ],
)
async def test_an_error_the_gateway_answers_still_reaches_the_user(
    session: Session, gateway_socket: Path, name: str, status: int, message: str
) -> None:
    backend = BACKENDS[name]
    gateway = backend.make(gateway_socket, lambda body: Fail(status, message))
    await gateway.start()
    try:
        row_id, _ = await session.chat("hello", thread="th-2")
        async with running_loop(session, name, backend.base_url(gateway), gateway_socket) as task:
            await until(lambda: session.acks().get(row_id) == "failed", "the failed ack")
            assert not task.done(), "the runner keeps serving"
    finally:
        await gateway.stop()
    (error,) = session.outbound()
    assert error["content"]["text"].startswith("Error: ")
    assert message in error["content"]["text"]
    assert (error["thread_id"], error["in_reply_to"]) == ("th-2", row_id)


async def test_over_tcp_an_unreachable_model_service_still_reaches_the_user(session: Session) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    row_id, _ = await session.chat("hello")
    async with running_loop(session, "anthropic", f"http://127.0.0.1:{port}", None) as task:
        await until(lambda: session.acks().get(row_id) == "failed", "the failed ack")
        assert not task.done()
    (error,) = session.texts()
    assert error.startswith("Error: ")
    assert "Could not reach the model service" in error


# ------------------------------------------------------------------------------------------------ the providers' word


@pytest.mark.parametrize("name", list(BACKENDS))
async def test_a_provider_says_whether_its_call_failed_for_want_of_the_gateway(
    gateway_socket: Path, tmp_path: Path, name: str
) -> None:
    backend = BACKENDS[name]
    gateway = backend.make(gateway_socket, lambda body: Fail(403, "daily spend cap of $5.00 reached"))
    (tmp_path / "agent").mkdir()
    config = RunnerConfig(session_dir=tmp_path, agent_dir=tmp_path / "agent", provider=name, model=MODEL,
                          base_url=backend.base_url(gateway), api_key=TOKEN, gateway_socket=gateway_socket,
                          model_max_retries=0)
    provider = build_provider(name, config)

    async def failure() -> tuple[str, bool]:
        query = provider.query(prompt="hello", continuation=None, cwd=config.agent_dir, system_prompt="", tools=[])
        query.end()
        async with asyncio.timeout(SAFETY):
            (error,) = [event async for event in query.events() if event.kind == "error"]
        return error.text, error.gateway_lost

    try:
        _, while_gone = await failure()  # nothing listens on the socket yet
        await gateway.start()
        try:
            refusal, while_answering = await failure()
        finally:
            await gateway.stop()
    finally:
        await provider.aclose()
    assert while_gone is True
    assert while_answering is False
    assert "daily spend cap" in refusal


# ------------------------------------------------------------------------------------------------ the relay's view


async def test_the_relay_marks_its_own_502_and_forgets_the_outage_once_the_gateway_answers(
    gateway_socket: Path
) -> None:
    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    relay = GatewayRelay(gateway_socket)
    await relay.start()
    app = web.Application()
    app.router.add_post("/anthropic/v1/messages", ok)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        async with asyncio.timeout(SAFETY), httpx.AsyncClient() as client:
            refused = await client.post(relay.url("/anthropic/v1/messages"), json={})
            outage = relay.outage
            await web.UnixSite(runner, str(gateway_socket)).start()
            answered = await client.post(relay.url("/anthropic/v1/messages"), json={})
    finally:
        await runner.cleanup()
        await relay.aclose()
    assert refused.status_code == 502
    assert refused.headers[RELAY_HEADER] == "gateway-unreachable"
    assert outage is not None
    assert "cannot be reached" in outage
    assert answered.status_code == 200
    assert RELAY_HEADER not in answered.headers
    assert relay.outage is None


async def test_a_502_sent_by_the_gateway_is_not_an_outage(gateway_socket: Path) -> None:
    async def upstream_down(request: web.Request) -> web.Response:
        return web.json_response({"type": "error", "error": {"type": "api_error", "message": "upstream"}}, status=502)

    relay = GatewayRelay(gateway_socket)
    await relay.start()
    app = web.Application()
    app.router.add_post("/anthropic/v1/messages", upstream_down)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.UnixSite(runner, str(gateway_socket)).start()
    try:
        async with asyncio.timeout(SAFETY), httpx.AsyncClient() as client:
            response = await client.post(relay.url("/anthropic/v1/messages"), json={})
    finally:
        await runner.cleanup()
        await relay.aclose()
    assert response.status_code == 502
    assert RELAY_HEADER not in response.headers
    assert relay.outage is None


async def test_a_gateway_dropping_a_call_unanswered_is_an_outage_but_an_idle_close_is_not(
    gateway_socket: Path
) -> None:
    async def gateway(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readline()
        if request.startswith(b"answer"):
            writer.write(b"answered\n")
            await writer.drain()
        writer.close()  # after an answer: an idle close; before one: a dropped call

    relay = GatewayRelay(gateway_socket)
    await relay.start()
    server = await asyncio.start_unix_server(gateway, path=str(gateway_socket))
    try:
        async with asyncio.timeout(SAFETY):
            reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
            writer.write(b"answer me\n")
            assert await reader.read() == b"answered\n"
            writer.close()
            after_answer = relay.outage

            reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
            writer.write(b"drop me\n")
            with contextlib.suppress(ConnectionResetError):
                assert await reader.read() == b""
            writer.close()
            await until(lambda: relay.outage, "the recorded outage")
    finally:
        server.close()
        await server.wait_closed()
        await relay.aclose()
    assert after_answer is None
    assert relay.outage is not None
    assert "without answering" in relay.outage
