"""Setting Telegram up and keeping it connected: the token check, starting without blocking, a revoked token."""

from __future__ import annotations

import pytest

from nanoclaw_app.channels.manifest import ChannelDeps
from nanoclaw_app.channels.telegram import factory
from nanoclaw_app.channels.telegram.link import Link
from nanoclaw_app.channels.telegram.setup import TOKEN_SECRET, BotInfo, check_token
from nanoclaw_app.core.adapter_contract import ChannelStatus
from nanoclaw_app.core.messages import InboundMessage, OutboundMessage
from nanoclaw_app.errors import ChannelDown, TransientError, UserError
from nanoclaw_app.host import Host
from nanoclaw_app.secrets.store import SecretStore
from nanoclaw_app.settings import Settings
from tests.channels.telegram.conftest import next_event, pair, say, wait_status
from tests.fakes.keyring import MemoryKeyring
from tests.fakes.telegram_api import ANN, BOT_ID, BOT_USERNAME, TOKEN, FakeBotApi
from tests.waiting import until


async def test_a_good_token_tells_who_the_bot_is(api: FakeBotApi) -> None:
    info = await check_token(TOKEN, api.base_url)
    assert info == BotInfo(id=BOT_ID, username=BOT_USERNAME, name="Nano", can_join_groups=True,
                           can_read_all_group_messages=False)
    assert [m for m, _ in api.calls] == ["getMe"]


async def test_a_refused_token_says_so_without_repeating_it(api: FakeBotApi) -> None:
    api.revoke_token()
    with pytest.raises(UserError, match="Telegram refused this token") as caught:
        await check_token(TOKEN, api.base_url)
    assert TOKEN not in str(caught.value)
    assert TOKEN.split(":")[1] not in str(caught.value)


async def test_a_malformed_token_is_refused_before_asking_telegram(api: FakeBotApi) -> None:
    for bad in ("", "hello", "123:short", f" {TOKEN}", "abc:" + "x" * 30):
        with pytest.raises(UserError, match="does not look like a Telegram bot token"):
            await check_token(bad, api.base_url)
    assert api.calls == []


async def test_an_unreachable_telegram_is_a_transient_error(api: FakeBotApi) -> None:
    url = api.base_url
    await api.stop()
    with pytest.raises(TransientError, match="could not be reached"):
        await check_token(TOKEN, url)


async def test_without_a_token_there_is_no_adapter(tg_settings: Settings, host: Host) -> None:
    deps = ChannelDeps(settings=tg_settings, db=host.db, events=host.events, secrets=SecretStore(MemoryKeyring()),
                       store=host.store)
    assert await factory.build(deps) is None
    await deps.secrets.set(TOKEN_SECRET, TOKEN)
    adapter = await factory.build(deps)
    assert adapter is not None
    assert adapter.channel_type == "telegram"
    assert adapter.status().state == "stopped"


async def test_the_channel_starts_with_the_host_and_shows_the_bot_account(
    tg_settings: Settings, api: FakeBotApi, host: Host
) -> None:
    # The ``host`` fixture enabled Telegram after start; a second host starts it on its own.
    await host.stop()
    again = Host(tg_settings, runtime=host.runtime, secrets=host.secrets, serve_web=False)
    async with again:
        status = await wait_status(again, "connected")
        assert status.account == f"@{BOT_USERNAME}"
        adapter = again.channels.get("telegram")
        assert adapter is not None
        assert adapter.is_connected()
        assert adapter.status().account == f"@{BOT_USERNAME}"
        await api.wait_call("getUpdates")  # polling begins right after "connected" is reported
        methods = [m for m, _ in api.calls]
        assert methods[:3] == ["getMe", "deleteWebhook", "getUpdates"]
        delete = api.sent("deleteWebhook")[0]
        assert str(delete.get("drop_pending_updates", "false")).lower() == "false"


async def test_setup_does_not_wait_for_an_unreachable_telegram_and_connects_when_it_is_back(
    api: FakeBotApi, host: Host, agent_id: str
) -> None:
    await api.stop()
    adapter = await host.start_channel("telegram")  # returns although nothing answers
    status = await wait_status(host, "reconnecting")
    assert status.retry_at is not None
    assert "cannot be reached" in status.detail
    assert not adapter.is_connected()
    with pytest.raises(ChannelDown):
        await adapter.deliver(str(ANN.id), None, OutboundMessage(kind="text", delivery_id="d1", text="hi"))

    await api.start()
    status = await wait_status(host, "connected")
    assert status.account == f"@{BOT_USERNAME}"
    await pair(host, api)
    await say(api, "hello after the outage")


