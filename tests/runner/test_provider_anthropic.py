"""The anthropic provider (and the shared tool loop) against the fake Anthropic server, over real HTTP."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from agent_runner.config import RunnerConfig
from agent_runner.providers.anthropic import AnthropicProvider
from agent_runner.providers.base import Provider, ProviderEvent, Query
from agent_runner.providers.toolloop import INTERRUPTED_TOOL, dump_continuation, load_continuation, trim_history
from agent_runner.tools.base import ToolError, ToolSpec
from tests.fakes.anthropic_server import Cut, Fail, FakeAnthropic, Hang, Text, ToolUse

MODEL = "claude-test-1"


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    server = FakeAnthropic()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def make_provider(fake: FakeAnthropic, **kwargs: Any) -> AnthropicProvider:
    config = RunnerConfig(provider="anthropic", model=MODEL, base_url=fake.url, api_key="container-token")
    return AnthropicProvider(config, max_retries=0, **kwargs)


def ask(
    provider: Provider, cwd: Path, prompt: str, *, continuation: str | None = None, tools: Sequence[ToolSpec] = ()
) -> Query:
    return provider.query(
        prompt=prompt, continuation=continuation, cwd=cwd, system_prompt="You are Nano.", tools=list(tools)
    )


async def collect(query: Query) -> list[ProviderEvent]:
    async with asyncio.timeout(20):
        return [event async for event in query.events()]


async def answer(provider: Provider, cwd: Path, prompt: str, **kwargs: Any) -> list[ProviderEvent]:
    query = ask(provider, cwd, prompt, **kwargs)
    query.end()
    return await collect(query)


def of(events: list[ProviderEvent], kind: str) -> list[ProviderEvent]:
    return [e for e in events if e.kind == kind]


def recording_tool(calls: list[dict[str, Any]], *, fail: BaseException | None = None) -> ToolSpec:
    async def remember(args: dict[str, Any]) -> str:
        calls.append(args)
        if fail is not None:
            raise fail
        return f"stored {args['fact']}"

    return ToolSpec(
        name="remember",
        description="Remember a fact.",
        input_schema={"type": "object", "properties": {"fact": {"type": "string"}}, "required": ["fact"]},
        handler=remember,
        declared_timeout_ms=5_000,
    )


def last_user_blocks(body: dict[str, Any]) -> list[dict[str, Any]]:
    message = body["messages"][-1]
    assert message["role"] == "user"
    return list(message["content"])


async def test_a_plain_message_gets_the_model_reply(fake: FakeAnthropic, tmp_path: Path) -> None:
    events = await answer(make_provider(fake), tmp_path, "hello")

    assert events[0].kind == "init"
    assert load_continuation(events[0].continuation) == []
    assert events[0].model == MODEL
    assert [e.text for e in of(events, "result")] == ["FAKE: hello"]
    assert events[-1].kind == "result"
    assert of(events, "activity"), "streamed text shows up as activity"
    request = fake.requests[0]
    assert request["model"] == MODEL
    assert request["stream"] is True
    assert request["system"][0]["text"].startswith("You are Nano.")
    assert str(tmp_path) in request["system"][0]["text"]
    assert request["messages"][0]["content"][0]["text"] == "hello"
    assert fake.headers[0]["authorization"] == "Bearer container-token"


async def test_usage_of_every_model_call_is_reported(fake: FakeAnthropic, tmp_path: Path) -> None:
    fake.script(ToolUse("remember", {"fact": "tea"}))
    events = await answer(make_provider(fake), tmp_path, "note tea", tools=[recording_tool([])])

    usage = of(events, "usage")
    assert len(usage) == 2
    assert usage[0].usage == {"input_tokens": 21, "output_tokens": 13, "cache_read_tokens": 5, "cache_write_tokens": 3}
    assert usage[0].model == MODEL


async def test_our_tool_is_called_and_its_result_fed_back(fake: FakeAnthropic, tmp_path: Path) -> None:
    calls: list[dict[str, Any]] = []
    fake.script([Text("I'll note that."), ToolUse("remember", {"fact": "tea"}, id="tu_1")])
    events = await answer(make_provider(fake), tmp_path, "I like tea", tools=[recording_tool(calls)])

    assert calls == [{"fact": "tea"}]
    starts = of(events, "tool_start")
    assert [(e.tool_name, e.tool_timeout_ms) for e in starts] == [("remember", 5_000)]
    assert [e.tool_name for e in of(events, "tool_end")] == ["remember"]
    kinds = [e.kind for e in events]
    assert kinds.index("tool_start") < kinds.index("tool_end") < kinds.index("result")
    result = of(events, "result")[0]
    assert result.text == "I'll note that.\n\nFAKE: tool result: stored tea"
    assert len(fake.requests) == 2
    assert fake.requests[1]["messages"][1] == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "I'll note that."},
            {"type": "tool_use", "id": "tu_1", "name": "remember", "input": {"fact": "tea"}},
        ],
    }
    (block,) = last_user_blocks(fake.requests[1])
    assert block["type"] == "tool_result"
    assert block["tool_use_id"] == "tu_1"
    assert block["content"] == "stored tea"
    assert block["is_error"] is False
    tools = {t["name"]: t for t in fake.requests[0]["tools"]}
    assert tools["remember"]["input_schema"]["required"] == ["fact"]
    assert {"bash", "read_file", "write_file", "edit_file", "glob", "grep", "web_fetch"} <= set(tools)


async def test_builtin_tools_write_then_read_a_file(fake: FakeAnthropic, tmp_path: Path) -> None:
    fake.script(
        ToolUse("write_file", {"path": "notes/todo.txt", "content": "buy milk\n"}),
        ToolUse("read_file", {"path": "notes/todo.txt"}),
    )
    events = await answer(make_provider(fake), tmp_path, "remember to buy milk")

    assert (tmp_path / "notes" / "todo.txt").read_text() == "buy milk\n"
    assert [e.tool_name for e in of(events, "tool_start")] == ["write_file", "read_file"]
    assert "buy milk" in of(events, "result")[0].text
    (read_back,) = last_user_blocks(fake.requests[2])
    assert read_back["content"].endswith("1\tbuy milk")


async def test_bash_declares_its_timeout_so_the_host_waits(fake: FakeAnthropic, tmp_path: Path) -> None:
    fake.script(ToolUse("bash", {"command": "pwd"}))
    events = await answer(make_provider(fake), tmp_path, "where am I?")

    (start,) = of(events, "tool_start")
    assert start.tool_name == "bash"
    assert start.tool_timeout_ms is not None
    assert start.tool_timeout_ms >= 600_000
    assert str(tmp_path) in of(events, "result")[0].text


async def test_follow_ups_pushed_mid_turn_are_answered_in_order(fake: FakeAnthropic, tmp_path: Path) -> None:
    fake.script(Hang())
    query = ask(make_provider(fake), tmp_path, "one")
    consumer = asyncio.create_task(collect(query))
    await fake.wait_for_requests(1)
    query.push("two")
    query.push("three")
    query.end()
    fake.release()
    events = await consumer

    assert [e.text for e in of(events, "result")] == ["FAKE: one", "FAKE: two", "FAKE: three"]
    texts = [m["content"][0]["text"] for m in fake.requests[2]["messages"]]
    assert texts == ["one", "FAKE: one", "two", "FAKE: two", "three"]
    assert load_continuation(of(events, "result")[-1].continuation)[-1] == {
        "role": "assistant",
        "text": "FAKE: three",
        "tool_calls": [],
    }


async def test_a_new_provider_resumes_from_the_saved_continuation(fake: FakeAnthropic, tmp_path: Path) -> None:
    first = await answer(make_provider(fake), tmp_path, "my name is Ada")
    saved = of(first, "result")[0].continuation
    assert saved is not None

    second = await answer(make_provider(fake), tmp_path, "what is my name?", continuation=saved)

    assert of(second, "init")[0].continuation == saved
    sent = [(m["role"], m["content"][0]["text"]) for m in fake.requests[-1]["messages"]]
    assert sent == [("user", "my name is Ada"), ("assistant", "FAKE: my name is Ada"), ("user", "what is my name?")]
    assert of(second, "result")[0].text == "FAKE: what is my name?"


async def test_an_unreadable_continuation_is_reported_as_invalid(fake: FakeAnthropic, tmp_path: Path) -> None:
    provider = make_provider(fake)
    for broken in ("not json", json.dumps({"session_id": "abc"}), json.dumps({"format": "nanoclaw-toolloop"})):
        events = await answer(provider, tmp_path, "hi", continuation=broken)
        assert [e.kind for e in events] == ["error"]
        assert provider.is_session_invalid(events[0].text)
    assert fake.requests == []
    assert not provider.is_session_invalid("The model service failed (500): boom")


async def test_unauthorised_request_becomes_a_plain_error(fake: FakeAnthropic, tmp_path: Path) -> None:
    fake.script(Fail(401, "invalid token"))
    query = ask(make_provider(fake), tmp_path, "hello")
    query.push("never answered")
    events = await collect(query)

    assert [e.kind for e in events] == ["init", "error"]
    assert events[-1].text == "The model service refused the request (401): invalid token"
    assert len(fake.requests) == 1


async def test_server_failure_becomes_a_plain_error_and_the_history_stays_usable(
    fake: FakeAnthropic, tmp_path: Path
) -> None:
    provider = make_provider(fake)
    first = await answer(provider, tmp_path, "hello")
    saved = of(first, "result")[0].continuation
    fake.script(Fail(500, "overloaded, try later"))

    failed = await answer(provider, tmp_path, "again", continuation=saved)
    assert of(failed, "error")[0].text == "The model service failed (500): overloaded, try later"
    assert not of(failed, "result")

    retried = await answer(provider, tmp_path, "again", continuation=saved)
    assert of(retried, "result")[0].text == "FAKE: again"
    assert len(fake.requests[-1]["messages"]) == 3


async def test_a_stream_that_breaks_off_is_an_error_not_a_half_answer(fake: FakeAnthropic, tmp_path: Path) -> None:
    calls: list[dict[str, Any]] = []
    fake.script(Cut([Text("Noting."), ToolUse("remember", {"fact": "tea"})], events=6))
    events = await answer(make_provider(fake), tmp_path, "note tea", tools=[recording_tool(calls)])

    assert [e.kind for e in events if e.kind != "activity"] == ["init", "error"]
    assert events[-1].text == "The model service's answer broke off before it was complete."
    assert not events[-1].gateway_lost, "the service answered: only its answer is short"
    assert calls == [], "a half-streamed tool call is never run"


async def test_unreachable_service_is_a_plain_error(tmp_path: Path) -> None:
    server = FakeAnthropic()
    await server.start()
    url = server.url
    await server.stop()
    config = RunnerConfig(provider="anthropic", base_url=url, api_key="t")
    events = await answer(AnthropicProvider(config, max_retries=0), tmp_path, "hello")
    assert of(events, "error")[0].text.startswith(f"Could not reach the model service at {url}")


async def test_a_tool_error_is_shown_to_the_model_not_raised(
    fake: FakeAnthropic, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake.script(ToolUse("remember", {"fact": "x"}))
    tool = recording_tool([], fail=ToolError("the notebook is full"))
    events = await answer(make_provider(fake), tmp_path, "note x", tools=[tool])

    (block,) = last_user_blocks(fake.requests[1])
    assert block["is_error"] is True
    assert block["content"] == "the notebook is full"
    assert of(events, "result")[0].text == "FAKE: tool result: the notebook is full"


async def test_a_crashing_tool_is_logged_and_reported_to_the_model(
    fake: FakeAnthropic, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake.script(ToolUse("remember", {"fact": "x"}))
    tool = recording_tool([], fail=RuntimeError("disk on fire"))
    with caplog.at_level(logging.ERROR):
        events = await answer(make_provider(fake), tmp_path, "note x", tools=[tool])

    (block,) = last_user_blocks(fake.requests[1])
    assert block["is_error"] is True
    assert block["content"] == "remember failed: RuntimeError: disk on fire"
    assert of(events, "result")
    assert "tool remember raised" in caplog.text


async def test_unknown_tools_and_missing_arguments_are_refused_to_the_model(
    fake: FakeAnthropic, tmp_path: Path
) -> None:
    calls: list[dict[str, Any]] = []
    fake.script([ToolUse("teleport", {}, id="a"), ToolUse("remember", {}, id="b")])
    await answer(make_provider(fake), tmp_path, "go", tools=[recording_tool(calls)])

    unknown, missing = last_user_blocks(fake.requests[1])
    assert unknown["is_error"]
    assert unknown["content"].startswith("Unknown tool 'teleport'")
    assert missing["is_error"]
    assert missing["content"] == "Missing required parameter(s) for remember: fact."
    assert calls == []


async def test_tool_rounds_are_capped_with_a_clear_result(fake: FakeAnthropic, tmp_path: Path) -> None:
    calls: list[dict[str, Any]] = []
    fake.responder = lambda body: ToolUse("remember", {"fact": "again"})
    provider = make_provider(fake, max_tool_rounds=3)
    events = await answer(provider, tmp_path, "loop forever", tools=[recording_tool(calls)])

    assert len(fake.requests) == 3
    assert len(calls) == 3
    (result,) = of(events, "result")
    assert "Stopped" in result.text
    assert "3 times" in result.text

    fake.script(Text("ok, done"))
    resumed = await answer(provider, tmp_path, "stop now", continuation=result.continuation)
    assert of(resumed, "result")[0].text == "ok, done"
    blocks = last_user_blocks(fake.requests[-1])
    assert [b["type"] for b in blocks] == ["tool_result", "text"], "tool results and the new message share a turn"


async def test_abort_cancels_a_running_tool(fake: FakeAnthropic, tmp_path: Path) -> None:
    started = asyncio.Event()
    cancelled: list[bool] = []

    async def forever(args: dict[str, Any]) -> str:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return "unreachable"

    tool = ToolSpec("wait", "Waits.", {"type": "object", "properties": {}}, forever)
    fake.script(ToolUse("wait", {}))
    query = ask(make_provider(fake), tmp_path, "wait", tools=[tool])
    consumer = asyncio.create_task(collect(query))
    await started.wait()
    await query.abort()
    events = await consumer

    assert cancelled == [True]
    assert not of(events, "result")
    assert not of(events, "error")


async def test_abort_during_a_model_call_ends_the_events(fake: FakeAnthropic, tmp_path: Path) -> None:
    fake.script(Hang())
    query = ask(make_provider(fake), tmp_path, "hello")
    consumer = asyncio.create_task(collect(query))
    await fake.wait_for_requests(1)
    await query.abort()
    events = await consumer
    assert [e.kind for e in events] == ["init"]


async def test_a_tool_call_interrupted_by_a_restart_is_answered_on_resume(fake: FakeAnthropic, tmp_path: Path) -> None:
    crashed = dump_continuation(
        [
            {"role": "user", "text": "run it"},
            {
                "role": "assistant",
                "text": "",
                "tool_calls": [{"id": "tu_9", "name": "bash", "input": {"command": "x"}}],
            },
        ]
    )
    events = await answer(make_provider(fake), tmp_path, "did it work?", continuation=crashed)

    interrupted, question = last_user_blocks(fake.requests[0])
    assert interrupted["tool_use_id"] == "tu_9"
    assert interrupted["content"] == INTERRUPTED_TOOL
    assert interrupted["is_error"] is True
    assert question["text"] == "did it work?"
    assert of(events, "result")


async def test_provider_declares_its_name_and_no_native_slash_commands(fake: FakeAnthropic) -> None:
    provider: Provider = make_provider(fake)
    assert provider.name == "anthropic"
    assert provider.supports_native_slash_commands is False
    default = AnthropicProvider(RunnerConfig(provider="anthropic"))
    assert default.model.startswith("claude-")


async def test_a_long_history_drops_its_oldest_exchanges(fake: FakeAnthropic, tmp_path: Path) -> None:
    provider = make_provider(fake, max_history_chars=400)
    saved = None
    for word in ("first " * 20, "second " * 20, "third " * 20):
        events = await answer(provider, tmp_path, word.strip(), continuation=saved)
        saved = of(events, "result")[0].continuation

    assert of(events, "compacted")[0].text.startswith("Context compacted (")
    history = load_continuation(saved)
    assert history[0]["role"] == "user", "history is cut at a user message"
    assert history[-1]["text"].startswith("FAKE: third")
    assert not any(turn.get("text", "").startswith("first") for turn in history)


def test_trimming_keeps_the_last_exchange_even_when_it_alone_is_too_big() -> None:
    history: list[dict[str, Any]] = [
        {"role": "user", "text": "a" * 100},
        {"role": "assistant", "text": "b", "tool_calls": []},
        {"role": "user", "text": "c" * 100},
        {"role": "assistant", "text": "d", "tool_calls": []},
    ]
    kept, dropped = trim_history(history, max_chars=50)
    assert kept == history[2:]
    assert dropped > 100
    assert trim_history(history, max_chars=10_000) == (history, 0)
