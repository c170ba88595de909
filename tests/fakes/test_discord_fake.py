"""The fake Discord against the real discord.py client: what a channel adapter will rely on works end to end."""

from __future__ import annotations

import asyncio
import io
import warnings
from collections.abc import AsyncIterator
from typing import Any

import pytest
import yarl

with warnings.catch_warnings():  # discord.py imports audioop (voice), deprecated since Python 3.11
    warnings.simplefilter("ignore", DeprecationWarning)
    import discord
    import discord.gateway
    import discord.http

from tests.fakes.discord_api import FakeDiscord
from tests.fakes.discord_gateway import INTENT_MESSAGE_CONTENT
from tests.fakes.discord_model import BOT, GENERAL_ID, OWNER, STRANGER, TOKEN

WAIT = 10.0
SEND = "POST /channels/{channel_id}/messages"


class Bot(discord.Client):
    """A minimal bot: collects what people write, counts ready/resumed, answers no one on its own."""

    def __init__(self, *, message_content: bool = True) -> None:
        intents = discord.Intents.default()
        intents.message_content = message_content
        super().__init__(intents=intents, guild_ready_timeout=0.05)
        self.inbox: asyncio.Queue[discord.Message] = asyncio.Queue()
        self.readies = 0
        self.resumes = 0
        self.is_up = asyncio.Event()

    async def on_ready(self) -> None:
        self.readies += 1
        self.is_up.set()

    async def on_resumed(self) -> None:
        self.resumes += 1

    async def on_message(self, message: discord.Message) -> None:
        if message.author != self.user:
            self.inbox.put_nowait(message)

    async def next_message(self) -> discord.Message:
        return await asyncio.wait_for(self.inbox.get(), WAIT)


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord()
    await server.start()
    monkeypatch.setattr(discord.http.Route, "BASE", server.api_base)
    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(server.gateway_url))
    try:
        yield server
    finally:
        await server.stop()


async def _run(client: Bot, token: str = TOKEN) -> asyncio.Task[None]:
    """Start the client and wait until it is ready (or raise what stopped it)."""
    task = asyncio.create_task(client.start(token))
    ready = asyncio.create_task(client.is_up.wait())
    done, _ = await asyncio.wait({task, ready}, timeout=WAIT, return_when=asyncio.FIRST_COMPLETED)
    if ready in done:
        return task
    ready.cancel()
    await client.close()
    await asyncio.wait_for(task, WAIT)  # raises what stopped it
    raise TimeoutError("the client did not become ready")


async def _close(client: Bot, task: asyncio.Task[None]) -> None:
    await client.close()
    await task


@pytest.fixture
async def bot(fake: FakeDiscord) -> AsyncIterator[Bot]:
    client = Bot()
    task = await _run(client)
    try:
        yield client
    finally:
        await _close(client, task)


async def test_the_bot_logs_in_and_sees_the_guild_its_channel_and_people(fake: FakeDiscord, bot: Bot) -> None:
    assert bot.user is not None
    assert bot.user.id == BOT.id
    guild = bot.get_guild(int(fake.guild_payload()["id"]))
    assert guild is not None
    assert guild.get_channel(GENERAL_ID) is not None
    assert guild.me.id == BOT.id
    assert (await guild.fetch_member(OWNER.id)).display_name == "Ann Koch"
    assert fake.gateway.connections[0]["encoding"] == "json"


async def test_a_wrong_token_fails_login_cleanly(fake: FakeDiscord) -> None:
    client = Bot()
    with pytest.raises(discord.LoginFailure):
        await client.login("not-the-token")
    await client.close()
    assert fake.sent("GET /users/@me")


async def test_a_guild_message_and_a_dm_arrive_with_author_content_and_mentions(fake: FakeDiscord, bot: Bot) -> None:
    pushed = fake.push_message(GENERAL_ID, OWNER, f"{BOT.mention} what is on today?")
    message = await bot.next_message()
    assert message.id == int(pushed["id"])
    assert message.content == f"<@{BOT.id}> what is on today?"
    assert message.author.id == OWNER.id
    assert message.channel.id == GENERAL_ID
    assert message.guild is not None
    assert [u.id for u in message.mentions] == [BOT.id]

    fake.push_dm(STRANGER, "hello?")
    dm = await bot.next_message()
    assert dm.guild is None
    assert isinstance(dm.channel, discord.DMChannel)
    assert (dm.author.id, dm.content) == (STRANGER.id, "hello?")