async def test_a_revoked_token_fails_the_channel_in_plain_words_and_alerts_the_owner(
    telegram: Host, api: FakeBotApi
) -> None:
    api.revoke_token()
    status = await wait_status(telegram, "failed")
    assert "revoked" in status.detail
    assert status.alert is not None
    assert "new token" in status.alert
    adapter = telegram.channels.get("telegram")
    assert adapter is not None
    assert not adapter.is_connected()
    with pytest.raises(ChannelDown):  # the message waits until a new token brings the channel back
        await adapter.deliver(str(ANN.id), None, OutboundMessage(kind="text", delivery_id="d1", text="hi"))


async def test_turned_off_and_on_again_nothing_sent_meanwhile_is_lost_or_doubled(
    telegram: Host, api: FakeBotApi
) -> None:
    await pair(telegram, api)
    await say(api, "first")
    adapter = telegram.channels.get("telegram")
    assert adapter is not None
    await telegram.stop_channel("telegram")
    assert telegram.callbacks.statuses["telegram"].state == "stopped"
    await adapter.teardown()  # a second teardown is harmless
    api.push_message("sent while NanoClaw was not listening")

    await telegram.start_channel("telegram")
    await api.wait_for(lambda: "echo: sent while NanoClaw was not listening" in api.texts(ANN.id))
    await say(api, "last")
    assert api.texts(ANN.id).count("echo: first") == 1
    assert api.texts(ANN.id).count("echo: sent while NanoClaw was not listening") == 1


async def test_another_program_polling_with_the_token_is_shown_until_polling_works_again(
    telegram: Host, api: FakeBotApi
) -> None:
    await pair(telegram, api)
    async with telegram.events.subscribe() as events:
        api.fail_next("getUpdates", 409, "Conflict: terminated by other getUpdates request; make sure that only one "
                                         "bot instance is running")
        await say(api, "one")  # the poll after this message is refused
        replaced = await next_event(events, ("channel.status",), lambda d: d["state"] == "replaced")
        assert "Another program" in replaced.data["detail"]
        await say(api, "two")  # a later poll succeeds
        await next_event(events, ("channel.status",), lambda d: d["state"] == "connected")


async def test_a_message_whose_routing_fails_is_logged_with_its_id_and_the_next_one_still_arrives(
    telegram: Host, api: FakeBotApi, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    await pair(telegram, api)
    route = telegram.router.route

    async def flaky(message: InboundMessage) -> object:
        if message.text == "boom":
            raise RuntimeError("database on fire")
        return await route(message)

    monkeypatch.setattr(telegram.router, "route", flaky)
    broken = api.push_message("boom")
    await say(api, "after the failure")
    dropped = [r for r in caplog.records if r.name.startswith("nanoclaw_app.channels.telegram")
               and r.levelname == "ERROR"]
    assert any(str(broken["message_id"]) in r.getMessage() for r in dropped)


async def test_the_owner_hears_about_an_outage_once_it_lasts_two_minutes() -> None:
    reported: list[ChannelStatus] = []

    class Recorder:
        async def on_status(self, channel_type: str, status: ChannelStatus) -> None:
            reported.append(status)

    now = [1000.0]
    link = Link(clock=lambda: now[0])
    link.start(Recorder())  # type: ignore[arg-type]
    link.connected("@nano_test_bot")
    link.reconnecting("network error", 1)
    now[0] += 119
    link.reconnecting("network error", 30)
    now[0] += 2
    link.reconnecting("network error", 30)
    now[0] += 60
    link.reconnecting("network error", 30)
    link.connected()
    link.reconnecting("network error", 1)
    await until(lambda: len(reported) == 8)
    await link.stop()
    assert [s.state for s in reported] == ["connecting", "connected", "reconnecting", "reconnecting", "reconnecting",
                                           "reconnecting", "connected", "reconnecting"]
    assert [s.alert is not None for s in reported] == [False, False, False, False, True, False, False, False]
    assert "unreachable for 2 minutes" in str(reported[4].alert)
    assert all(s.account == "@nano_test_bot" for s in reported[1:])
