"""Delivery: exactly once, retries with persisted attempts, ACL, questions, crash recovery (reference §2.5, §8.1)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest

from agent_runner.protocol import AskQuestionOut, ChatContent, SystemAction, TextOut
from nanoclaw_app.core import delivery as delivery_mod
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.delivery import UNCERTAIN_ERROR, Delivery
from nanoclaw_app.core.messages import OutboundMessage
from nanoclaw_app.core.system_actions import SystemActions
from nanoclaw_app.db import agents, destinations, messaging, questions
from nanoclaw_app.db import delivery_attempts as attempts_db
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.rows import Session
from nanoclaw_app.ids import new_id
from tests.fakes.channel import FakeChannel
from tests.fakes.container import write_out

# --------------------------------------------------------------------------------------------- the container's side




def text(value: str, files: list[str] | None = None) -> str:
    return TextOut(text=value, files=files or []).to_json()


# --------------------------------------------------------------------------------------------- fixtures


class Failures:
    def __init__(self) -> None:
        self.told: list[tuple[str, str]] = []

    async def __call__(self, session: Session, message: str) -> None:
        self.told.append((session.id, message))


async def no_approval(**kwargs):
    return None


@pytest.fixture
async def setup(ctx):
    agent = await agents.create(ctx.db, "Helper")
    chat = await messaging.create(ctx.db, "test", "chat-1", name="Family")
    await messaging.wire(ctx.db, chat.id, agent.id)
    session, _ = await sessions_db.find_or_create(ctx.db, agent.id, "shared", chat.id, None)
    folder = await ctx.store.create(agent.id, session.id)
    return agent, chat, session, folder


@pytest.fixture
def failures() -> Failures:
    return Failures()


@pytest.fixture
def delivery(ctx: CoreContext, failures: Failures) -> Delivery:
    return Delivery(ctx, actions=SystemActions(ctx, request_approval=no_approval), on_failure=failures)


async def delivered(ctx: CoreContext, folder: Path) -> dict[str, sqlite3.Row]:
    rows: list[sqlite3.Row] = await ctx.store.read(folder, lambda c: c.execute("SELECT * FROM delivered").fetchall(),
                                with_outbound=False)
    return {r["message_out_id"]: r for r in rows}


def gate(monkeypatch: pytest.MonkeyPatch, channel: FakeChannel) -> tuple[asyncio.Event, asyncio.Event]:
    """Make the channel's sends wait until released; returns (entered, release)."""
    entered, release = asyncio.Event(), asyncio.Event()
    original = channel.deliver

    async def gated(platform_id: str, thread_id: str | None, message: OutboundMessage) -> str | None:
        entered.set()
        await release.wait()
        return await original(platform_id, thread_id, message)

    monkeypatch.setattr(channel, "deliver", gated)
    return entered, release


# --------------------------------------------------------------------------------------------- sending


async def test_reply_to_own_chat_is_sent_and_its_platform_id_recorded(ctx, setup, channel, delivery):
    _, _, session, folder = setup
    row_id, _ = write_out(folder, text("hello"))
    async with ctx.events.subscribe() as events:
        assert await delivery.deliver_session(session.id) == 1
        event = events.get_nowait()
    assert channel.texts() == ["hello"]
    sent = channel.sent[0]
    assert (sent.platform_id, sent.message.kind, sent.message.delivery_id) == ("chat-1", "text", row_id)
    record = (await delivered(ctx, folder))[row_id]
    assert (record["status"], record["platform_message_id"]) == ("delivered", sent.platform_message_id)
    assert event.kind == "delivery.sent"
    assert event.data["message_out_id"] == row_id
    attempt = await attempts_db.get(ctx.db, session.id, row_id)
    assert attempt is not None
    assert (attempt.state, attempt.attempts) == ("delivered", 1)


async def test_overlapping_calls_deliver_exactly_once(ctx, setup, channel, delivery, monkeypatch):
    _, _, session, folder = setup
    write_out(folder, text("only once"))
    entered, release = gate(monkeypatch, channel)
    first = asyncio.create_task(delivery.deliver_session(session.id))
    await entered.wait()
    second = await delivery.deliver_session(session.id)  # the sweep poll arriving mid-send
    release.set()
    assert await first == 1
    assert second == 0
    assert channel.texts() == ["only once"]


