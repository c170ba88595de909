"""The WhatsApp link's state machine as a pure decision table: what happened → where the link stands, what to do.

:mod:`.connection` turns neonize's events into a :class:`LinkEvent` and carries out the :class:`Decision`; nothing here
touches neonize, the clock or the network, so every row can be tested on its own. The rules:

* transient trouble (a dropped connection, stream errors such as 515/503/408, a keep-alive timeout, WhatsApp's
  servers unavailable, a failed dial) → reconnect with backoff (:data:`BACKOFF`), never re-pair;
* logged out (``LOGGED_OUT``, ``MAIN_DEVICE_GONE``, ``UNKNOWN_LOGOUT``) → the only case that deletes the device and
  pairs afresh;
* a temporary ban → wait until it ends (its reason and end in words), then reconnect;
* the stream replaced by another program using the same link → step back, never fight over it;
* an outdated client or a refused user agent → stop and say "update NanoClaw";
* a pairing refusal ("can't link new devices now") → explain WhatsApp's linking cooldown and the phone-number code.

``alert`` is set only when an established link is really lost (logged out, banned, replaced, refused as outdated);
a long reconnect gets its alert from :func:`outage_alert` once it lasts :data:`OUTAGE_ALERT_AFTER`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Literal

from nanoclaw_app.core.adapter_contract import LinkState

BACKOFF: tuple[float, ...] = (2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
"""Seconds before reconnect attempt 1, 2, 3, …; the last value repeats."""
STABLE_AFTER = 300.0
"""Seconds connected after which the next drop starts the backoff from the beginning again."""
OUTAGE_ALERT_AFTER = 120.0
"""Seconds of reconnecting after which the owner is told over another channel."""

EventKind = Literal[
    "qr",                  # a (new) QR code to scan
    "pair_success",        # the phone accepted the link
    "pair_error",          # the phone or WhatsApp refused the link
    "pair_expired",        # the QR codes ran out before anyone scanned one
    "connected",           # logged in and online
    "keepalive_restored",  # answers again after a keep-alive timeout
    "disconnected",        # the connection dropped
    "stream_error",        # WhatsApp closed the stream with a code
    "keepalive_timeout",   # WhatsApp stopped answering pings
    "connect_failure",     # WhatsApp refused the login with a reason
    "dial_failed",         # the websocket could not be opened (offline, DNS, proxy)
    "ended",               # neonize's connection loop returned without saying why
    "logged_out",          # the device was unlinked
    "temporary_ban",       # the number is banned for a while
    "stream_replaced",     # another program logged in with this device
    "client_outdated",     # WhatsApp refuses this client version
]

LOGGED_OUT_REASONS = frozenset({"LOGGED_OUT", "MAIN_DEVICE_GONE", "UNKNOWN_LOGOUT"})
UPDATE_REASONS = frozenset({"CLIENT_OUTDATED", "BAD_USER_AGENT"})

_LOGOUT_WORDS = {
    "LOGGED_OUT": "NanoClaw was removed from the phone's Linked devices",
    "MAIN_DEVICE_GONE": "the WhatsApp account on the phone is gone (reinstalled, moved to another phone or deleted)",
    "UNKNOWN_LOGOUT": "WhatsApp logged this computer out without saying why",
}
_BAN_WORDS = {
    "SEND_TO_TOO_MANY_PEOPLE": "too many messages went to people who do not have this number in their contacts",
    "BLOCKED_BY_USERS": "too many people blocked or reported this number",
    "CREATED_TOO_MANY_GROUPS": "too many groups were created",
    "SENT_TOO_MANY_SAME_MESSAGE": "the same message went to too many people",
    "BROADCAST_LIST": "too many broadcast-list messages were sent",
}
_FAILURE_WORDS = {
    "SERVICE_UNAVAILABLE": "WhatsApp's servers are unavailable right now",
    "INTERNAL_SERVER_ERROR": "WhatsApp's servers had an internal error",
    "EXPERIMENTAL": "WhatsApp refused the login for now (an experiment on its side)",
    "GENERIC": "WhatsApp refused the connection",
}
_LINK_COOLDOWN = (
    "WhatsApp is not letting new devices link to this number right now. That is a cooldown on WhatsApp's side after "
    "several link attempts: wait a while (sometimes a few hours) and try again, or link with a code sent to your phone "
    "number instead."
)


@dataclass(frozen=True, slots=True)
class LinkEvent:
    """What happened, in neonize-free words."""

    kind: EventKind
    reason: str = ""
    """``ConnectFailureReason`` name (connect failures, logouts) or ``TempBanReason`` name (bans)."""
    code: str = ""
    """Stream error code (``515``, ``503``, …)."""
    error: str = ""
    """Text from neonize: a dial error, a pairing error."""
    expire_seconds: int = 0
    """How long a temporary ban still lasts."""


@dataclass(frozen=True, slots=True)
class Decision:
    """Where the link stands now and what the connection must do."""

    state: LinkState
    detail: str
    reconnect_after: float | None = None
    """Seconds until a fresh connection attempt (0 = now); None = wait for the user."""
    retry_at: datetime | None = None
    repair: bool = False
    """Delete the device database and pair afresh (only when logged out)."""
    alert: str | None = None
    """Tell the owner over another channel."""
    stop_client: bool = False
    """Stop the current client now (terminal states) instead of letting it try on its own."""
    counts_attempt: bool = False
    """The reconnect is one more step up the backoff."""
    problem: str = ""
    """``unreachable`` when WhatsApp's servers could not be reached at all (the page shows its own panel for it)."""
    technical: str = ""
    """neonize's own error text, kept out of ``detail`` (the page tucks it away under "Technical details")."""

    @property
    def transient(self) -> bool:
        """A passing problem the backoff handles (a second one while a reconnect waits changes nothing)."""
        return self.counts_attempt and not self.repair and self.alert is None and self.state != "banned"


