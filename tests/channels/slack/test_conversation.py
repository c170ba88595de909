"""Talking to the agent over Slack: pairing, messages in and replies out, threads as sessions, long texts, files both
ways, edits and reactions — as the person in Slack would see them.
"""

from __future__ import annotations

import pytest

from agent_runner.protocol import TextOut
from nanoclaw_app.core import pairing
from nanoclaw_app.core.messages import OutboundMessage
from nanoclaw_app.db import messaging, users
from nanoclaw_app.errors import TransientError, UserError
from nanoclaw_app.host import Host
from tests.channels.slack.conftest import (
    HANDLED,
    dm_session,
    inbound_rows,
    inbound_texts,
    next_event,
    say,
    sessions_of,
    texts,
)
from tests.fakes.container import write_out
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_workspace import BOT, GENERAL, OWNER, OWNER_DM, STRANGER


def adapter_of(host: Host):  # type: ignore[no-untyped-def]
    adapter = host.channels.get("slack")
    assert adapter is not None
    return adapter


async def test_the_first_person_to_send_the_code_becomes_owner_and_their_dm_talks_to_the_agent(
    running: Host, slack: FakeSlack, agent_id: str
) -> None:
    code = await pairing.create_code(running.db, "slack")
    slack.push_message(OWNER_DM, OWNER, code.code)
    await slack.wait_for(lambda: any(t.startswith("Paired!") for t in texts(slack, OWNER_DM)))
    assert await users.owners(running.db) == [f"slack:{OWNER.id}"]
    user = await users.get(running.db, f"slack:{OWNER.id}")
    assert user is not None
    assert user.display_name == "Ann Koch"
    chat = await messaging.find(running.db, "slack", OWNER_DM)
    assert chat is not None
    assert not chat.is_group

    await say(slack, "What's on today?")
    _, folder = await dm_session(running, agent_id)
    assert await inbound_texts(running, folder) == ["What's on today?"]
    [reply] = [m for m in slack.sent_messages(OWNER_DM) if m["text"] == "echo: What's on today?"]
    assert reply["thread_ts"] is None  # a DM is answered in the DM, not in a thread


async def test_two_threads_in_a_channel_are_two_sessions_that_do_not_see_each_other(
    paired: Host, slack: FakeSlack, agent_id: str
) -> None:
    code = await pairing.create_code(paired.db, "slack", intent=f"wire:{agent_id}")
    slack.push_app_mention(GENERAL, OWNER, code.code)
    await slack.wait_for(lambda: any(t.startswith("Paired!") for t in texts(slack, GENERAL)))
    chat = await messaging.find(paired.db, "slack", GENERAL)
    assert chat is not None
    assert chat.is_group
    assert chat.name == "#general"

    first = slack.push_app_mention(GENERAL, OWNER, "plan the trip")
    second = slack.push_app_mention(GENERAL, OWNER, "fix the bike")
    await slack.wait_for(lambda: f"echo: @{BOT.name} plan the trip" in texts(slack, GENERAL, first["ts"]))
    await slack.wait_for(lambda: f"echo: @{BOT.name} fix the bike" in texts(slack, GENERAL, second["ts"]))
    slack.push_app_mention(GENERAL, OWNER, "and the hotel?", thread_ts=first["ts"])
    await slack.wait_for(lambda: f"echo: @{BOT.name} and the hotel?" in texts(slack, GENERAL, first["ts"]))

    found = await sessions_of(paired, agent_id, GENERAL)
    by_thread = {s.thread_id: folder for s, folder in found}
    assert set(by_thread) >= {first["ts"], second["ts"]}
    trip = await inbound_texts(paired, by_thread[first["ts"]])
    bike = await inbound_texts(paired, by_thread[second["ts"]])
    assert trip == [f"@{BOT.name} plan the trip", f"@{BOT.name} and the hotel?"]  # message + app_mention: once
    assert bike == [f"@{BOT.name} fix the bike"]
    assert texts(slack, GENERAL, second["ts"]) == [f"echo: @{BOT.name} fix the bike"]


async def test_a_long_reply_arrives_in_order_in_parts_cut_at_paragraphs(
    paired: Host, slack: FakeSlack, agent_id: str
) -> None:
    await say(slack, "write me a story")
    _, folder = await dm_session(paired, agent_id)
    paragraphs = [f"Paragraph {i}: " + " ".join(f"word{i}x{j}" for j in range(250)) for i in range(1, 6)]
    story = "\n\n".join(paragraphs)
    assert len(story) > 8000
    write_out(folder, TextOut(text=story).to_json(), channel_type="slack", platform_id=OWNER_DM)

    await slack.wait_for(lambda: any("Paragraph 5:" in t for t in texts(slack, OWNER_DM)))
    parts = [t for t in texts(slack, OWNER_DM) if "Paragraph" in t]
    assert len(parts) >= 3
    assert all(len(p) <= 4000 for p in parts)
    assert "\n\n".join(parts) == story  # nothing lost, nothing repeated, in order, cut between paragraphs


