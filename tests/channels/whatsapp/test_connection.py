"""The link's state machine at work: reconnects with backoff on transient trouble, re-pairs only when logged out,
explains bans, steps back when replaced, and tells the owner elsewhere when the link is really lost."""

from __future__ import annotations

from pathlib import Path

from nanoclaw_app.db import agents, app_state
from nanoclaw_app.services import chat
from nanoclaw_app.settings import Settings
from tests.channels.whatsapp.conftest import WhatsApp, next_event, running
from tests.fakes.neonize_client import FakeNeonizeClient
from tests.waiting import until


async def test_a_dropped_connection_reconnects_with_growing_backoff_and_keeps_the_link(linked: WhatsApp) -> None:
    fake, connection = linked.fake, linked.adapter.connection
    await fake.emit_disconnected()
    status = await linked.wait_state("reconnecting")
    assert "dropped" in status.detail
    assert status.retry_at is not None
    assert status.alert is None
    assert status.account == "+49 170 1234567"
    await fake.wait_connect_call(2)  # a fresh client after the first backoff step
    assert fake.stop_calls == 1  # the old one was stopped first
    await fake.emit_connected()  # no QR: the link was never lost
    await linked.wait_state("connected")

    await fake.emit_stream_error("503")
    assert "stream error 503" in (await linked.wait_state("reconnecting")).detail
    await fake.wait_connect_call(3)
    await fake.emit_connected()
    await linked.wait_state("connected")
    assert connection.delays == [0.05, 0.1]  # attempt 2 waited longer: it never stayed up long enough to reset
    assert fake.is_logged_in
    assert linked.adapter.qr is None


async def test_the_backoff_starts_over_after_a_stable_connection(
    wa_settings: Settings, fake: FakeNeonizeClient
) -> None:
    async with running(wa_settings, fake, stable_after=0.0) as wa:
        await wa.link()
        for calls in (2, 3):
            await fake.emit_disconnected()
            await fake.wait_connect_call(calls)
            await fake.emit_connected()
            await wa.wait_state("connected")
        assert wa.adapter.connection.delays == [0.05, 0.05]


async def test_whatsapps_own_quick_reconnect_is_not_fought(wa_settings: Settings, fake: FakeNeonizeClient) -> None:
    async with running(wa_settings, fake, backoff=(60.0,)) as wa:
        await wa.link()
        await fake.emit_keepalive_timeout()
        assert "stopped answering" in (await wa.wait_state("reconnecting")).detail
        await fake.emit_keepalive_restored()
        await wa.wait_state("connected")
        await fake.emit_disconnected()
        await wa.wait_state("reconnecting")
        await fake.emit_connected()  # whatsmeow reconnected by itself before our timer
        await wa.wait_state("connected")
        assert fake.connect_calls == 1
        assert fake.stop_calls == 0
        assert all(t.done() for t in wa.adapter.connection._tasks)  # the planned reconnect was called off


async def test_a_failed_dial_is_retried_by_the_adapter(wa_settings: Settings, fake: FakeNeonizeClient) -> None:
    fake.fail_dial = True  # offline: neonize's connect task raises and never retries
    async with running(wa_settings, fake) as wa:
        status = await wa.wait_state("not_paired", lambda s: "cannot reach WhatsApp" in s.detail)
        assert "no such host" in status.extra["technical"]
        await fake.wait_connect_call(2)
        await fake.emit_qr("2@online-again,AAA==,BBB==,CCC==")
        await wa.wait_state("pairing")


async def test_logged_out_is_the_only_case_that_pairs_afresh(linked: WhatsApp, device_db: Path) -> None:
    fake = linked.fake
    wal = device_db.with_name("device.db-wal")
    wal.write_bytes(b"keys")
    await fake.emit_disconnected()
    await fake.wait_connect_call(2)
    await fake.emit_connected()
    await linked.wait_state("connected")
    assert wal.exists()
    assert fake.is_logged_in

    await fake.emit_logged_out(reason="MAIN_DEVICE_GONE")
    status = await linked.wait_state("logged_out")
    assert "account on the phone is gone" in status.detail
    assert status.alert is not None
    assert "scan the new QR code" in status.alert
    assert not wal.exists()
    assert await app_state.get(linked.host.db, "whatsapp.number") is None
    await fake.wait_connect_call(3)  # straight to a fresh pairing
    await fake.emit_qr("2@relink,AAA==,BBB==,CCC==")
    await linked.wait_state("pairing")
    assert linked.adapter.qr is not None


async def test_a_temporary_ban_is_explained_and_waited_out(linked: WhatsApp) -> None:
    await linked.fake.emit_temporary_ban(code="BLOCKED_BY_USERS", expire_seconds=2 * 3600)
    status = await linked.wait_state("banned")
    assert "temporarily banned" in status.detail
    assert "blocked or reported" in status.detail
    assert "about 2 hours" in status.detail
    assert status.retry_at is not None
    assert status.alert is not None
    assert "blocked or reported" in status.alert
    assert linked.adapter.connection.delays[-1] == 7200.0  # reconnects when the ban ends, not before
    assert linked.fake.stop_calls == 1
    assert linked.fake.connect_calls == 1
    assert not linked.adapter.is_connected()


async def test_a_replaced_stream_steps_back_until_the_user_reconnects(linked: WhatsApp) -> None:
    await linked.fake.emit_stream_replaced()
    status = await linked.wait_state("replaced")
    assert "Another program" in status.detail
    assert status.alert is not None
    assert linked.adapter.connection.delays == []  # no fight over the link
    await linked.adapter.reconnect()
    await linked.fake.wait_connect_call(2)
    await linked.fake.emit_connected()
    await linked.wait_state("connected")


async def test_an_outdated_client_says_to_update(linked: WhatsApp) -> None:
    await linked.fake.emit_connect_failure("CLIENT_OUTDATED")
    status = await linked.wait_state("failed")
    assert "Update NanoClaw" in status.detail
    assert linked.adapter.connection.delays == []


async def test_the_owner_hears_about_a_long_outage_and_a_logout_in_the_app(
    wa_settings: Settings, fake: FakeNeonizeClient
) -> None:
    async with running(wa_settings, fake, backoff=(600.0,), outage_alert_after=0.05) as wa:
        agent = await agents.create(wa.host.db, "Nano")
        await chat.ensure_owner_chat(wa.host.services, agent.id)  # the owner's in-app chat
        await wa.link()
        async with wa.host.events.subscribe() as queue:
            await fake.emit_disconnected()
            notice = await next_event(queue, "owner.notified")
            assert notice.data["channel_type"] == "webchat"
            assert "disconnected from NanoClaw" in notice.data["text"]
            status = wa.status()
            assert status is not None
            assert status.state == "reconnecting"

            await fake.emit_logged_out()
            unlinked = await next_event(queue, "owner.notified")
            assert "unlinked" in unlinked.data["text"]


async def test_teardown_stops_the_client_and_every_timer(linked: WhatsApp) -> None:
    adapter = linked.adapter
    await linked.fake.emit_disconnected()  # a reconnect is now planned
    await linked.wait_state("reconnecting")
    await linked.host.stop_channel("whatsapp")
    assert (await linked.wait_state("stopped")).detail == "turned off"
    assert linked.fake.connect_task is not None
    assert linked.fake.connect_task.done()
    assert all(t.done() for t in adapter.connection._tasks)
    assert not adapter.is_connected()
    await until(lambda: adapter.status().state == "stopped")
    await adapter.teardown()  # twice is fine
