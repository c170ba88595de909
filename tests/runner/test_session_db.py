"""Container-side DB access over a folder made by the host's store (reference §8.2 session-state, plus fetch rules)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from agent_runner.protocol import AckStatus, MessageKind, TextOut
from agent_runner.session_db import NewOutbound, SessionDB, new_id, short_id
from nanoclaw_app.timeutil import iso
from tests.runner.conftest import Session


@pytest.fixture
def db(session: Session) -> SessionDB:
    return SessionDB(session.folder)


def _ids(rows: list) -> list[str]:  # type: ignore[type-arg]
    return [r.id for r in rows]


async def test_pending_returns_the_newest_rows_in_chronological_order(session: Session, db: SessionDB) -> None:
    ids = [(await session.chat(f"m{i}"))[0] for i in range(5)]
    assert _ids(db.pending(include_on_wake=False, limit=3)) == ids[2:]
    assert _ids(db.pending(include_on_wake=False, limit=10)) == ids


async def test_pending_skips_system_rows_acked_rows_and_other_statuses(session: Session, db: SessionDB) -> None:
    keep, _ = await session.chat("keep")
    acked, _ = await session.chat("acked")
    await session.answer("q-1", "0")
    await session.task("paused", status="paused")
    db.set_acks([acked], AckStatus.COMPLETED)
    assert _ids(db.pending(include_on_wake=False, limit=10)) == [keep]


async def test_pending_waits_for_process_after(session: Session, db: SessionDB) -> None:
    now = datetime.now(UTC)
    due, _ = await session.chat("due", process_after=iso(now - timedelta(minutes=1)))
    await session.chat("later", process_after=iso(now + timedelta(hours=1)))
    naive, _ = await session.chat("naive", process_after="2020-01-01 10:00:00")
    assert _ids(db.pending(include_on_wake=False, limit=10)) == [due, naive]


async def test_on_wake_rows_only_when_asked(session: Session, db: SessionDB) -> None:
    wake, _ = await session.system_note("verify", on_wake=1)
    plain, _ = await session.chat("plain")
    assert _ids(db.pending(include_on_wake=False, limit=10)) == [plain]
    assert _ids(db.pending(include_on_wake=True, limit=10)) == [wake, plain]


async def test_claims_are_cleared_at_start_but_settled_acks_stay(session: Session, db: SessionDB) -> None:
    a, _ = await session.chat("a")
    b, _ = await session.chat("b")
    db.claim([a])
    db.set_acks([b], AckStatus.FAILED)
    assert db.clear_stale_claims() == 1
    assert session.acks() == {b: "failed"}


async def test_release_drops_only_our_processing_claims(session: Session, db: SessionDB) -> None:
    a, _ = await session.chat("a")
    b, _ = await session.chat("b")
    db.claim([a, b])
    db.set_acks([b], AckStatus.COMPLETED)
    assert db.release_claims([a, b]) == 1
    assert session.acks() == {b: "completed"}


async def test_outbound_seqs_are_odd_and_above_both_databases(session: Session, db: SessionDB) -> None:
    for i in range(3):
        await session.chat(f"m{i}")  # inbound seqs 2, 4, 6
    row_id, _ = await session.chat("answered")  # 8
    db.claim([row_id])
    seqs = db.write_messages(
        [NewOutbound(kind=MessageKind.CHAT, content=TextOut(text=t).to_json()) for t in ("x", "y")],
        complete=[row_id],
    )
    assert seqs == [9, 11]
    assert session.acks() == {row_id: "completed"}
    await session.chat("later")  # 12
    assert db.write_messages([NewOutbound(kind=MessageKind.CHAT, content="{}")]) == [13]


async def test_continuations_are_kept_per_provider(db: SessionDB) -> None:
    db.save_continuation("claude", "sess-abc")
    db.save_continuation("openai", "[]")
    assert db.load_continuation("claude") == "sess-abc"
    assert db.load_continuation("anthropic") is None
    assert db.clear_continuation("claude")
    assert db.load_continuation("claude") is None
    assert db.load_continuation("openai") == "[]"
    assert not db.clear_continuation("claude")


async def test_the_inbound_database_is_never_written(session: Session, db: SessionDB) -> None:
    with db._read() as conn, pytest.raises(sqlite3.OperationalError, match="readonly"):
        conn.execute("DELETE FROM messages_in")


async def test_missing_outbound_tables_are_created_at_start(session: Session, db: SessionDB) -> None:
    conn = sqlite3.connect(session.folder / "outbound.db")
    conn.execute("DROP TABLE container_state")
    conn.commit()
    conn.close()
    db.ensure_schema()
    db.set_tool("Bash", 600_000)
    assert session.container_state()["current_tool"] == "Bash"


async def test_tool_state_is_set_and_cleared(session: Session, db: SessionDB) -> None:
    db.set_tool("Bash", 120_000)
    state = session.container_state()
    assert (state["current_tool"], state["tool_declared_timeout_ms"]) == ("Bash", 120_000)
    assert state["tool_started_at"].endswith("Z")
    db.clear_tool()
    assert session.container_state()["current_tool"] is None


async def test_a_question_response_is_found_by_its_question_id(session: Session, db: SessionDB) -> None:
    await session.answer("q-other", "1")
    assert db.question_response("q-mine") is None
    row_id, _ = await session.answer("q-mine", "0")
    found = db.question_response("q-mine")
    assert found is not None
    assert found[0] == row_id
    assert found[1].selected_option == "0"


async def test_seqs_resolve_to_their_rows_by_parity(session: Session, db: SessionDB) -> None:
    row_id, seq = await session.chat("hi", thread="th-1")
    (out_seq,) = db.write_messages([NewOutbound(kind=MessageKind.CHAT, content="{}", channel_type="test",
                                                platform_id="chat-2", id="out-1")])
    inbound = db.seq_target(seq)
    assert inbound is not None
    assert (inbound.row_id, inbound.platform_id, inbound.thread_id) == (row_id, "chat-1", "th-1")
    outbound = db.seq_target(out_seq)
    assert outbound is not None
    assert (outbound.row_id, outbound.platform_id) == ("out-1", "chat-2")
    assert db.seq_target(999) is None


async def test_quoted_platform_messages_map_to_the_seqs_the_agent_knows(session: Session, db: SessionDB) -> None:
    _, seq = await session.chat("original", platform_message_id="tg-55")
    (out_seq,) = db.write_messages([NewOutbound(kind=MessageKind.CHAT, content="{}", id="out-1")])
    await session.store.record_delivery(session.folder, "out-1", "tg-77", "delivered")
    assert db.seqs_for_platform_messages(["tg-55", "tg-77", "tg-unknown"]) == {"tg-55": seq, "tg-77": out_seq}


async def test_the_latest_row_from_an_address_is_found(session: Session, db: SessionDB) -> None:
    await session.chat("old", thread="th-1")
    newest, _ = await session.chat("new", thread="th-2")
    await session.chat("elsewhere", chat="chat-2")
    row = db.latest_from("test", "chat-1")
    assert row is not None
    assert (row.id, row.thread_id) == (newest, "th-2")
    assert db.latest_from("test", "chat-9") is None


async def test_tasks_are_listed_once_per_series(session: Session, db: SessionDB) -> None:
    first, _ = await session.task("water the plants", process_after="2030-01-01T08:00:00.000Z", recurrence="0 8 * * *")
    await session.task("water the plants", process_after="2030-01-02T08:00:00.000Z", series_id=first)
    await session.task("call mum", process_after="2029-06-01T18:00:00.000Z", status="paused")
    tasks = db.list_tasks()
    assert [(t.series_id == first, t.prompt_preview) for t in tasks] == [
        (False, "call mum"), (True, "water the plants")]
    assert [t.status for t in db.list_tasks("paused")] == ["paused"]


def test_ids_have_the_hosts_shape_and_question_ids_are_short() -> None:
    assert new_id("out").startswith("out-")
    assert len(new_id("out").split("-")) == 3
    assert len(short_id("q")) == 12
    assert short_id("q") != short_id("q")
