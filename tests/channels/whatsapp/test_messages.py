"""Messages from WhatsApp to the agent and back: DMs, groups with and without a mention, media into the session
inbox, quoted replies, and the user's own messages never looping back."""

from __future__ import annotations

from nanoclaw_app.db import agents, app_state, messaging, users
from nanoclaw_app.settings import Settings, load_settings
from tests.channels.whatsapp.conftest import WhatsApp, running
from tests.fakes.neonize_client import (
    FRIEND,
    GROUP,
    OWN_LID,
    OWN_NUMBER,
    FakeNeonizeClient,
    document,
    group_text,
    image,
    own_outgoing,
    quoted_reply,
    self_chat,
    text_dm,
    voice_note,
)
from tests.waiting import until

OWNER_CHAT = f"{FRIEND}@s.whatsapp.net"
OWN_CHAT = f"{OWN_NUMBER}@s.whatsapp.net"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def test_a_dm_reaches_the_agent_and_its_reply_comes_back(linked: WhatsApp) -> None:
    chat = await linked.pair_owner()
    assert await users.owners(linked.host.db) == [f"whatsapp:{chat}"]
    assert await linked.fake.emit_message(text_dm("Hello **Nano**", push_name="Olivia"))
    texts = await linked.reply_to("Hello *Nano*")  # Markdown turned into WhatsApp's bold
    reply = next(s for s in linked.fake.sent if s.text.startswith("echo:"))
    assert reply.chat == chat
    assert texts[0].startswith("Paired!")
    assert (chat, ) == tuple({p for p, _ in linked.fake.presences})  # "typing…" was shown in that chat
    contents = await linked.inbound_contents(await linked.session_folder())
    hello = contents[-1]
    assert hello["text"] == "Hello **Nano**"
    assert hello["sender_id"] == f"whatsapp:{chat}"
    assert hello["sender_name"] == "Olivia"
    assert hello["is_mention"] is True  # a DM counts as a mention


async def test_in_a_group_only_a_mention_or_a_reply_to_us_wakes_the_agent(linked: WhatsApp) -> None:
    db = linked.host.db
    agent = await agents.create(db, "Nano")
    group = await messaging.create(db, "whatsapp", GROUP, name=None, is_group=True, unknown_sender_policy="public")
    await messaging.wire(db, group.id, agent.id, messaging.WiringSpec(engage_mode="mention"))
    linked.fake.groups[GROUP] = "Family"

    assert await linked.fake.emit_message(group_text("anyone up for lunch?"))
    assert await linked.fake.emit_message(group_text("@491701234567 what is the weather?",
                                                     mentions=(f"{OWN_NUMBER}@s.whatsapp.net",)))
    texts = await linked.reply_to("@491701234567 what is the weather?")
    assert "echo: anyone up for lunch?" not in texts
    assert await linked.fake.emit_message(group_text("@Nano and you?", mentions=(f"{OWN_LID}@lid",)))
    await linked.reply_to("@Nano and you?")
    ours = next(s for s in linked.fake.sent if s.text == "echo: @Nano and you?")
    assert ours.chat == GROUP
    assert await linked.fake.emit_message(quoted_reply("thanks!", quoted_text=ours.text, quoted_id=ours.id,
                                                       quoted_sender=f"{OWN_NUMBER}@s.whatsapp.net", chat=GROUP))
    await linked.reply_to("thanks!")
    assert "echo: anyone up for lunch?" not in linked.fake.texts()

    chat = await messaging.find(db, "whatsapp", GROUP)
    assert chat is not None
    assert chat.name == "Family"
    assert linked.fake.group_info_calls == 1


async def test_images_voice_notes_and_documents_land_in_the_session_inbox(linked: WhatsApp) -> None:
    await linked.pair_owner()
    fake = linked.fake
    pdf = b"%PDF-1.4 minutes of the meeting"
    ogg = b"OggS\x00voice"
    assert await fake.emit_message(image(fake, PNG, caption="what is this?", mimetype="image/png"))
    await linked.reply_to("what is this?")
    assert await fake.emit_message(voice_note(fake, ogg))
    assert await fake.emit_message(document(fake, pdf, filename="../Minutes 2026.pdf", caption="notes"))
    await linked.reply_to("notes")
    folder = await linked.session_folder()
    contents = await linked.inbound_contents(folder)
    by_kind = {a["kind"]: a for c in contents for a in c["attachments"]}
    assert set(by_kind) == {"image", "voice", "document"}
    assert by_kind["image"]["mime_type"] == "image/png"
    assert by_kind["image"]["name"].endswith(".png")
    assert by_kind["voice"]["mime_type"] == "audio/ogg"
    assert by_kind["voice"]["name"].endswith(".ogg")
    assert by_kind["document"]["name"] == "Minutes 2026.pdf"  # no folder part from the sender's phone
    files = {p.name: p.read_bytes() for p in (folder / "inbox").rglob("*") if p.is_file()}
    assert files[by_kind["image"]["name"]] == PNG
    assert files[by_kind["voice"]["name"]] == ogg
    assert files["Minutes 2026.pdf"] == pdf