def backoff_delay(attempt: int, schedule: Sequence[float] = BACKOFF) -> float:
    """Seconds before reconnect attempt ``attempt`` (0-based); the last value repeats."""
    if not schedule:
        return 0.0
    return float(schedule[min(max(attempt, 0), len(schedule) - 1)])


def decide(
    event: LinkEvent,
    *,
    attempt: int,
    paired: bool,
    now: datetime,
    tz: tzinfo,
    backoff: Sequence[float] = BACKOFF,
) -> Decision:
    """The table: ``attempt`` is how many reconnects already happened in a row, ``paired`` whether a link exists."""
    kind = event.kind
    if kind == "connect_failure" and event.reason in LOGGED_OUT_REASONS:
        kind = "logged_out"
    elif kind == "connect_failure" and event.reason == "TEMP_BANNED":
        kind = "temporary_ban"
    elif kind == "connect_failure" and event.reason in UPDATE_REASONS:
        kind = "client_outdated"

    if kind == "qr":
        return Decision("pairing", "Open WhatsApp on your phone, go to Settings → Linked devices → Link a device, "
                                   "and scan this QR code.")
    if kind == "pair_success":
        return Decision("connecting", "Linked! Finishing the connection to WhatsApp…")
    if kind in ("connected", "keepalive_restored"):
        return Decision("connected", "Connected to WhatsApp.")
    if kind == "logged_out":
        why = _LOGOUT_WORDS.get(event.reason, "WhatsApp logged this computer out")
        return Decision(
            "logged_out",
            f"WhatsApp is unlinked: {why}. Scan the new QR code to link it again; replies wait until then.",
            reconnect_after=0.0, retry_at=now, repair=True, stop_client=True,
            alert=f"WhatsApp is unlinked from NanoClaw: {why}. Open NanoClaw → Channels → WhatsApp and scan the new "
                  "QR code to link it again. Replies wait until then.",
        )
    if kind == "temporary_ban":
        return _ban(event, attempt=attempt, now=now, tz=tz, backoff=backoff)
    if kind == "stream_replaced":
        detail = ("Another program is now using this WhatsApp link (for example NanoClaw running on a second "
                  "computer with the same data). NanoClaw stepped back so the two do not keep pushing each other off. "
                  "Close the other program, then press Reconnect.")
        return Decision("replaced", detail, stop_client=True,
                        alert="WhatsApp disconnected from NanoClaw because another program took over the same link. "
                              "Close the other program and press Reconnect on NanoClaw's WhatsApp page.")
    if kind == "client_outdated":
        detail = ("WhatsApp refuses this version of NanoClaw's WhatsApp connection (the client is outdated). "
                  "Update NanoClaw to the newest version, then reconnect.")
        return Decision("failed", detail, stop_client=True,
                        alert=("WhatsApp stopped working in NanoClaw: WhatsApp refuses this version. Update NanoClaw "
                               "to the newest version.") if paired else None)

    delay = backoff_delay(attempt, backoff)
    retry_at = now + timedelta(seconds=delay)
    when = f"Trying again in {_duration(delay)}."
    if kind == "pair_error":
        return Decision("not_paired", f"{_pair_error_words(event.error)} {when}", reconnect_after=delay,
                        retry_at=retry_at, counts_attempt=True, stop_client=True)
    if kind == "pair_expired":
        return Decision("not_paired", f"The QR code expired before it was scanned. A new one comes in "
                                      f"{_duration(delay)}.", reconnect_after=delay, retry_at=retry_at,
                        counts_attempt=True, stop_client=True)

    why = _transient_words(kind, event)
    problem, technical = ("unreachable", _short(event.error, 600)) if kind == "dial_failed" else ("", "")
    if not paired:
        return Decision("not_paired", f"Not linked yet. {why} {when}", reconnect_after=delay, retry_at=retry_at,
                        counts_attempt=True, problem=problem, technical=technical)
    state: LinkState = "connecting" if kind == "stream_error" and event.code == "515" else "reconnecting"
    return Decision(state, f"{why} {when}", reconnect_after=delay, retry_at=retry_at, counts_attempt=True,
                    problem=problem, technical=technical)


