"""Id helpers: ``<prefix>-<ms timestamp base36>-<random base36>``, sortable by creation time."""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"

PREFIXES = frozenset(
    {"sess", "mg", "ag", "mga", "msg", "task", "appr", "nsa", "nca", "q", "a2a", "out", "acct", "tok"}
)


def base36(number: int) -> str:
    """Encode a non-negative integer in base 36."""
    if number < 0:
        raise ValueError("base36 takes a non-negative number")
    if number == 0:
        return "0"
    digits: list[str] = []
    while number:
        number, rem = divmod(number, 36)
        digits.append(_ALPHABET[rem])
    return "".join(reversed(digits))


def new_id(prefix: str) -> str:
    """Return a fresh id such as ``sess-lx2k9a1b-3f9z0q1w``."""
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    stamp = base36(time.time_ns() // 1_000_000)
    rand = base36(secrets.randbits(48)).rjust(10, "0")
    return f"{prefix}-{stamp}-{rand}"


def short_code(nbytes: int = 6) -> str:
    """Return a short random token, used where a platform limits lengths (Telegram callback data)."""
    return secrets.token_urlsafe(nbytes)


def inbound_row_id(platform_message_id: str, agent_group_id: str) -> str:
    """Id of an inbound row: unique per agent so fan-out never collides, stable so re-routing is idempotent."""
    return f"{platform_message_id}:{agent_group_id}"
