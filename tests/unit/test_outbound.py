"""Outbound rows to adapter messages: seq → platform id resolution, edits, reactions, cards, files."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from agent_runner.protocol import (
    CardOut,
    ChatContent,
    ContractError,
    EditOut,
    OutboundRow,
    ReactionOut,
    SystemAction,
    TextOut,
)
from nanoclaw_app.core import outbound
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.delivery import Delivery
from nanoclaw_app.core.system_actions import SystemActions
from nanoclaw_app.db import agents, messaging
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.rows import Session
from nanoclaw_app.errors import AttachmentTooLarge, UnsafePath
from nanoclaw_app.ids import inbound_row_id, new_id
from nanoclaw_app.sessions.store import NewInbound
from nanoclaw_app.timeutil import now_iso
from tests.fakes.container import write_out


class Failures:
    def __init__(self) -> None:
        self.told: list[str] = []

    async def __call__(self, session: Session, message: str) -> None:
        self.told.append(message)


async def no_approval(**kwargs):
    return None


@pytest.fixture
async def setup(ctx):
    agent = await agents.create(ctx.db, "Helper")
    chat = await messaging.create(ctx.db, "test", "chat-1", name="Family")
    await messaging.wire(ctx.db, chat.id, agent.id)
    session, _ = await sessions_db.find_or_create(ctx.db, agent.id, "shared", chat.id, None)
    folder = await ctx.store.create(agent.id, session.id)
    failures = Failures()
    delivery = Delivery(ctx, actions=SystemActions(ctx, request_approval=no_approval), on_failure=failures)
    return agent, session, folder, delivery, failures


async def inbound_chat(ctx: CoreContext, folder: Path, agent_id: str, platform_message_id: str | None,
                       row_platform_id: str = "tg-900") -> int:
    content = ChatContent(text="hi", sender_id="test:alice", platform_message_id=platform_message_id)
    seq: int
    seq, _ = await ctx.store.write_inbound(folder, NewInbound(
        id=inbound_row_id(row_platform_id, agent_id), kind="chat", content=content.to_json(), timestamp=now_iso(),
        channel_type="test", platform_id="chat-1"))
    return seq


def row(content: str, *, kind: str = "chat", row_id: str = "out-1") -> OutboundRow:
    return OutboundRow(id=row_id, seq=1, kind=kind, timestamp=now_iso(), content=content)


# --------------------------------------------------------------------------------------------- seq resolution


async def test_an_even_seq_resolves_to_the_received_messages_platform_id(ctx, setup):
    agent, _, folder, _, _ = setup
    seq = await inbound_chat(ctx, folder, agent.id, "tg-42")
    assert seq % 2 == 0
    assert await outbound.resolve_seq(ctx, folder, seq) == "tg-42"


async def test_an_even_seq_falls_back_to_the_platform_id_in_the_row_id(ctx, setup):
    agent, _, folder, _, _ = setup
    seq = await inbound_chat(ctx, folder, agent.id, None, row_platform_id="wa-777")
    assert await outbound.resolve_seq(ctx, folder, seq) == "wa-777"


async def test_an_odd_seq_resolves_to_the_platform_id_of_our_delivered_message(ctx, setup):
    _, _, folder, _, _ = setup
    row_id, seq = write_out(folder, TextOut(text="hello").to_json())
    await ctx.store.record_delivery(folder, row_id, "test-m55", "delivered")
    assert await outbound.resolve_seq(ctx, folder, seq) == "test-m55"


async def test_an_undelivered_or_unknown_seq_is_refused_clearly(ctx, setup):
    _, _, folder, _, _ = setup
    row_id, seq = write_out(folder, TextOut(text="hello").to_json())
    await ctx.store.record_delivery(folder, row_id, None, "failed", "boom")
    with pytest.raises(outbound.UnresolvableMessage, match=f"message {seq} .*never delivered"):
        await outbound.resolve_seq(ctx, folder, seq)
    with pytest.raises(outbound.UnresolvableMessage, match="message 98"):
        await outbound.resolve_seq(ctx, folder, 98)


# --------------------------------------------------------------------------------------------- through delivery


async def test_an_edit_reaches_the_adapter_with_the_platform_id(ctx, setup, channel):
    _, session, folder, delivery, _ = setup
    _, first_seq = write_out(folder, TextOut(text="draft").to_json())
    await delivery.deliver_session(session.id)
    write_out(folder, EditOut(message_seq=first_seq, text="final").to_json())
    await delivery.deliver_session(session.id)
    edit = channel.sent[1].message
    assert (edit.kind, edit.text, edit.target_message_id) == ("edit", "final", channel.sent[0].platform_message_id)


async def test_a_reaction_to_a_received_message(ctx, setup, channel):
    agent, session, folder, delivery, _ = setup
    seq = await inbound_chat(ctx, folder, agent.id, "tg-7")
    write_out(folder, ReactionOut(message_seq=seq, emoji="thumbs_up").to_json())
    await delivery.deliver_session(session.id)
    reaction = channel.sent[0].message
    assert (reaction.kind, reaction.emoji, reaction.target_message_id) == ("reaction", "thumbs_up", "tg-7")


async def test_an_edit_of_an_unknown_message_fails_for_good_with_a_clear_error(ctx, setup, channel):
    _, session, folder, delivery, failures = setup
    row_id, _ = write_out(folder, EditOut(message_seq=41, text="nope").to_json())
    await delivery.deliver_session(session.id)
    assert channel.sent == []
    error = await ctx.store.read(
        folder, lambda c: c.execute("SELECT error FROM delivered WHERE message_out_id = ?", (row_id,)).fetchone()[0],
        with_outbound=False)
    assert "message 41" in error
    assert "no known platform message id" in error
    assert len(failures.told) == 1


async def test_an_oversized_file_fails_for_good(ctx, setup, channel):
    _, session, folder, delivery, failures = setup
    row_id = new_id("out")
    (folder / "outbox" / row_id).mkdir()
    (folder / "outbox" / row_id / "big.bin").write_bytes(b"x" * 2048)
    ctx.settings = dataclasses.replace(ctx.settings, max_attachment_bytes=1024)
    write_out(folder, TextOut(text="", files=["big.bin"]).to_json(), row_id=row_id)
    await delivery.deliver_session(session.id)
    assert channel.sent == []
    assert len(failures.told) == 1
    assert "limit" in failures.told[0]


# --------------------------------------------------------------------------------------------- building messages


async def test_a_card_keeps_title_text_and_links(ctx, setup):
    _, _, folder, _, _ = setup
    card = CardOut(title="Weather", description="Sunny, 21°", links=[{"label": "Forecast", "url": "https://x.test"}],
                   fallback_text="Weather: sunny")
    message = await outbound.build_message(ctx, folder, row(card.to_json()), outbound.decode(row(card.to_json())))
    assert (message.kind, message.title, message.text, message.delivery_id) == ("card", "Weather", "Sunny, 21°",
                                                                                 "out-1")
    assert message.links == ({"label": "Forecast", "url": "https://x.test"},)


async def test_a_card_without_description_uses_its_fallback_text(ctx, setup):
    _, _, folder, _, _ = setup
    card = CardOut(title="Weather", fallback_text="Weather: sunny").to_json()
    message = await outbound.build_message(ctx, folder, row(card), outbound.decode(row(card)))
    assert message.text == "Weather: sunny"


async def test_file_names_that_try_to_leave_the_outbox_are_refused(ctx, setup):
    _, _, folder, _, _ = setup
    (folder / "secret.txt").write_text("no")
    content = TextOut(text="x", files=["../secret.txt"]).to_json()
    with pytest.raises(UnsafePath):
        await outbound.build_message(ctx, folder, row(content), outbound.decode(row(content)))


async def test_a_symlinked_outbox_file_is_refused(ctx, setup, tmp_path):
    _, _, folder, _, _ = setup
    (tmp_path / "elsewhere.txt").write_text("secret")
    (folder / "outbox" / "out-1").mkdir()
    (folder / "outbox" / "out-1" / "link.txt").symlink_to(tmp_path / "elsewhere.txt")
    content = TextOut(text="x", files=["link.txt"]).to_json()
    with pytest.raises(UnsafePath):
        await outbound.build_message(ctx, folder, row(content), outbound.decode(row(content)))


async def test_files_over_the_size_cap_raise(ctx, setup):
    _, _, folder, _, _ = setup
    (folder / "outbox" / "out-1").mkdir()
    (folder / "outbox" / "out-1" / "a.bin").write_bytes(b"12345")
    ctx.settings = dataclasses.replace(ctx.settings, max_attachment_bytes=4)
    with pytest.raises(AttachmentTooLarge):
        outbound.read_files(ctx, folder, "out-1", ["a.bin"])


def test_decode_names_the_row_when_content_is_malformed():
    with pytest.raises(ContractError, match=r"out-1 .*malformed"):
        outbound.decode(row('{"type": "edit", "text": "no seq"}'))


async def test_a_system_action_cannot_be_sent_to_a_chat(ctx, setup):
    _, _, folder, _, _ = setup
    content = SystemAction(action="schedule_task").to_json()
    decoded = outbound.decode(row(content, kind="system"))
    with pytest.raises(ContractError, match="cannot be sent to a chat"):
        await outbound.build_message(ctx, folder, row(content, kind="system"), decoded)


def test_preview_is_short_and_single_line():
    long = TextOut(text="line one\n" + "word " * 50)
    gist = outbound.preview(long)
    assert "\n" not in gist
    assert len(gist) == 80
    assert gist.endswith("…")
    assert outbound.preview(None) == ""
