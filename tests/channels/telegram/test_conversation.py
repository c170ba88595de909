"""Talking to the agent over Telegram: messages in and replies out, long texts, files both ways, formatting, edits,
reactions, quotes and mentions — as the person in Telegram would see them.
"""

from __future__ import annotations

import json

import pytest

from agent_runner.protocol import TextOut
from nanoclaw_app.core.messages import OutboundMessage
from nanoclaw_app.errors import TransientError, UserError
from nanoclaw_app.host import Host
from tests.channels.telegram.conftest import (
    HANDLED,
    about,
    dm_session,
    inbound_texts,
    next_event,
    pair,
    png,
    say,
)
from tests.fakes.container import write_out
from tests.fakes.telegram_api import ANN, BOT_ID, BOT_USERNAME, SAM, FakeBotApi, visible_text


@pytest.fixture
async def paired(telegram: Host, api: FakeBotApi) -> Host:
    await pair(telegram, api)
    return telegram


def adapter_of(host: Host):  # type: ignore[no-untyped-def]
    adapter = host.channels.get("telegram")
    assert adapter is not None
    return adapter


async def test_a_message_reaches_the_agent_and_its_reply_comes_back(
    paired: Host, api: FakeBotApi, agent_id: str
) -> None:
    await say(api, "What's on today?")
    _, folder = await dm_session(paired, agent_id)
    assert await inbound_texts(paired, folder) == ["What's on today?"]
    reply = api.sent("sendMessage")[-1]
    assert reply["chat_id"] == ANN.id
    assert reply["parse_mode"] == "HTML"


async def test_what_the_agent_receives_names_the_sender_and_the_quoted_message(
    paired: Host, api: FakeBotApi, agent_id: str
) -> None:
    earlier = await say(api, "pizza or pasta?")
    bot_reply = api.bot_messages(ANN.id)[-1]
    await say(api, "this one", reply_to=bot_reply)
    await say(api, "and that", reply_to=earlier)
    _, folder = await dm_session(paired, agent_id)
    rows = await paired.store.read(
        folder, lambda conn: conn.execute("SELECT content FROM messages_in WHERE kind = 'chat' ORDER BY seq")
        .fetchall(), with_outbound=False)
    contents = [json.loads(r[0]) for r in rows]
    assert contents[0]["sender_id"] == f"telegram:{ANN.id}"
    assert contents[0]["sender_name"] == "Ann Koch"
    assert contents[0]["is_mention"] is True
    assert contents[1]["reply_to"]["text"] == "echo: pizza or pasta?"
    assert contents[1]["reply_to"]["sender"] == "Nano"
    assert contents[2]["reply_to"] == {"text": "pizza or pasta?", "sender": "Ann Koch",
                                       "message_id": str(earlier["message_id"])}


async def test_a_long_reply_arrives_in_order_in_parts_cut_at_paragraphs(
    paired: Host, api: FakeBotApi, agent_id: str
) -> None:
    await say(api, "write me a story")
    _, folder = await dm_session(paired, agent_id)
    paragraphs = [f"Paragraph {i}: " + " ".join(f"word{i}x{j}" for j in range(250)) for i in range(1, 6)]
    story = "\n\n".join(paragraphs)
    assert len(story) > 8000
    write_out(folder, TextOut(text=story).to_json(), channel_type="telegram", platform_id=str(ANN.id))

    await api.wait_for(lambda: any(t.startswith("Paragraph 5") or "Paragraph 5:" in t for t in api.texts(ANN.id)))
    parts = [t for t in api.texts(ANN.id) if "Paragraph" in t]
    assert all(len(p) <= 4000 for p in parts)
    assert len(parts) >= 3
    assert "\n\n".join(parts) == story  # nothing lost, nothing repeated, in order, cut between paragraphs


async def test_a_file_from_the_agent_arrives_with_the_text_as_its_caption(
    paired: Host, api: FakeBotApi, agent_id: str
) -> None:
    await say(api, "send the report")
    _, folder = await dm_session(paired, agent_id)
    (folder / "outbox" / "out-report").mkdir(parents=True)
    (folder / "outbox" / "out-report" / "report.csv").write_text("month,sales\nMarch,12\n")
    (folder / "outbox" / "out-report" / "chart.png").write_bytes(png())
    write_out(folder, TextOut(text="Here is the **report** & the chart", files=["report.csv", "chart.png"]).to_json(),
              channel_type="telegram", platform_id=str(ANN.id), row_id="out-report")

    [document] = await api.wait_call("sendDocument")
    [photo] = await api.wait_call("sendPhoto")
    assert document["document"]["filename"] == "report.csv"
    assert document["document"]["data"] == b"month,sales\nMarch,12\n"
    assert document["caption"] == "Here is the <b>report</b> &amp; the chart"
    assert photo["photo"]["data"] == png()
    assert "caption" not in photo
    assert api.texts(ANN.id)[-2:] == ["Here is the report & the chart", ""]