async def test_a_call_during_a_pass_makes_the_pass_look_again(ctx, setup, channel, delivery, monkeypatch):
    _, _, session, folder = setup
    write_out(folder, text("first"))
    entered, release = gate(monkeypatch, channel)
    running = asyncio.create_task(delivery.deliver_session(session.id))
    await entered.wait()
    write_out(folder, text("second"))  # arrives after the pass read its rows
    assert await delivery.deliver_session(session.id) == 0
    release.set()
    assert await running == 2
    assert channel.texts() == ["first", "second"]


async def test_no_redelivery_after_cleanup_and_outbox_is_removed(ctx, setup, channel, delivery):
    _, _, session, folder = setup
    row_id = new_id("out")
    (folder / "outbox" / row_id).mkdir()
    (folder / "outbox" / row_id / "report.pdf").write_bytes(b"%PDF-1.4 fake")
    write_out(folder, text("the report", files=["report.pdf"]), row_id=row_id)
    assert await delivery.deliver_session(session.id) == 1
    assert await delivery.deliver_session(session.id) == 0
    assert len(channel.sent) == 1
    files = channel.sent[0].message.files
    assert [(f.name, f.data, f.mime_type) for f in files] == [("report.pdf", b"%PDF-1.4 fake", "application/pdf")]
    assert not (folder / "outbox" / row_id).exists()


async def test_rows_are_sent_in_seq_order_and_a_bad_row_does_not_block_the_rest(ctx, setup, channel, delivery,
                                                                                failures, caplog):
    _, _, session, folder = setup
    bad_id, _ = write_out(folder, "{not json")
    write_out(folder, text("after the bad one"))
    assert await delivery.deliver_session(session.id) == 2
    assert channel.texts() == ["after the bad one"]
    record = (await delivered(ctx, folder))[bad_id]
    assert record["status"] == "failed"
    assert "malformed" in record["error"]
    assert len(failures.told) == 1
    assert any(r.levelname == "ERROR" and bad_id in r.getMessage() for r in caplog.records)


async def test_deliver_after_in_the_future_waits(ctx, setup, channel, delivery):
    _, _, session, folder = setup
    write_out(folder, text("later"), deliver_after="2999-01-01T00:00:00.000Z")
    assert await delivery.deliver_session(session.id) == 0
    assert channel.sent == []


# --------------------------------------------------------------------------------------------- retries


async def test_retries_then_fails_for_good_after_three_attempts_and_the_user_is_told(
    ctx, setup, channel, delivery, failures, monkeypatch
):
    monkeypatch.setattr(delivery_mod, "RETRY_BASE_SECONDS", 0.0)  # the backoff elapses at once
    _, _, session, folder = setup
    row_id, _ = write_out(folder, text("flaky network"))
    channel.fail_always = True
    calls = 0
    original = channel.deliver

    async def counting(*args):
        nonlocal calls
        calls += 1
        return await original(*args)

    monkeypatch.setattr(channel, "deliver", counting)
    async with ctx.events.subscribe() as events:
        for expected in (1, 2, 3):
            await delivery.deliver_session(session.id)
            assert calls == expected
        await delivery.deliver_session(session.id)
        assert calls == 3  # recorded as failed: never tried again
        kinds = []
        while not events.empty():
            kinds.append(events.get_nowait().kind)
    record = (await delivered(ctx, folder))[row_id]
    assert record["status"] == "failed"
    assert record["platform_message_id"] is None
    assert "after 3 attempts" in record["error"]
    assert kinds == ["delivery.retry", "delivery.retry", "delivery.failed"]
    assert len(failures.told) == 1
    told_session, message = failures.told[0]
    assert told_session == session.id
    assert "could not be delivered" in message
    assert "flaky network" in message