async def test_without_the_content_intent_only_mentions_carry_text(fake: FakeDiscord) -> None:
    client = Bot(message_content=False)
    task = await _run(client)
    try:
        fake.push_message(GENERAL_ID, OWNER, "plain")
        fake.push_message(GENERAL_ID, OWNER, f"{BOT.mention} hi")
        assert (await client.next_message()).content == ""
        assert (await client.next_message()).content == f"<@{BOT.id}> hi"
    finally:
        await _close(client, task)


async def test_a_privileged_intent_the_app_lacks_is_refused(fake: FakeDiscord) -> None:
    fake.gateway.granted_intents &= ~INTENT_MESSAGE_CONTENT
    client = Bot()
    with pytest.raises(discord.PrivilegedIntentsRequired):
        await _run(client)


async def test_reply_edit_reaction_and_typing_reach_the_channel(fake: FakeDiscord, bot: Bot) -> None:
    fake.push_message(GENERAL_ID, OWNER, "ping")
    message = await bot.next_message()
    await message.reply("pong")
    draft = await message.channel.send("working…")
    await draft.edit(content="done")
    await message.add_reaction("👀")
    await message.channel.typing()

    sent = fake.sent_messages(GENERAL_ID)
    assert [m["content"] for m in sent] == ["pong", "done"]
    assert sent[0]["message_reference"]["message_id"] == str(message.id)
    assert sent[1]["edited_timestamp"] is not None
    assert fake.reactions[message.id] == ["👀"]
    assert fake.typing == [GENERAL_ID]


