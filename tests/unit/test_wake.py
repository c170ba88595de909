"""The wake manager: one container per session, a global cap with a FIFO queue, idle preemption and clean exits."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from agent_runner.protocol import ChatContent, MessageKind
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.events import EventBus
from nanoclaw_app.core.sweep import Sweep, idle_check
from nanoclaw_app.db import agents as agents_db
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.database import Database
from nanoclaw_app.db.rows import Session
from nanoclaw_app.ids import new_id
from nanoclaw_app.runtime.base import SessionSpec
from nanoclaw_app.runtime.wake import IdleCheck, WakeManager
from nanoclaw_app.sessions.store import NewInbound, SessionStore
from nanoclaw_app.timeutil import now_iso
from tests.fakes.runtime import InProcessRuntime

TIMEOUT = 10.0

Build = Callable[..., Awaitable[tuple[WakeManager, InProcessRuntime]]]


async def make_session(db: Database, store: SessionStore, name: str = "Helper") -> tuple[Session, Path]:
    agent = await agents_db.create(db, name)
    session, _ = await sessions_db.find_or_create(db, agent.id, "agent-shared", None, None)
    folder = await store.create(agent.id, session.id)
    return session, folder


async def write_chat(store: SessionStore, folder: Path, text: str = "hi", *, on_wake: int = 0) -> str:
    row = NewInbound(id=new_id("msg"), kind=MessageKind.CHAT, content=ChatContent(text=text).to_json(),
                     timestamp=now_iso(), platform_id="chat-1", channel_type="test", on_wake=on_wake)
    await store.write_inbound(folder, row)
    return row.id


async def status_of(db: Database, session_id: str) -> str:
    session = await sessions_db.get(db, session_id)
    assert session is not None
    return session.container_status


def pending(folder: Path, message_id: str) -> bool:
    conn = sqlite3.connect(folder / "inbound.db")
    try:
        (status,) = conn.execute("SELECT status FROM messages_in WHERE id = ?", (message_id,)).fetchone()
    finally:
        conn.close()
    return bool(status == "pending")


@pytest.fixture
def events() -> EventBus:
    return EventBus()


@pytest.fixture
async def build(db: Database, store: SessionStore, events: EventBus) -> AsyncIterator[Build]:
    managers: list[WakeManager] = []

    async def prepare(session: Session) -> SessionSpec:
        folder = store.dir(session.agent_group_id, session.id)
        return SessionSpec(session_id=session.id, agent_group_id=session.agent_group_id, session_dir=folder,
                           agent_dir=folder.parent, log_path=folder.parent / f"{session.id}.log")

    async def make(runtime: InProcessRuntime | None = None, *, idle: bool | IdleCheck = False, max_running: int = 4,
                   **options: Any) -> tuple[WakeManager, InProcessRuntime]:
        rt = runtime or InProcessRuntime()
        is_idle = idle if callable(idle) else (idle_check(db, store) if idle else None)
        manager = WakeManager(db, rt, prepare=prepare, max_running=max_running, is_idle=is_idle, events=events,
                              check_interval=0.01, **options)
        await manager.start()
        managers.append(manager)
        return manager, rt

    yield make
    for manager in managers:
        await manager.stop_all()


async def test_twenty_concurrent_wakes_start_one_container(db, store, build):
    manager, runtime = await build()
    session, folder = await make_session(db, store)
    await write_chat(store, folder)

    results = await asyncio.gather(*(manager.wake(session) for _ in range(20)))

    assert results == [True] * 20
    async with asyncio.timeout(TIMEOUT):
        await runtime.wait_replies(session.id)
    assert runtime.starts == [session.id]
    assert manager.running_count() == 1


async def test_waking_a_running_session_pokes_its_container(db, store, build):
    manager, runtime = await build(InProcessRuntime(poll_seconds=3600))
    session, folder = await make_session(db, store)
    await write_chat(store, folder, "one")
    assert await manager.wake(session)
    async with asyncio.timeout(TIMEOUT):
        await runtime.wait_replies(session.id)

    await write_chat(store, folder, "two")
    assert await manager.wake(session)

    async with asyncio.timeout(TIMEOUT):
        await runtime.wait_replies(session.id, 2)
    assert runtime.starts == [session.id]


async def test_container_status_follows_start_and_stop(db, store, build):
    manager, _runtime = await build()
    session, _folder = await make_session(db, store)

    assert await manager.wake(session)
    assert await status_of(db, session.id) == "running"
    assert await manager.is_running(session.id)

    await manager.stop(session.id, reason="test")
    assert await status_of(db, session.id) == "stopped"
    assert not await manager.is_running(session.id)
    assert manager.running_count() == 0


async def test_a_stale_heartbeat_is_removed_before_a_start(db, store, build):
    manager, _runtime = await build()
    session, folder = await make_session(db, store)
    (folder / ".heartbeat").touch()

    assert await manager.wake(session)

    assert not (folder / ".heartbeat").exists()


async def test_the_cap_queues_sessions_in_order_and_the_queue_drains_as_containers_exit(db, store, build):
    manager, runtime = await build(max_running=2)
    made = [await make_session(db, store, f"Agent {i}") for i in range(5)]
    for _, folder in made:
        await write_chat(store, folder)
    sessions = [s for s, _ in made]

    assert await asyncio.gather(*(manager.wake(s) for s in sessions)) == [True] * 5
    assert await manager.wake(sessions[3])  # a second wake keeps one queue entry and its place

    assert manager.running_count() == 2
    assert manager.queued() == [s.id for s in sessions[2:]]
    for session in sessions:
        async with asyncio.timeout(TIMEOUT):
            await runtime.wait_replies(session.id)
        await manager.stop(session.id, reason="done")
    assert runtime.peak_running == 2
    assert runtime.starts == [s.id for s in sessions]
    assert manager.queued() == []


async def test_idle_containers_make_room_so_ten_sessions_with_a_cap_of_two_all_get_answers(db, store, build):
    manager, runtime = await build(max_running=2, idle=True)
    made = [await make_session(db, store, f"Agent {i}") for i in range(10)]
    for _, folder in made:
        await write_chat(store, folder)

    assert await asyncio.gather(*(manager.wake(s) for s, _ in made)) == [True] * 10

    async with asyncio.timeout(TIMEOUT):
        await runtime.wait_until(lambda: all(runtime.replies.get(s.id) for s, _ in made))
    assert runtime.peak_running <= 2
    assert manager.running_count() <= 2


async def test_a_busy_container_is_not_preempted(db, store, build):
    checked = asyncio.Event()
    checks: list[bool] = []
    plain = idle_check(db, store)

    async def counting_idle_check(session_id: str) -> bool:
        result = await plain(session_id)
        checks.append(result)
        if len(checks) >= 5:
            checked.set()
        return result

    manager, runtime = await build(InProcessRuntime(delay=3600), max_running=1, idle=counting_idle_check)
    busy, busy_folder = await make_session(db, store, "Busy")
    waiting, waiting_folder = await make_session(db, store, "Waiting")
    await write_chat(store, busy_folder)
    await write_chat(store, waiting_folder)
    assert await manager.wake(busy)
    async with asyncio.timeout(TIMEOUT):
        # claimed and now "thinking" for an hour
        await runtime.wait_until(lambda: (busy_folder / ".heartbeat").exists())

    assert await manager.wake(waiting)
    async with asyncio.timeout(TIMEOUT):
        await checked.wait()  # several housekeeping rounds looked at the busy container

    assert not any(checks)
    assert runtime.running == {busy.id}
    assert manager.queued() == [waiting.id]


async def test_a_failed_start_returns_false_and_the_next_sweep_retries(
    ctx: CoreContext, db: Database, store: SessionStore, build: Build, events: EventBus
) -> None:
    manager, runtime = await build(InProcessRuntime(fail_start=1))
    ctx.waker = manager
    session, folder = await make_session(db, store)
    message_id = await write_chat(store, folder)

    async with events.subscribe() as queue:
        assert not await manager.wake(session)
        kinds = [queue.get_nowait().kind for _ in range(queue.qsize())]

    assert "container.start_failed" in kinds
    assert pending(folder, message_id)
    assert await status_of(db, session.id) == "stopped"
    assert manager.running_count() == 0

    report = await Sweep(ctx, interval=60).sweep_once()

    assert report.woken == 1
    async with asyncio.timeout(TIMEOUT):
        await runtime.wait_replies(session.id)


async def test_a_start_failure_from_prepare_never_raises(db, build):
    manager, runtime = await build()

    async def broken(session: Session) -> SessionSpec:
        raise RuntimeError("no image")

    manager._prepare = broken  # the only way to make prepare fail after construction
    agent = await agents_db.create(db, "Broken")
    session, _ = await sessions_db.find_or_create(db, agent.id, "agent-shared", None, None)

    assert not await manager.wake(session)
    assert runtime.starts == []
    assert manager.running_count() == 0


async def test_a_crash_frees_the_slot_for_the_next_in_line(db, store, build, events):
    manager, runtime = await build(InProcessRuntime(crash_next_turn=True), max_running=1)
    crashing, crashing_folder = await make_session(db, store, "Crashing")
    waiting, waiting_folder = await make_session(db, store, "Waiting")
    await write_chat(store, crashing_folder)
    await write_chat(store, waiting_folder)

    async with events.subscribe() as queue:
        assert await manager.wake(crashing)
        assert await manager.wake(waiting)
        async with asyncio.timeout(TIMEOUT):
            await runtime.wait_replies(waiting.id)
        seen = [queue.get_nowait() for _ in range(queue.qsize())]

    assert runtime.exits[0] == (crashing.id, 137)
    assert await status_of(db, crashing.id) == "stopped"
    assert any(e.kind == "container.exited" and e.data["session_id"] == crashing.id for e in seen)
    assert runtime.peak_running == 1


async def test_an_idle_container_is_stopped_after_idle_stop_seconds(db, store, build):
    manager, runtime = await build(idle=True, idle_stop_seconds=0.05)
    session, folder = await make_session(db, store)
    await write_chat(store, folder)

    assert await manager.wake(session)
    async with asyncio.timeout(TIMEOUT):
        await runtime.wait_replies(session.id)
        await runtime.wait_until(lambda: session.id not in runtime.running)

    assert await status_of(db, session.id) == "stopped"
    assert manager.running_count() == 0


class SlowStopRuntime(InProcessRuntime):
    """Holds every stop until ``gate`` is set, like a container in its SIGTERM grace period."""

    def __init__(self) -> None:
        super().__init__()
        self.stop_begun = asyncio.Event()
        self.gate = asyncio.Event()

    async def stop(self, session_id: str, *, grace_seconds: float = 5.0) -> None:
        self.stop_begun.set()
        await self.gate.wait()
        await super().stop(session_id, grace_seconds=grace_seconds)


async def test_a_wake_while_the_container_stops_starts_a_fresh_one_after_the_exit(db, store, build):
    runtime = SlowStopRuntime()
    manager, _ = await build(runtime)
    session, folder = await make_session(db, store)
    await write_chat(store, folder, "before")
    assert await manager.wake(session)
    async with asyncio.timeout(TIMEOUT):
        await runtime.wait_replies(session.id)  # its first poll is behind it

    stopping = asyncio.create_task(manager.stop(session.id, reason="restart"))
    async with asyncio.timeout(TIMEOUT):
        await runtime.stop_begun.wait()
    # Only a fresh container may read an on_wake row, so the dying one cannot answer it.
    await write_chat(store, folder, "after the restart", on_wake=1)
    assert await manager.wake(session)
    runtime.gate.set()
    async with asyncio.timeout(TIMEOUT):
        await stopping
        await runtime.wait_replies(session.id, 2)

    assert runtime.starts == [session.id, session.id]


async def test_stop_all_stops_every_container_and_refuses_new_wakes(db, store, build):
    manager, runtime = await build(max_running=2)
    sessions = [(await make_session(db, store, f"Agent {i}"))[0] for i in range(3)]
    for session in sessions:
        assert await manager.wake(session)
    assert manager.queued() == [sessions[2].id]

    await manager.stop_all()

    assert runtime.running == set()
    assert manager.running_count() == 0
    assert manager.queued() == []
    for session in sessions:
        assert await status_of(db, session.id) == "stopped"
    assert not await manager.wake(sessions[0])


class StandbyRecordingRuntime(InProcessRuntime):
    """Records what the wake manager asks of a runtime that can prepare standby containers."""

    def __init__(self) -> None:
        super().__init__()
        self.prepared: list[str] = []
        self.discarded: list[str] = []

    async def prepare_standby(self, spec: SessionSpec) -> bool:
        self.prepared.append(spec.session_id)
        return True

    async def discard_standby(self, session_id: str) -> None:
        self.discarded.append(session_id)


async def test_an_idle_stop_prepares_the_sessions_next_container_and_any_other_stop_drops_it(db, store, build):
    runtime = StandbyRecordingRuntime()
    manager, _ = await build(runtime, idle=True, idle_stop_seconds=0.05)
    session, folder = await make_session(db, store)
    await write_chat(store, folder)

    assert await manager.wake(session)
    async with asyncio.timeout(TIMEOUT):
        await runtime.wait_replies(session.id)
        await runtime.wait_until(lambda: session.id not in runtime.running)
        while not runtime.prepared:
            await asyncio.sleep(0.01)
    assert runtime.prepared == [session.id]

    await manager.stop(session.id, reason="its agent is being deleted")
    assert session.id in runtime.discarded
    assert runtime.prepared == [session.id]


async def test_a_container_stopped_to_make_room_gets_no_standby(db, store, build):
    runtime = StandbyRecordingRuntime()
    manager, _ = await build(runtime, max_running=1, idle=True)
    (first, first_folder), (second, second_folder) = [await make_session(db, store, f"Agent {i}") for i in range(2)]
    await write_chat(store, first_folder)
    await write_chat(store, second_folder)

    assert await manager.wake(first)
    assert await manager.wake(second)
    async with asyncio.timeout(TIMEOUT):
        await runtime.wait_until(lambda: bool(runtime.replies.get(first.id)) and bool(runtime.replies.get(second.id)))
    await asyncio.sleep(0.1)
    assert first.id not in runtime.prepared


async def test_at_start_standbys_are_prepared_for_the_most_recently_active_sessions(db, store, build):
    made = [await make_session(db, store, f"Agent {i}") for i in range(3)]
    for session, _ in made[:2]:
        await sessions_db.touch(db, session.id)
        await asyncio.sleep(0.01)  # last_active has millisecond precision
    runtime = StandbyRecordingRuntime()

    await build(runtime, standby_at_start=1)

    async with asyncio.timeout(TIMEOUT):
        while not runtime.prepared:
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    assert runtime.prepared == [made[1][0].id]
