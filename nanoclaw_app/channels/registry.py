"""Every channel the app knows, listed once: adding a channel is its folder plus one line in :data:`CHANNELS`.

Only the manifests are imported here (small modules); a platform library (neonize loads an 18 MB native library) is
imported when its channel is built. A channel is on when the app recorded it so (``channel.<name>.enabled`` in
``app_state``) and its ``build`` finds what it needs (a token, a device database); ``build`` returns None otherwise.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from nanoclaw_app.channels.discord.manifest import MANIFEST as DISCORD
from nanoclaw_app.channels.manifest import ChannelManifest, ChannelSettings
from nanoclaw_app.channels.slack.manifest import MANIFEST as SLACK
from nanoclaw_app.channels.telegram.manifest import MANIFEST as TELEGRAM
from nanoclaw_app.channels.whatsapp.manifest import MANIFEST as WHATSAPP
from nanoclaw_app.db import app_state
from nanoclaw_app.db.database import Database

CHANNELS: tuple[ChannelManifest, ...] = (
    WHATSAPP,
    TELEGRAM,
    SLACK,
    DISCORD,
)
"""The channels besides the in-app chat (which the host always runs), in the order the app lists them."""


def setting_fields() -> dict[str, tuple[type[ChannelSettings], dataclasses.Field[Any]]]:
    """Every channel's setting by stored name (``telegram_api_base_url``): its settings object and field."""
    return {f"{m.settings.channel}_{f.name}": (m.settings, f)
            for m in CHANNELS if m.settings is not None for f in dataclasses.fields(m.settings)}


def manifest(name: str) -> ChannelManifest | None:
    """A channel by name."""
    return next((m for m in CHANNELS if m.name == name), None)


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
