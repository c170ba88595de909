"""The openai provider against the fake OpenAI-compatible server, through the real SDK (streaming, function tools)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from agent_runner.config import RunnerConfig
from agent_runner.providers.base import Provider, ProviderEvent, Query
from agent_runner.providers.openai import OpenAIProvider
from agent_runner.providers.toolloop import load_continuation
from agent_runner.tools.base import ToolError, ToolSpec
from tests.fakes.openai_server import Fail, FakeOpenAI, Hang, Text, ToolCall

MODEL = "llama-test"


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    server = FakeOpenAI()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def make_provider(fake: FakeOpenAI, **kwargs: Any) -> OpenAIProvider:
    config = RunnerConfig(provider="openai", model=MODEL, base_url=fake.v1_url, api_key="container-token")
    return OpenAIProvider(config, max_retries=0, **kwargs)


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


def tool_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in body["messages"] if m["role"] == "tool"]


async def test_a_plain_message_gets_the_model_reply(fake: FakeOpenAI, tmp_path: Path) -> None:
    events = await answer(make_provider(fake), tmp_path, "hello")

    assert events[0].kind == "init"
    assert events[0].model == MODEL
    assert [e.text for e in of(events, "result")] == ["FAKE: hello"]
    assert of(events, "activity")
    request = fake.requests[0]
    assert request["model"] == MODEL
    assert request["stream"] is True
    assert request["stream_options"] == {"include_usage": True}
    system, user = request["messages"]
    assert system["role"] == "system"
    assert system["content"].startswith("You are Nano.")
    assert user == {"role": "user", "content": "hello"}
    assert fake.headers[0]["authorization"] == "Bearer container-token"


async def test_usage_of_every_model_call_is_reported(fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.script(ToolCall("remember", {"fact": "tea"}))
    events = await answer(make_provider(fake), tmp_path, "note tea", tools=[recording_tool([])])

    usage = of(events, "usage")
    assert len(usage) == 2
    # prompt_tokens 26 include 5 cached ones, reported apart as Anthropic does.
    assert usage[0].usage == {"input_tokens": 21, "output_tokens": 13, "cache_read_tokens": 5, "cache_write_tokens": 0}
    assert usage[0].model == MODEL


async def test_our_tool_is_called_and_its_result_fed_back(fake: FakeOpenAI, tmp_path: Path) -> None:
    calls: list[dict[str, Any]] = []
    fake.script([Text("Noting."), ToolCall("remember", {"fact": "tea"}, id="call_1")])
    events = await answer(make_provider(fake), tmp_path, "I like tea", tools=[recording_tool(calls)])

    assert calls == [{"fact": "tea"}]
    assert [(e.tool_name, e.tool_timeout_ms) for e in of(events, "tool_start")] == [("remember", 5_000)]
    assert [e.tool_name for e in of(events, "tool_end")] == ["remember"]
    assert of(events, "result")[0].text == "Noting.\n\nFAKE: tool result: stored tea"
    assistant = fake.requests[1]["messages"][2]
    assert assistant["role"] == "assistant"
    assert assistant["content"] == "Noting."
    assert assistant["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "remember", "arguments": '{"fact": "tea"}'}}
    ]
    assert tool_messages(fake.requests[1]) == [{"role": "tool", "tool_call_id": "call_1", "content": "stored tea"}]
    functions = {t["function"]["name"]: t for t in fake.requests[0]["tools"]}
    assert functions["remember"]["type"] == "function"
    assert functions["remember"]["function"]["parameters"]["required"] == ["fact"]
    assert {"bash", "read_file", "write_file", "edit_file", "glob", "grep", "web_fetch"} <= set(functions)


async def test_several_tool_calls_in_one_reply_all_run_in_order(fake: FakeOpenAI, tmp_path: Path) -> None:
    calls: list[dict[str, Any]] = []
    fake.script([ToolCall("remember", {"fact": "a"}), ToolCall("remember", {"fact": "b"})])
    events = await answer(make_provider(fake), tmp_path, "two facts", tools=[recording_tool(calls)])

    assert calls == [{"fact": "a"}, {"fact": "b"}]
    assert [m["content"] for m in tool_messages(fake.requests[1])] == ["stored a", "stored b"]
    assert of(events, "result")[0].text == "FAKE: tool result: stored a | stored b"


async def test_builtin_tools_write_then_read_a_file(fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.script(
        ToolCall("write_file", {"path": "notes/todo.txt", "content": "buy milk\n"}),
        ToolCall("read_file", {"path": "notes/todo.txt"}),
    )
    events = await answer(make_provider(fake), tmp_path, "remember to buy milk")

    assert (tmp_path / "notes" / "todo.txt").read_text() == "buy milk\n"
    assert [e.tool_name for e in of(events, "tool_start")] == ["write_file", "read_file"]
    assert "buy milk" in of(events, "result")[0].text


async def test_follow_ups_pushed_mid_turn_are_answered_in_order(fake: FakeOpenAI, tmp_path: Path) -> None:
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
    sent = [m["content"] for m in fake.requests[2]["messages"][1:]]
    assert sent == ["one", "FAKE: one", "two", "FAKE: two", "three"]


async def test_a_new_provider_resumes_from_the_saved_continuation(fake: FakeOpenAI, tmp_path: Path) -> None:
    first = await answer(make_provider(fake), tmp_path, "my name is Ada")
    saved = of(first, "result")[0].continuation
    assert saved is not None

    second = await answer(make_provider(fake), tmp_path, "what is my name?", continuation=saved)

    sent = [(m["role"], m["content"]) for m in fake.requests[-1]["messages"][1:]]
    assert sent == [("user", "my name is Ada"), ("assistant", "FAKE: my name is Ada"), ("user", "what is my name?")]
    assert of(second, "result")[0].text == "FAKE: what is my name?"
    assert len(load_continuation(of(second, "result")[0].continuation)) == 4


async def test_an_unreadable_continuation_is_reported_as_invalid(fake: FakeOpenAI, tmp_path: Path) -> None:
    provider = make_provider(fake)
    events = await answer(provider, tmp_path, "hi", continuation="{broken")
    assert [e.kind for e in events] == ["error"]
    assert provider.is_session_invalid(events[0].text)
    assert fake.requests == []


async def test_unauthorised_request_becomes_a_plain_error(fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.script(Fail(401, "Incorrect API key provided"))
    events = await answer(make_provider(fake), tmp_path, "hello")

    assert [e.kind for e in events] == ["init", "error"]
    assert events[-1].text == "The model service refused the request (401): Incorrect API key provided"


async def test_server_failure_becomes_a_plain_error(fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.script(Fail(500, "model crashed"))
    events = await answer(make_provider(fake), tmp_path, "hello")

    assert of(events, "error")[0].text == "The model service failed (500): model crashed"
    assert not of(events, "result")


async def test_a_tool_error_is_shown_to_the_model(fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.script(ToolCall("remember", {"fact": "x"}, id="c1"))
    tool = recording_tool([], fail=ToolError("the notebook is full"))
    events = await answer(make_provider(fake), tmp_path, "note x", tools=[tool])

    assert tool_messages(fake.requests[1]) == [
        {"role": "tool", "tool_call_id": "c1", "content": "Error: the notebook is full"}
    ]
    assert of(events, "result")[0].text == "FAKE: tool result: Error: the notebook is full"


async def test_a_server_without_usage_reports_still_answers(fake: FakeOpenAI, tmp_path: Path) -> None:
    """Some OpenAI-compatible servers ignore stream_options; the loop must not depend on usage."""
    fake.stream_usage = False
    events = await answer(make_provider(fake), tmp_path, "hello")
    assert of(events, "result")[0].text == "FAKE: hello"
    assert not of(events, "usage")


def test_provider_declares_its_name_and_default_model() -> None:
    provider: Provider = OpenAIProvider(RunnerConfig(provider="openai"))
    assert provider.name == "openai"
    assert provider.supports_native_slash_commands is False
    assert OpenAIProvider(RunnerConfig(provider="openai", model="qwen3:8b")).model == "qwen3:8b"
