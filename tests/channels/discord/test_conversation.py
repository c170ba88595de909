"""Talking to the agent over Discord: pairing, DMs, server channels and threads, long replies, files both ways,
edits, reactions and typing — as the person in Discord would see them.
"""

from __future__ import annotations

import pytest

from agent_runner.protocol import TextOut
from nanoclaw_app.core import pairing
from nanoclaw_app.core.adapter_contract import ChannelAdapter
from nanoclaw_app.core.messages import OutboundMessage
from nanoclaw_app.db import messaging, users
from nanoclaw_app.errors import UserError
from nanoclaw_app.host import Host
from tests.channels.discord.conftest import (
    HANDLED,
    about,
    chat_sessions,
    dm_id,
    dm_session,
    inbound_contents,
    inbound_texts,
    next_event,
    pair,
    say_dm,
)
from tests.fakes.container import write_out
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.discord_model import BOT, GENERAL_ID, OWNER, STRANGER


@pytest.fixture
async def paired(discord_host: Host, fake: FakeDiscord) -> Host:
    await pair(discord_host, fake)
    return discord_host


def adapter_of(host: Host) -> ChannelAdapter:
    adapter = host.channels.get("discord")
    assert adapter is not None
    return adapter


async def wire_general(host: Host, fake: FakeDiscord, agent_id: str) -> None:
    """The owner pairs #general with the agent by mentioning the bot with a code."""
    code = await pairing.create_code(host.db, "discord", intent=f"wire:{agent_id}")
    fake.push_message(GENERAL_ID, OWNER, f"{BOT.mention} {code.code}")
    await fake.wait_for(lambda: any(t.startswith("Paired!") for t in fake.texts(GENERAL_ID)))


async def test_the_owner_pairs_with_a_code_in_a_dm_and_then_talks_to_the_agent(
    discord_host: Host, fake: FakeDiscord, agent_id: str
) -> None:
    code = await pairing.create_code(discord_host.db, "discord")
    fake.push_dm(OWNER, code.code)
    await fake.wait_for(lambda: any(t.startswith("Paired!") for t in fake.texts(dm_id(fake))))
    assert await users.owners(discord_host.db) == [f"discord:{OWNER.id}"]
    user = await users.get(discord_host.db, f"discord:{OWNER.id}")
    assert user is not None
    assert user.display_name == "Ann Koch"
    chat = await messaging.find(discord_host.db, "discord", str(dm_id(fake)))
    assert chat is not None
    assert not chat.is_group

    await say_dm(fake, "What's on today?")
    _, folder = await dm_session(discord_host, fake, agent_id)
    [content] = await inbound_contents(discord_host, folder)
    assert content["text"] == "What's on today?"
    assert content["sender_id"] == f"discord:{OWNER.id}"
    assert content["sender_name"] == "Ann Koch"
    assert dm_id(fake) in fake.typing  # "typing…" while the agent works


async def test_in_a_server_channel_only_mentions_reach_the_agent_and_the_mention_is_taken_out(
    paired: Host, fake: FakeDiscord, agent_id: str
) -> None:
    await wire_general(paired, fake, agent_id)
    chat = await messaging.find(paired.db, "discord", str(GENERAL_ID))
    assert chat is not None
    assert chat.is_group
    assert chat.name == "Nano Home #general"

    async with paired.events.subscribe() as events:
        plain = fake.push_message(GENERAL_ID, OWNER, "just chatting among ourselves")
        event = await next_event(events, HANDLED, about(plain))
    assert event.data.get("trigger") is not True
    fake.push_message(GENERAL_ID, OWNER, f"hey {BOT.mention} what is the plan with {STRANGER.mention}?")
    await fake.wait_for(lambda: "echo: hey what is the plan with @Sam?" in fake.texts(GENERAL_ID))
    assert "echo: just chatting among ourselves" not in fake.texts(GENERAL_ID)
    [(_, folder)] = await chat_sessions(paired, agent_id, GENERAL_ID)
    contents = await inbound_contents(paired, folder)
    assert contents[-1]["is_mention"] is True


async def test_two_threads_are_two_sessions_that_do_not_see_each_other(
    paired: Host, fake: FakeDiscord, agent_id: str
) -> None:
    await wire_general(paired, fake, agent_id)
    trip = int(fake.create_thread(GENERAL_ID, "trip planning")["id"])
    dinner = int(fake.create_thread(GENERAL_ID, "dinner")["id"])
    fake.push_message(GENERAL_ID, OWNER, f"{BOT.mention} train or car?", thread=trip)
    fake.push_message(GENERAL_ID, OWNER, f"{BOT.mention} pasta tonight?", thread=dinner)
    await fake.wait_for(lambda: "echo: train or car?" in fake.texts(trip))
    await fake.wait_for(lambda: "echo: pasta tonight?" in fake.texts(dinner))
    assert fake.texts(trip) == ["echo: train or car?"]  # each answer in its own thread
    assert fake.texts(dinner) == ["echo: pasta tonight?"]

    sessions = {s.thread_id: folder for s, folder in await chat_sessions(paired, agent_id, GENERAL_ID)}
    assert set(sessions) >= {str(trip), str(dinner)}
    assert await inbound_texts(paired, sessions[str(trip)]) == ["train or car?"]
    assert await inbound_texts(paired, sessions[str(dinner)]) == ["pasta tonight?"]
    assert sessions[str(trip)] != sessions[str(dinner)]


