"""Sending to WhatsApp: queued while the link is down (even across a restart), the reply-only guardrail, the rate
limit, WhatsApp formatting and splitting, files, edits as new messages, reactions and typing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agent_runner.protocol import TextOut
from nanoclaw_app.channels.whatsapp import native
from nanoclaw_app.channels.whatsapp.ratelimit import TokenBucket
from nanoclaw_app.core.messages import OutboundMessage, OutgoingFile
from nanoclaw_app.errors import ChannelDown, UserError
from nanoclaw_app.settings import Settings, load_settings
from tests.channels.whatsapp.conftest import WhatsApp, next_event, running
from tests.fakes.container import write_out
from tests.fakes.neonize_client import FRIEND, GROUP, OWN_NUMBER, FakeNeonizeClient, group_text, text_dm
from tests.waiting import until

CHAT = f"{FRIEND}@s.whatsapp.net"
OWN_CHAT = f"{OWN_NUMBER}@s.whatsapp.net"
STRANGER = "4930999888777@s.whatsapp.net"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def text(body: str, delivery_id: str = "out-1", **kwargs: object) -> OutboundMessage:
    return OutboundMessage(kind="text", delivery_id=delivery_id, text=body, **kwargs)  # type: ignore[arg-type]


async def wrote(wa: WhatsApp, sender: str = FRIEND) -> None:
    """The chat writes first (no agent needed: the message is simply not routed anywhere)."""
    assert await wa.fake.emit_message(text_dm("hello", sender=sender))


async def test_replies_wait_while_disconnected_and_go_out_once_reconnected(linked: WhatsApp) -> None:
    chat = await linked.pair_owner()
    fake = linked.fake
    assert await fake.emit_message(text_dm("first"))
    await linked.reply_to("first")
    folder = await linked.session_folder()
    async with linked.host.events.subscribe() as queue:
        await fake.emit_disconnected()
        await linked.wait_state("reconnecting")
        with pytest.raises(ChannelDown):
            await linked.adapter.deliver(chat, None, text("direct"))
        write_out(folder, TextOut(text="written while offline").to_json(), channel_type="whatsapp", platform_id=chat)
        waiting = await next_event(queue, "delivery.waiting")
        assert waiting.data["channel_type"] == "whatsapp"
        assert "written while offline" not in fake.texts()
        await fake.wait_connect_call(2)
        await fake.emit_connected()
        await next_event(queue, "delivery.sent", lambda d: d["channel_type"] == "whatsapp")
    assert fake.texts(chat).count("written while offline") == 1


async def test_a_reply_queued_before_a_restart_is_sent_exactly_once_after_it(
    wa_settings: Settings, device_db: Path
) -> None:
    before = FakeNeonizeClient(str(device_db))
    async with running(wa_settings, before, backoff=(600.0,)) as wa:
        await wa.link()
        chat = await wa.pair_owner()
        assert await before.emit_message(text_dm("first"))
        await wa.reply_to("first")
        folder = await wa.session_folder()
        async with wa.host.events.subscribe() as queue:
            await before.emit_disconnected()
            await wa.wait_state("reconnecting")
            write_out(folder, TextOut(text="kept across the restart").to_json(), channel_type="whatsapp",
                      platform_id=chat)
            await next_event(queue, "delivery.waiting")
    after = FakeNeonizeClient(str(device_db))
    async with running(wa_settings, after) as wa:
        await wa.wait_state("connecting")
        assert after.sent == []
        await after.emit_connected()
        await until(lambda: "kept across the restart" in after.texts(chat))
        assert await after.emit_message(text_dm("second"))
        await wa.reply_to("second")
        assert after.texts(chat).count("kept across the restart") == 1
    assert "kept across the restart" not in before.texts()


async def test_the_reply_only_guardrail_refuses_cold_messages(linked: WhatsApp) -> None:
    adapter = linked.adapter
    with pytest.raises(UserError) as refused:
        await adapter.deliver(STRANGER, None, text("hi, we have not met"))
    message = str(refused.value)
    assert "never wrote to this number" in message
    assert "Settings" in message
    assert "banned" in message
    assert linked.fake.sent == []
    assert await adapter.deliver(OWN_CHAT, None, text("note to self", "out-2"))  # the own chat is always fine
    await wrote(linked, sender=STRANGER.partition("@")[0])
    assert await adapter.deliver(STRANGER, None, text("now we have", "out-3"))
    assert linked.fake.texts() == ["note to self", "now we have"]


async def test_the_guardrail_can_be_turned_off(wa_settings: Settings, fake: FakeNeonizeClient) -> None:
    relaxed = load_settings(wa_settings.paths, timezone="Europe/Berlin", runtime="local", whatsapp_reply_only=False)
    async with running(relaxed, fake) as wa:
        await wa.link()
        assert await wa.adapter.deliver(STRANGER, None, text("hello, it's your dentist"))
        assert fake.texts(STRANGER) == ["hello, it's your dentist"]


async def test_the_rate_limit_makes_sends_wait_in_order_and_drops_none(
    wa_settings: Settings, fake: FakeNeonizeClient
) -> None:
    now = [0.0]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds
        await asyncio.sleep(0)

    limiter = TokenBucket(2, burst=1, clock=lambda: now[0], sleep=sleep)
    async with running(wa_settings, fake, limiter=limiter) as wa:
        await wa.link()
        await wrote(wa)
        ids = await asyncio.gather(*(wa.adapter.deliver(CHAT, None, text(f"part {n}", f"out-{n}"))
                                     for n in range(1, 5)))
    assert fake.texts(CHAT) == ["part 1", "part 2", "part 3", "part 4"]
    assert ids == [s.id for s in fake.sent]
    assert limiter.waits == 3
    assert waits == [30.0, 30.0, 30.0]


async def test_markdown_is_converted_and_long_texts_are_split(linked: WhatsApp) -> None:
    await wrote(linked)
    paragraph = "word " * 300  # 1500 characters
    body = "## Report\n\n" + "\n\n".join(paragraph.strip() for _ in range(6)) + "\n\nSee **[the docs](https://x.y)**."
    first = await linked.adapter.deliver(CHAT, None, text(body))
    parts = linked.fake.texts(CHAT)
    assert len(parts) == 3
    assert all(len(p) <= 4000 for p in parts)
    assert parts[0].startswith("*Report*\n\nword word")
    assert parts[-1].endswith("See *the docs (https://x.y)*.")
    assert first == linked.fake.sent[0].id


async def test_a_send_cut_off_by_a_drop_continues_where_it_stopped(linked: WhatsApp) -> None:
    await wrote(linked)
    long = "\n\n".join(["a" * 3000, "b" * 3000, "c" * 3000])
    linked.fake.fail_sends = [None, native.SendMessageError("websocket not connected")]
    with pytest.raises(ChannelDown):
        await linked.adapter.deliver(CHAT, None, text(long, "out-long"))
    assert [t[0] for t in linked.fake.texts(CHAT)] == ["a"]
    first = await linked.adapter.deliver(CHAT, None, text(long, "out-long"))  # delivery's retry
    assert [t[0] for t in linked.fake.texts(CHAT)] == ["a", "b", "c"]
    assert first == linked.fake.sent[0].id


async def test_files_go_as_photos_or_documents_without_libmagic(linked: WhatsApp) -> None:
    await wrote(linked)
    files = (OutgoingFile("chart.png", PNG, "image/png"), OutgoingFile("report.pdf", b"%PDF-1.4", "application/pdf"))
    first = await linked.adapter.deliver(CHAT, None, text("here you go", files=files))
    assert linked.fake.sent[0].text == "here you go"
    assert first == linked.fake.sent[0].id
    photo = linked.fake.sent[1].message.imageMessage
    assert photo.mimetype == "image/png"
    assert photo.fileLength == len(PNG)
    assert linked.fake.media[photo.directPath] == PNG
    doc = linked.fake.sent[2].message.documentMessage
    assert (doc.fileName, doc.mimetype) == ("report.pdf", "application/pdf")
    assert linked.fake.media[doc.directPath] == b"%PDF-1.4"
    assert len(linked.fake.sent) == 3


async def test_an_edit_is_sent_as_a_new_message(linked: WhatsApp) -> None:
    await wrote(linked)
    original = await linked.adapter.deliver(CHAT, None, text("the meeting is at 3"))
    edited = await linked.adapter.deliver(CHAT, None, OutboundMessage(
        kind="edit", delivery_id="out-e", text="the meeting is at **4**", target_message_id=original))
    assert edited is not None
    assert edited != original
    assert linked.fake.texts(CHAT) == ["the meeting is at 3", "✏️ the meeting is at *4*"]


async def test_reactions_name_the_sender_of_the_message_they_react_to(linked: WhatsApp) -> None:
    fake = linked.fake
    theirs = text_dm("look at this", msg_id="3EB0THEIRS")
    assert await fake.emit_message(theirs)
    ours = await linked.adapter.deliver(CHAT, None, text("nice!"))
    assert await linked.adapter.deliver(CHAT, None, OutboundMessage(
        kind="reaction", delivery_id="out-r1", emoji="👍", target_message_id="3EB0THEIRS"))
    assert await linked.adapter.deliver(CHAT, None, OutboundMessage(
        kind="reaction", delivery_id="out-r2", emoji="🎉", target_message_id=ours))
    first, second = (s.message.reactionMessage for s in fake.sent[1:])
    assert (first.text, first.key.ID, first.key.fromMe, first.key.remoteJID) == ("👍", "3EB0THEIRS", False, CHAT)
    assert (second.text, second.key.ID, second.key.fromMe) == ("🎉", ours, True)

    assert await fake.emit_message(group_text("in the group", msg_id="3EB0GROUP"))
    assert await linked.adapter.deliver(GROUP, None, OutboundMessage(
        kind="reaction", delivery_id="out-r3", emoji="❤️", target_message_id="3EB0GROUP"))
    assert fake.sent[-1].message.reactionMessage.key.participant == CHAT
    with pytest.raises(UserError):
        await linked.adapter.deliver(GROUP, None, OutboundMessage(
            kind="reaction", delivery_id="out-r4", emoji="❤️", target_message_id="3EB0FORGOTTEN"))


async def test_typing_and_display_cards(linked: WhatsApp) -> None:
    await wrote(linked)
    await linked.adapter.set_typing(CHAT, None)
    assert linked.fake.presences == [(CHAT, native.ChatPresence.CHAT_PRESENCE_COMPOSING)]
    await linked.adapter.deliver(CHAT, None, OutboundMessage(
        kind="card", delivery_id="out-c", title="Flights", text="Two options found.",
        links=({"label": "Morning", "url": "https://example.org/m"}, {"label": "", "url": "https://example.org/e"})))
    assert linked.fake.texts(CHAT) == [
        "*Flights*\n\nTwo options found.\n\nMorning: https://example.org/m\nhttps://example.org/e"
    ]
