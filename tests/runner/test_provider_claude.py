"""The claude provider: the real bundled Claude Code CLI against the fake Anthropic server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from agent_runner.config import RunnerConfig
from agent_runner.providers.base import Provider, ProviderEvent
from agent_runner.providers.claude import ClaudeProvider
from agent_runner.providers.claude_query import ClaudeQuery, ResumePoint
from agent_runner.providers.claude_transcript import archive_transcript
from agent_runner.tools.base import ToolError, ToolSpec
from tests.fakes.anthropic_server import USAGE, Fail, FakeAnthropic, Hang, Text, ToolUse

MODEL = "claude-fake-1"
SAFETY = 60.0
"""Only guards against a hang; never a synchronisation point."""


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    server = FakeAnthropic()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def agent_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "agent"
    folder.mkdir()
    return folder


@pytest.fixture
def config(tmp_path: Path, agent_dir: Path, fake: FakeAnthropic) -> RunnerConfig:
    return RunnerConfig(
        session_dir=tmp_path,
        agent_dir=agent_dir,
        base_url=fake.url,
        api_key="gateway-token-123",
        model=MODEL,
        timezone="Europe/Berlin",
        model_max_retries=0,  # the CLI retries failed calls with backoff; an error test wants the first failure
    )


@pytest.fixture
def provider(config: RunnerConfig) -> ClaudeProvider:
    return ClaudeProvider(config)


def start(
    provider: ClaudeProvider,
    agent_dir: Path,
    prompt: str,
    *,
    tools: list[ToolSpec] | None = None,
    continuation: str | None = None,
) -> ClaudeQuery:
    return provider.query(
        prompt=prompt, continuation=continuation, cwd=agent_dir, system_prompt="ADDENDUM-7F3", tools=tools or []
    )


async def run_to_end(query: ClaudeQuery) -> list[ProviderEvent]:
    """End the input at once and collect every event (activity left out)."""
    query.end()
    async with asyncio.timeout(SAFETY):
        return [event async for event in query.events() if event.kind != "activity"]


def kinds(events: list[ProviderEvent]) -> list[str]:
    return [event.kind for event in events]


def of(events: list[ProviderEvent], kind: str) -> list[ProviderEvent]:
    return [event for event in events if event.kind == kind]


def texts_sent(body: dict[str, Any]) -> str:
    """Everything the CLI put into one model request, as one string to search."""
    return json.dumps(body)


def tool_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        block
        for message in body["messages"]
        if message["role"] == "user" and isinstance(message["content"], list)
        for block in message["content"]
        if block.get("type") == "tool_result"
    ]


def cli_children() -> set[int]:
    """Live Claude Code CLI processes started by this test process."""
    me = os.getpid()
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, ppid = fields[0], int(fields[1])
        if ppid == me and state != "Z" and b"claude" in cmdline:
            found.add(int(entry.name))
    return found


def echo_tool(calls: list[dict[str, Any]], *, timeout_ms: int | None = None) -> ToolSpec:
    async def handler(arguments: dict[str, Any]) -> str:
        calls.append(arguments)
        return f"sent to {arguments['to']}: {arguments['text']}"

    return ToolSpec(
        name="send_message",
        description="Send a message to a named destination.",
        input_schema={
            "type": "object",
            "properties": {"to": {"type": "string"}, "text": {"type": "string"}},
            "required": ["to", "text"],
        },
        handler=handler,
        declared_timeout_ms=timeout_ms,
    )


# -- a plain conversation ----------------------------------------------------------------------------------------------


async def test_plain_reply_reports_session_usage_and_text(
    provider: ClaudeProvider, agent_dir: Path, fake: FakeAnthropic
) -> None:
    query = start(provider, agent_dir, "hello there")
    events = await run_to_end(query)

    assert kinds(events) == ["init", "usage", "result"]
    init, usage, result = events
    assert init.continuation is None, "nothing to resume before a turn is answered"
    assert result.text == "FAKE: hello there"
    assert result.continuation
    resume = ResumePoint.parse(result.continuation)
    assert (resume.session_id, bool(resume.at)) == (query.session_id, True)
    assert usage.usage == {
        "input_tokens": USAGE["input_tokens"],
        "output_tokens": USAGE["output_tokens"],
        "cache_read_tokens": USAGE["cache_read_input_tokens"],
        "cache_write_tokens": USAGE["cache_creation_input_tokens"],
    }
    assert usage.model == MODEL
    body = fake.requests[0]
    assert body["model"] == MODEL
    assert "ADDENDUM-7F3" in json.dumps(body["system"]), "our system prompt is appended to Claude Code's"
    assert fake.headers[0]["x-api-key"] == "gateway-token-123"
    # The transcript (our continuation) lives in the agent folder, not in the user's home.
    assert list((agent_dir / ".claude" / "projects").glob(f"*/{query.session_id}.jsonl"))


async def test_no_telemetry_or_other_endpoints_are_called(
    provider: ClaudeProvider, agent_dir: Path, fake: FakeAnthropic
) -> None:
    await run_to_end(start(provider, agent_dir, "hi"))

    assert fake.not_found == []
    assert set(fake.calls) == {("POST", "/v1/messages")}


async def test_tools_offered_include_ours_and_claude_codes_but_not_the_replaced_ones(
    provider: ClaudeProvider, agent_dir: Path, fake: FakeAnthropic
) -> None:
    await run_to_end(start(provider, agent_dir, "hi", tools=[echo_tool([])]))

    offered = {tool["name"] for tool in fake.requests[0]["tools"]}
    assert {"mcp__nanoclaw__send_message", "Bash", "Write", "Read", "Edit"} <= offered
    replaced = {"CronCreate", "CronDelete", "CronList", "ScheduleWakeup", "AskUserQuestion"}
    assert not offered & (replaced | {"EnterPlanMode", "ExitPlanMode", "ToolSearch"})


async def test_agent_folder_instructions_and_memory_reach_the_model(
    provider: ClaudeProvider, agent_dir: Path, fake: FakeAnthropic
) -> None:
    (agent_dir / "CLAUDE.md").write_text("Shared rule: answer in haiku MARK-SHARED\n")
    (agent_dir / "CLAUDE.local.md").write_text("Memory: the user likes tea MARK-MEMORY\n")

    await run_to_end(start(provider, agent_dir, "hi"))

    sent = texts_sent(fake.requests[0])
    assert "MARK-SHARED" in sent
    assert "MARK-MEMORY" in sent


# -- tools -------------------------------------------------------------------------------------------------------------


async def test_our_tool_runs_in_process_and_its_result_goes_back_to_the_model(
    provider: ClaudeProvider, agent_dir: Path, fake: FakeAnthropic
) -> None:
    calls: list[dict[str, Any]] = []
    fake.script(ToolUse("mcp__nanoclaw__send_message", {"to": "family", "text": "dinner at 7"}))

    events = await run_to_end(start(provider, agent_dir, "tell the family", tools=[echo_tool(calls, timeout_ms=9000)]))

    assert calls == [{"to": "family", "text": "dinner at 7"}]
    start_event, end_event = of(events, "tool_start"), of(events, "tool_end")
    assert [(e.tool_name, e.tool_timeout_ms) for e in start_event] == [("mcp__nanoclaw__send_message", 9000)]
    assert [e.tool_name for e in end_event] == ["mcp__nanoclaw__send_message"]
    (result_block,) = tool_results(fake.requests[1])
    assert "sent to family: dinner at 7" in json.dumps(result_block["content"])
    assert not result_block.get("is_error")
    assert of(events, "result")[-1].text == "FAKE: tool result: sent to family: dinner at 7"


async def test_a_tool_error_is_shown_to_the_model_as_an_error_result(
    provider: ClaudeProvider, agent_dir: Path, fake: FakeAnthropic
) -> None:
    async def refuse(arguments: dict[str, Any]) -> str:
        raise ToolError(f"unknown destination {arguments['to']!r}")

    spec = ToolSpec("send_message", "Send", {"type": "object", "properties": {"to": {"type": "string"}}}, refuse)
    fake.script(ToolUse("mcp__nanoclaw__send_message", {"to": "nobody"}))

    events = await run_to_end(start(provider, agent_dir, "send it", tools=[spec]))

    (result_block,) = tool_results(fake.requests[1])
    assert result_block["is_error"] is True
    assert "unknown destination 'nobody'" in json.dumps(result_block["content"])
    assert of(events, "result"), "the turn still completes; the model decides what to do"
    assert not of(events, "error")


async def test_claude_codes_own_tools_work_in_the_agent_folder(
    provider: ClaudeProvider, agent_dir: Path, fake: FakeAnthropic
) -> None:
    fake.script(
        ToolUse("Write", {"file_path": str(agent_dir / "note.txt"), "content": "remember the milk"}),
        ToolUse("Bash", {"command": "echo from-bash > bash.txt", "timeout": 5000}),
        Text("done"),
    )

    events = await run_to_end(start(provider, agent_dir, "write it down"))

    assert (agent_dir / "note.txt").read_text() == "remember the milk"
    assert (agent_dir / "bash.txt").read_text().strip() == "from-bash", "Bash runs with cwd = the agent folder"
    assert [(e.tool_name, e.tool_timeout_ms) for e in of(events, "tool_start")] == [("Write", None), ("Bash", 5000)]
    assert [e.tool_name for e in of(events, "tool_end")] == ["Write", "Bash"]
    assert of(events, "result")[-1].text == "done"


# -- a live session ----------------------------------------------------------------------------------------------------


async def test_follow_ups_pushed_into_the_live_session_are_answered_in_order(
    provider: ClaudeProvider, agent_dir: Path, fake: FakeAnthropic
) -> None:
    query = start(provider, agent_dir, "first")
    results: list[ProviderEvent] = []
    async with asyncio.timeout(SAFETY):
        async for event in query.events():
            if event.kind == "result":
                results.append(event)
                if len(results) == 1:
                    query.push("second")
                    query.push("third")
                    query.end()

    assert [event.text for event in results] == ["FAKE: first", "FAKE: second", "FAKE: third"]
    resumes = [ResumePoint.parse(event.continuation or "") for event in results]
    assert {resume.session_id for resume in resumes} == {query.session_id}, "one session throughout"
    assert len({resume.at for resume in resumes}) == 3, "each answered turn moves the resume point on"
    history = texts_sent(fake.requests[-1])
    assert history.index("FAKE: first") < history.index("second") < history.index("FAKE: second")


async def test_a_message_pushed_mid_turn_gets_its_own_answer_after_the_turn(
    provider: ClaudeProvider, agent_dir: Path, fake: FakeAnthropic
) -> None:
    # Claude Code takes queued messages into a running turn between tool calls; this turn has one.
    fake.script(Hang(then=ToolUse("Bash", {"command": "true"})), Text("one moment"))
    query = start(provider, agent_dir, "first")
    seen: list[ProviderEvent] = []

    async def consume() -> None:
        async for event in query.events():
            seen.append(event)

    async with asyncio.timeout(SAFETY):
        consumer = asyncio.create_task(consume())
        await fake.wait_for_requests(1)
        query.push("also this")
        query.end()
        fake.release()
        await consumer

    # One result per push, in order: the loop pairs them one to one.
    assert [event.text for event in seen if event.kind == "result"] == ["one moment", "FAKE: also this"]
    history = texts_sent(fake.requests[-1])
    assert history.index("one moment") < history.index("also this")
    assert not of(seen, "error")


async def test_a_new_provider_resumes_the_saved_session_with_its_history(
    config: RunnerConfig, agent_dir: Path, fake: FakeAnthropic
) -> None:
    first = await run_to_end(start(ClaudeProvider(config), agent_dir, "my name is Ada"))
    saved = of(first, "result")[0].continuation
    assert saved

    query = start(ClaudeProvider(config), agent_dir, "what is my name?", continuation=saved)
    second = await run_to_end(query)

    assert of(second, "init")[0].continuation == saved
    assert query.session_id == ResumePoint.parse(saved).session_id, "resuming keeps the session id"
    sent = json.dumps(fake.requests[-1]["messages"])
    assert sent.index("my name is Ada") < sent.index("FAKE: my name is Ada") < sent.index("what is my name?")
    assert of(second, "result")[-1].text == "FAKE: what is my name?"


async def test_a_turn_cut_off_by_a_crash_is_not_replayed_when_the_session_is_resumed(
    config: RunnerConfig, agent_dir: Path, fake: FakeAnthropic
) -> None:
    first = await run_to_end(start(ClaudeProvider(config), agent_dir, "my name is Ada"))
    saved = of(first, "result")[0].continuation
    fake.script(Hang())
    cut_off = start(ClaudeProvider(config), agent_dir, "CUT-OFF question", continuation=saved)

    async def consume() -> list[ProviderEvent]:
        return [event async for event in cut_off.events()]

    async with asyncio.timeout(SAFETY):
        consumer = asyncio.create_task(consume())
        await fake.wait_for_requests(2)  # Claude Code has written the question into the transcript by now
        for pid in cli_children():
            os.kill(pid, signal.SIGKILL)  # the container dies mid-turn
        assert not of(await consumer, "result")

    retried = await run_to_end(start(ClaudeProvider(config), agent_dir, "CUT-OFF question", continuation=saved))

    assert of(retried, "result")[-1].text == "FAKE: CUT-OFF question"
    sent = json.dumps(fake.requests[-1]["messages"])
    assert sent.count("CUT-OFF question") == 1, "the retried turn is in the prompt once, not also replayed"
    assert sent.index("my name is Ada") < sent.index("FAKE: my name is Ada") < sent.index("CUT-OFF question")


async def test_compaction_moves_the_resume_point_past_the_summary(
    config: RunnerConfig, agent_dir: Path, fake: FakeAnthropic
) -> None:
    query = start(ClaudeProvider(config), agent_dir, "the secret is OLD-DETAIL")
    results: list[ProviderEvent] = []
    async with asyncio.timeout(SAFETY):
        async for event in query.events():
            if event.kind == "result":
                results.append(event)
                if len(results) == 1:
                    query.push("/compact")
                    query.end()
    saved = results[-1].continuation

    await run_to_end(start(ClaudeProvider(config), agent_dir, "what now?", continuation=saved))

    sent = json.dumps(fake.requests[-1]["messages"])
    assert "continued from a previous conversation" in sent, "the summary is what the session resumes with"
    assert "OLD-DETAIL" not in sent, "the compacted history stays compacted"


async def test_a_resume_point_missing_from_the_transcript_is_an_invalid_session(
    config: RunnerConfig, agent_dir: Path, fake: FakeAnthropic
) -> None:
    query = start(ClaudeProvider(config), agent_dir, "hello")
    await run_to_end(query)
    assert query.session_id
    provider = ClaudeProvider(config)

    events = await run_to_end(
        start(provider, agent_dir, "again", continuation=ResumePoint(query.session_id, str(uuid.uuid4())).text())
    )

    (error,) = of(events, "error")
    assert provider.is_session_invalid(error.text)


async def test_an_unknown_session_is_an_error_the_provider_recognises_as_invalid(
    provider: ClaudeProvider, agent_dir: Path, fake: FakeAnthropic
) -> None:
    events = await run_to_end(start(provider, agent_dir, "hello", continuation=str(uuid.uuid4())))

    (error,) = of(events, "error")
    assert "No conversation found" in error.text
    assert provider.is_session_invalid(error.text)
    assert not of(events, "result")
    assert fake.requests == []


@pytest.mark.parametrize(("status", "message"), [(401, "gateway token revoked"), (500, "upstream exploded")])
async def test_an_api_failure_becomes_a_plain_error_event(
    provider: ClaudeProvider, agent_dir: Path, fake: FakeAnthropic, status: int, message: str
) -> None:
    fake.script(Fail(status, message))

    events = await run_to_end(start(provider, agent_dir, "hello"))

    (error,) = of(events, "error")
    assert message in error.text
    assert "Traceback" not in error.text
    assert "\n" not in error.text.strip()
    assert not of(events, "result")
    assert not provider.is_session_invalid(error.text)


# -- compaction --------------------------------------------------------------------------------------------------------


async def test_compaction_archives_the_conversation_and_reports_the_boundary(
    provider: ClaudeProvider, agent_dir: Path, fake: FakeAnthropic
) -> None:
    query = start(provider, agent_dir, '<message id="2" from="family">Plan the garden party</message>')
    events: list[ProviderEvent] = []
    async with asyncio.timeout(SAFETY):
        async for event in query.events():
            events.append(event)
            if event.kind == "result" and len(of(events, "result")) == 1:
                query.push("/compact")
                query.end()

    (compacted,) = of(events, "compacted")
    assert compacted.text.startswith("Context compacted (")
    archives = list((agent_dir / "conversations").glob("*.md"))
    assert [path.name for path in archives] == [
        f"{datetime.now(ZoneInfo('Europe/Berlin')):%Y-%m-%d}-plan-the-garden-party.md"
    ]
    text = archives[0].read_text()
    assert "Plan the garden party" in text
    assert "FAKE: " in text


def test_archive_keeps_user_and_assistant_text_and_never_overwrites(tmp_path: Path) -> None:
    transcript = tmp_path / "t.jsonl"
    lines = [
        {"type": "queue-operation", "operation": "enqueue"},
        {"type": "user", "message": {"role": "user", "content": "<message id='2'>Hi Nano, book a table</message>"}},
        {"type": "assistant", "message": {"role": "assistant", "content": [{"type": "text", "text": "Booked."}]}},
        {"type": "assistant", "message": {"role": "assistant", "content": [{"type": "tool_use", "name": "Bash"}]}},
        {"type": "user", "message": {"role": "user", "content": [{"type": "tool_result", "content": "secret"}]}},
        {"type": "user", "isMeta": True, "message": {"role": "user", "content": "meta"}},
    ]
    transcript.write_text("\n".join(json.dumps(line) for line in lines) + "\nnot json\n")
    now = datetime(2026, 3, 1, 9, 30, tzinfo=ZoneInfo("UTC"))

    first = archive_transcript(transcript, tmp_path / "conversations", now, assistant_name="Nano")
    second = archive_transcript(transcript, tmp_path / "conversations", now, assistant_name="Nano")

    assert first is not None
    assert second is not None
    assert first.name == "2026-03-01-hi-nano-book-a-table.md"
    assert second.name == "2026-03-01-hi-nano-book-a-table-2.md"
    text = first.read_text()
    assert "**User**: <message id='2'>Hi Nano, book a table</message>" in text
    assert "**Nano**: Booked." in text
    assert "secret" not in text
    assert "meta" not in text


def test_archive_leaves_out_a_turn_cut_off_by_a_crash(tmp_path: Path) -> None:
    def entry(kind: str, uid: str, parent: str | None, text: str, **extra: Any) -> dict[str, Any]:
        return {"type": kind, "uuid": uid, "parentUuid": parent, "message": {"role": kind, "content": text}, **extra}

    transcript = tmp_path / "t.jsonl"
    lines = [
        entry("user", "u1", None, "book a table"),
        entry("assistant", "a1", "u1", "Booked."),
        entry("user", "u2", "a1", "CUT-OFF by the crash"),  # resumed at a1 afterwards: a dead branch
        {"type": "system", "subtype": "compact_boundary", "uuid": "b1", "parentUuid": None, "logicalParentUuid": "a1"},
        entry("user", "s1", "b1", "the summary", isCompactSummary=True),
        entry("user", "u3", "s1", "and flowers"),
        {"type": "attachment", "uuid": "x1", "parentUuid": "u3"},
        entry("assistant", "a3", "x1", "Ordered."),
        {"type": "attachment", "uuid": "x2", "parentUuid": "a3"},
    ]
    transcript.write_text("\n".join(json.dumps(line) for line in lines) + "\n")

    path = archive_transcript(transcript, tmp_path / "c", datetime(2026, 3, 1, tzinfo=ZoneInfo("UTC")))

    assert path is not None
    text = path.read_text()
    assert "CUT-OFF" not in text
    assert [line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("**")] == [
        "book a table", "Booked.", "and flowers", "Ordered."
    ]


def test_archive_of_an_empty_transcript_writes_nothing(tmp_path: Path) -> None:
    transcript = tmp_path / "t.jsonl"
    transcript.write_text("")

    assert archive_transcript(transcript, tmp_path / "c", datetime.now(ZoneInfo("UTC"))) is None
    assert not (tmp_path / "c").exists()


# -- stopping ----------------------------------------------------------------------------------------------------------


async def test_abort_mid_turn_leaves_no_cli_process(
    provider: ClaudeProvider, agent_dir: Path, fake: FakeAnthropic
) -> None:
    fake.script(Hang())
    query = start(provider, agent_dir, "think for a long time")
    seen: list[ProviderEvent] = []

    async def consume() -> None:
        async for event in query.events():
            seen.append(event)

    async with asyncio.timeout(SAFETY):
        consumer = asyncio.create_task(consume())
        await fake.wait_for_requests(1)
        running = cli_children()
        assert running, "the CLI runs while the turn is under way"
        await query.abort()
        await consumer

    assert not running & cli_children()
    assert not of(seen, "result")
    assert not of(seen, "error"), "an abort is not an error the user should see"


async def test_leaving_the_event_stream_early_stops_the_cli(
    provider: ClaudeProvider, agent_dir: Path, fake: FakeAnthropic
) -> None:
    query = start(provider, agent_dir, "hello")
    async with asyncio.timeout(SAFETY):
        events = query.events()
        async for event in events:
            if event.kind == "result":
                running = cli_children()
                break
        await events.aclose()

    assert running
    assert not running & cli_children()


async def test_a_finished_query_leaves_no_cli_process(
    provider: ClaudeProvider, agent_dir: Path, fake: FakeAnthropic
) -> None:
    before = cli_children()

    await run_to_end(start(provider, agent_dir, "hello"))

    assert cli_children() == before


# -- the provider's face -----------------------------------------------------------------------------------------------


def test_provider_identity_and_session_error_recognition(config: RunnerConfig) -> None:
    provider: Provider = ClaudeProvider(config)

    assert provider.name == "claude"
    assert provider.supports_native_slash_commands is True
    assert provider.is_session_invalid("No conversation found with session ID: 1234")
    assert provider.is_session_invalid(RuntimeError("ENOENT: no such file, open '/x/.claude/projects/a/b.jsonl'"))
    assert not provider.is_session_invalid("Failed to authenticate. API Error: 401 bad token")
