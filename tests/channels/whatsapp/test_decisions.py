"""The link's decision table, row by row: what each WhatsApp event means and what happens next."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from nanoclaw_app.channels.whatsapp.decisions import (
    BACKOFF,
    LinkEvent,
    backoff_delay,
    decide,
    outage_alert,
    pair_error_words,
)

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


def run(event: LinkEvent, *, attempt: int = 0, paired: bool = True):  # type: ignore[no-untyped-def]
    return decide(event, attempt=attempt, paired=paired, now=NOW, tz=BERLIN)


@pytest.mark.parametrize(("event", "words"), [
    (LinkEvent("disconnected"), "dropped"),
    (LinkEvent("stream_error", code="503"), "stream error 503"),
    (LinkEvent("stream_error", code="408"), "stream error 408"),
    (LinkEvent("stream_error", code="428"), "stream error 428"),
    (LinkEvent("keepalive_timeout"), "stopped answering"),
    (LinkEvent("connect_failure", reason="SERVICE_UNAVAILABLE"), "unavailable"),
    (LinkEvent("connect_failure", reason="INTERNAL_SERVER_ERROR"), "internal error"),
    (LinkEvent("connect_failure", reason="GENERIC", error="bad request"), "refused the connection (bad request)"),
    (LinkEvent("connect_failure", reason="EXPERIMENTAL"), "experiment"),
    (LinkEvent("dial_failed", error="lookup web.whatsapp.com: no such host"), "cannot reach WhatsApp: this computer"),
    (LinkEvent("ended"), "ended"),
])
def test_transient_trouble_reconnects_with_backoff_and_never_repairs(event: LinkEvent, words: str) -> None:
    decision = run(event, attempt=2)
    assert decision.state == "reconnecting"
    assert words in decision.detail
    assert "Trying again in 10 seconds" in decision.detail
    assert decision.reconnect_after == 10.0
    assert decision.retry_at is not None
    assert (decision.retry_at - NOW).total_seconds() == 10.0
    assert not decision.repair
    assert decision.alert is None
    assert decision.transient


def test_stream_error_515_is_the_normal_restart_after_linking() -> None:
    decision = run(LinkEvent("stream_error", code="515"))
    assert decision.state == "connecting"
    assert "normal step" in decision.detail
    assert decision.reconnect_after == 2.0
    assert not decision.repair
    assert decision.alert is None


def test_trouble_before_any_link_keeps_the_pairing_screen() -> None:
    decision = run(LinkEvent("dial_failed", error="no such host"), paired=False)
    assert decision.state == "not_paired"
    assert decision.detail.startswith("Not linked yet. NanoClaw cannot reach WhatsApp")
    assert "no such host" not in decision.detail  # neonize's text goes to "Technical details" only
    assert (decision.problem, decision.technical) == ("unreachable", "no such host")
    assert decision.reconnect_after == 2.0
    assert decision.alert is None


@pytest.mark.parametrize(("event", "why"), [
    (LinkEvent("logged_out", reason="LOGGED_OUT"), "removed from the phone's Linked devices"),
    (LinkEvent("logged_out", reason="MAIN_DEVICE_GONE"), "account on the phone is gone"),
    (LinkEvent("logged_out", reason="UNKNOWN_LOGOUT"), "without saying why"),
    (LinkEvent("connect_failure", reason="LOGGED_OUT"), "removed from the phone's Linked devices"),
    (LinkEvent("connect_failure", reason="MAIN_DEVICE_GONE"), "account on the phone is gone"),
    (LinkEvent("connect_failure", reason="UNKNOWN_LOGOUT"), "without saying why"),
])
def test_only_a_logout_repairs_and_the_owner_is_told(event: LinkEvent, why: str) -> None:
    decision = run(event, attempt=4)
    assert decision.state == "logged_out"
    assert decision.repair
    assert decision.stop_client
    assert decision.reconnect_after == 0.0  # straight to a fresh QR code
    assert why in decision.detail
    assert "scan the new qr code" in decision.detail.lower()
    assert decision.alert is not None
    assert why in decision.alert
    assert not decision.transient


@pytest.mark.parametrize(("code", "why"), [
    ("SEND_TO_TOO_MANY_PEOPLE", "do not have this number in their contacts"),
    ("BLOCKED_BY_USERS", "blocked or reported"),
    ("CREATED_TOO_MANY_GROUPS", "too many groups"),
    ("SENT_TOO_MANY_SAME_MESSAGE", "same message"),
    ("BROADCAST_LIST", "broadcast"),
    ("", "did not say why"),
])
def test_a_temporary_ban_is_explained_with_its_end_and_waited_out(code: str, why: str) -> None:
    decision = run(LinkEvent("temporary_ban", reason=code, expire_seconds=3 * 3600))
    assert decision.state == "banned"
    assert why in decision.detail
    assert "until 21 Nov 2026, 16:00" in decision.detail  # 15:00 UTC in Berlin
    assert "about 3 hours" in decision.detail
    assert decision.reconnect_after == 3 * 3600
    assert decision.retry_at == datetime(2026, 11, 21, 15, 0, tzinfo=UTC)
    assert not decision.repair
    assert decision.alert is not None
    assert why in decision.alert


def test_a_ban_without_an_end_and_the_ban_reason_of_a_connect_failure() -> None:
    decision = run(LinkEvent("connect_failure", reason="TEMP_BANNED"), attempt=6)
    assert decision.state == "banned"
    assert "did not say how long" in decision.detail
    assert decision.reconnect_after == 300.0


def test_a_replaced_stream_is_not_fought_over() -> None:
    decision = run(LinkEvent("stream_replaced"))
    assert decision.state == "replaced"
    assert decision.reconnect_after is None
    assert decision.stop_client
    assert not decision.repair
    assert "Another program" in decision.detail
    assert "Reconnect" in decision.detail
    assert decision.alert is not None


@pytest.mark.parametrize("event", [
    LinkEvent("client_outdated"),
    LinkEvent("connect_failure", reason="CLIENT_OUTDATED"),
    LinkEvent("connect_failure", reason="BAD_USER_AGENT"),
])
def test_an_outdated_client_asks_for_an_update(event: LinkEvent) -> None:
    decision = run(event)
    assert decision.state == "failed"
    assert "Update NanoClaw" in decision.detail
    assert decision.reconnect_after is None
    assert not decision.repair
    assert decision.alert is not None
    assert "Update NanoClaw" in decision.alert
    assert run(event, paired=False).alert is None  # nobody to warn during the first pairing


@pytest.mark.parametrize("error", [
    "can't link new devices at this time",
    "server returned error 429: rate-overlimit",
    "Too many attempts",
])
def test_whatsapps_linking_cooldown_is_explained(error: str) -> None:
    decision = run(LinkEvent("pair_error", error=error), paired=False)
    assert decision.state == "not_paired"
    assert "not letting new devices link" in decision.detail
    assert "code sent to your phone number" in decision.detail
    assert decision.reconnect_after == 2.0
    assert decision.alert is None
    assert "cooldown" in pair_error_words(error)


def test_other_pairing_errors_and_expired_codes() -> None:
    other = run(LinkEvent("pair_error", error="PairProtoError: bad signature"), paired=False)
    assert "did not accept the link (PairProtoError: bad signature)" in other.detail
    expired = run(LinkEvent("pair_expired"), paired=False, attempt=1)
    assert expired.state == "not_paired"
    assert "expired" in expired.detail
    assert expired.reconnect_after == 5.0


@pytest.mark.parametrize(("kind", "state"), [
    ("qr", "pairing"), ("pair_success", "connecting"), ("connected", "connected"), ("keepalive_restored", "connected"),
])
def test_progress_events(kind: str, state: str) -> None:
    decision = run(LinkEvent(kind), paired=kind not in ("qr", "pair_success"))  # type: ignore[arg-type]
    assert decision.state == state
    assert decision.reconnect_after is None
    assert decision.alert is None
    assert not decision.repair


def test_the_backoff_schedule_caps_at_five_minutes() -> None:
    assert [backoff_delay(n) for n in range(9)] == [2, 5, 10, 30, 60, 120, 300, 300, 300]
    assert BACKOFF[-1] == 300
    assert [run(LinkEvent("disconnected"), attempt=n).reconnect_after for n in (0, 6, 50)] == [2, 300, 300]


def test_a_long_outage_alert_says_how_long() -> None:
    assert "for 2 minutes" in outage_alert(125)
    assert "replies wait" in outage_alert(125)
