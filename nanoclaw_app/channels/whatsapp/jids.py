"""WhatsApp addresses (JIDs) as this channel writes them: ``user@server`` strings, never a device part.

A JID names a person (``491701234567@s.whatsapp.net``, or a privacy alias ``12345@lid``), a group (``…@g.us``) or one
of a person's devices (``491701234567:12@s.whatsapp.net``). Chats and senders are stored without the device, so one
person is one user whichever phone or computer they typed on, and the ``<channel>:<handle>`` user ids stay unambiguous.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

USER_SERVER = "s.whatsapp.net"
LID_SERVER = "lid"
GROUP_SERVER = "g.us"
BROADCAST_SERVER = "broadcast"
NEWSLETTER_SERVER = "newsletter"


@dataclass(frozen=True, slots=True)
class Me:
    """Who this linked device is: the phone number (digits only) and, when WhatsApp told us, the privacy alias."""

    number: str
    lid: str | None = None

    @property
    def jid(self) -> str:
        """The bare phone-number JID: the address of the user's own "Message yourself" chat."""
        return f"{self.number}@{USER_SERVER}"

    def is_me(self, jid: str) -> bool:
        """Whether a bare JID (phone number or alias) is this account."""
        user, _, server = jid.partition("@")
        if server == USER_SERVER:
            return user == self.number
        return server == LID_SERVER and self.lid is not None and user == self.lid


def bare(jid: Any) -> str:
    """``user@server`` of a neonize ``JID`` (device and agent parts dropped); ``""`` for an empty JID."""
    user = str(jid.User or "")
    server = str(jid.Server or "")
    if not server:
        return ""
    return f"{user}@{server}" if user else server


def bare_text(jid: str) -> str:
    """``user@server`` of a JID written as text (``4917…:12@s.whatsapp.net`` → ``4917…@s.whatsapp.net``)."""
    user, at, server = jid.partition("@")
    if not at:
        return jid
    user = user.split(":", 1)[0].split(".", 1)[0]
    return f"{user}@{server}"


def to_jid(native: Any, jid: str) -> Any:
    """A neonize ``JID`` for a ``user@server`` string (a bare number is taken as a phone number)."""
    user, at, server = jid.partition("@")
    if not at:
        server = USER_SERVER
    return native.JID(User=user, Server=server, Device=0, RawAgent=0, Integrator=0, IsEmpty=False)


def is_group(jid: str) -> bool:
    """Whether a chat id is a group."""
    return jid.endswith("@" + GROUP_SERVER)


def is_chat(jid: str) -> bool:
    """Whether messages from this chat may reach an agent (status updates, broadcasts and channels never do)."""
    server = jid.partition("@")[2]
    return server in (USER_SERVER, LID_SERVER, GROUP_SERVER)


_DIGITS = re.compile(r"\d+")


def phone_digits(phone: str) -> str | None:
    """The international number a person typed (``+49 170 123-4567``, ``0049…``) as digits, or None when invalid.

    A country code is required: WhatsApp links by the full international number, and a local number such as
    ``0170 1234567`` would silently address someone in another country.
    """
    text = phone.strip()
    if not text or re.search(r"[^\d\s+()./-]", text):
        return None
    digits = "".join(_DIGITS.findall(text))
    if text.startswith("00"):
        digits = digits[2:]
    elif not text.startswith("+") and digits.startswith("0"):
        return None
    if not 8 <= len(digits) <= 15 or digits.startswith("0"):
        return None
    try:
        import phonenumbers

        parsed = phonenumbers.parse("+" + digits)
    except ImportError:  # pragma: no cover - phonenumbers comes with neonize
        return digits
    except phonenumbers.NumberParseException:
        return None
    return digits if phonenumbers.is_possible_number(parsed) else None


def format_number(number: str) -> str:
    """A phone number for people: ``491701234567`` → ``+49 170 1234567`` (digits with a plus when unknown)."""
    try:
        import phonenumbers

        parsed = phonenumbers.parse("+" + number)
        if phonenumbers.is_possible_number(parsed):
            return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL))
    except Exception:  # noqa: S110 - any parse problem just means the plain form below
        pass
    return "+" + number