async def test_a_long_reply_arrives_in_order_in_parts_within_discords_limit(
    paired: Host, fake: FakeDiscord, agent_id: str
) -> None:
    await say_dm(fake, "write me a story")
    _, folder = await dm_session(paired, fake, agent_id)
    paragraphs = [f"Paragraph {i}: " + " ".join(f"word{i}x{j}" for j in range(90)) for i in range(1, 8)]
    story = "\n\n".join(paragraphs)
    assert len(story) > 5000
    write_out(folder, TextOut(text=story).to_json(), channel_type="discord", platform_id=str(dm_id(fake)))

    await fake.wait_for(lambda: any("Paragraph 7:" in t for t in fake.texts(dm_id(fake))))
    parts = [t for t in fake.texts(dm_id(fake)) if "Paragraph" in t]
    assert len(parts) >= 3
    assert all(len(p) <= 2000 for p in parts)
    assert "\n\n".join(parts) == story  # nothing lost, nothing repeated, in order, cut between paragraphs


async def test_a_file_from_the_agent_arrives_with_its_text(paired: Host, fake: FakeDiscord, agent_id: str) -> None:
    await say_dm(fake, "send the report")
    _, folder = await dm_session(paired, fake, agent_id)
    (folder / "outbox" / "out-report").mkdir(parents=True)
    (folder / "outbox" / "out-report" / "report.csv").write_text("month,sales\nMarch,12\n")
    write_out(folder, TextOut(text="Here is the **report**", files=["report.csv"]).to_json(),
              channel_type="discord", platform_id=str(dm_id(fake)), row_id="out-report")

    sent = await fake.wait_for(lambda: next((m for m in fake.sent_messages(dm_id(fake)) if m["attachments"]), None))
    assert sent["content"] == "Here is the **report**"
    [attachment] = sent["attachments"]
    assert attachment["filename"] == "report.csv"
    assert fake.files[int(attachment["id"])].data == b"month,sales\nMarch,12\n"


async def test_a_file_from_a_person_reaches_the_session_inbox(paired: Host, fake: FakeDiscord, agent_id: str) -> None:
    sent = await say_dm(fake, "my notes", attachments=[("notes.txt", b"buy milk", "text/plain")])
    _, folder = await dm_session(paired, fake, agent_id)
    assert (folder / "inbox" / sent["id"] / "notes.txt").read_bytes() == b"buy milk"
    [content] = await inbound_contents(paired, folder)
    assert [(a["name"], a["kind"], a["mime_type"], a["size"]) for a in content["attachments"]] == [
        ("notes.txt", "document", "text/plain", 8)]


async def test_edits_reactions_and_typing(paired: Host, fake: FakeDiscord) -> None:
    adapter = adapter_of(paired)
    dm = str(dm_id(fake))
    message_id = await adapter.deliver(dm, None, OutboundMessage(kind="text", delivery_id="e-1", text="Thinking…"))
    assert message_id is not None
    edited = await adapter.deliver(dm, None, OutboundMessage(
        kind="edit", delivery_id="e-2", text="The answer is _42_", target_message_id=message_id))
    assert edited == message_id
    assert fake.messages[int(message_id)]["content"] == "The answer is _42_"
    assert fake.messages[int(message_id)]["edited_timestamp"] is not None

    await adapter.deliver(dm, None, OutboundMessage(kind="reaction", delivery_id="r-1", emoji="👍",
                                                    target_message_id=message_id))
    assert fake.reactions[int(message_id)] == ["👍"]
    result = await adapter.deliver(dm, None, OutboundMessage(kind="reaction", delivery_id="r-2", emoji="nope",
                                                             target_message_id=message_id))
    assert result is None  # Discord refused the emoji: skipped, the delivery does not fail

    await adapter.set_typing(dm, None)
    assert fake.typing[-1] == int(dm)


async def test_what_the_agent_writes_pings_nobody(paired: Host, fake: FakeDiscord) -> None:
    adapter = adapter_of(paired)
    await adapter.deliver(str(GENERAL_ID), None, OutboundMessage(kind="text", delivery_id="p-1",
                                                                 text="@everyone look"))
    [call] = [c for c in fake.sent("POST /channels/{channel_id}/messages") if c.body.get("content") == "@everyone look"]
    assert call.body["allowed_mentions"]["parse"] == []


async def test_a_refusal_by_discord_becomes_a_plain_error(paired: Host, fake: FakeDiscord) -> None:
    adapter = adapter_of(paired)
    fake.dms_closed.add(STRANGER.id)
    dm = await adapter.open_dm(str(STRANGER.id))
    assert dm is not None
    with pytest.raises(UserError, match="does not accept direct messages"):
        await adapter.deliver(dm, None, OutboundMessage(kind="text", delivery_id="x-1", text="hello"))
    fake.fail_next("POST /channels/{channel_id}/messages", 403, "Missing Permissions", code=50013)
    with pytest.raises(UserError, match="lacks permission"):
        await adapter.deliver(str(GENERAL_ID), None, OutboundMessage(kind="text", delivery_id="x-2", text="hi"))


async def test_a_reply_carries_the_message_it_answers(paired: Host, fake: FakeDiscord, agent_id: str) -> None:
    await say_dm(fake, "pizza or pasta?")
    bot_reply = fake.sent_messages(dm_id(fake))[-1]
    fake.push_message(dm_id(fake), OWNER, "this one", reply_to=int(bot_reply["id"]))
    await fake.wait_for(lambda: "echo: this one" in fake.texts(dm_id(fake)))
    _, folder = await dm_session(paired, fake, agent_id)
    contents = await inbound_contents(paired, folder)
    assert contents[-1]["reply_to"] == {"text": "echo: pizza or pasta?", "sender": "Nano",
                                        "message_id": bot_reply["id"]}
