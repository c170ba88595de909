"""The runner loop over a real session folder through each real provider, against the fake model servers.

``tests/runner/test_loop.py`` proves the loop's behaviour with a scripted provider; this module shows the same
behaviour holds through ``claude`` (the bundled Claude Code CLI), ``anthropic`` (the anthropic SDK) and ``openai`` (the
openai SDK), each built by the registry exactly as the runner builds it. Only the model service is faked. What differs
between the providers (the fake server, how a reply is scripted, tool names, the base URL) lives in one adapter per
provider, so every scenario is written once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent_runner.loop import CLEARED, RunnerLoop
from agent_runner.providers.claude_query import ResumePoint
from agent_runner.providers.registry import build_provider
from tests.fakes import anthropic_server, openai_server
from tests.fakes.anthropic_server import Fail, FakeAnthropic, Hang, HttpFake
from tests.fakes.openai_server import FakeOpenAI
from tests.runner.conftest import TIMEOUT, Session, until

TOKEN = "test-token"


# ------------------------------------------------------------------------------------------------ one adapter each


class AnthropicBackend:
    """The ``anthropic`` provider: our tool loop over the Messages API; our tools and built-ins by plain name."""

    name = "anthropic"
    model = "claude-test-1"

    def __init__(self) -> None:
        self.fake: HttpFake = FakeAnthropic()

    @property
    def base_url(self) -> str:
        return self.fake.url

    def text(self, text: str) -> Any:
        """A reply that is only assistant text."""
        return anthropic_server.Text(text)

    def tool_name(self, tool: str) -> str:
        """The name the model uses for one of our tools."""
        return tool

    def our_tool(self, tool: str, arguments: dict[str, Any]) -> Any:
        """A reply that calls one of our tools."""
        return anthropic_server.ToolUse(self.tool_name(tool), arguments)

    def write_file(self, path: Path, content: str) -> Any:
        """A reply that calls the provider's built-in file-writing tool."""
        return anthropic_server.ToolUse("write_file", {"path": str(path), "content": content})

    def tool_results(self, body: dict[str, Any]) -> list[str]:
        """The text of every tool result a model request carries."""
        found: list[str] = []
        for message in body.get("messages", []):
            if message.get("role") != "user" or not isinstance(message.get("content"), list):
                continue
            for block in message["content"]:
                if block.get("type") != "tool_result":
                    continue
                content = block.get("content")
                if isinstance(content, str):
                    found.append(content)
                else:
                    found.append("".join(part.get("text", "") for part in content or [] if isinstance(part, dict)))
        return found


class ClaudeBackend(AnthropicBackend):
    """The ``claude`` provider: Claude Code names our tools ``mcp__nanoclaw__<tool>`` and brings its own ``Write``."""

    name = "claude"
    model = "claude-fake-1"

    def tool_name(self, tool: str) -> str:
        return f"mcp__nanoclaw__{tool}"

    def write_file(self, path: Path, content: str) -> Any:
        return anthropic_server.ToolUse("Write", {"file_path": str(path), "content": content})


class OpenAIBackend:
    """The ``openai`` provider: Chat Completions with function tools; the base URL carries ``/v1``."""

    name = "openai"
    model = "llama-test"

    def __init__(self) -> None:
        self._fake = FakeOpenAI()
        self.fake: HttpFake = self._fake

    @property
    def base_url(self) -> str:
        return self._fake.v1_url

    def text(self, text: str) -> Any:
        return openai_server.Text(text)

    def tool_name(self, tool: str) -> str:
        return tool

    def our_tool(self, tool: str, arguments: dict[str, Any]) -> Any:
        return openai_server.ToolCall(tool, arguments)

    def write_file(self, path: Path, content: str) -> Any:
        return openai_server.ToolCall("write_file", {"path": str(path), "content": content})

    def tool_results(self, body: dict[str, Any]) -> list[str]:
        return [str(m.get("content") or "") for m in body.get("messages", []) if m.get("role") == "tool"]


Backend = AnthropicBackend | ClaudeBackend | OpenAIBackend
BACKENDS: dict[str, type[Backend]] = {"claude": ClaudeBackend, "anthropic": AnthropicBackend, "openai": OpenAIBackend}


@pytest.fixture(params=list(BACKENDS))
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    """A started fake model server for one provider, stopped after the test."""
    adapter = BACKENDS[request.param]()
    await adapter.fake.start()
    try:
        yield adapter
    finally:
        await adapter.fake.stop()


# ------------------------------------------------------------------------------------------------ the runner


