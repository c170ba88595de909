"""The openai provider against the fake OpenAI-compatible server, over real HTTP (streaming, function tools)."""

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
from tests.fakes.openai_server import Chunks, Cut, Fail, FakeOpenAI, Hang, Text, ToolCall

MODEL = "llama-test"


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    server = FakeOpenAI()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


NOW = {"retry-after-ms": "1"}
"""Asks for a one-millisecond wait before a retry, so retry tests do not sit out the backoff."""


def make_provider(fake: FakeOpenAI, *, max_retries: int = 0, **kwargs: Any) -> OpenAIProvider:
    config = RunnerConfig(provider="openai", model=MODEL, base_url=fake.v1_url, api_key="container-token")
    return OpenAIProvider(config, max_retries=max_retries, **kwargs)


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    """One ``chat.completion.chunk`` with a single choice."""
    return {
        "id": "chatcmpl-raw",
        "object": "chat.completion.chunk",
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def call_piece(index: int, *, arguments: str, call_id: str | None = None, name: str | None = None) -> dict[str, Any]:
    """One piece of a streamed tool call; only the first piece of a call carries its id."""
    function: dict[str, Any] = {"arguments": arguments}
    if name is not None:
        function["name"] = name
    piece: dict[str, Any] = {"index": index, "function": function}
    if call_id is not None:
        piece.update(id=call_id, type="function")
    return piece


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


async def test_tool_calls_are_pieced_together_across_chunks(fake: FakeOpenAI, tmp_path: Path) -> None:
    calls: list[dict[str, Any]] = []
    fake.script(
        Chunks(
            [
                chunk({"role": "assistant", "content": None}),
                chunk({"tool_calls": [call_piece(0, call_id="call_a", name="rem", arguments="")]}),
                chunk({"tool_calls": [call_piece(1, call_id="call_b", name="remember", arguments='{"fa')]}),
                chunk({"tool_calls": [call_piece(0, name="ember", arguments='{"fact": ')]}),
                chunk({"tool_calls": [call_piece(0, arguments='"a"}'), call_piece(1, arguments='ct": "b"}')]}),
                chunk({}, "tool_calls"),
                "[DONE]",
            ]
        )
    )
    events = await answer(make_provider(fake), tmp_path, "two facts", tools=[recording_tool(calls)])

    assert calls == [{"fact": "a"}, {"fact": "b"}]
    sent = fake.requests[1]["messages"][2]["tool_calls"]
    assert [(c["id"], c["function"]["name"]) for c in sent] == [("call_a", "remember"), ("call_b", "remember")]
    assert of(events, "result")[0].text == "FAKE: tool result: stored a | stored b"


async def test_usage_with_cache_reads_and_writes_is_split_out_of_the_prompt(fake: FakeOpenAI, tmp_path: Path) -> None:
    usage = {
        "prompt_tokens": 100,
        "completion_tokens": 7,
        "total_tokens": 107,
        "prompt_tokens_details": {"cached_tokens": 60, "cache_write_tokens": 30},
    }
    fake.script(
        Chunks(
            [
                {**chunk({"content": "Hi"}), "usage": None},
                {**chunk({}, "stop"), "usage": None},
                {"id": "chatcmpl-raw", "object": "chat.completion.chunk", "choices": [], "usage": usage},
                "[DONE]",
            ]
        )
    )
    events = await answer(make_provider(fake), tmp_path, "hello")

    assert [e.usage for e in of(events, "usage")] == [
        {"input_tokens": 10, "output_tokens": 7, "cache_read_tokens": 60, "cache_write_tokens": 30}
    ]
    assert of(events, "result")[0].text == "Hi"


@pytest.mark.parametrize(
    ("status", "headers", "attempts"),
    [
        (400, {}, 1),
        (401, {}, 1),
        (404, {}, 1),
        (408, NOW, 3),
        (409, NOW, 3),
        (429, NOW, 3),
        (500, NOW, 3),
        (529, {"retry-after": "0.001"}, 3),
        (503, {"x-should-retry": "false"}, 1),
        (400, {**NOW, "x-should-retry": "true"}, 3),
    ],
)
async def test_failed_calls_are_retried_only_when_worth_it(
    fake: FakeOpenAI, tmp_path: Path, status: int, headers: dict[str, str], attempts: int
) -> None:
    fake.responder = lambda body: Fail(status, "no luck", headers)
    events = await answer(make_provider(fake, max_retries=2), tmp_path, "hello")

    assert len(fake.requests) == attempts
    (error,) = of(events, "error")
    assert error.text.endswith(f"({status}): no luck")
    assert not error.gateway_lost


async def test_a_retried_call_that_then_succeeds_answers(fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.script(Fail(429, "slow down", NOW), Fail(503, "busy", NOW))
    events = await answer(make_provider(fake, max_retries=2), tmp_path, "hello")

    assert [e.kind for e in events if e.kind != "activity"] == ["init", "usage", "result"]
    assert of(events, "result")[0].text == "FAKE: hello"
    assert fake.requests[0] == fake.requests[2]


async def test_a_stream_that_breaks_off_is_an_error_not_a_half_answer(fake: FakeOpenAI, tmp_path: Path) -> None:
    calls: list[dict[str, Any]] = []
    fake.script(Cut([Text("The answer is forty"), ToolCall("remember", {"fact": "42"})], events=4))
    events = await answer(make_provider(fake), tmp_path, "what is it?", tools=[recording_tool(calls)])

    assert [e.kind for e in events if e.kind != "activity"] == ["init", "error"]
    assert events[-1].text == "The model service's answer broke off before it was complete."
    assert not events[-1].gateway_lost
    assert calls == [], "a half-streamed tool call is never run"


async def test_a_stream_that_breaks_off_is_asked_again(fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.script(Cut(Text("The answer is forty-two."), events=2))
    events = await answer(make_provider(fake, max_retries=1), tmp_path, "what is it?")

    assert len(fake.requests) == 2
    assert [e.text for e in of(events, "result")] == ["FAKE: what is it?"]


async def test_an_error_inside_the_stream_is_a_plain_error_and_not_retried(fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.script(
        Chunks(
            [chunk({"role": "assistant", "content": "Let me"}), {"error": {"message": "upstream overloaded"}}]
        )
    )
    events = await answer(make_provider(fake, max_retries=2), tmp_path, "hello")

    assert [e.kind for e in events if e.kind != "activity"] == ["init", "error"]
    assert events[-1].text == "The model service failed mid-answer: upstream overloaded"
    assert len(fake.requests) == 1


async def test_a_finished_stream_without_the_done_marker_is_accepted(fake: FakeOpenAI, tmp_path: Path) -> None:
    """Some compatible servers end the stream after the finish reason, without ``[DONE]``."""
    fake.script(Chunks([chunk({"content": "All "}), chunk({"content": "good."}, "stop")]))
    events = await answer(make_provider(fake), tmp_path, "hello")

    assert [e.text for e in of(events, "result")] == ["All good."]


async def test_unreachable_service_is_a_plain_error(tmp_path: Path) -> None:
    server = FakeOpenAI()
    await server.start()
    url = server.v1_url
    await server.stop()
    config = RunnerConfig(provider="openai", base_url=url, api_key="t")
    events = await answer(OpenAIProvider(config, max_retries=0), tmp_path, "hello")

    assert [e.kind for e in events] == ["init", "error"]
    assert events[-1].text.startswith(f"Could not reach the model service at {url}")
    assert not events[-1].gateway_lost, "over TCP a refused connection is not the gateway's socket"


async def test_without_a_key_the_provider_says_how_to_configure_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    provider = OpenAIProvider(RunnerConfig(provider="openai", base_url="http://127.0.0.1:9/v1"))

    events = await answer(provider, tmp_path, "hello")

    assert [e.kind for e in events] == ["error"]
    assert "OPENAI_API_KEY" in events[0].text