async def test_a_failed_send_waits_for_its_backoff_then_succeeds(ctx, setup, channel, delivery, failures):
    _, _, session, folder = setup
    row_id, _ = write_out(folder, text("second time lucky"))
    channel.fail_next = 1
    assert await delivery.deliver_session(session.id) == 1
    attempt = await attempts_db.get(ctx.db, session.id, row_id)
    assert attempt is not None
    assert (attempt.state, attempt.attempts) == ("retry", 1)
    assert attempt.last_error == "test channel refused the send"
    assert await delivery.deliver_session(session.id) == 0  # still backing off
    assert channel.sent == []
    await ctx.db.execute("UPDATE delivery_attempts SET next_attempt_at = '2000-01-01T00:00:00.000Z'")
    assert await delivery.deliver_session(session.id) == 1
    assert channel.texts() == ["second time lucky"]
    assert failures.told == []


async def test_sessions_waiting_for_a_retry_are_known_to_the_fast_poll(ctx, setup, channel, delivery):
    _, _, session, folder = setup
    write_out(folder, text("soon"))
    channel.fail_next = 1
    await delivery.deliver_session(session.id)
    assert await attempts_db.retrying_sessions(ctx.db) == {session.id}
    await ctx.db.execute("UPDATE delivery_attempts SET next_attempt_at = '2000-01-01T00:00:00.000Z'")
    await delivery.deliver_session(session.id)
    assert await attempts_db.retrying_sessions(ctx.db) == set()


async def test_the_attempt_count_survives_a_restart(ctx, setup, channel, failures, monkeypatch):
    monkeypatch.setattr(delivery_mod, "RETRY_BASE_SECONDS", 0.0)
    _, _, session, folder = setup
    row_id, _ = write_out(folder, text("persisted"))
    channel.fail_always = True
    for _ in range(2):
        before = Delivery(ctx, actions=SystemActions(ctx, request_approval=no_approval), on_failure=failures)
        await before.deliver_session(session.id)
    after_restart = Delivery(ctx, actions=SystemActions(ctx, request_approval=no_approval), on_failure=failures)
    await after_restart.deliver_session(session.id)
    assert (await delivered(ctx, folder))[row_id]["status"] == "failed"
    assert len(failures.told) == 1


async def test_a_channel_that_is_not_running_is_a_transient_failure(ctx, delivery, failures):
    agent = await agents.create(ctx.db, "Helper")
    chat = await messaging.create(ctx.db, "whatsapp", "wa-1")
    await messaging.wire(ctx.db, chat.id, agent.id)
    session, _ = await sessions_db.find_or_create(ctx.db, agent.id, "shared", chat.id, None)
    folder = await ctx.store.create(agent.id, session.id)
    row_id, _ = write_out(folder, text("hi"), channel_type="whatsapp", platform_id="wa-1")
    assert await delivery.deliver_session(session.id) == 1
    attempt = await attempts_db.get(ctx.db, session.id, row_id)
    assert attempt is not None
    assert attempt.state == "retry"
    assert "not running" in (attempt.last_error or "")
    assert row_id not in await delivered(ctx, folder)
    assert failures.told == []


# --------------------------------------------------------------------------------------------- ACL


async def test_acl_refuses_a_chat_the_agent_has_no_destination_for(ctx, setup, channel, delivery, failures):
    _, _, session, folder = setup
    await messaging.create(ctx.db, "test", "stranger-chat", name="Strangers")
    row_id, _ = write_out(folder, text("leak"), platform_id="stranger-chat")
    async with ctx.events.subscribe() as events:
        assert await delivery.deliver_session(session.id) == 1
        event = events.get_nowait()
    assert channel.sent == []
    record = (await delivered(ctx, folder))[row_id]
    assert record["status"] == "failed"
    assert "no destination" in record["error"]
    assert event.kind == "delivery.failed"
    assert len(failures.told) == 1
    assert "leak" in failures.told[0][1]


async def test_acl_refuses_an_unknown_chat(ctx, setup, channel, delivery):
    _, _, session, folder = setup
    row_id, _ = write_out(folder, text("hello?"), platform_id="never-seen")
    await delivery.deliver_session(session.id)
    assert channel.sent == []
    assert (await delivered(ctx, folder))[row_id]["status"] == "failed"


async def test_a_destination_allows_another_chat(ctx, setup, channel, delivery):
    agent, _, session, folder = setup
    other = await messaging.create(ctx.db, "test", "chat-2", name="Work")
    await destinations.add(ctx.db, agent.id, "work", "channel", other.id)
    write_out(folder, text("to work"), platform_id="chat-2", thread_id="t-9")
    await delivery.deliver_session(session.id)
    assert [(s.platform_id, s.thread_id, s.message.text) for s in channel.sent] == [("chat-2", "t-9", "to work")]


