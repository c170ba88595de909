"""What the agent is doing for the in-app chat right now, from what the host really learns while it works.

Signals, all real: the router's ``message.routed`` (a turn begins), the wake manager's ``container.*`` events (queued,
started, failed, exited), the image builder's progress (a first start builds the agent image), the sweep's
``message.failed``, the router's ``message.dropped``, and, while a turn is open, the runner's own ``outbound.db``:
``container_state.current_tool`` (the tool it runs) and ``processing_ack`` (whether the turn's messages are done).
The router's ``message.held`` / ``message.unheld`` (a session could not take a message yet / now has it or gave up)
make the chat redraw that bubble, which shows as waiting meanwhile. That
file is read every :data:`POLL_SECONDS` only while a turn of this chat is open; nothing is read when the chat is quiet.

Each change is published as ``chat.activity`` with ``state`` one of: ``starting``, ``waiting`` (for a container
slot), ``building`` (the agent image), ``working``, ``tool`` (with ``tool``), ``stopped`` (the container ended mid-turn;
the sweep retries), ``failed``, ``dropped`` (the message reached no agent; ``detail`` is the reason) and ``idle``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from agent_runner.protocol import AckStatus
from nanoclaw_app.core.events import Event, EventBus
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.database import Database
from nanoclaw_app.errors import SessionDamaged
from nanoclaw_app.ids import inbound_row_id
from nanoclaw_app.sessions.store import SessionStore

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
TURN_TTL_SECONDS = 3600.0
"""A turn with no signal for this long is forgotten (its container vanished without any report)."""
LIVE = frozenset({"running", "idle"})


@dataclass
class _Turn:
    session_id: str
    agent_group_id: str
    platform_id: str
    rows: set[str] = field(default_factory=set)
    state: str = ""
    tool: str | None = None
    seen_at: float = 0.0


def read_progress(conn: sqlite3.Connection, row_ids: list[str]) -> tuple[str | None, set[str]]:
    """(tool the runner declares it runs, which of ``row_ids`` are finished) from ``outbound.db`` opened as main."""
    found = conn.execute("SELECT current_tool FROM container_state WHERE id = 1").fetchone()
    marks = ", ".join("?" for _ in row_ids)
    done = conn.execute(
        f"SELECT message_id FROM processing_ack WHERE status IN (?, ?) AND message_id IN ({marks})",
        (AckStatus.COMPLETED.value, AckStatus.FAILED.value, *row_ids),
    ).fetchall()
    return (found[0] if found and found[0] else None), {r[0] for r in done}


class ActivityTracker:
    """Owned by the webchat adapter: one task that listens to the event bus and, while a turn is open, polls."""

    def __init__(
        self, db: Database, events: EventBus, store: SessionStore | None, channel_type: str, *,
        on_held: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self._db = db
        self._events = events
        self._store = store
        self._channel_type = channel_type
        self._on_held = on_held
        self._turns: dict[str, _Turn] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start listening (idempotent); returns once subscribed, so no event published after it is missed."""
        if self._task is not None:
            return
        ready = asyncio.Event()
        self._task = asyncio.create_task(self._run(ready), name="webchat-activity")
        await ready.wait()

    async def stop(self) -> None:
        """Stop listening; open turns are forgotten (the page times its indicator out)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._turns.clear()

    # ------------------------------------------------------------------------------------------ the loop

    async def _run(self, ready: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        async with self._events.subscribe() as queue:
            ready.set()
            next_poll = loop.time()
            while True:
                timeout = max(0.0, next_poll - loop.time()) if self._turns else None
                try:
                    async with asyncio.timeout(timeout):
                        event = await queue.get()
                except TimeoutError:
                    event = None
                try:
                    if event is not None:
                        await self._on_event(event)
                    if self._turns and loop.time() >= next_poll:
                        next_poll = loop.time() + POLL_SECONDS
                        await self._poll()
                except Exception:
                    log.exception("chat activity tracking failed on %s; carrying on", event.kind if event else "poll")

    async def _on_event(self, event: Event) -> None:
        data, kind = event.data, event.kind
        if kind == "message.routed":
            if data.get("channel_type") == self._channel_type and data.get("trigger"):
                await self._begin(data)
            return
        if kind == "message.dropped":
            if data.get("channel_type") == self._channel_type and data.get("reason") != "no_agent_engaged":
                self._events.publish("chat.activity", platform_id=data.get("platform_id"), session_id=None,
                                     state="dropped", tool=None, detail=str(data.get("reason") or ""))
            return
        if kind in ("message.held", "message.unheld"):
            if data.get("channel_type") == self._channel_type and self._on_held is not None:
                await self._on_held(str(data.get("message_id")))
            return
        if kind.startswith("image.build_"):
            self._on_build(kind, data)
            return
        turn = self._turns.get(str(data.get("session_id")))
        if turn is None:
            return
        if kind == "container.queued":
            self._set(turn, "waiting", detail=str(data.get("position") or ""))
        elif kind == "container.started":
            self._set(turn, "working")
        elif kind == "container.start_failed":
            self._set(turn, "failed", detail=str(data.get("error") or ""))
        elif kind == "container.exited":
            await self._poll_one(turn)
            if turn.session_id in self._turns:
                self._set(turn, "stopped", detail="" if data.get("exit_code") is None else str(data["exit_code"]))
        elif kind == "message.failed":
            self._set(turn, "failed", detail=str(data.get("error") or data.get("reason") or ""))
            del self._turns[turn.session_id]

    async def _begin(self, data: dict[str, Any]) -> None:
        session_id, agent = str(data.get("session_id")), str(data.get("agent_group_id"))
        turn = self._turns.get(session_id)
        if turn is None:
            turn = _Turn(session_id, agent, str(data.get("platform_id")))
            self._turns[session_id] = turn
            session = await sessions_db.get(self._db, session_id)
            live = session is not None and session.container_status in LIVE
            self._set(turn, "working" if live else "starting")
        turn.rows.add(inbound_row_id(str(data.get("message_id")), agent))

    def _on_build(self, kind: str, data: dict[str, Any]) -> None:
        for turn in list(self._turns.values()):
            if turn.state not in ("starting", "building"):
                continue
            if kind == "image.build_progress":
                self._set(turn, "building", detail=f"{data.get('step', '?')}/{data.get('steps', '?')}")
            elif kind == "image.build_started":
                self._set(turn, "building", detail="")
            elif kind in ("image.build_done", "image.build_failed"):
                self._set(turn, "starting")

    # ------------------------------------------------------------------------------------------ polling

    async def _poll(self) -> None:
        now = asyncio.get_running_loop().time()
        for turn in list(self._turns.values()):
            if now - turn.seen_at > TURN_TTL_SECONDS:
                log.info("chat activity of session %s had no signal for an hour; forgetting it", turn.session_id)
                self._set(turn, "idle")
                self._turns.pop(turn.session_id, None)
                continue
            await self._poll_one(turn)

    async def _poll_one(self, turn: _Turn) -> None:
        if self._store is None:
            return
        folder = self._store.dir(turn.agent_group_id, turn.session_id)
        rows = sorted(turn.rows)
        try:
            tool, done = await self._store.read_outbound(folder, lambda conn: read_progress(conn, rows))
        except (sqlite3.Error, OSError, SessionDamaged) as err:
            log.debug("cannot read the progress of session %s yet: %s", turn.session_id, err)
            return
        if turn.rows <= done:
            self._set(turn, "idle")
            self._turns.pop(turn.session_id, None)
            return
        if tool is not None and (turn.state != "tool" or tool != turn.tool):
            self._set(turn, "tool", tool=tool)
        elif tool is None and turn.state == "tool":
            self._set(turn, "working")

    def _set(self, turn: _Turn, state: str, *, tool: str | None = None, detail: str = "") -> None:
        if (state, tool) == (turn.state, turn.tool) and not detail:
            return
        turn.state, turn.tool = state, tool
        turn.seen_at = asyncio.get_running_loop().time()
        self._events.publish("chat.activity", platform_id=turn.platform_id, session_id=turn.session_id,
                             state=state, tool=tool, detail=detail)
