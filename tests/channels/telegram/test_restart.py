"""Telegram going away mid-conversation: replies wait and go out once it is back, messages sent meanwhile arrive —
nothing lost, nothing doubled — also when NanoClaw itself restarts in between.
"""

from __future__ import annotations

from agent_runner.protocol import TextOut
from nanoclaw_app.host import Host
from nanoclaw_app.settings import Settings
from tests.channels.telegram.conftest import dm_session, inbound_texts, next_event, pair, say, wait_status
from tests.fakes.container import write_out
from tests.fakes.telegram_api import ANN, FakeBotApi


async def test_telegram_restarting_mid_conversation_loses_and_doubles_nothing(
    telegram: Host, api: FakeBotApi, agent_id: str
) -> None:
    await pair(telegram, api)
    await say(api, "hello")
    _, folder = await dm_session(telegram, agent_id)

    await api.stop()
    down = await wait_status(telegram, "reconnecting")
    assert down.retry_at is not None
    async with telegram.events.subscribe() as events:
        write_out(folder, TextOut(text="written while Telegram was away").to_json(), channel_type="telegram",
                  platform_id=str(ANN.id))
        await next_event(events, ("delivery.waiting",))  # parked, not failed and not retried blindly
    api.push_message("are you there?")  # Telegram keeps it until the bot polls again

    await api.start()
    await wait_status(telegram, "connected")
    await api.wait_for(lambda: "written while Telegram was away" in api.texts(ANN.id))
    await api.wait_for(lambda: "echo: are you there?" in api.texts(ANN.id))
    await say(api, "still here")

    texts = api.texts(ANN.id)
    for text in ("echo: hello", "written while Telegram was away", "echo: are you there?", "echo: still here"):
        assert texts.count(text) == 1, (text, texts)
    assert await inbound_texts(telegram, folder) == ["hello", "are you there?", "still here"]


async def test_a_reply_waiting_for_telegram_survives_a_restart_of_the_app(
    tg_settings: Settings, telegram: Host, api: FakeBotApi, agent_id: str
) -> None:
    await pair(telegram, api)
    await say(api, "remind me later")
    _, folder = await dm_session(telegram, agent_id)
    await api.stop()
    await wait_status(telegram, "reconnecting")
    async with telegram.events.subscribe() as events:
        write_out(folder, TextOut(text="here is your reminder").to_json(), channel_type="telegram",
                  platform_id=str(ANN.id))
        await next_event(events, ("delivery.waiting",))
    api.push_message("and one more thing")
    await telegram.stop()

    await api.start()
    async with Host(tg_settings, runtime=telegram.runtime, secrets=telegram.secrets, serve_web=False) as again:
        await wait_status(again, "connected")
        await api.wait_for(lambda: "here is your reminder" in api.texts(ANN.id))
        await api.wait_for(lambda: "echo: and one more thing" in api.texts(ANN.id))
        await say(api, "thanks")
        texts = api.texts(ANN.id)
        for text in ("echo: remind me later", "here is your reminder", "echo: and one more thing", "echo: thanks"):
            assert texts.count(text) == 1, (text, texts)
        assert await inbound_texts(again, folder) == ["remind me later", "and one more thing", "thanks"]
