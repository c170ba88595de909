"""The in-app chat adapter: deliveries become stored bubbles and live events; files stay in their folder."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent_runner.protocol import QuestionOption
from nanoclaw_app.channels.webchat.adapter import WebchatAdapter
from nanoclaw_app.channels.webchat.files import clean_name, stored_file
from nanoclaw_app.core.events import Event, EventBus
from nanoclaw_app.core.messages import InboundMessage, OutboundMessage, OutgoingFile
from nanoclaw_app.db import agents, messaging
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.database import Database
from nanoclaw_app.errors import NotFound, UnsafePath, UserError
from nanoclaw_app.ids import inbound_row_id
from nanoclaw_app.sessions.store import SessionStore


class Host:
    """Records what the adapter hands the host."""

    def __init__(self) -> None:
        self.inbound: list[InboundMessage] = []
        self.actions: list[tuple[str, str, str]] = []

    async def on_inbound(self, message: InboundMessage) -> None:
        self.inbound.append(message)

    async def on_metadata(self, channel_type: str, platform_id: str, name: str | None, is_group: bool) -> None:
        return None

    async def on_action(self, question_id: str, value: str, user_id: str) -> None:
        self.actions.append((question_id, value, user_id))


@pytest.fixture
def events() -> EventBus:
    return EventBus()


@pytest.fixture
async def adapter(db: Database, events: EventBus, store: SessionStore, tmp_path: Path) -> AsyncIterator[WebchatAdapter]:
    chat = WebchatAdapter(db, events, tmp_path / "webchat", store=store)
    await chat.setup(Host())
    try:
        yield chat
    finally:
        await chat.teardown()


async def next_event(queue: asyncio.Queue[Event], kind: str, **match: Any) -> Event:
    async with asyncio.timeout(10):
        while True:
            event = await queue.get()
            if event.kind == kind and all(event.data.get(k) == v for k, v in match.items()):
                return event


def text(value: str, delivery_id: str = "out-1", files: tuple[OutgoingFile, ...] = ()) -> OutboundMessage:
    return OutboundMessage(kind="text", delivery_id=delivery_id, text=value, files=files)


async def test_a_reply_is_stored_and_announced_once_even_when_delivery_repeats_it(
    adapter: WebchatAdapter, events: EventBus
) -> None:
    async with events.subscribe() as queue:
        first = await adapter.deliver("owner", None, text("hello there"))
        again = await adapter.deliver("owner", None, text("hello there"))
        event = await next_event(queue, "chat.message")
        assert queue.empty()
    assert first == again
    message = event.data["message"]
    assert (message["id"], message["direction"], message["text"], message["kind"]) == (first, "out", "hello there",
                                                                                      "text")
    page = await adapter.log.history("owner")
    assert [m.text for m in page.messages] == ["hello there"]
    assert adapter.idempotent_delivery
    assert adapter.is_connected()


async def test_files_from_the_agent_are_kept_under_safe_names_and_can_be_fetched(adapter: WebchatAdapter) -> None:
    files = (OutgoingFile("report.pdf", b"%PDF-1.4", "application/pdf"),
             OutgoingFile("../../chart.png", b"\x89PNG", "image/png"),
             OutgoingFile("report.pdf", b"second", "application/pdf"))
    message_id = await adapter.deliver("owner", None, text("", files=files))
    assert message_id is not None
    stored = await adapter.log.get(message_id)
    assert stored is not None
    assert [f.name for f in stored.files] == ["report.pdf", "chart.png", "report-2.pdf"]
    assert stored.files[1].url == f"/api/chat/files/{message_id}/chart.png"
    path, mime = await adapter.log.file(message_id, "report-2.pdf")
    assert (path.read_bytes(), mime) == (b"second", "application/pdf")
    assert path.parent.parent == adapter.log.files_dir
    with pytest.raises(NotFound):
        await adapter.log.file(message_id, "../nanoclaw.db")


async def test_a_question_card_keeps_its_options_and_closes_when_the_host_edits_it(
    adapter: WebchatAdapter, events: EventBus
) -> None:
    card = OutboundMessage(kind="question", delivery_id="appr-1:card", text="Install ffmpeg?", question_id="appr-1",
                           title="Install packages", options=(QuestionOption("Approve", "approve", "✅ Approved"),
                                                              QuestionOption("Reject", "reject")))
    card_id = await adapter.deliver("owner", None, card)
    assert card_id is not None
    shown = await adapter.log.get(card_id)
    assert shown is not None
    assert shown.card is not None
    assert [(o.label, o.value) for o in shown.card.options] == [("Approve", "approve"), ("Reject", "reject")]
    assert not shown.card.closed
    await adapter.log.open_card("appr-1", "approve")  # still open: a click is accepted
    with pytest.raises(UserError, match="not one of"):
        await adapter.log.open_card("appr-1", "maybe")

    async with events.subscribe() as queue:
        edit = OutboundMessage(kind="edit", delivery_id="appr-1:edit:x", text="Install packages\n\n✅ Approved by Ann",
                               target_message_id=card_id)
        assert await adapter.deliver("owner", None, edit) == card_id
        update = await next_event(queue, "chat.update")
    assert update.data["message"]["card"]["outcome"] == "✅ Approved by Ann"
    assert update.data["message"]["card"]["closed"] is True
    with pytest.raises(UserError, match="already answered"):
        await adapter.log.open_card("appr-1", "reject")


async def test_edits_and_reactions_change_their_message_and_never_show_as_bubbles(adapter: WebchatAdapter) -> None:
    target = await adapter.deliver("owner", None, text("draft", "out-a"))
    assert target is not None
    await adapter.deliver("owner", None, OutboundMessage(kind="edit", delivery_id="out-b", text="final",
                                                         target_message_id=target))
    await adapter.deliver("owner", None, OutboundMessage(kind="reaction", delivery_id="out-c", emoji="👍",
                                                         target_message_id=target))
    page = await adapter.log.history("owner")
    assert [(m.text, m.edited, m.reactions) for m in page.messages] == [("final", True, ["👍"])]
    with pytest.raises(UserError, match="cannot be changed"):
        await adapter.deliver("owner", None, OutboundMessage(kind="edit", delivery_id="out-d", text="x",
                                                             target_message_id="msg-unknown"))


async def test_history_pages_backwards_from_a_message(adapter: WebchatAdapter) -> None:
    ids = [await adapter.deliver("owner", None, text(f"m{i}", f"out-{i}")) for i in range(5)]
    await adapter.deliver("someone-else", None, text("elsewhere", "out-x"))
    newest = await adapter.log.history("owner", limit=2)
    assert ([m.text for m in newest.messages], newest.has_more) == (["m3", "m4"], True)
    older = await adapter.log.history("owner", before=ids[3], limit=2)
    assert ([m.text for m in older.messages], older.has_more) == (["m1", "m2"], True)
    oldest = await adapter.log.history("owner", before=ids[1], limit=2)
    assert ([m.text for m in oldest.messages], oldest.has_more) == (["m0"], False)
    with pytest.raises(NotFound):
        await adapter.log.history("owner", before="msg-nope")


async def test_typing_is_announced_and_the_dm_is_the_handle(adapter: WebchatAdapter, events: EventBus) -> None:
    async with events.subscribe() as queue:
        await adapter.set_typing("owner", None)
        event = await next_event(queue, "chat.typing")
    assert event.data == {"platform_id": "owner"}
    assert await adapter.open_dm("owner") == "owner"


def test_file_names_from_browsers_are_made_plain() -> None:
    assert clean_name("../../etc/passwd") == "passwd"
    assert clean_name("C:\\Users\\ann\\photo.jpg") == "photo.jpg"
    assert clean_name("a\x00b<c>.txt") == "a_b_c_.txt"
    assert clean_name("..") == "file"
    assert clean_name("   ") == "file"
    long = clean_name("x" * 300 + ".jpeg")
    assert long.endswith(".jpeg")
    assert len(long) <= 120


def test_a_stored_file_is_never_read_through_a_symlink(tmp_path: Path) -> None:
    root = tmp_path / "webchat"
    (root / "msg-1").mkdir(parents=True)
    secret = tmp_path / "secret.txt"
    secret.write_text("key")
    (root / "msg-1" / "link.txt").symlink_to(secret)
    with pytest.raises(UnsafePath):
        stored_file(root, "msg-1/link.txt")
    with pytest.raises(UnsafePath):
        stored_file(root, "../secret.txt")


# --------------------------------------------------------------------------------------------- activity


def container_writes(folder: Path, sql: str, params: tuple[Any, ...]) -> None:
    conn = sqlite3.connect(folder / "outbound.db")
    try:
        conn.execute(sql, params)
        conn.commit()
    finally:
        conn.close()


async def test_activity_follows_a_turn_from_start_through_a_tool_to_done(
    adapter: WebchatAdapter, db: Database, store: SessionStore, events: EventBus
) -> None:
    agent = await agents.create(db, "Nano")
    chat = await messaging.create(db, "webchat", "owner")
    session, _ = await sessions_db.find_or_create(db, agent.id, "shared", chat.id, None)
    folder = await store.create(agent.id, session.id)
    row_id = inbound_row_id("msg-1", agent.id)
    async with events.subscribe() as queue:
        events.publish("message.routed", message_id="msg-1", channel_type="webchat", platform_id="owner",
                       messaging_group_id=chat.id, agent_group_id=agent.id, session_id=session.id, seq=2,
                       trigger=True)
        assert (await next_event(queue, "chat.activity")).data["state"] == "starting"
        events.publish("container.started", session_id=session.id)
        assert (await next_event(queue, "chat.activity")).data["state"] == "working"

        container_writes(folder, "INSERT INTO processing_ack (message_id, status, status_changed)"
                                 " VALUES (?, 'processing', datetime('now'))", (row_id,))
        container_writes(folder, "INSERT INTO container_state (id, current_tool) VALUES (1, 'bash')", ())
        tool = await next_event(queue, "chat.activity")
        assert (tool.data["state"], tool.data["tool"], tool.data["platform_id"]) == ("tool", "bash", "owner")

        container_writes(folder, "UPDATE container_state SET current_tool = NULL", ())
        container_writes(folder, "UPDATE processing_ack SET status = 'completed' WHERE message_id = ?", (row_id,))
        await next_event(queue, "chat.activity", state="idle")


async def test_a_message_that_reaches_no_agent_is_reported_with_its_reason(
    adapter: WebchatAdapter, events: EventBus
) -> None:
    async with events.subscribe() as queue:
        events.publish("message.dropped", reason="unknown_sender_strict", channel_type="webchat",
                       platform_id="owner")
        event = await next_event(queue, "chat.activity")
    assert (event.data["state"], event.data["detail"]) == ("dropped", "unknown_sender_strict")