def outage_alert(down_seconds: float) -> str:
    """The owner's notice when reconnecting has lasted too long."""
    return (f"WhatsApp has been disconnected from NanoClaw for {_duration(down_seconds)}. NanoClaw keeps trying to "
            "reconnect; replies wait and go out once it is back. Check that this computer is online and that your "
            "phone has WhatsApp working.")


def pair_error_words(error: str) -> str:
    """A pairing refusal (from a QR link or a phone-number code) in words, with what to do."""
    return _pair_error_words(error)


_UNREACHABLE_WORDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("x509", "certificate"),
     "something on this network (a proxy or security software) is intercepting secure connections, so WhatsApp's "
     "server could not be checked"),
    (("no such host", "lookup ", "name resolution", "server misbehaving"),
     "this computer cannot look up WhatsApp's address. It may be offline, or the network's name service is not "
     "working"),
    (("network is unreachable", "no route to host"),
     "this computer is not connected to a network that reaches the internet"),
    (("connection refused",),
     "the connection was refused. A firewall or proxy on this network may be blocking WhatsApp"),
    (("i/o timeout", "deadline exceeded", "timed out", "timeout"),
     "WhatsApp did not answer in time. The internet connection may be down or very slow, or a firewall may be "
     "dropping the connection"),
    (("bad handshake", "proxy", "403", "407"),
     "the connection was turned away on the way to WhatsApp. A proxy on this network may not allow it"),
    (("connection reset", "eof", "broken pipe"),
     "the connection was cut off while connecting. The network may be unstable, or a firewall may be ending it"),
)


def unreachable_words(error: str) -> str:
    """Why WhatsApp could not be reached, in words a person can act on (neonize's Go text is kept elsewhere)."""
    lowered = error.lower()
    for needles, words in _UNREACHABLE_WORDS:
        if any(needle in lowered for needle in needles):
            return words
    return "the connection could not be opened. Check that this computer is online"


def _ban(event: LinkEvent, *, attempt: int, now: datetime, tz: tzinfo, backoff: Sequence[float]) -> Decision:
    why = _BAN_WORDS.get(event.reason, "WhatsApp did not say why")
    if event.expire_seconds > 0:
        delay = float(event.expire_seconds)
        end = now + timedelta(seconds=delay)
        until = f"until {end.astimezone(tz).strftime('%d %b %Y, %H:%M')} (about {_duration(delay)} from now)"
    else:
        delay = backoff_delay(attempt, backoff)
        end = now + timedelta(seconds=delay)
        until = "for a while (WhatsApp did not say how long)"
    detail = (f"WhatsApp has temporarily banned this number {until}: {why}. NanoClaw reconnects when the ban ends; "
              "replies wait until then. Keep the reply-only guardrail and the send limit on to avoid further bans.")
    return Decision("banned", detail, reconnect_after=delay, retry_at=end, stop_client=True, counts_attempt=True,
                    alert=f"WhatsApp has temporarily banned NanoClaw's number {until}: {why}. Replies wait until the "
                          "ban ends.")


def _transient_words(kind: str, event: LinkEvent) -> str:
    if kind == "stream_error":
        if event.code == "515":
            return "WhatsApp asked NanoClaw to reconnect (a normal step, especially right after linking)."
        return f"WhatsApp closed the connection (stream error {event.code or 'without a code'})."
    if kind == "keepalive_timeout":
        return "WhatsApp stopped answering; this computer may have lost its internet connection."
    if kind == "connect_failure":
        words = _FAILURE_WORDS.get(event.reason, "WhatsApp refused the connection")
        return f"{words}{f' ({_short(event.error)})' if event.error else ''}."
    if kind == "dial_failed":
        return f"NanoClaw cannot reach WhatsApp: {unreachable_words(event.error)}."
    if kind == "ended":
        return "The connection to WhatsApp ended."
    return "The connection to WhatsApp dropped."


def _pair_error_words(error: str) -> str:
    lowered = error.lower()
    if any(word in lowered for word in ("can't link", "cannot link", "can not link", "rate", "429", "too many")):
        return _LINK_COOLDOWN
    return (f"WhatsApp did not accept the link ({_short(error) or 'no reason given'}). Try again; if it keeps failing, "
            "link with a code sent to your phone number instead.")


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _duration(seconds: float) -> str:
    """``2 seconds``, ``5 minutes``, ``about 3 hours``: how people say a wait."""
    seconds = max(0.0, seconds)
    if seconds < 1:
        return "a moment"
    if seconds < 90:
        value = round(seconds)
        return f"{value} second{'s' if value != 1 else ''}"
    if seconds < 90 * 60:
        value = round(seconds / 60)
        return f"{value} minute{'s' if value != 1 else ''}"
    if seconds < 36 * 3600:
        value = round(seconds / 3600)
        return f"{value} hour{'s' if value != 1 else ''}"
    value = round(seconds / 86400)
    return f"{value} day{'s' if value != 1 else ''}"