async def test_a_button_click_reaches_the_view_and_its_answer_edits_the_card(fake: FakeDiscord, bot: Bot) -> None:
    clicked: asyncio.Queue[int] = asyncio.Queue()

    class Card(discord.ui.View):
        @discord.ui.button(label="Yes", custom_id="q:7:yes")
        async def yes(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
            clicked.put_nowait(interaction.user.id)
            await interaction.response.edit_message(content="Answered: Yes", view=None)
            await interaction.followup.send("Noted.")

    channel = bot.get_channel(GENERAL_ID)
    assert isinstance(channel, discord.TextChannel)
    card = await channel.send("Go ahead?", view=Card())
    assert fake.sent_messages(GENERAL_ID)[0]["components"][0]["components"][0]["custom_id"] == "q:7:yes"

    interaction_id = fake.push_component_click(card.id, "q:7:yes", OWNER)
    assert await asyncio.wait_for(clicked.get(), WAIT) == OWNER.id
    answers = await fake.wait_for(lambda: len(fake.interaction_responses.get(interaction_id, [])) >= 2 and
                                  fake.interaction_responses[interaction_id])
    assert answers[0]["type"] == 7
    shown = fake.sent_messages(GENERAL_ID)
    assert [(m["content"], m["components"]) for m in shown] == [("Answered: Yes", []), ("Noted.", [])]


async def test_a_stranger_gets_a_private_refusal_and_the_owner_a_deferred_answer(fake: FakeDiscord,
                                                                                 bot: Bot) -> None:
    class Approve(discord.ui.View):
        @discord.ui.button(label="Allow", custom_id="ap:3:allow")
        async def allow(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
            if interaction.user.id != OWNER.id:
                await interaction.response.send_message("Only the owner can answer this.", ephemeral=True)
                return
            await interaction.response.defer(thinking=True)
            await interaction.edit_original_response(content="Allowed.")

    dm = await (await bot.fetch_user(OWNER.id)).create_dm()
    card = await dm.send("Sam wants to talk to Nano.", view=Approve(timeout=None))
    refused = fake.push_component_click(card.id, "ap:3:allow", STRANGER)
    allowed = fake.push_component_click(card.id, "ap:3:allow", OWNER)
    await fake.wait_for(lambda: len(fake.interaction_responses.get(allowed, [])) >= 2)

    assert fake.interaction_responses[refused][0]["type"] == 4
    assert [r.get("type") for r in fake.interaction_responses[allowed]] == [5, None]
    shown = [(m["content"], m["flags"]) for m in fake.sent_messages(dm.id)]
    assert shown == [("Sam wants to talk to Nano.", 0), ("Only the owner can answer this.", 64), ("Allowed.", 0)]


async def test_an_unanswerable_custom_id_is_refused_like_discord(bot: Bot) -> None:
    channel = bot.get_channel(GENERAL_ID)
    assert isinstance(channel, discord.TextChannel)
    view = discord.ui.View()
    view.add_item(discord.ui.Button(label="x", custom_id="c" * 101))
    with pytest.raises(discord.HTTPException) as refused:
        await channel.send("card", view=view)
    assert refused.value.code == 50035
    with pytest.raises(discord.HTTPException) as too_long:
        await channel.send("x" * 2001)
    assert too_long.value.code == 50035


async def test_files_go_both_ways(fake: FakeDiscord, bot: Bot) -> None:
    fake.push_message(GENERAL_ID, OWNER, "see attached", attachments=[("notes.txt", b"milk, eggs", "text/plain")])
    message = await bot.next_message()
    assert [a.filename for a in message.attachments] == ["notes.txt"]
    assert await message.attachments[0].read() == b"milk, eggs"

    await message.channel.send("here you go", file=discord.File(io.BytesIO(b"%PDF-1.7 report"), "report.pdf"))
    [sent] = fake.sent_messages(GENERAL_ID)
    [attachment] = sent["attachments"]
    assert (sent["content"], attachment["filename"]) == ("here you go", "report.pdf")
    assert fake.files[int(attachment["id"])].data == b"%PDF-1.7 report"


async def test_the_bot_opens_a_dm_with_a_user_id(fake: FakeDiscord, bot: Bot) -> None:
    user = await bot.fetch_user(OWNER.id)
    dm = await user.create_dm()
    await dm.send("Sam asks to talk to Nano. Allow?")
    assert fake.texts(dm.id) == ["Sam asks to talk to Nano. Allow?"]

    fake.dms_closed.add(STRANGER.id)
    closed = await (await bot.fetch_user(STRANGER.id)).create_dm()
    with pytest.raises(discord.Forbidden) as refused:
        await closed.send("hello")
    assert refused.value.code == 50007


async def test_a_thread_message_comes_from_the_thread_not_its_channel(fake: FakeDiscord, bot: Bot) -> None:
    thread = fake.create_thread(GENERAL_ID, "weekend plans")
    fake.push_message(GENERAL_ID, OWNER, "in the thread", thread=int(thread["id"]))
    message = await bot.next_message()
    assert isinstance(message.channel, discord.Thread)
    assert message.channel.id == int(thread["id"]) != GENERAL_ID
    assert message.channel.parent_id == GENERAL_ID
    await message.channel.send("answer in thread")
    assert fake.texts(int(thread["id"])) == ["answer in thread"]
    assert fake.texts(GENERAL_ID) == []

    fake.push_message(GENERAL_ID, OWNER, "start one here")
    starter = await bot.next_message()
    created = await starter.create_thread(name="from a message")
    assert created.id == starter.id
    assert fake.channels[created.id]["parent_id"] == str(GENERAL_ID)


async def test_a_rate_limit_is_waited_out_and_an_error_is_raised(fake: FakeDiscord, bot: Bot) -> None:
    channel = bot.get_channel(GENERAL_ID)
    assert isinstance(channel, discord.TextChannel)
    fake.fail_next(SEND, 429, retry_after=0.01)
    await channel.send("after a wait")
    assert len(fake.sent(SEND)) == 2
    assert fake.texts(GENERAL_ID) == ["after a wait"]
    fake.fail_next(SEND, 403, "Missing Permissions", code=50013)
    with pytest.raises(discord.Forbidden):
        await channel.send("not allowed")


async def test_a_restart_mid_conversation_loses_and_doubles_nothing(fake: FakeDiscord, bot: Bot) -> None:
    fake.push_message(GENERAL_ID, OWNER, "before")
    assert (await bot.next_message()).content == "before"

    await fake.stop()
    fake.push_message(GENERAL_ID, OWNER, "while down")
    await fake.start()
    assert (await bot.next_message()).content == "while down"
    fake.push_message(GENERAL_ID, OWNER, "after")
    assert (await bot.next_message()).content == "after"

    assert bot.inbox.empty()
    assert (len(fake.gateway.identifies), len(fake.gateway.resumes), bot.resumes) == (1, 1, 1)
    channel = bot.get_channel(GENERAL_ID)
    assert isinstance(channel, discord.TextChannel)
    await channel.send("still here")
    assert fake.texts(GENERAL_ID) == ["still here"]
