"""Every channel the app knows, in one tuple: how to build its adapter when the user has set it up.

Building is lazy and per channel, so a platform library (neonize loads an 18 MB native library) is imported only when
its channel is turned on. A channel is on when the app recorded it so (``channel.<name>.enabled`` in ``app_state``)
and its ``build`` finds what it needs (a token, a device database); ``build`` returns None otherwise.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nanoclaw_app.channels.base import ChannelAdapter
from nanoclaw_app.core.events import EventBus
from nanoclaw_app.db import app_state
from nanoclaw_app.db.database import Database
from nanoclaw_app.secrets.store import SecretStore
from nanoclaw_app.sessions.store import SessionStore
from nanoclaw_app.settings import Settings


@dataclass(frozen=True, slots=True)
class ChannelDeps:
    """What an adapter may be built with."""

    settings: Settings
    db: Database
    events: EventBus
    secrets: SecretStore
    store: SessionStore


BuildFn = Callable[[ChannelDeps], Awaitable[ChannelAdapter | None]]


@dataclass(frozen=True, slots=True)
class ChannelKind:
    """One channel: its type (the prefix of its user and chat ids), the name shown, and its builder."""

    name: str
    title: str
    build: BuildFn


async def _build_whatsapp(deps: ChannelDeps) -> ChannelAdapter | None:
    from nanoclaw_app.channels.whatsapp.factory import build

    return await build(deps)


async def _build_telegram(deps: ChannelDeps) -> ChannelAdapter | None:
    from nanoclaw_app.channels.telegram.factory import build

    return await build(deps)


PHONE_CHANNELS: tuple[ChannelKind, ...] = (
    ChannelKind("whatsapp", "WhatsApp", _build_whatsapp),
    ChannelKind("telegram", "Telegram", _build_telegram),
)
"""The channels besides the in-app chat (which the host always runs), in the order the app lists them."""


def kind(name: str) -> ChannelKind | None:
    """A phone channel by name."""
    return next((k for k in PHONE_CHANNELS if k.name == name), None)


def enabled_key(name: str) -> str:
    """The ``app_state`` key that records a channel as turned on."""
    return f"channel.{name}.enabled"


async def is_enabled(db: Database, name: str) -> bool:
    """Whether the user turned the channel on (it starts with the host)."""
    return await app_state.get(db, enabled_key(name)) == "1"


async def set_enabled(db: Database, name: str, enabled: bool) -> None:
    """Record the user's choice, so the next start does the same."""
    if enabled:
        await app_state.put(db, enabled_key(name), "1")
    else:
        await app_state.delete(db, enabled_key(name))
