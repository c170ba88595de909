"""Request and response shapes shared by several controllers (area-specific ones live with their controller)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Ok:
    """A write that has nothing else to say."""

    ok: bool = True


@dataclass
class PasswordLogin:
    """The LAN sign-in form."""

    password: str
