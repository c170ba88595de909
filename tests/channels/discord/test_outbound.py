"""How a reply is cut for Discord: within 2000 characters, code blocks that render in every part, files on the first
part, and a send cut short that resumes without repeating what went out.
"""

from __future__ import annotations

import pytest

from nanoclaw_app.channels.discord.outbound import TEXT_LIMIT, plan, text_parts
from nanoclaw_app.core.messages import OutboundMessage, OutgoingFile
from nanoclaw_app.errors import UserError
from nanoclaw_app.host import Host
from tests.channels.discord.conftest import dm_id, pair
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.discord_model import GENERAL_ID

SEND = "POST /channels/{channel_id}/messages"


def test_a_long_code_block_is_closed_and_reopened_so_each_part_renders() -> None:
    code = "\n".join(f"print({i})  # a line of the program" for i in range(200))
    text = f"Here it is:\n\n```python-with-a-very-long-tag\n{code}\n```\n\nDone."
    parts = text_parts(text)
    assert len(parts) >= 3
    assert all(len(p) <= TEXT_LIMIT for p in parts)
    assert all(p.count("```") % 2 == 0 for p in parts)
    assert parts[2].startswith("```python-with-a-ver\n")  # reopened with the start of its opening line
    shown = "".join(parts)
    assert all(f"print({i})" in shown for i in range(200))


def test_files_ride_on_the_first_part_ten_at_a_time() -> None:
    files = tuple(OutgoingFile(f"f{i}.txt", b"x") for i in range(12))
    steps = plan("hello " * 500, files)
    assert [len(batch) for _, batch in steps] == [10, 2, 0]
    assert steps[0][0].startswith("hello")
    assert steps[1][0] == ""


async def test_a_long_reply_cut_short_resumes_without_repeating_parts(
    discord_host: Host, fake: FakeDiscord
) -> None:
    adapter = discord_host.channels.get("discord")
    assert adapter is not None
    story = "\n\n".join(f"Part {i} " + "x" * 1500 for i in range(3))
    fake.fail_next(SEND, 400, "Bad Request", code=50035, after=1)
    with pytest.raises(UserError):  # the first part went out, the second was refused
        await adapter.deliver(str(GENERAL_ID), None, OutboundMessage(kind="text", delivery_id="cut-1", text=story))
    assert [t[:6] for t in fake.texts(GENERAL_ID)] == ["Part 0"]
    first_id = await adapter.deliver(str(GENERAL_ID), None,
                                     OutboundMessage(kind="text", delivery_id="cut-1", text=story))
    assert [t[:6] for t in fake.texts(GENERAL_ID)] == ["Part 0", "Part 1", "Part 2"]
    assert first_id == fake.sent_messages(GENERAL_ID)[0]["id"]


async def test_an_empty_message_or_a_file_over_ten_megabytes_is_refused_in_words(
    discord_host: Host, fake: FakeDiscord
) -> None:
    await pair(discord_host, fake)
    adapter = discord_host.channels.get("discord")
    assert adapter is not None
    dm = str(dm_id(fake))
    with pytest.raises(UserError, match="nothing to send"):
        await adapter.deliver(dm, None, OutboundMessage(kind="text", delivery_id="e-1", text="  "))
    big = OutgoingFile("video.mp4", b"\0" * (10 * 1024 * 1024 + 1), "video/mp4")
    with pytest.raises(UserError, match="up to 10 MB"):
        await adapter.deliver(dm, None, OutboundMessage(kind="text", delivery_id="e-2", text="look", files=(big,)))


async def test_following_a_thread_joins_it(discord_host: Host, fake: FakeDiscord) -> None:
    adapter = discord_host.channels.get("discord")
    assert adapter is not None
    thread = fake.create_thread(GENERAL_ID, "plans")
    await adapter.subscribe(str(GENERAL_ID), thread["id"])
    assert [c.path for c in fake.sent("PUT /channels/{channel_id}/thread-members/@me")] == [
        f"/channels/{thread['id']}/thread-members/@me"]