@contextlib.asynccontextmanager
async def running(session: Session, backend: Backend) -> AsyncIterator[asyncio.Task[None]]:
    """The real loop with a fresh provider from the registry; stopped by its event on exit unless it was killed."""
    # No retries: the SDKs and the CLI retry failed calls with backoff; the error scenario wants the first failure.
    config = session.config(provider=backend.name, base_url=backend.base_url, api_key=TOKEN, model=backend.model,
                            model_max_retries=0)
    provider = build_provider(backend.name, config)
    loop = RunnerLoop(config, provider)
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    try:
        yield task
    finally:
        try:
            if not task.done():
                stop.set()
                async with asyncio.timeout(TIMEOUT):
                    await task
            elif not task.cancelled():
                task.result()  # a loop that died on its own is a failure
        finally:
            await provider.aclose()


async def kill(task: asyncio.Task[None]) -> None:
    """End the runner abruptly: no stop event, no grace period."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def say(to: str, text: str) -> str:
    return f'<message to="{to}">{text}</message>'


def conversation(body: dict[str, Any]) -> str:
    """The messages of one model request, as one string to search."""
    return json.dumps(body.get("messages", []), ensure_ascii=False)


# ------------------------------------------------------------------------------------------------ scenarios


async def test_a_message_gets_a_reply_in_its_chat(session: Session, backend: Backend) -> None:
    backend.fake.script(backend.text(say("family", "hi")))
    row_id, seq = await session.chat("hello there", thread="th-1")
    async with running(session, backend):
        (reply,) = await until(session.outbound, "a reply")
        await until(lambda: session.acks().get(row_id) == "completed", "the completed ack")
    assert reply["content"]["text"] == "hi"
    assert (reply["channel_type"], reply["platform_id"], reply["thread_id"]) == ("test", "chat-1", "th-1")
    assert reply["in_reply_to"] == row_id
    assert reply["seq"] % 2 == 1
    assert reply["seq"] > seq
    assert session.acks() == {row_id: "completed"}
    assert len(session.outbound()) == 1
    first = backend.fake.requests[0]
    assert first["model"] == backend.model
    assert "hello there" in conversation(first)
    assert backend.fake.headers[0].get("x-api-key", backend.fake.headers[0].get("authorization", "")).endswith(TOKEN)


async def test_our_tool_sends_mid_turn_and_its_result_reaches_the_model(session: Session, backend: Backend) -> None:
    backend.fake.script(
        backend.our_tool("send_message", {"text": "working on it"}),
        backend.text(say("family", "done")),
    )
    row_id, _ = await session.chat("do the thing", thread="th-2")
    async with running(session, backend):
        await until(lambda: len(session.outbound()) == 2, "the tool's message and the answer")
        await until(lambda: session.acks().get(row_id) == "completed", "the completed ack")
    by_tool, answer = session.outbound()
    assert by_tool["content"]["text"] == "working on it"
    assert (by_tool["platform_id"], by_tool["thread_id"], by_tool["in_reply_to"]) == ("chat-1", "th-2", row_id)
    assert answer["content"]["text"] == "done"
    offered = json.dumps(backend.fake.requests[0].get("tools", []))
    assert f'"{backend.tool_name("send_message")}"' in offered
    (result,) = backend.tool_results(backend.fake.requests[1])
    assert result.startswith("Sent")
    assert f"as message {by_tool['seq']}" in result


async def test_a_built_in_tool_writes_a_file_in_the_agent_folder(session: Session, backend: Backend) -> None:
    note = session.agent_dir / "notes" / "milk.txt"
    backend.fake.script(
        backend.write_file(note, "remember the milk"),
        backend.text(say("family", "noted")),
    )
    await session.chat("write it down")
    async with running(session, backend):
        await until(session.outbound, "the answer after the tool")
    assert note.read_text() == "remember the milk"
    assert session.texts() == ["noted"]
    (result,) = backend.tool_results(backend.fake.requests[1])
    assert "milk.txt" in result


async def test_one_answer_reaches_two_destinations(session: Session, backend: Backend) -> None:
    backend.fake.script(backend.text(
        say("family", "see you at 6") + "\n<internal>note to self</internal>\n" + say("work", "running late")
    ))
    row_id, _ = await session.chat("dinner?", thread="th-3")
    async with running(session, backend):
        await until(lambda: len(session.outbound()) == 2, "two messages")
        await until(lambda: session.acks().get(row_id) == "completed", "the completed ack")
    by_text = {r["content"]["text"]: r for r in session.outbound()}
    assert set(by_text) == {"see you at 6", "running late"}
    family, work = by_text["see you at 6"], by_text["running late"]
    assert (family["channel_type"], family["platform_id"], family["thread_id"]) == ("test", "chat-1", "th-3")
    assert family["in_reply_to"] == row_id
    assert (work["channel_type"], work["platform_id"], work["thread_id"]) == ("test", "chat-2", None)


async def test_a_message_arriving_mid_turn_is_pushed_and_answered_after_the_first(
    session: Session, backend: Backend
) -> None:
    backend.fake.script(
        Hang(then=backend.text(say("family", "first answer"))),
        backend.text(say("family", "second answer")),
    )
    first_id, _ = await session.chat("first question")
    async with running(session, backend):
        async with asyncio.timeout(TIMEOUT):
            await backend.fake.wait_for_requests(1)
        second_id, _ = await session.chat("second question", thread="th-4")
        await until(lambda: session.acks().get(second_id) == "processing", "the follow-up pushed into the query")
        backend.fake.release()
        await until(lambda: len(session.outbound()) == 2, "both answers")
        await until(lambda: set(session.acks().values()) == {"completed"}, "both rows completed")
    first, second = session.outbound()
    assert (first["content"]["text"], first["in_reply_to"]) == ("first answer", first_id)
    assert (second["content"]["text"], second["in_reply_to"], second["thread_id"]) == (
        "second answer", second_id, "th-4")
    assert session.acks() == {first_id: "completed", second_id: "completed"}
    requests = backend.fake.requests
    assert "second question" not in conversation(requests[0])
    history = conversation(requests[-1])
    assert history.index("first question") < history.index("first answer") < history.index("second question")


async def test_clear_forgets_the_conversation_and_says_so(session: Session, backend: Backend) -> None:
    key = f"continuation:{backend.name}"
    backend.fake.script(
        backend.text(say("family", "noted: 7")),
        backend.text(say("family", "no idea")),
    )
    await session.chat("remember the number MARK-7")
    async with running(session, backend):
        await until(session.outbound, "the first answer")
        await until(lambda: session.state(key), "a saved continuation")
        clear_id, _ = await session.chat("/clear", thread="th-5")
        await until(lambda: CLEARED in session.texts(), "the confirmation")
        assert session.state(key) is None
        await session.chat("what was the number?")
        await until(lambda: "no idea" in session.texts(), "the answer in a fresh conversation")
    cleared = next(r for r in session.outbound() if r["content"]["text"] == CLEARED)
    assert (cleared["platform_id"], cleared["thread_id"], cleared["in_reply_to"]) == ("chat-1", "th-5", clear_id)
    assert session.acks()[clear_id] == "completed"
    assert all("/clear" not in conversation(body) for body in backend.fake.requests)
    fresh = conversation(backend.fake.requests[-1])
    assert "what was the number?" in fresh
    assert "MARK-7" not in fresh


async def test_a_killed_runner_is_restarted_and_resumes_the_conversation(session: Session, backend: Backend) -> None:
    key = f"continuation:{backend.name}"
    backend.fake.script(
        backend.text(say("family", "hello ADA-REPLY")),
        backend.text(say("family", "you are Ada")),
    )
    await session.chat("my name is Ada")
    async with running(session, backend) as task:
        await until(session.outbound, "the first answer")
        await until(lambda: session.state(key), "a saved continuation")
        await kill(task)
    saved = session.state(key)
    second_id, _ = await session.chat("what is my name?")
    async with running(session, backend):
        await until(lambda: len(session.outbound()) == 2, "the answer from the new runner")
        await until(lambda: session.acks().get(second_id) == "completed", "the completed ack")
    assert session.texts() == ["hello ADA-REPLY", "you are Ada"]
    history = conversation(backend.fake.requests[-1])
    assert history.index("my name is Ada") < history.index("ADA-REPLY") < history.index("what is my name?")
    if backend.name == "claude":
        resumed, before = ResumePoint.parse(session.state(key) or ""), ResumePoint.parse(saved or "")
        assert resumed.session_id == before.session_id, "Claude Code resumed the same session id"
        assert resumed.at != before.at, "at the turn answered last"


@pytest.mark.parametrize(("status", "message"), [(401, "gateway token revoked"), (500, "upstream exploded")])
async def test_a_model_service_error_reaches_the_user_and_fails_the_row(
    session: Session, backend: Backend, status: int, message: str
) -> None:
    backend.fake.responder = lambda body: Fail(status, message)  # every attempt fails, the SDKs' retries included
    row_id, _ = await session.chat("hello", thread="th-6")
    async with running(session, backend):
        await until(lambda: session.acks().get(row_id) == "failed", "the failed ack")
    (error,) = session.outbound()
    assert error["content"]["text"].startswith("Error: ")
    assert message in error["content"]["text"]
    assert "Traceback" not in error["content"]["text"]
    assert (error["platform_id"], error["thread_id"], error["in_reply_to"]) == ("chat-1", "th-6", row_id)