async def test_a_per_thread_session_answers_in_its_thread(ctx, setup, channel, delivery):
    agent, chat, _, _ = setup
    session, _ = await sessions_db.find_or_create(ctx.db, agent.id, "per-thread", chat.id, "topic-3")
    folder = await ctx.store.create(agent.id, session.id)
    write_out(folder, text("in the thread"))
    await delivery.deliver_session(session.id)
    assert [(s.platform_id, s.thread_id) for s in channel.sent] == [("chat-1", "topic-3")]


async def test_a_row_without_an_address_goes_to_the_sessions_own_chat(ctx, setup, channel, delivery):
    _, _, session, folder = setup
    write_out(folder, text("default route"), channel_type=None, platform_id=None)
    await delivery.deliver_session(session.id)
    assert [(s.platform_id, s.message.text) for s in channel.sent] == [("chat-1", "default route")]


# --------------------------------------------------------------------------------------------- questions


async def test_a_question_card_is_recorded_before_it_is_sent(ctx, setup, channel, delivery, monkeypatch):
    _, _, session, folder = setup
    card = AskQuestionOut(question_id="q-1", title="Lunch?", question="Pizza or soup?",
                          options=[{"label": "Pizza", "value": "pizza"}, {"label": "Soup", "value": "soup"}])
    row_id, _ = write_out(folder, card.to_json())
    seen_before_send = []
    original = channel.deliver

    async def checking(platform_id, thread_id, message):
        seen_before_send.append(await questions.get(ctx.db, "q-1"))
        return await original(platform_id, thread_id, message)

    monkeypatch.setattr(channel, "deliver", checking)
    await delivery.deliver_session(session.id)
    assert seen_before_send[0] is not None
    assert seen_before_send[0].message_out_id == row_id
    message = channel.sent[0].message
    assert (message.kind, message.question_id, message.title, message.text) == (
        "question", "q-1", "Lunch?", "Pizza or soup?")
    assert [o.value for o in message.options] == ["pizza", "soup"]
    stored = await questions.get(ctx.db, "q-1")
    assert stored is not None
    assert stored.platform_message_id == channel.sent[0].platform_message_id
    assert [o["label"] for o in json.loads(stored.options_json)] == ["Pizza", "Soup"]
    assert (stored.session_id, stored.channel_type, stored.platform_id) == (session.id, "test", "chat-1")


# --------------------------------------------------------------------------------------------- system and agent rows


async def test_a_system_row_is_applied_and_recorded(ctx, setup, channel, delivery):
    _, _, session, folder = setup
    action = SystemAction(action="schedule_task", payload={"prompt": "water the plants",
                                                            "process_after": "2030-01-01T09:00:00"})
    row_id, _ = write_out(folder, action.to_json(), kind="system", channel_type=None, platform_id=None)
    assert await delivery.deliver_session(session.id) == 1
    tasks = await ctx.store.read(folder, lambda c: c.execute("SELECT * FROM messages_in WHERE kind = 'task'")
                                 .fetchall(), with_outbound=False)
    assert len(tasks) == 1
    assert json.loads(tasks[0]["content"])["prompt"] == "water the plants"
    assert (await delivered(ctx, folder))[row_id]["status"] == "delivered"
    assert channel.sent == []


async def test_an_agent_row_is_routed_to_the_other_agent(ctx, setup, delivery, waker):
    agent, _, session, folder = setup
    peer = await agents.create(ctx.db, "Researcher")
    await destinations.add(ctx.db, agent.id, "researcher", "agent", peer.id)
    row_id, _ = write_out(folder, text("look this up"), channel_type="agent", platform_id=peer.id)
    assert await delivery.deliver_session(session.id) == 1
    peer_sessions = await sessions_db.list_for_agent(ctx.db, peer.id)
    assert len(peer_sessions) == 1
    peer_folder = ctx.store.dir(peer.id, peer_sessions[0].id)
    rows = await ctx.store.read(peer_folder, lambda c: c.execute("SELECT * FROM messages_in").fetchall(),
                                with_outbound=False)
    assert ChatContent.from_dict(json.loads(rows[0]["content"])).text == "look this up"
    assert (await delivered(ctx, folder))[row_id]["status"] == "delivered"
    assert peer_sessions[0].id in waker.woken