async def test_a_file_from_the_agent_is_uploaded_after_its_text(paired: Host, slack: FakeSlack, agent_id: str) -> None:
    await say(slack, "send the report")
    _, folder = await dm_session(paired, agent_id)
    (folder / "outbox" / "out-report").mkdir(parents=True)
    (folder / "outbox" / "out-report" / "report.csv").write_text("month,sales\nMarch,12\n")
    write_out(folder, TextOut(text="Here is the **report** & more", files=["report.csv"]).to_json(),
              channel_type="slack", platform_id=OWNER_DM, row_id="out-report")

    await slack.wait_for(lambda: any(m["files"] for m in slack.sent_messages(OWNER_DM)))
    mine = slack.sent_messages(OWNER_DM)
    [with_file] = [m for m in mine if m["files"]]
    stored = slack.files[with_file["files"][0]]
    assert (stored.name, stored.data) == ("report.csv", b"month,sales\nMarch,12\n")
    assert mine[-2]["text"] == "Here is the *report* &amp; more"  # the text first, in mrkdwn, then the file
    assert mine[-1]["files"] == with_file["files"]


async def test_a_file_from_a_person_reaches_the_session_inbox(paired: Host, slack: FakeSlack, agent_id: str) -> None:
    photo = bytes(range(256)) * 8
    sent = await say(slack, "look at this", files=[("holiday.png", photo, "image/png")])
    _, folder = await dm_session(paired, agent_id)
    [row] = [r for r in await inbound_rows(paired, folder) if r.get("text") == "look at this"]
    assert [(a["name"], a["kind"], a["mime_type"], a["size"]) for a in row["attachments"]] == [
        ("holiday.png", "image", "image/png", len(photo))]
    assert (folder / "inbox" / sent["ts"] / "holiday.png").read_bytes() == photo


async def test_edits_reactions_and_errors(paired: Host, slack: FakeSlack) -> None:
    adapter = adapter_of(paired)
    ts = await adapter.deliver(OWNER_DM, None, OutboundMessage(kind="text", delivery_id="e-1", text="Thinking…"))
    assert ts is not None
    edited = await adapter.deliver(OWNER_DM, None, OutboundMessage(
        kind="edit", delivery_id="e-2", text="The answer is **42**", target_message_id=ts))
    assert edited == ts
    [shown] = [m for m in slack.sent_messages(OWNER_DM) if m["ts"] == ts]
    assert (shown["text"], shown["edited"]) == ("The answer is *42*", True)

    await adapter.deliver(OWNER_DM, None, OutboundMessage(kind="reaction", delivery_id="r-1", emoji="👍",
                                                          target_message_id=ts))
    await adapter.deliver(OWNER_DM, None, OutboundMessage(kind="reaction", delivery_id="r-2", emoji="👍",
                                                          target_message_id=ts))  # already there: fine
    await adapter.deliver(OWNER_DM, None, OutboundMessage(kind="reaction", delivery_id="r-3", emoji="🦄🦄",
                                                          target_message_id=ts))  # unknown: skipped
    assert slack.reactions[(OWNER_DM, ts)] == ["+1"]

    slack.rate_limit("chat.postMessage", retry_after=7)
    with pytest.raises(TransientError) as slow:
        await adapter.deliver(OWNER_DM, None, OutboundMessage(kind="text", delivery_id="x-1", text="hi"))
    assert slow.value.retry_after == 7
    slack.fail_next("chat.postMessage", "not_in_channel")
    with pytest.raises(UserError, match="not a member"):
        await adapter.deliver(OWNER_DM, None, OutboundMessage(kind="text", delivery_id="x-2", text="hi"))


async def test_a_cold_dm_opens_the_conversation_with_a_person(paired: Host, slack: FakeSlack) -> None:
    adapter = adapter_of(paired)
    newcomer = slack.add_user("U0NEWCOMR", "lee", "Lee Park")
    dm = await adapter.open_dm(newcomer.id)
    assert dm is not None
    assert dm.startswith("D")
    await adapter.deliver(dm, None, OutboundMessage(kind="text", delivery_id="cold-1", text="Hello Lee"))
    assert texts(slack, dm) == ["Hello Lee"]
    assert await adapter.open_dm("U0NOBODY0") is None


async def test_the_bots_own_messages_and_edits_are_not_passed_on(paired: Host, slack: FakeSlack, agent_id: str) -> None:
    slack.echo_bot_messages = True
    async with paired.events.subscribe() as events:
        await say(slack, "hello")
        last = slack.push_message(OWNER_DM, STRANGER, "from someone else")
        await next_event(events, HANDLED, lambda d: d.get("message_id") == last["ts"])
    _, folder = await dm_session(paired, agent_id)
    assert await inbound_texts(paired, folder) == ["hello"]  # not "echo: hello" coming back around
