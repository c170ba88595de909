"""Discord going away mid-conversation: replies wait and go out once it is back, messages sent meanwhile arrive —
nothing lost, nothing doubled (discord.py resumes the gateway session; the host parks what could not be sent).
"""

from __future__ import annotations

from agent_runner.protocol import TextOut
from nanoclaw_app.host import Host
from tests.channels.discord.conftest import dm_id, dm_session, inbound_texts, next_event, pair, say_dm, wait_status
from tests.fakes.container import write_out
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.discord_model import OWNER


async def test_discord_restarting_mid_conversation_loses_and_doubles_nothing(
    discord_host: Host, fake: FakeDiscord, agent_id: str
) -> None:
    await pair(discord_host, fake)
    await say_dm(fake, "hello")
    _, folder = await dm_session(discord_host, fake, agent_id)

    await fake.stop()
    down = await wait_status(discord_host, "reconnecting")
    assert "cannot be reached" in down.detail
    async with discord_host.events.subscribe() as events:
        write_out(folder, TextOut(text="written while Discord was away").to_json(), channel_type="discord",
                  platform_id=str(dm_id(fake)))
        await next_event(events, ("delivery.waiting",))  # parked, not failed and not retried blindly
    fake.push_dm(OWNER, "are you there?")  # Discord keeps it for the session until the bot resumes

    await fake.start()
    await wait_status(discord_host, "connected")
    await fake.wait_for(lambda: "written while Discord was away" in fake.texts(dm_id(fake)))
    await fake.wait_for(lambda: "echo: are you there?" in fake.texts(dm_id(fake)))
    await say_dm(fake, "still here")

    texts = fake.texts(dm_id(fake))
    for text in ("echo: hello", "written while Discord was away", "echo: are you there?", "echo: still here"):
        assert texts.count(text) == 1, (text, texts)
    assert await inbound_texts(discord_host, folder) == ["hello", "are you there?", "still here"]
    assert len(fake.gateway.identifies) == 1  # resumed, not a new session
    assert fake.gateway.resumes


async def test_turned_off_and_on_again_the_bot_answers_as_before(
    discord_host: Host, fake: FakeDiscord
) -> None:
    await pair(discord_host, fake)
    await say_dm(fake, "first")
    adapter = discord_host.channels.get("discord")
    assert adapter is not None
    await discord_host.stop_channel("discord")
    assert discord_host.callbacks.statuses["discord"].state == "stopped"
    await adapter.teardown()  # a second teardown is harmless

    await discord_host.start_channel("discord")
    await wait_status(discord_host, "connected")
    await say_dm(fake, "last")
    assert fake.texts(dm_id(fake)).count("echo: first") == 1
