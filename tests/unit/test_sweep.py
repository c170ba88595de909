"""The sweep: ack sync, stuck kills, claim resets with backoff, orphan ack cleanup and waking for due work."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from datetime import timedelta
from pathlib import Path

import pytest

from agent_runner.protocol import ChatContent, MessageKind
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.sweep import Sweep, idle_check
from nanoclaw_app.db import agents as agents_db
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db import users as users_db
from nanoclaw_app.db.database import Database
from nanoclaw_app.db.rows import Session
from nanoclaw_app.ids import new_id
from nanoclaw_app.sessions.store import NewInbound, SessionStore
from nanoclaw_app.timeutil import iso, later_iso, now_iso, parse_utc, utcnow
from tests.fakes.waker import RecordingWaker

TIMEOUT = 10.0
MS = timedelta(milliseconds=1)


async def make_session(db: Database, store: SessionStore, name: str = "Helper") -> tuple[Session, Path]:
    agent = await agents_db.create(db, name)
    session, _ = await sessions_db.find_or_create(db, agent.id, "agent-shared", None, None)
    folder = await store.create(agent.id, session.id)
    return session, folder


async def write_chat(store: SessionStore, folder: Path, text: str = "hi", **extra: object) -> str:
    row = NewInbound(
        id=new_id("msg"), kind=extra.pop("kind", MessageKind.CHAT),  # type: ignore[arg-type]
        content=ChatContent(text=text, sender_id="test:alice").to_json(),
        timestamp=now_iso(), platform_id="chat-1", channel_type="test", **extra,  # type: ignore[arg-type]
    )
    await store.write_inbound(folder, row)
    return row.id


def sql(folder: Path, db_name: str, statement: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
    """Direct access as the container (outbound.db) or to inspect/prepare inbound rows."""
    conn = sqlite3.connect(folder / db_name)
    conn.row_factory = sqlite3.Row
    try:
        rows = conn.execute(statement, params).fetchall()
        conn.commit()
        return rows
    finally:
        conn.close()


def ack(folder: Path, message_id: str, status: str, changed: str | None = None) -> None:
    sql(folder, "outbound.db", "INSERT INTO processing_ack (message_id, status, status_changed) VALUES (?, ?, ?)",
        (message_id, status, changed or now_iso()))


def inbound(folder: Path, message_id: str) -> sqlite3.Row:
    (row,) = sql(folder, "inbound.db", "SELECT * FROM messages_in WHERE id = ?", (message_id,))
    return row


def acks(folder: Path) -> dict[str, str]:
    return {r["message_id"]: r["status"] for r in sql(folder, "outbound.db", "SELECT * FROM processing_ack")}


def set_tries(folder: Path, message_id: str, tries: int) -> None:
    sql(folder, "inbound.db", "UPDATE messages_in SET tries = ? WHERE id = ?", (tries, message_id))


def age_heartbeat(folder: Path, seconds: float) -> None:
    beat = folder / ".heartbeat"
    beat.touch()
    stamp = time.time() - seconds
    os.utime(beat, (stamp, stamp))


@pytest.fixture
def sweep(ctx: CoreContext) -> Sweep:
    return Sweep(ctx, interval=60)


# --------------------------------------------------------------------------------------------- ack sync


async def test_completed_acks_complete_their_messages(ctx, db, store, sweep):
    _session, folder = await make_session(db, store)
    message_id = await write_chat(store, folder)
    ack(folder, message_id, "completed")

    report = await sweep.sweep_once()

    assert inbound(folder, message_id)["status"] == "completed"
    assert report.acks_completed == 1


async def test_failed_acks_fail_their_messages_and_stay_failed(ctx, db, store, sweep):
    _session, folder = await make_session(db, store)
    message_id = await write_chat(store, folder)
    ack(folder, message_id, "failed")

    async with ctx.events.subscribe() as events:
        first = await sweep.sweep_once()
        event = events.get_nowait()
    second = await sweep.sweep_once()

    assert inbound(folder, message_id)["status"] == "failed"
    assert first.acks_failed == 1
    assert second.acks_failed == 0
    assert (event.kind, event.data["message_id"]) == ("message.failed", message_id)
    assert ctx.waker.woken == []


# --------------------------------------------------------------------------------------------- crash reset


async def test_a_crashed_claim_is_retried_after_base_backoff(ctx, db, store, sweep):
    _session, folder = await make_session(db, store)
    message_id = await write_chat(store, folder)
    ack(folder, message_id, "processing")

    before = utcnow()
    report = await sweep.sweep_once()
    after = utcnow()

    row = inbound(folder, message_id)
    assert (row["status"], row["tries"]) == ("pending", 1)
    retry_at = parse_utc(row["process_after"])
    assert before + timedelta(seconds=5) - MS <= retry_at <= after + timedelta(seconds=5)
    assert report.claims_retried == 1
    assert acks(folder) == {}
    assert report.orphan_acks_deleted == 1
    assert ctx.waker.woken == []  # not due yet


@pytest.mark.parametrize(("tries", "delay"), [(1, 10), (2, 20), (4, 80)])
async def test_backoff_doubles_with_each_try(ctx, db, store, sweep, tries, delay):
    _session, folder = await make_session(db, store)
    message_id = await write_chat(store, folder)
    set_tries(folder, message_id, tries)
    ack(folder, message_id, "processing")

    before = utcnow()
    await sweep.sweep_once()
    after = utcnow()

    row = inbound(folder, message_id)
    assert row["tries"] == tries + 1
    retry_at = parse_utc(row["process_after"])
    assert before + timedelta(seconds=delay) - MS <= retry_at <= after + timedelta(seconds=delay)


async def test_a_message_fails_after_five_tries_and_the_failure_is_visible(ctx, db, store, sweep):
    session, folder = await make_session(db, store)
    message_id = await write_chat(store, folder)
    set_tries(folder, message_id, 5)
    ack(folder, message_id, "processing")

    async with ctx.events.subscribe() as events:
        report = await sweep.sweep_once()
        event = events.get_nowait()

    assert inbound(folder, message_id)["status"] == "failed"
    assert report.claims_failed == 1
    assert report.failed_messages == [message_id]
    assert event.kind == "message.failed"
    assert event.data["session_id"] == session.id
    assert acks(folder) == {}


async def test_a_row_already_rescheduled_into_the_future_is_not_reset_again(ctx, db, store, sweep):
    _session, folder = await make_session(db, store)
    retry_at = later_iso(300)
    message_id = await write_chat(store, folder, process_after=retry_at)
    set_tries(folder, message_id, 2)
    ack(folder, message_id, "processing")

    report = await sweep.sweep_once()

    row = inbound(folder, message_id)
    assert (row["tries"], row["process_after"]) == (2, retry_at)
    assert report.claims_retried == 0
    assert acks(folder) == {}


async def test_claims_of_a_running_healthy_container_are_left_alone(ctx, db, store, sweep):
    session, folder = await make_session(db, store)
    message_id = await write_chat(store, folder)
    ack(folder, message_id, "processing")
    age_heartbeat(folder, 1)
    ctx.waker.running.add(session.id)

    report = await sweep.sweep_once()

    assert acks(folder) == {message_id: "processing"}
    assert inbound(folder, message_id)["tries"] == 0
    assert report.killed == 0
    assert ctx.waker.stopped == []


async def test_orphan_acks_are_kept_when_a_container_came_back_meanwhile(ctx, db, store):
    class ComingBack(RecordingWaker):
        """Not running when the sweep looks, running again by the time it would delete."""

        calls = 0

        async def is_running(self, session_id: str) -> bool:
            self.calls += 1
            return self.calls > 1

    ctx.waker = ComingBack()
    _session, folder = await make_session(db, store)
    message_id = await write_chat(store, folder)
    ack(folder, message_id, "processing")

    report = await Sweep(ctx, interval=60).sweep_once()

    assert report.claims_retried == 1
    assert report.orphan_acks_deleted == 0
    assert acks(folder) == {message_id: "processing"}


# --------------------------------------------------------------------------------------------- stuck containers


async def test_a_stuck_claim_kills_the_container_and_resets_the_claim(ctx, db, store, sweep):
    session, folder = await make_session(db, store)
    message_id = await write_chat(store, folder)
    claimed_at = utcnow() - timedelta(seconds=120)
    ack(folder, message_id, "processing", iso(claimed_at))
    age_heartbeat(folder, 125)
    ctx.waker.running.add(session.id)

    report = await sweep.sweep_once()

    assert [sid for sid, _ in ctx.waker.stopped] == [session.id]
    assert "stuck" in ctx.waker.stopped[0][1]
    assert report.killed == 1
    row = inbound(folder, message_id)
    assert (row["status"], row["tries"]) == ("pending", 1)
    assert acks(folder) == {}


async def test_a_slow_claim_with_a_moving_heartbeat_is_not_killed(ctx, db, store, sweep):
    session, folder = await make_session(db, store)
    message_id = await write_chat(store, folder)
    ack(folder, message_id, "processing", iso(utcnow() - timedelta(seconds=600)))
    age_heartbeat(folder, 2)
    ctx.waker.running.add(session.id)

    report = await sweep.sweep_once()

    assert report.killed == 0
    assert acks(folder) == {message_id: "processing"}


async def test_a_declared_bash_timeout_protects_a_long_command(ctx, db, store, sweep):
    session, folder = await make_session(db, store)
    message_id = await write_chat(store, folder)
    ack(folder, message_id, "processing", iso(utcnow() - timedelta(seconds=300)))
    age_heartbeat(folder, 305)
    sql(folder, "outbound.db", "INSERT INTO container_state (id, current_tool, tool_declared_timeout_ms,"
        " tool_started_at) VALUES (1, 'Bash', 600000, ?)", (iso(utcnow() - timedelta(seconds=300)),))
    ctx.waker.running.add(session.id)

    report = await sweep.sweep_once()

    assert report.killed == 0


async def test_a_heartbeat_older_than_the_ceiling_kills_an_idle_container(ctx, db, store, sweep):
    session, folder = await make_session(db, store)
    age_heartbeat(folder, ctx.settings.heartbeat_ceiling_seconds + 60)
    ctx.waker.running.add(session.id)

    report = await sweep.sweep_once()

    assert report.killed == 1
    assert ctx.waker.stopped[0][0] == session.id


async def test_a_fresh_container_without_heartbeat_is_not_killed(ctx, db, store, sweep):
    session, folder = await make_session(db, store)
    message_id = await write_chat(store, folder)
    ack(folder, message_id, "processing", iso(utcnow() - timedelta(seconds=3600)))
    ctx.waker.running.add(session.id)

    report = await sweep.sweep_once()

    assert report.killed == 0


# --------------------------------------------------------------------------------------------- waking


async def test_due_triggering_work_wakes_a_session_without_container(ctx, db, store, sweep):
    session, folder = await make_session(db, store)
    await write_chat(store, folder)

    report = await sweep.sweep_once()

    assert ctx.waker.woken == [session.id]
    assert report.woken == 1


async def test_a_timestamp_without_timezone_is_read_as_utc(ctx, db, store, sweep):
    session, folder = await make_session(db, store)
    past_naive = (utcnow() - timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S")
    await write_chat(store, folder, process_after=past_naive)

    await sweep.sweep_once()

    assert ctx.waker.woken == [session.id]


@pytest.mark.parametrize(
    "case", ["context_only", "not_due", "system_answer", "already_claimed", "completed", "container_running"]
)
async def test_nothing_to_do_wakes_nobody(ctx, db, store, sweep, case):
    session, folder = await make_session(db, store)
    if case == "context_only":
        await write_chat(store, folder, trigger=0)
    elif case == "not_due":
        await write_chat(store, folder, process_after=later_iso(600))
    elif case == "system_answer":
        await write_chat(store, folder, kind=MessageKind.SYSTEM)
    elif case == "already_claimed":
        message_id = await write_chat(store, folder)
        ack(folder, message_id, "processing")
        age_heartbeat(folder, 1)
        ctx.waker.running.add(session.id)
    elif case == "completed":
        message_id = await write_chat(store, folder)
        ack(folder, message_id, "completed")
    else:
        await write_chat(store, folder)
        ctx.waker.running.add(session.id)

    await sweep.sweep_once()

    assert ctx.waker.woken == []


async def test_a_failed_wake_leaves_the_message_pending(ctx, db, store, sweep):
    _session, folder = await make_session(db, store)
    message_id = await write_chat(store, folder)
    ctx.waker.fail = True

    report = await sweep.sweep_once()

    assert report.woken == 0
    assert inbound(folder, message_id)["status"] == "pending"


async def test_a_broken_session_does_not_stop_the_others(ctx, db, store, sweep):
    _broken, broken_folder = await make_session(db, store, "Broken")
    (broken_folder / "inbound.db").unlink()
    healthy, folder = await make_session(db, store, "Healthy")
    await write_chat(store, folder)

    report = await sweep.sweep_once()

    assert report.errors == 1
    assert ctx.waker.woken == [healthy.id]


async def test_closed_sessions_are_not_swept(ctx, db, store, sweep):
    session, folder = await make_session(db, store)
    await write_chat(store, folder)
    await sessions_db.close(db, session.id)

    report = await sweep.sweep_once()

    assert report.sessions == 0
    assert ctx.waker.woken == []


# --------------------------------------------------------------------------------------------- lifecycle and helpers


async def test_the_sweep_runs_once_at_start_and_stops_promptly(ctx, db, store):
    class SignallingWaker(RecordingWaker):
        def __init__(self) -> None:
            super().__init__()
            self.event = asyncio.Event()

        async def wake(self, session: Session) -> bool:
            self.event.set()
            return await super().wake(session)

    waker = SignallingWaker()
    ctx.waker = waker
    session, folder = await make_session(db, store)
    await write_chat(store, folder)
    sweep = Sweep(ctx, interval=3600)

    await sweep.start()
    async with asyncio.timeout(TIMEOUT):
        await waker.event.wait()
        await sweep.stop()

    assert waker.woken == [session.id]


async def test_idle_check_sees_claims_and_due_work(db, store):
    session, folder = await make_session(db, store)
    is_idle = idle_check(db, store)
    assert await is_idle(session.id)

    message_id = await write_chat(store, folder)
    assert not await is_idle(session.id)

    ack(folder, message_id, "processing")
    assert not await is_idle(session.id)

    sql(folder, "outbound.db", "UPDATE processing_ack SET status = 'completed'")
    assert await is_idle(session.id)
    assert await is_idle("sess-gone")


async def test_a_completed_recurring_task_is_cloned(ctx, db, store, sweep):
    _session, folder = await make_session(db, store)
    series = new_id("task")
    row = NewInbound(id=series, kind=MessageKind.TASK, content='{"prompt":"daily digest"}', timestamp=now_iso(),
                     recurrence="0 9 * * *", series_id=series, process_after=now_iso())
    await store.write_inbound(folder, row)
    ack(folder, series, "completed")

    report = await sweep.sweep_once()

    assert report.recurring_cloned == 1
    rows = sql(folder, "inbound.db", "SELECT * FROM messages_in WHERE series_id = ? ORDER BY seq", (series,))
    assert [r["status"] for r in rows] == ["completed", "pending"]
    assert rows[1]["recurrence"] == "0 9 * * *"
    assert parse_utc(rows[1]["process_after"]) > utcnow()


async def test_the_owner_is_told_which_message_could_not_be_answered(ctx, db, store, sweep, channel):
    await users_db.upsert(db, "test:olivia", "test", "Olivia")
    await users_db.grant(db, "test:olivia", "owner")
    channel.connected = True
    _session, folder = await make_session(db, store)
    message_id = await write_chat(store, folder, "please book the table")
    set_tries(folder, message_id, 5)
    ack(folder, message_id, "processing")

    await sweep.sweep_once()

    (notice,) = channel.sent
    assert "please book the table" in notice.message.text
