"""WhatsApp's servers out of reach (offline, DNS, a proxy): the status says so in words, keeps neonize's Go text apart
for "Technical details", and "Try now" dials again at once instead of after the backoff."""

from __future__ import annotations

import pytest

from nanoclaw_app.channels.whatsapp.decisions import unreachable_words
from nanoclaw_app.settings import Settings
from tests.channels.whatsapp.conftest import running
from tests.fakes.neonize_client import DIAL_ERROR, FakeNeonizeClient

LONG_WAIT = (600.0,)
"""A backoff no test waits out: a second dial can only come from "Try now"."""


@pytest.mark.parametrize(("error", "words"), [
    (DIAL_ERROR, "cannot look up WhatsApp's address"),
    ("failed to dial whatsapp web websocket: dial tcp 157.240.0.53:443: i/o timeout", "did not answer in time"),
    ("dial tcp 157.240.0.53:443: connect: connection refused", "connection was refused"),
    ("dial tcp 157.240.0.53:443: connect: network is unreachable", "not connected to a network"),
    ("tls: failed to verify certificate: x509: certificate signed by unknown authority", "intercepting"),
    ("websocket: bad handshake", "turned away"),
    ("read tcp 10.0.0.2:51234->157.240.0.53:443: read: connection reset by peer", "cut off"),
    ("something nobody has seen before", "could not be opened"),
])
def test_each_kind_of_unreachable_is_said_in_words(error: str, words: str) -> None:
    assert words in unreachable_words(error)


async def test_an_unreachable_whatsapp_says_why_in_words_and_keeps_the_go_text_apart(
    wa_settings: Settings, fake: FakeNeonizeClient
) -> None:
    fake.fail_dial = True
    async with running(wa_settings, fake, backoff=LONG_WAIT) as wa:
        status = await wa.wait_state("not_paired", lambda s: s.extra.get("problem") == "unreachable")
        assert "cannot reach WhatsApp" in status.detail
        assert "cannot look up WhatsApp's address" in status.detail
        assert "no such host" not in status.detail
        assert "dial tcp" not in status.detail
        assert status.extra["reason"].startswith("This computer cannot look up WhatsApp's address")
        assert status.extra["technical"] == DIAL_ERROR
        assert status.retry_at is not None
        assert "10 minutes" in status.detail


async def test_try_now_dials_again_at_once_instead_of_after_the_backoff(
    wa_settings: Settings, fake: FakeNeonizeClient
) -> None:
    fake.fail_dial = True
    async with running(wa_settings, fake, backoff=LONG_WAIT) as wa:
        await wa.wait_state("not_paired", lambda s: s.extra.get("problem") == "unreachable")
        assert wa.adapter.connection.delays == [600.0]
        assert fake.connect_calls == 1

        await wa.adapter.reconnect()  # the page's "Try now"
        assert fake.connect_calls == 2  # not ten minutes later
        status = await wa.wait_state("not_paired", lambda s: not s.extra)
        assert "Waiting for a QR code" in status.detail
        await fake.emit_qr("2@back-online,AAA==,BBB==,CCC==")
        await wa.wait_state("pairing")


async def test_an_unreachable_whatsapp_that_was_linked_keeps_its_link_and_says_why(
    wa_settings: Settings, fake: FakeNeonizeClient
) -> None:
    async with running(wa_settings, fake, backoff=LONG_WAIT) as wa:
        await wa.link()
        fake.fail_dial = True
        await wa.adapter.reconnect()
        status = await wa.wait_state("reconnecting", lambda s: s.extra.get("problem") == "unreachable")
        assert "cannot reach WhatsApp" in status.detail
        assert status.extra["technical"] == DIAL_ERROR
        assert status.account == "+49 170 1234567"
        assert fake.is_logged_in
