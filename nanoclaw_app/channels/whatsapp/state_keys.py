"""The WhatsApp channel's ``app_state`` keys, written once for the adapter and the setup service (no neonize here)."""

from __future__ import annotations

NUMBER_KEY = "whatsapp.number"
"""The linked account's phone number (digits), kept while a device is linked, so the app knows it before the link is
up again."""
MODE_KEY = "whatsapp.mode"
"""``self`` (the owner's own number, chatting in "Message yourself") or ``dedicated`` (a number for the assistant)."""
SELF_MODE = "self"
DEDICATED_MODE = "dedicated"