async def test_photos_documents_and_voice_notes_reach_the_session_inbox(
    paired: Host, api: FakeBotApi, agent_id: str
) -> None:
    picture = png(120, 80)
    sent = await say(api, "look at this", photo=picture)
    await say(api, "my notes", document=("notes.txt", b"buy milk", "text/plain"))
    await say(api, "voice note", voice=b"OggS fake voice")
    _, folder = await dm_session(paired, agent_id)

    assert (folder / "inbox" / str(sent["message_id"]) / f"photo-{sent['message_id']}.jpg").read_bytes() == picture
    rows = await paired.store.read(
        folder, lambda conn: conn.execute("SELECT content FROM messages_in WHERE kind = 'chat' ORDER BY seq")
        .fetchall(), with_outbound=False)
    attachments = [json.loads(r[0])["attachments"] for r in rows]
    assert [(a["name"], a["kind"], a["mime_type"], a["size"]) for a in attachments[0]] == [
        (f"photo-{sent['message_id']}.jpg", "image", "image/jpeg", len(picture))]  # the largest size, not the thumb
    assert [(a["name"], a["kind"]) for a in attachments[1]] == [("notes.txt", "document")]
    assert [a["kind"] for a in attachments[2]] == ["voice"]
    downloads = [params["path"] for method, params in api.calls if method == "download"]
    assert len(downloads) == 3


async def test_a_file_over_the_size_limit_is_not_downloaded_but_the_message_still_arrives(
    paired: Host, api: FakeBotApi, agent_id: str
) -> None:
    limit = paired.settings.max_attachment_bytes
    api.push_message("the video", document=("holiday.mp4", b"tiny stand-in", "video/mp4"), file_size=limit + 1)
    await api.wait_for(lambda: any(t.startswith("echo: the video") for t in api.texts(ANN.id)))
    _, folder = await dm_session(paired, agent_id)
    [text] = await inbound_texts(paired, folder)
    assert text.startswith("the video\n\n[holiday.mp4 was not downloaded")
    assert "limit" in text
    assert not [c for c in api.calls if c[0] == "download"]


async def test_markdown_is_formatted_and_everything_else_escaped(paired: Host, api: FakeBotApi) -> None:
    adapter = adapter_of(paired)
    text = "If a < b && c > d then **bold** and `x<y>` and <script>alert(1)</script> and [docs](https://x.org/?a=1&b=2)"
    await adapter.deliver(str(ANN.id), None, OutboundMessage(kind="text", delivery_id="fmt-1", text=text))
    sent = api.sent("sendMessage")[-1]
    assert sent["parse_mode"] == "HTML"
    shown = visible_text(sent["text"])  # Telegram accepted it; this is what Ann sees
    assert shown == ("If a < b && c > d then bold and x<y> and <script>alert(1)</script> and docs")
    assert "<script>" not in sent["text"]
    assert "&amp;&amp;" in sent["text"]
    assert '<a href="https://x.org/?a=1&amp;b=2">docs</a>' in sent["text"]


async def test_when_telegram_refuses_the_formatting_the_text_is_sent_plain(paired: Host, api: FakeBotApi) -> None:
    adapter = adapter_of(paired)
    api.fail_next("sendMessage", 400, "Bad Request: can't parse entities: Can't find end of the entity starting at "
                                      "byte offset 3")
    message_id = await adapter.deliver(str(ANN.id), None,
                                       OutboundMessage(kind="text", delivery_id="fmt-2", text="a **b** c"))
    first, second = api.sent("sendMessage")[-2:]
    assert first["parse_mode"] == "HTML"
    assert "parse_mode" not in second
    assert second["text"] == "a **b** c"
    assert api.texts(ANN.id)[-1] == "a **b** c"
    assert message_id == str(api.bot_messages(ANN.id)[-1]["message_id"])


