"""A real session folder made by the host's ``SessionStore``, written to as the host would, and the runner around it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sqlite3
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent_runner.config import RunnerConfig
from agent_runner.loop import RunnerLoop
from agent_runner.protocol import (
    AGENT_CHANNEL,
    Attachment,
    ChatContent,
    Destination,
    MessageKind,
    QuestionResponse,
    ReplyTo,
    TaskContent,
)
from nanoclaw_app.ids import new_id
from nanoclaw_app.sessions.store import NewInbound, SessionStore
from nanoclaw_app.timeutil import now_iso
from tests.fakes.provider import ScriptedProvider

TIMEOUT = 10.0
AGENT_ID = "ag-self"
FAMILY = Destination(name="family", display_name="Family", type="channel", channel_type="test", platform_id="chat-1")
WORK = Destination(name="work", display_name="Work chat", type="channel", channel_type="test", platform_id="chat-2")
HELPER = Destination(name="helper", display_name="Helper", type="agent", agent_group_id="ag-helper")


async def until(predicate: Callable[[], Any], what: str = "condition") -> Any:
    """Poll ``predicate`` (a DB read or a recorded list) until it is truthy; fail after ``TIMEOUT``."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


class Session:
    """One session folder: host-side writes through the store, plain reads of both DBs for assertions."""

    def __init__(self, store: SessionStore, folder: Path, root: Path) -> None:
        self.store = store
        self.folder = folder
        self.agent_dir = root / "agent"
        self.skills_dir = root / "skills"

    def config(self, **overrides: Any) -> RunnerConfig:
        values: dict[str, Any] = {
            "session_dir": self.folder, "agent_dir": self.agent_dir, "skills_dir": self.skills_dir,
            "provider": "scripted", "timezone": "Europe/Berlin", "poll_seconds": 0.5,
            "question_timeout_seconds": 5.0,
        }
        values.update(overrides)
        return RunnerConfig(**values)

    # ------------------------------------------------------------------------------------------ host writes

    async def write(self, row: NewInbound) -> tuple[str, int]:
        seq, _ = await self.store.write_inbound(self.folder, row)
        return row.id, seq

    async def chat(self, text: str, *, sender: str = "Alice", chat: str = "chat-1", channel: str = "test",
                   thread: str | None = None, trigger: int = 1, on_wake: int = 0, process_after: str | None = None,
                   reply_to: ReplyTo | None = None, attachments: list[Attachment] | None = None,
                   platform_message_id: str | None = None) -> tuple[str, int]:
        pmid = platform_message_id or new_id("msg")
        content = ChatContent(
            text=text, sender_id=f"{channel}:{sender.lower()}", sender_name=sender,
            attachments=[a.to_dict() for a in attachments or []],
            reply_to=reply_to.to_dict() if reply_to else None, platform_message_id=pmid,
        )
        return await self.write(NewInbound(
            id=f"{pmid}:{AGENT_ID}", kind=MessageKind.CHAT, content=content.to_json(), timestamp=now_iso(),
            trigger=trigger, platform_id=chat, channel_type=channel, thread_id=thread, on_wake=on_wake,
            process_after=process_after,
        ))

    async def from_agent(self, text: str, agent_id: str = "ag-helper", name: str = "Helper") -> tuple[str, int]:
        content = ChatContent(text=text, sender_id=f"agent:{agent_id}", sender_name=name)
        return await self.write(NewInbound(
            id=new_id("a2a"), kind=MessageKind.CHAT, content=content.to_json(), timestamp=now_iso(),
            channel_type=AGENT_CHANNEL, platform_id=agent_id, source_session_id="sess-other",
        ))

    async def system_note(self, text: str, *, on_wake: int = 0) -> tuple[str, int]:
        content = ChatContent(text=text, sender_id="system", sender_name="system")
        return await self.write(NewInbound(
            id=new_id("msg"), kind=MessageKind.CHAT, content=content.to_json(), timestamp=now_iso(),
            channel_type=AGENT_CHANNEL, platform_id=AGENT_ID, on_wake=on_wake,
        ))

    async def task(self, prompt: str, *, script: str | None = None, process_after: str | None = None,
                   series_id: str | None = None, recurrence: str | None = None,
                   status: str = "pending") -> tuple[str, int]:
        task_id = new_id("task")
        return await self.write(NewInbound(
            id=task_id, kind=MessageKind.TASK, content=TaskContent(prompt=prompt, script=script).to_json(),
            timestamp=now_iso(), process_after=process_after, series_id=series_id or task_id, recurrence=recurrence,
            platform_id="chat-1", channel_type="test", status=status,
        ))

    async def answer(self, question_id: str, value: str) -> tuple[str, int]:
        """What the host writes when someone clicks a question card's button."""
        return await self.write(NewInbound(
            id=f"{question_id}:answer", kind=MessageKind.SYSTEM,
            content=QuestionResponse(question_id=question_id, selected_option=value, user_id="test:alice").to_json(),
            timestamp=now_iso(), trigger=0, platform_id="chat-1", channel_type="test",
        ))

    # ------------------------------------------------------------------------------------------ reads

    def _rows(self, name: str, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        conn = sqlite3.connect(f"file:{self.folder / name}?mode=ro", uri=True)
        conn.row_factory = sqlite3.Row
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def outbound(self) -> list[dict[str, Any]]:
        """``messages_out`` rows with decoded content, by seq."""
        rows = self._rows("outbound.db", "SELECT * FROM messages_out ORDER BY seq")
        return [{**dict(r), "content": json.loads(r["content"])} for r in rows]

    def texts(self) -> list[str]:
        return [r["content"].get("text", "") for r in self.outbound() if r["kind"] == "chat"]

    def acks(self) -> dict[str, str]:
        return {r[0]: r[1] for r in self._rows("outbound.db", "SELECT message_id, status FROM processing_ack")}

    def state(self, key: str) -> str | None:
        rows = self._rows("outbound.db", "SELECT value FROM session_state WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def set_state(self, key: str, value: str) -> None:
        conn = sqlite3.connect(self.folder / "outbound.db")
        try:
            conn.execute("INSERT OR REPLACE INTO session_state (key, value, updated_at) VALUES (?, ?, ?)",
                         (key, value, now_iso()))
            conn.commit()
        finally:
            conn.close()

    def container_state(self) -> dict[str, Any]:
        """The single ``container_state`` row, or an empty dict before the runner wrote one."""
        rows = self._rows("outbound.db", "SELECT * FROM container_state WHERE id = 1")
        return dict(rows[0]) if rows else {}

    def tables(self, db: str = "outbound.db") -> set[str]:
        return {r[0] for r in self._rows(db, "SELECT name FROM sqlite_master WHERE type = 'table'")}

    # ------------------------------------------------------------------------------------------ the runner

    @contextlib.asynccontextmanager
    async def running(self, provider: ScriptedProvider, *, quiet_seconds: float = 60.0,
                      **config: Any) -> AsyncIterator[RunnerLoop]:
        """Run the loop as a task; stop it with its event on exit and check it ended cleanly."""
        loop = RunnerLoop(self.config(**config), provider, quiet_seconds=quiet_seconds)
        stop = asyncio.Event()
        task = asyncio.create_task(loop.run(stop))
        try:
            yield loop
        finally:
            stop.set()
            async with asyncio.timeout(TIMEOUT):
                await task


@pytest.fixture
async def session(store: SessionStore, tmp_path: Path) -> Session:
    folder = await store.create(AGENT_ID, "sess-1")
    await store.write_projection(folder, [FAMILY, WORK, HELPER], ("test", "chat-1", None))
    return Session(store, folder, tmp_path)


@pytest.fixture
def gateway_socket() -> Iterator[Path]:
    """A path for a unix socket standing in for the gateway's; short, since socket paths are limited to ~100 bytes."""
    folder = Path(tempfile.mkdtemp(prefix="ncgw-"))
    try:
        yield folder / "gateway.sock"
    finally:
        shutil.rmtree(folder, ignore_errors=True)