async def test_a_refused_agent_row_is_recorded_without_telling_the_user(ctx, setup, delivery, failures):
    _, _, session, folder = setup
    stranger = await agents.create(ctx.db, "Stranger")
    row_id, _ = write_out(folder, text("psst"), channel_type="agent", platform_id=stranger.id)
    await delivery.deliver_session(session.id)
    assert (await delivered(ctx, folder))[row_id]["status"] == "failed"
    assert failures.told == []  # the agent got a note instead


# --------------------------------------------------------------------------------------------- crash recovery


async def crashed_mid_send(ctx: CoreContext, session: Session, folder: Path) -> str:
    """A row whose send started (attempt recorded) when the process died."""
    row_id, _ = write_out(folder, text("were you there?"))
    await attempts_db.begin(ctx.db, session.id, row_id)
    return row_id


async def test_recovery_never_resends_through_a_channel_that_cannot_dedupe(ctx, setup, channel, delivery, failures):
    _, _, session, folder = setup
    row_id = await crashed_mid_send(ctx, session, folder)
    await delivery.recover_uncertain()
    await delivery.deliver_session(session.id)
    assert channel.sent == []
    record = (await delivered(ctx, folder))[row_id]
    assert (record["status"], record["error"]) == ("failed", UNCERTAIN_ERROR)
    assert len(failures.told) == 1
    assert UNCERTAIN_ERROR in failures.told[0][1]
    attempt = await attempts_db.get(ctx.db, session.id, row_id)
    assert attempt is not None
    assert attempt.state == "failed"


async def test_recovery_retries_through_an_idempotent_channel_once(ctx, setup, channel, delivery, failures):
    _, _, session, folder = setup
    channel.idempotent_delivery = True
    row_id = await crashed_mid_send(ctx, session, folder)
    await delivery.recover_uncertain()
    assert await attempts_db.uncertain(ctx.db) != []  # left for the normal retry
    await delivery.deliver_session(session.id)
    await delivery.deliver_session(session.id)
    assert [s.message.delivery_id for s in channel.sent] == [row_id]
    assert (await delivered(ctx, folder))[row_id]["status"] == "delivered"
    assert failures.told == []


async def test_recovery_marks_a_send_that_was_recorded_as_succeeded(ctx, setup, channel, delivery, failures):
    _, _, session, folder = setup
    row_id = await crashed_mid_send(ctx, session, folder)
    await ctx.store.record_delivery(folder, row_id, "test-m1", "delivered")  # crashed after recording
    await delivery.recover_uncertain()
    attempt = await attempts_db.get(ctx.db, session.id, row_id)
    assert attempt is not None
    assert attempt.state == "delivered"
    await delivery.deliver_session(session.id)
    assert channel.sent == []
    assert failures.told == []


async def test_a_pass_without_recovery_still_never_resends_blindly(ctx, setup, channel, delivery, failures):
    _, _, session, folder = setup
    row_id = await crashed_mid_send(ctx, session, folder)
    await delivery.deliver_session(session.id)
    assert channel.sent == []
    assert (await delivered(ctx, folder))[row_id]["error"] == UNCERTAIN_ERROR


# --------------------------------------------------------------------------------------------- the poll


async def test_the_fallback_poll_delivers_for_running_sessions(ctx, setup, channel, delivery):
    _, _, session, folder = setup
    await sessions_db.set_container_status(ctx.db, session.id, "running")
    write_out(folder, text("polled"))
    await delivery.start()
    try:
        await channel.wait_sent(1)
    finally:
        await delivery.stop()
    assert channel.texts() == ["polled"]
    await delivery.stop()  # idempotent


async def test_the_polls_first_pass_covers_sessions_without_a_container(ctx, setup, channel, delivery):
    _, _, _, folder = setup  # the session's container_status is 'stopped'
    write_out(folder, text("left over from before a restart"))
    await delivery.start()
    try:
        await channel.wait_sent(1)
    finally:
        await delivery.stop()
    assert channel.texts() == ["left over from before a restart"]
