"""An in-process container runtime: each session's "container" is an asyncio task playing a tiny agent.

The agent works against the real session files exactly as the agent runner does: it clears stale claims at start,
reads due pending rows through a fresh read-only connection, leaves non-triggering rows alone (the accumulate gate),
claims rows in ``processing_ack``, touches ``.heartbeat`` and, in one transaction on ``outbound.db``, writes its replies
(odd seq above the maximum of both DBs) and completes the acks. It depends on nothing from pytest, so a host started as
a subprocess can use it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from agent_runner.protocol import (
    AckStatus,
    ContractError,
    InboundRow,
    InboundStatus,
    MessageKind,
    TextOut,
    decode_inbound,
    next_container_seq,
    row_from_mapping,
)
from nanoclaw_app.errors import TransientError
from nanoclaw_app.ids import new_id
from nanoclaw_app.runtime.base import ExitCallback, SessionSpec
from nanoclaw_app.sessions.store import HEARTBEAT, INBOUND, OUTBOUND
from nanoclaw_app.timeutil import now_iso, parse_utc, utcnow

log = logging.getLogger(__name__)

EXIT_STOPPED = 0
EXIT_KILLED = 137

ReplyScript = Callable[[InboundRow], list[str]]


def _connect(path: Path, *, write: bool) -> sqlite3.Connection:
    mode = "rw" if write else "ro"
    conn = sqlite3.connect(f"file:{quote(str(path))}?mode={mode}", uri=True, timeout=5.0, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


def clear_stale_claims(folder: Path) -> int:
    """Container-side crash recovery: claims left by a previous life are dropped so the rows can be taken again."""
    conn = _connect(folder / OUTBOUND, write=True)
    try:
        return conn.execute("DELETE FROM processing_ack WHERE status = ?", (AckStatus.PROCESSING.value,)).rowcount
    finally:
        conn.close()


def pending_rows(folder: Path, *, first_poll: bool, limit: int) -> list[InboundRow]:
    """Due, pending, unacked, non-system rows, oldest first (``on_wake`` rows only on a fresh container's first poll).

    Like the runner, it opens a fresh read-only connection for every poll, so it always sees the host's latest commit.
    """
    conn = _connect(folder / INBOUND, write=False)
    try:
        conn.execute("ATTACH DATABASE ? AS ob", (f"file:{quote(str(folder / OUTBOUND))}?mode=ro",))
        rows = conn.execute(
            "SELECT * FROM messages_in m WHERE m.status = ? AND m.kind != ?"
            " AND (? OR m.on_wake = 0)"
            " AND NOT EXISTS (SELECT 1 FROM ob.processing_ack a WHERE a.message_id = m.id)"
            " ORDER BY m.seq",
            (InboundStatus.PENDING.value, MessageKind.SYSTEM.value, int(first_poll)),
        ).fetchall()
    finally:
        conn.close()
    now = utcnow()
    due = [r for r in rows if r["process_after"] is None or parse_utc(r["process_after"]) <= now]
    return [row_from_mapping(InboundRow, r) for r in due[:limit]]


def claim(folder: Path, message_ids: list[str]) -> None:
    """Mark rows as being processed (in ``outbound.db``, the container's own file)."""
    conn = _connect(folder / OUTBOUND, write=True)
    try:
        stamp = now_iso()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO processing_ack (message_id, status, status_changed) VALUES (?, ?, ?)"
            " ON CONFLICT (message_id) DO UPDATE SET status = excluded.status,"
            " status_changed = excluded.status_changed",
            [(i, AckStatus.PROCESSING.value, stamp) for i in message_ids],
        )
        conn.execute("COMMIT")
    finally:
        conn.close()


@dataclass(frozen=True)
class Out:
    """One outbound row as a container writes it (a reply, a message to another agent, a system action)."""

    kind: str
    content: str
    channel_type: str | None = None
    platform_id: str | None = None
    in_reply_to: str | None = None
    thread_id: str | None = None


def write_replies(folder: Path, replies: list[tuple[InboundRow, str]], completed: list[str]) -> list[int]:
    """Write the replies and complete the acks in one transaction; returns the seqs written."""
    rows = [Out(MessageKind.CHAT.value, TextOut(text=text).to_json(), row.channel_type, row.platform_id, row.id,
                row.thread_id) for row, text in replies]
    return write_rows(folder, rows, completed)


def write_rows(folder: Path, rows: Sequence[Out], completed: Sequence[str] = ()) -> list[int]:
    """Write outbound rows (odd seqs above both DBs) and complete the acks in one transaction; returns the seqs."""
    # Read the host's max seq first, on its own: holding inbound.db while committing outbound.db can deadlock.
    reader = _connect(folder / INBOUND, write=False)
    try:
        inbound_max = reader.execute("SELECT MAX(seq) FROM messages_in").fetchone()[0] or 0
    finally:
        reader.close()
    conn = _connect(folder / OUTBOUND, write=True)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            outbound_max = conn.execute("SELECT MAX(seq) FROM messages_out").fetchone()[0] or 0
            current = max(inbound_max, outbound_max)
            seqs: list[int] = []
            stamp = now_iso()
            for row in rows:
                current = next_container_seq(current)
                conn.execute(
                    "INSERT INTO messages_out (id, seq, in_reply_to, timestamp, kind, platform_id, channel_type,"
                    " thread_id, content) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (new_id("out"), current, row.in_reply_to, stamp, row.kind, row.platform_id, row.channel_type,
                     row.thread_id, row.content),
                )
                seqs.append(current)
            conn.executemany(
                "UPDATE processing_ack SET status = ?, status_changed = ? WHERE message_id = ?",
                [(AckStatus.COMPLETED.value, stamp, i) for i in completed],
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return seqs
    finally:
        conn.close()


def default_reply(row: InboundRow) -> list[str]:
    """``echo: <text>`` for a chat message, ``task: <prompt>`` for a task."""
    try:
        content = decode_inbound(row.kind, row.content)
    except ContractError as err:
        return [f"error: {err}"]
    if row.kind == MessageKind.TASK:
        return [f"task: {getattr(content, 'prompt', '')}"]
    return [f"echo: {getattr(content, 'text', '')}"]


@dataclass
class _Agent:
    spec: SessionSpec
    poke: asyncio.Event = field(default_factory=asyncio.Event)
    halt: asyncio.Event = field(default_factory=asyncio.Event)
    stopping: bool = False
    task: asyncio.Task[int] | None = None


@dataclass
class InProcessRuntime:
    """``ContainerRuntime`` whose containers are asyncio tasks.

    Options: ``reply`` scripts the texts sent for each triggering row; ``delay`` waits before replying;
    ``fail_start`` makes the next N starts raise ``TransientError``; ``crash_next_turn`` makes the next turn die after
    claiming, without replying (exit 137), like a container killed mid-turn.
    """

    name: str = "inprocess"
    uses_model_keys: bool = False  # its agents never call a model
    reply: ReplyScript | None = None
    delay: float = 0.0
    fail_start: int = 0
    crash_next_turn: bool = False
    poll_seconds: float = 0.02
    batch: int = 10
    starts: list[str] = field(default_factory=list)
    exits: list[tuple[str, int | None]] = field(default_factory=list)
    replies: dict[str, list[int]] = field(default_factory=dict)
    """Seqs of replies written, per session."""
    peak_running: int = 0
    _agents: dict[str, _Agent] = field(default_factory=dict)
    _callbacks: list[ExitCallback] = field(default_factory=list)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    # ------------------------------------------------------------------------------------------ ContainerRuntime

    async def start(self, spec: SessionSpec) -> None:
        if self.fail_start > 0:
            self.fail_start -= 1
            raise TransientError(f"in-process runtime refused to start session {spec.session_id} (scripted)")
        if spec.session_id in self._agents:
            return
        agent = _Agent(spec)
        self._agents[spec.session_id] = agent
        agent.task = asyncio.create_task(self._life(agent), name=f"inprocess-{spec.session_id}")
        self.starts.append(spec.session_id)
        self.peak_running = max(self.peak_running, len(self._agents))
        await self._signal()

    async def stop(self, session_id: str, *, grace_seconds: float = 5.0) -> None:
        agent = self._agents.get(session_id)
        if agent is None or agent.stopping or agent.task is None:
            return
        agent.stopping = True
        agent.halt.set()
        agent.poke.set()
        code = EXIT_STOPPED
        try:
            async with asyncio.timeout(grace_seconds):
                await asyncio.shield(agent.task)
        except TimeoutError:
            agent.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await agent.task
            code = EXIT_KILLED
        except Exception:
            log.exception("in-process container of session %s failed while stopping", session_id)
        await self._exited(agent, code)

    async def is_running(self, session_id: str) -> bool:
        agent = self._agents.get(session_id)
        return agent is not None and agent.task is not None and not agent.task.done()

    async def notify(self, session_id: str) -> None:
        agent = self._agents.get(session_id)
        if agent is not None:
            agent.poke.set()

    async def open(self) -> None:
        """Nothing to connect to."""

    async def remove_orphans(self) -> int:
        return 0

    def on_exit(self, callback: ExitCallback) -> None:
        self._callbacks.append(callback)

    # ------------------------------------------------------------------------------------------ test helpers

    @property
    def running(self) -> set[str]:
        """Sessions with a live in-process container."""
        return set(self._agents)

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Wait (wrap in ``asyncio.timeout``) until ``predicate`` holds; re-checked after every start, turn and exit."""
        async with self._changed:
            await self._changed.wait_for(predicate)

    async def wait_replies(self, session_id: str, count: int = 1) -> list[int]:
        """Wait until the session's container wrote at least ``count`` replies; returns their seqs."""
        await self.wait_until(lambda: len(self.replies.get(session_id, [])) >= count)
        return self.replies[session_id]

    async def close(self) -> None:
        """Stop every container (tests that use the runtime without a wake manager)."""
        await asyncio.gather(*(self.stop(sid, grace_seconds=1.0) for sid in list(self._agents)))

    # ------------------------------------------------------------------------------------------ the agent

    async def _signal(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _life(self, agent: _Agent) -> int:
        try:
            code = await self._play(agent)
        except Exception:
            log.exception("in-process container of session %s crashed", agent.spec.session_id)
            code = 1
        if not agent.stopping:  # died on its own; a requested stop is reported by stop()
            await self._exited(agent, code)
        return code

    async def _exited(self, agent: _Agent, code: int | None) -> None:
        session_id = agent.spec.session_id
        if self._agents.get(session_id) is not agent:
            return
        del self._agents[session_id]
        for callback in list(self._callbacks):
            try:
                await callback(session_id, code)
            except Exception:
                log.exception("exit callback for session %s failed", session_id)
        self.exits.append((session_id, code))  # after the callbacks: an exit in this list is fully reported
        await self._signal()

    async def _play(self, agent: _Agent) -> int:
        folder = agent.spec.session_dir
        session_id = agent.spec.session_id
        await asyncio.to_thread(clear_stale_claims, folder)
        first_poll = True
        while not agent.stopping:
            agent.poke.clear()
            rows = await asyncio.to_thread(pending_rows, folder, first_poll=first_poll, limit=self.batch)
            first_poll = False
            if any(r.trigger == 1 for r in rows):
                await self._turn(agent, rows)
                if self.crash_next_turn:
                    self.crash_next_turn = False
                    log.info("in-process container of session %s crashes mid-turn (scripted)", session_id)
                    return EXIT_KILLED
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds):
                    await agent.poke.wait()
        return EXIT_STOPPED

    async def _turn(self, agent: _Agent, rows: list[InboundRow]) -> None:
        folder = agent.spec.session_dir
        session_id = agent.spec.session_id
        ids = [r.id for r in rows]
        await asyncio.to_thread(claim, folder, ids)
        (folder / HEARTBEAT).touch()
        await self._signal()
        if self.crash_next_turn:
            return
        if self.delay:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.delay):
                    await agent.halt.wait()
            if agent.stopping:  # stopped mid-turn (SIGTERM): the claims stay for the sweep to reset
                return
        seqs = await asyncio.to_thread(write_rows, folder, self._answer(session_id, rows), ids)
        (folder / HEARTBEAT).touch()
        self.replies.setdefault(session_id, []).extend(seqs)
        await self._signal()

    def _answer(self, session_id: str, rows: list[InboundRow]) -> list[Out]:
        """The rows a turn writes: ``reply`` (or an echo) to each triggering chat message or task."""
        script = self.reply or default_reply
        return [
            Out(MessageKind.CHAT.value, TextOut(text=text).to_json(), row.channel_type, row.platform_id, row.id,
                row.thread_id)
            for row in rows
            if row.trigger == 1 and row.kind in (MessageKind.CHAT, MessageKind.TASK)
            for text in script(row)
        ]


__all__ = ["EXIT_KILLED", "EXIT_STOPPED", "InProcessRuntime", "default_reply"]
