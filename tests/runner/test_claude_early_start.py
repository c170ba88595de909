"""A fresh runner with the ``claude`` provider starts Claude Code before its first message, and the first query uses it.

The real loop, the real provider as the registry builds it and the real bundled CLI, against the fake Anthropic server
on 127.0.0.1. The runner starts with an empty inbox; each test waits until a Claude Code process runs (before this
change none ran until a message arrived) and only then writes the message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent_runner.loop import CLEARED, RunnerLoop
from agent_runner.providers.claude import ClaudeProvider
from agent_runner.providers.claude_query import ResumePoint
from agent_runner.providers.registry import build_provider
from tests.fakes.anthropic_server import FakeAnthropic, Text
from tests.runner.conftest import TIMEOUT, Session, until

MODEL = "claude-fake-1"
KEY = "continuation:claude"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    server = FakeAnthropic()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def claude_processes(parent: int) -> set[int]:
    """Live Claude Code CLI processes whose parent is ``parent``."""
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == parent and state != "Z" and b"claude" in cmdline:
            found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def ours() -> set[int]:
    return claude_processes(os.getpid())


@contextlib.asynccontextmanager
async def running(session: Session, fake: FakeAnthropic) -> AsyncIterator[RunnerLoop]:
    """The real loop over the session with a claude provider from the registry; stopped and closed on exit."""
    config = session.config(provider="claude", base_url=fake.url, api_key="test-token", model=MODEL,
                            model_max_retries=0)
    provider = build_provider("claude", config)
    loop = RunnerLoop(config, provider)
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    try:
        yield loop
    finally:
        try:
            stop.set()
            async with asyncio.timeout(TIMEOUT):
                await task
        finally:
            await provider.aclose()


def say(text: str) -> Text:
    return Text(f'<message to="family">{text}</message>')


async def test_claude_code_is_running_before_the_first_message_and_answers_it(
    session: Session, fake: FakeAnthropic
) -> None:
    fake.script(say("hello Alice"))
    async with running(session, fake):
        early = await until(ours, "Claude Code started while the inbox is empty")
        assert fake.requests == [], "starting early asks the model nothing"
        row_id, _ = await session.chat("hello there")
        await until(lambda: session.acks().get(row_id) == "completed", "the answer")
        assert ours() == early, "the Claude Code started early answered; no second one was started"
    assert session.texts() == ["hello Alice"]
    assert "hello there" in json.dumps(fake.requests[0]["messages"])
    assert not ours(), "stopping the runner and closing the provider ends Claude Code"


async def test_a_resumed_conversation_continues_in_the_early_started_claude_code(
    session: Session, fake: FakeAnthropic
) -> None:
    fake.script(say("hello ADA-REPLY"), say("you are Ada"))
    await session.chat("my name is Ada")
    async with running(session, fake):
        await until(lambda: session.state(KEY), "the first conversation saved")
    saved = ResumePoint.parse(session.state(KEY) or "")

    async with running(session, fake):
        early = await until(ours, "Claude Code started with the saved conversation")
        row_id, _ = await session.chat("what is my name?")
        await until(lambda: session.acks().get(row_id) == "completed", "the answer")
        assert ours() == early

    assert session.texts() == ["hello ADA-REPLY", "you are Ada"]
    history = json.dumps(fake.requests[-1]["messages"])
    assert history.index("my name is Ada") < history.index("ADA-REPLY") < history.index("what is my name?")
    resumed = ResumePoint.parse(session.state(KEY) or "")
    assert resumed.session_id == saved.session_id, "the same Claude Code session, resumed"
    assert resumed.at != saved.at


async def test_an_early_started_claude_code_that_died_is_replaced_for_the_first_message(
    session: Session, fake: FakeAnthropic
) -> None:
    fake.script(say("still here"))
    async with running(session, fake):
        early = await until(ours, "Claude Code started early")
        for pid in early:
            os.kill(pid, signal.SIGKILL)
        row_id, _ = await session.chat("are you there?")
        await until(lambda: session.acks().get(row_id) == "completed", "the answer")
        replacement = ours()
    assert session.texts() == ["still here"], "the user sees the answer, not the dead process's error"
    assert replacement, "a new Claude Code answered"
    assert not replacement & early


async def test_a_query_that_takes_over_an_early_claude_code_just_killed_still_gets_its_answer(
    session: Session, fake: FakeAnthropic
) -> None:
    provider = ClaudeProvider(session.config(provider="claude", base_url=fake.url, api_key="t", model=MODEL,
                                             model_max_retries=0))
    session.agent_dir.mkdir()
    try:
        provider.start_early(continuation=None, cwd=session.agent_dir, system_prompt="ADDENDUM", tools=[])
        early = await until(ours, "Claude Code started early")
        for pid in early:
            os.kill(pid, signal.SIGKILL)
        # No await in between: the runner cannot have noticed the death yet.
        query = provider.query(prompt="hello", continuation=None, cwd=session.agent_dir, system_prompt="ADDENDUM",
                               tools=[])
        query.end()
        async with asyncio.timeout(TIMEOUT):
            events = [event async for event in query.events()]
    finally:
        await provider.aclose()
    assert [event.text for event in events if event.kind in ("result", "error")] == ["FAKE: hello"]
    assert len(fake.requests) == 1


async def test_a_first_message_that_clears_the_conversation_closes_the_early_claude_code(
    session: Session, fake: FakeAnthropic
) -> None:
    fake.script(say("noted MARK-7"), say("no idea"))
    await session.chat("remember MARK-7")
    async with running(session, fake):
        await until(lambda: session.state(KEY), "the first conversation saved")

    async with running(session, fake):
        early = await until(ours, "Claude Code started with the saved conversation")
        await session.chat("/clear")
        await until(lambda: CLEARED in session.texts(), "the confirmation")
        row_id, _ = await session.chat("what did I ask you to remember?")
        await until(lambda: session.acks().get(row_id) == "completed", "the answer in a fresh conversation")
        assert not any(alive(pid) for pid in early), "the session started for the old conversation is closed"

    assert session.texts() == ["noted MARK-7", CLEARED, "no idea"]
    fresh = json.dumps(fake.requests[-1]["messages"])
    assert "what did I ask you to remember?" in fresh
    assert "MARK-7" not in fresh


async def test_sigterm_before_any_message_stops_the_runner_and_its_claude_code(
    session: Session, fake: FakeAnthropic, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "NANOCLAW_SESSION_DIR": str(session.folder),
        "NANOCLAW_AGENT_DIR": str(tmp_path / "agent"),
        "NANOCLAW_SKILLS_DIR": str(tmp_path / "skills"),
        "NANOCLAW_PROVIDER": "claude",
        "NANOCLAW_MODEL": MODEL,
        "NANOCLAW_MODEL_BASE_URL": fake.url,
        "NANOCLAW_MODEL_TOKEN": "test-token",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent_runner", cwd=REPO, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    try:
        early = await until(lambda: claude_processes(proc.pid), "the runner's Claude Code, with no message yet")
    finally:
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(TIMEOUT):
            _, stderr = await proc.communicate()
    assert proc.returncode == 0, stderr.decode()
    assert not any(alive(pid) for pid in early), "no Claude Code outlives the runner"
    assert fake.requests == []