async def test_edits_reactions_and_typing(paired: Host, api: FakeBotApi) -> None:
    adapter = adapter_of(paired)
    message_id = await adapter.deliver(str(ANN.id), None,
                                       OutboundMessage(kind="text", delivery_id="e-1", text="Thinking…"))
    assert message_id is not None
    edited = await adapter.deliver(str(ANN.id), None, OutboundMessage(
        kind="edit", delivery_id="e-2", text="The answer is _42_", target_message_id=message_id))
    assert edited == message_id
    assert api.messages[(ANN.id, int(message_id))]["text"] == "The answer is 42"
    again = await adapter.deliver(str(ANN.id), None, OutboundMessage(  # unchanged: Telegram says "not modified"
        kind="edit", delivery_id="e-3", text="The answer is _42_", target_message_id=message_id))
    assert again == message_id

    await adapter.deliver(str(ANN.id), None, OutboundMessage(kind="reaction", delivery_id="r-1", emoji="❤️",
                                                             target_message_id=message_id))
    assert api.reactions[(ANN.id, int(message_id))] == ["❤"]
    result = await adapter.deliver(str(ANN.id), None, OutboundMessage(kind="reaction", delivery_id="r-2", emoji="🍕",
                                                                      target_message_id=message_id))
    assert result is None  # not an allowed reaction: skipped, the delivery does not fail
    assert len(api.sent("setMessageReaction")) == 1
    api.fail_next("setMessageReaction", 400, "Bad Request: REACTION_INVALID")
    await adapter.deliver(str(ANN.id), None, OutboundMessage(kind="reaction", delivery_id="r-3", emoji="👍",
                                                             target_message_id=message_id))

    await adapter.set_typing(str(ANN.id), None)
    assert api.sent("sendChatAction")[-1] == {"chat_id": ANN.id, "action": "typing"}


async def test_telegram_errors_become_the_apps_errors(paired: Host, api: FakeBotApi) -> None:
    adapter = adapter_of(paired)

    def text(n: int) -> OutboundMessage:
        return OutboundMessage(kind="text", delivery_id=f"err-{n}", text="hello")

    api.fail_next("sendMessage", 429, "Too Many Requests: retry after 7", retry_after=7)
    with pytest.raises(TransientError) as slow:
        await adapter.deliver(str(ANN.id), None, text(1))
    assert slow.value.retry_after == 7
    api.fail_next("sendMessage", 403, "Forbidden: bot was blocked by the user")
    with pytest.raises(UserError, match="blocked the bot"):
        await adapter.deliver(str(ANN.id), None, text(2))
    api.fail_next("sendMessage", 400, "Bad Request: chat not found")
    with pytest.raises(UserError, match=r"(?i)chat not found"):
        await adapter.deliver(str(ANN.id), None, text(3))
    assert await adapter.open_dm(str(SAM.id)) == str(SAM.id)


async def test_a_long_reply_cut_short_resumes_without_repeating_parts(paired: Host, api: FakeBotApi) -> None:
    adapter = adapter_of(paired)
    story = "\n\n".join(f"Part {i} " + "x" * 3000 for i in range(3))
    api.fail_next("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1, after=1)
    with pytest.raises(TransientError):  # the first part went out, the second was refused
        await adapter.deliver(str(ANN.id), None, OutboundMessage(kind="text", delivery_id="cut-1", text=story))
    assert [t[:6] for t in api.texts(ANN.id) if t.startswith("Part")] == ["Part 0"]
    first_id = await adapter.deliver(str(ANN.id), None, OutboundMessage(kind="text", delivery_id="cut-1", text=story))
    parts = [t for t in api.texts(ANN.id) if t.startswith("Part")]
    assert [p[:6] for p in parts] == ["Part 0", "Part 1", "Part 2"]
    assert first_id == str(api.bot_messages(ANN.id)[-3]["message_id"])


async def test_in_groups_only_messages_addressed_to_the_bot_count_as_mentions(
    paired: Host, api: FakeBotApi, agent_id: str
) -> None:
    from nanoclaw_app.core import pairing

    code = await pairing.create_code(paired.db, "telegram", intent=f"wire:{agent_id}")
    group = api.group_chat(-100777, "Book club")
    api.push_message(f"@{BOT_USERNAME} {code.code}", chat=group)
    await api.wait_for(lambda: any(t.startswith("Paired!") for t in api.texts(-100777)))

    async with paired.events.subscribe() as events:
        plain = api.push_message("nice weather today", chat=group)
        event = await next_event(events, HANDLED, about(plain))
    assert event.data.get("trigger") is not True  # not addressed: context at most, no answer

    await say(api, f"hey @{BOT_USERNAME.upper()} how are you", chat=group)  # @mention, any case
    bot_message = api.bot_messages(-100777)[-1]
    await say(api, "and you think so too?", chat=group, reply_to=bot_message)  # a reply to the bot
    await say(api, "Nano, summary please", chat=group, entities=[  # a text mention (no username shown)
        {"type": "text_mention", "offset": 0, "length": 4, "user": {"id": BOT_ID, "is_bot": True,
                                                                      "first_name": "Nano"}}])
    assert "echo: nice weather today" not in api.texts(-100777)