async def test_a_file_over_the_size_cap_still_arrives_as_a_note(wa_settings: Settings, fake: FakeNeonizeClient) -> None:
    small = load_settings(wa_settings.paths, timezone="Europe/Berlin", sweep_interval_seconds=0.2,
                          fallback_poll_seconds=0.2, runtime="local", max_attachment_bytes=1000)
    async with running(small, fake) as wa:
        await wa.link()
        await wa.pair_owner()
        big = image(fake, b"x" * 10, caption="holiday", file_length=5 * 1024 * 1024)
        assert await fake.emit_message(big)
        await until(lambda: any(t.startswith("echo: holiday\n[Image not downloaded: 5.0 MB is over the")
                                for t in fake.texts()))
        assert fake.downloads == 0
        lost = document(fake, b"y", filename="gone.pdf", caption="")
        fake.media.clear()  # the media server lost it
        assert await fake.emit_message(lost)
        await until(lambda: any("could not be downloaded" in t and "gone.pdf" in t for t in fake.texts()))


async def test_a_quoted_reply_carries_what_it_quotes(linked: WhatsApp) -> None:
    chat = await linked.pair_owner()
    assert await linked.fake.emit_message(text_dm("remember the milk"))
    await linked.reply_to("remember the milk")
    ours = next(s for s in linked.fake.sent if s.text == "echo: remember the milk")
    assert await linked.fake.emit_message(quoted_reply("did you?", quoted_text=ours.text, quoted_id=ours.id,
                                                       quoted_sender=OWN_CHAT))
    await linked.reply_to("did you?")
    last = (await linked.inbound_contents(await linked.session_folder()))[-1]
    assert last["reply_to"] == {"text": "echo: remember the milk", "sender": OWN_CHAT, "message_id": ours.id}
    assert chat == OWNER_CHAT


async def test_the_users_own_messages_from_their_phone_never_reach_the_agent(linked: WhatsApp) -> None:
    await linked.pair_owner()
    assert await linked.fake.emit_message(own_outgoing("my private message", to=FRIEND))
    assert await linked.fake.emit_message(self_chat("a note to myself"))  # dedicated mode: not for the agent
    assert await linked.fake.emit_message(text_dm("after that"))
    await linked.reply_to("after that")
    texts = [c["text"] for c in await linked.inbound_contents(await linked.session_folder())]
    assert "my private message" not in texts
    assert "a note to myself" not in texts
    assert not any(t in ("echo: my private message", "echo: a note to myself") for t in linked.fake.texts())


async def test_in_self_mode_the_own_chat_talks_to_the_agent_without_looping(linked: WhatsApp) -> None:
    db = linked.host.db
    await app_state.put(db, "whatsapp.mode", "self")
    agent = await agents.create(db, "Nano")
    own = await messaging.create(db, "whatsapp", OWN_CHAT, name="Me", unknown_sender_policy="strict")
    await messaging.wire(db, own.id, agent.id, messaging.WiringSpec(engage_mode="pattern", engage_pattern="."))
    await users.upsert(db, f"whatsapp:{OWN_CHAT}", "whatsapp", "Me")
    await users.grant(db, f"whatsapp:{OWN_CHAT}", "owner")

    assert await linked.fake.emit_message(self_chat("plan my week"))
    await linked.reply_to("plan my week")
    reply = next(s for s in linked.fake.sent if s.text == "echo: plan my week")
    assert reply.chat == OWN_CHAT  # the own chat is never refused by the reply-only guardrail
    assert await linked.fake.emit_message(linked.fake.echo_of(reply))  # WhatsApp shows our reply again
    assert await linked.fake.emit_message(self_chat("and my month"))
    await linked.reply_to("and my month")
    assert [t for t in linked.fake.texts() if t.startswith("echo:")] == ["echo: plan my week", "echo: and my month"]
    assert await linked.fake.emit_message(own_outgoing("hi mum", to=FRIEND))  # chats with others stay private
    texts = [c["text"] for c in await linked.inbound_contents(await linked.session_folder())]
    assert texts == ["plan my week", "and my month"]


async def test_every_chat_that_writes_is_remembered(linked: WhatsApp) -> None:
    await linked.fake.emit_message(text_dm("hi there", sender="4930123456"))
    await linked.fake.emit_message(group_text("hello group"))
    rows = await linked.host.db.fetchall("SELECT platform_id FROM channel_contacts WHERE channel_type = 'whatsapp'")
    assert {r[0] for r in rows} == {"4930123456@s.whatsapp.net", GROUP}
