"""The in-process runtime plays the container's side of the session files faithfully (and crashes on request)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent_runner.protocol import ChatContent, MessageKind, TaskContent, decode_outbound
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.sweep import Sweep
from nanoclaw_app.db import agents as agents_db
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.database import Database
from nanoclaw_app.db.rows import Session
from nanoclaw_app.errors import TransientError
from nanoclaw_app.ids import new_id
from nanoclaw_app.runtime.base import SessionSpec
from nanoclaw_app.sessions.store import NewInbound, SessionStore
from nanoclaw_app.timeutil import later_iso, now_iso
from tests.fakes.runtime import EXIT_KILLED, EXIT_STOPPED, InProcessRuntime

TIMEOUT = 10.0


async def make_session(db: Database, store: SessionStore, name: str = "Helper") -> tuple[Session, Path]:
    agent = await agents_db.create(db, name)
    session, _ = await sessions_db.find_or_create(db, agent.id, "agent-shared", None, None)
    folder = await store.create(agent.id, session.id)
    return session, folder


def spec_for(session: Session, folder: Path) -> SessionSpec:
    return SessionSpec(session_id=session.id, agent_group_id=session.agent_group_id, session_dir=folder,
                       agent_dir=folder.parent, log_path=folder.parent / f"{session.id}.log")


async def write_chat(store: SessionStore, folder: Path, text: str, **extra: object) -> tuple[str, int]:
    row = NewInbound(
        id=new_id("msg"), kind=MessageKind.CHAT,
        content=ChatContent(text=text, sender_id="test:alice", sender_name="Alice").to_json(),
        timestamp=now_iso(), platform_id="chat-1", channel_type="test", thread_id="th-1", **extra,  # type: ignore[arg-type]
    )
    seq, _ = await store.write_inbound(folder, row)
    return row.id, seq


def outbound(folder: Path, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
    conn = sqlite3.connect(folder / "outbound.db")
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def container_write(folder: Path, sql: str, params: tuple[object, ...] = ()) -> None:
    conn = sqlite3.connect(folder / "outbound.db")
    try:
        conn.execute(sql, params)
        conn.commit()
    finally:
        conn.close()


def inbound_row(folder: Path, message_id: str) -> sqlite3.Row:
    conn = sqlite3.connect(folder / "inbound.db")
    conn.row_factory = sqlite3.Row
    try:
        row = conn.execute("SELECT * FROM messages_in WHERE id = ?", (message_id,)).fetchone()
        assert row is not None
        return row  # type: ignore[no-any-return]
    finally:
        conn.close()


@pytest.fixture
async def runtime() -> AsyncIterator[InProcessRuntime]:
    rt = InProcessRuntime()
    yield rt
    await rt.close()


async def test_a_message_gets_an_echo_reply_with_odd_seq_and_a_completed_ack(db, store, runtime):
    session, folder = await make_session(db, store)
    message_id, seq = await write_chat(store, folder, "hello")

    await runtime.start(spec_for(session, folder))
    async with asyncio.timeout(TIMEOUT):
        await runtime.wait_replies(session.id)

    (reply,) = outbound(folder, "SELECT * FROM messages_out")
    assert reply["seq"] % 2 == 1
    assert reply["seq"] > seq
    assert reply["in_reply_to"] == message_id
    assert (reply["platform_id"], reply["channel_type"], reply["thread_id"]) == ("chat-1", "test", "th-1")
    assert decode_outbound(reply["kind"], reply["content"]).text == "echo: hello"  # type: ignore[union-attr]
    (ack,) = outbound(folder, "SELECT * FROM processing_ack")
    assert (ack["message_id"], ack["status"]) == (message_id, "completed")
    assert (folder / ".heartbeat").exists()


@pytest.mark.parametrize(("outbound_max", "inbound_rows", "expected"), [
    (7, 6, [13, 15, 17, 19, 21, 23]),  # inbound seqs 2..12 are higher than the container's own 7
    (21, 1, [23]),  # the container's own 21 is higher than inbound 2
])
async def test_reply_seqs_are_the_next_odd_numbers_above_both_databases(db, store, runtime, outbound_max,
                                                                         inbound_rows, expected):
    session, folder = await make_session(db, store)
    container_write(folder, "INSERT INTO messages_out (id, seq, timestamp, kind, content)"
                    " VALUES ('o', ?, ?, 'chat', '{}')", (outbound_max, now_iso()))
    for n in range(inbound_rows):
        await write_chat(store, folder, f"message {n}")

    await runtime.start(spec_for(session, folder))
    async with asyncio.timeout(TIMEOUT):
        seqs = await runtime.wait_replies(session.id, inbound_rows)

    assert seqs == expected


async def test_a_task_row_gets_a_task_reply(db, store, runtime):
    session, folder = await make_session(db, store)
    row = NewInbound(id=new_id("task"), kind=MessageKind.TASK, content=TaskContent(prompt="water the plants").to_json(),
                     timestamp=now_iso(), platform_id="chat-1", channel_type="test")
    await store.write_inbound(folder, row)
    await runtime.start(spec_for(session, folder))
    async with asyncio.timeout(TIMEOUT):
        await runtime.wait_replies(session.id)
    (reply,) = outbound(folder, "SELECT content FROM messages_out")
    assert "task: water the plants" in reply["content"]


async def test_context_rows_wait_for_a_triggering_row_and_are_acked_with_it(db, store, runtime):
    session, folder = await make_session(db, store)
    context_id, _ = await write_chat(store, folder, "just chatter", trigger=0)
    await runtime.start(spec_for(session, folder))
    trigger_id, _ = await write_chat(store, folder, "@bot hi")
    await runtime.notify(session.id)
    async with asyncio.timeout(TIMEOUT):
        await runtime.wait_replies(session.id)

    replies = outbound(folder, "SELECT in_reply_to FROM messages_out")
    assert [r["in_reply_to"] for r in replies] == [trigger_id]
    acks = {r["message_id"]: r["status"] for r in outbound(folder, "SELECT * FROM processing_ack")}
    assert acks == {context_id: "completed", trigger_id: "completed"}


async def test_rows_not_yet_due_and_system_rows_are_not_taken(db, store, runtime):
    session, folder = await make_session(db, store)
    later_id, _ = await write_chat(store, folder, "tomorrow", process_after=later_iso(3600))
    system = NewInbound(id=new_id("msg"), kind=MessageKind.SYSTEM, content='{"question_id":"q","selected_option":"y"}',
                        timestamp=now_iso())
    await store.write_inbound(folder, system)
    now_id, _ = await write_chat(store, folder, "now")
    await runtime.start(spec_for(session, folder))
    async with asyncio.timeout(TIMEOUT):
        await runtime.wait_replies(session.id)
    acked = {r["message_id"] for r in outbound(folder, "SELECT message_id FROM processing_ack")}
    assert acked == {now_id}
    assert later_id not in acked


async def test_on_wake_rows_are_read_only_by_a_fresh_containers_first_poll(db, store, runtime):
    session, folder = await make_session(db, store)
    await write_chat(store, folder, "first")
    spec = spec_for(session, folder)
    await runtime.start(spec)
    async with asyncio.timeout(TIMEOUT):
        await runtime.wait_replies(session.id)

    on_wake_id, _ = await write_chat(store, folder, "restart note", on_wake=1)
    plain_id, _ = await write_chat(store, folder, "plain")
    await runtime.notify(session.id)
    async with asyncio.timeout(TIMEOUT):
        await runtime.wait_replies(session.id, 2)
    answered = [r["in_reply_to"] for r in outbound(folder, "SELECT in_reply_to FROM messages_out ORDER BY seq")]
    assert plain_id in answered
    assert on_wake_id not in answered

    await runtime.stop(session.id)
    await runtime.start(spec)
    async with asyncio.timeout(TIMEOUT):
        await runtime.wait_replies(session.id, 3)
    answered = [r["in_reply_to"] for r in outbound(folder, "SELECT in_reply_to FROM messages_out ORDER BY seq")]
    assert answered[-1] == on_wake_id


async def test_scripted_replies_and_scripted_start_failures(db, store):
    runtime = InProcessRuntime(reply=lambda row: ["one", "two"], fail_start=1)
    session, folder = await make_session(db, store)
    await write_chat(store, folder, "hi")
    with pytest.raises(TransientError):
        await runtime.start(spec_for(session, folder))
    assert not await runtime.is_running(session.id)
    await runtime.start(spec_for(session, folder))
    try:
        async with asyncio.timeout(TIMEOUT):
            await runtime.wait_replies(session.id, 2)
        texts = [r["content"] for r in outbound(folder, "SELECT content FROM messages_out ORDER BY seq")]
        assert ['"one"' in texts[0], '"two"' in texts[1]] == [True, True]
    finally:
        await runtime.close()


async def test_stale_claims_of_a_previous_life_are_cleared_at_start(db, store, runtime):
    session, folder = await make_session(db, store)
    message_id, _ = await write_chat(store, folder, "left over")
    container_write(folder, "INSERT INTO processing_ack (message_id, status, status_changed)"
                    " VALUES (?, 'processing', ?)", (message_id, now_iso()))
    await runtime.start(spec_for(session, folder))
    async with asyncio.timeout(TIMEOUT):
        await runtime.wait_replies(session.id)
    (ack,) = outbound(folder, "SELECT status FROM processing_ack")
    assert ack["status"] == "completed"


async def test_stop_reports_exit_code_zero(db, store, runtime):
    exits: list[tuple[str, int | None]] = []

    async def on_exit(session_id: str, code: int | None) -> None:
        exits.append((session_id, code))

    runtime.on_exit(on_exit)
    session, folder = await make_session(db, store)
    await runtime.start(spec_for(session, folder))
    assert await runtime.is_running(session.id)
    await runtime.stop(session.id)
    assert exits == [(session.id, EXIT_STOPPED)]
    assert not await runtime.is_running(session.id)
    assert await runtime.remove_orphans() == 0


async def test_a_crash_mid_turn_leaves_a_claim_that_the_sweep_resets(
    ctx: CoreContext, db: Database, store: SessionStore, runtime: InProcessRuntime
) -> None:
    exits: list[tuple[str, int | None]] = []

    async def on_exit(session_id: str, code: int | None) -> None:
        exits.append((session_id, code))

    runtime.on_exit(on_exit)
    runtime.crash_next_turn = True
    session, folder = await make_session(db, store)
    message_id, _ = await write_chat(store, folder, "this will crash")
    await runtime.start(spec_for(session, folder))
    async with asyncio.timeout(TIMEOUT):
        await runtime.wait_until(lambda: bool(runtime.exits))

    assert exits == [(session.id, EXIT_KILLED)]
    assert outbound(folder, "SELECT * FROM messages_out") == []
    (ack,) = outbound(folder, "SELECT * FROM processing_ack")
    assert (ack["message_id"], ack["status"]) == (message_id, "processing")

    report = await Sweep(ctx, interval=60).sweep_once()

    assert report.claims_retried == 1
    row = inbound_row(folder, message_id)
    assert (row["status"], row["tries"]) == ("pending", 1)
    assert row["process_after"] is not None
    assert outbound(folder, "SELECT * FROM processing_ack") == []
