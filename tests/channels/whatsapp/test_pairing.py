"""Linking WhatsApp from the app: the QR code reaches the page on every rotation, pairing ends in "connected", the
phone-number code is the fallback, and unlinking starts over with a fresh code."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from nanoclaw_app.channels.whatsapp import native
from nanoclaw_app.channels.whatsapp.qr import QrCode
from nanoclaw_app.db import app_state
from nanoclaw_app.errors import TransientError, UserError
from nanoclaw_app.settings import Settings
from tests.channels.whatsapp.conftest import WhatsApp, next_event, running
from tests.fakes.neonize_client import OWN_LID, OWN_NUMBER, FakeNeonizeClient
from tests.waiting import until


def shown(wa: WhatsApp) -> QrCode | None:
    """The QR code the adapter offers the app right now."""
    return wa.adapter.qr


async def test_each_rotated_qr_code_reaches_the_app_and_pairing_ends_in_connected(wa: WhatsApp) -> None:
    status = await wa.wait_state("not_paired")
    assert "QR code" in status.detail
    assert shown(wa) is None
    async with wa.host.events.subscribe() as queue:
        await wa.fake.emit_qr("2@first,AAA==,BBB==,CCC==")
        first = await next_event(queue, "channel.qr")
        await wa.fake.emit_qr("2@second,DDD==,EEE==,FFF==")
        second = await next_event(queue, "channel.qr")
        pairing = await wa.wait_state("pairing")
        assert "Linked devices" in pairing.detail
        assert first.data["channel_type"] == second.data["channel_type"] == "whatsapp"
        assert first.data["svg"].startswith("<svg")
        assert second.data["svg"].startswith("<svg")
        assert first.data["svg"] != second.data["svg"]
        qr = shown(wa)
        assert qr is not None
        assert qr.data == "2@second,DDD==,EEE==,FFF=="
        assert qr.svg == second.data["svg"]
        assert qr.issued_at == second.data["issued_at"]

        assert await wa.fake.emit_pair_success()
        gone = await next_event(queue, "channel.qr")
        assert gone.data == {"channel_type": "whatsapp", "svg": None}
        assert shown(wa) is None
        await wa.wait_state("connecting")
        assert await wa.fake.emit_connected()
        connected = await wa.wait_state("connected")
    assert connected.account == "+49 170 1234567"
    assert connected.extra == {}  # dedicated mode: no owner chat to bind
    assert wa.adapter.is_connected()
    assert await app_state.get(wa.host.db, "whatsapp.number") == OWN_NUMBER
    assert wa.host.state.components["channel:whatsapp"] == "connected"


async def test_the_device_database_lives_in_the_home_and_a_restart_comes_up_linked(
    wa_settings: Settings, device_db: Path
) -> None:
    first = FakeNeonizeClient(str(device_db))
    async with running(wa_settings, first) as wa:
        await wa.link()
    assert device_db.is_file()  # the factory asserted the path it was given
    again = FakeNeonizeClient(str(device_db))
    async with running(wa_settings, again) as wa:
        status = await wa.wait_state("connecting")
        assert status.account == "+49 170 1234567"  # known before WhatsApp answers
        assert again.connect_calls == 1
        await again.emit_connected()  # no QR: the stored link is used
        await wa.wait_state("connected")
        assert shown(wa) is None


async def test_self_mode_tells_the_host_which_chat_is_the_owners(
    wa_settings: Settings, fake: FakeNeonizeClient
) -> None:
    async with running(wa_settings, fake, start_channel=False) as wa:
        await app_state.put(wa.host.db, "whatsapp.mode", "self")
        await wa.host.start_channel("whatsapp")
        await fake.wait_connect_call()
        status = await wa.link()
    own = f"{OWN_NUMBER}@s.whatsapp.net"
    assert status.extra == {"owner_chat": own, "owner_handle": own}


async def test_a_phone_number_code_is_the_fallback_once_whatsapp_is_reachable(wa: WhatsApp) -> None:
    with pytest.raises(TransientError):
        await wa.adapter.pair_with_phone("+49 170 1234567")  # the websocket is not up before the first QR
    for bad in ("0170 1234567", "12", "+49 abc", ""):
        with pytest.raises(UserError) as refused:
            await wa.adapter.pair_with_phone(bad)
        assert "country code" in str(refused.value)
    await wa.fake.emit_qr("2@code,AAA==,BBB==,CCC==")
    assert await wa.adapter.pair_with_phone("+49 (170) 123-4567") == "K7QX-2M9P"
    wa.fake.pair_code = "abcd1234"
    assert await wa.adapter.pair_with_phone("0049 170 1234567") == "ABCD-1234"
    assert wa.fake.pair_requests == ["491701234567", "491701234567"]

    wa.fake.pair_phone_error = "server returned error 429: rate-overlimit"
    with pytest.raises(UserError) as cooldown:
        await wa.adapter.pair_with_phone("+49 170 1234567")
    assert "not letting new devices link" in str(cooldown.value)

    await wa.fake.emit_pair_success()
    with pytest.raises(UserError) as linked:
        await wa.adapter.pair_with_phone("+49 170 1234567")
    assert "already linked" in str(linked.value)


async def test_a_refused_link_is_explained_and_a_new_qr_code_follows(wa: WhatsApp) -> None:
    await wa.fake.emit_qr("2@code,AAA==,BBB==,CCC==")
    await wa.wait_state("pairing")
    await wa.fake.emit_pair_error("can't link new devices at this time")
    status = await wa.wait_state("not_paired")
    assert "cooldown" in status.detail
    assert "code sent to your phone number" in status.detail
    assert status.alert is None  # nothing was lost: the user is looking at the screen
    assert shown(wa) is None
    await wa.fake.wait_connect_call(2)  # a fresh client asks for new codes after the backoff
    await wa.fake.emit_qr("2@fresh,AAA==,BBB==,CCC==")
    qr = shown(wa)
    assert qr is not None
    assert qr.data.startswith("2@fresh")


async def test_an_expired_qr_code_is_replaced_by_a_new_pairing(wa_settings: Settings, fake: FakeNeonizeClient) -> None:
    async with running(wa_settings, fake, qr_timeout=0.05) as wa:
        await fake.emit_qr("2@old,AAA==,BBB==,CCC==")
        expired = await wa.wait_state("not_paired", lambda s: "expired" in s.detail)
        assert "new one comes" in expired.detail
        await fake.wait_connect_call(2)
        assert fake.stop_calls >= 1


async def test_logout_unlinks_deletes_the_device_and_shows_a_fresh_qr_code(linked: WhatsApp, device_db: Path) -> None:
    wal = device_db.with_name("device.db-wal")
    wal.write_bytes(b"session keys")
    async with linked.host.events.subscribe() as queue:
        await linked.adapter.logout()
        status = await linked.wait_state("not_paired")
        assert "Unlinked" in status.detail
        assert linked.fake.logout_calls == 1
        assert not wal.exists()
        assert not linked.fake.is_logged_in
        assert await app_state.get(linked.host.db, "whatsapp.number") is None
        await linked.fake.wait_connect_call(2)
        await linked.fake.emit_qr("2@again,AAA==,BBB==,CCC==")
        event = await next_event(queue, "channel.qr", lambda d: d["svg"] is not None)
    assert event.data["svg"].startswith("<svg")
    assert (await linked.wait_state("pairing")).account is None


async def test_events_arrive_even_when_neonize_still_points_at_a_dead_loop(
    wa_settings: Settings, fake: FakeNeonizeClient
) -> None:
    dead = asyncio.new_event_loop()
    dead.close()
    native.events_module.event_global_loop = dead  # what a previous asyncio.run() leaves behind (gotcha 3)
    async with running(wa_settings, fake) as wa:
        assert native.events_module.event_global_loop is asyncio.get_running_loop()
        await wa.link()


async def test_handlers_are_all_registered_before_connect(wa: WhatsApp) -> None:
    # The fake delivers only what was subscribed when connect() ran, like neonize's Go side.
    subscribed = wa.fake._subscribed
    codes = native.events_module.EVENT_TO_INT
    for event in (native.MessageEv, native.ConnectedEv, native.DisconnectedEv, native.LoggedOutEv,
                  native.PairStatusEv, native.TemporaryBanEv, native.StreamReplacedEv, native.ConnectFailureEv,
                  native.StreamErrorEv, native.ClientOutdatedEv, native.KeepAliveTimeoutEv):
        assert codes[event] in subscribed, event.__name__
    await wa.fake.emit_qr("2@x,AAA==,BBB==,CCC==")
    await until(lambda: shown(wa) is not None)


async def test_the_own_alias_is_learned_on_connect(linked: WhatsApp) -> None:
    me = linked.adapter.connection.me
    assert me is not None
    assert (me.number, me.lid) == (OWN_NUMBER, OWN_LID)
