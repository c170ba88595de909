"""The registry's entry: the real neonize client, branded "NanoClaw", and a plain error when neonize is missing."""

from __future__ import annotations

import sys

import pytest

from nanoclaw_app.channels.manifest import ChannelDeps
from nanoclaw_app.channels.whatsapp import factory, native
from nanoclaw_app.channels.whatsapp.adapter import WhatsAppAdapter
from nanoclaw_app.channels.whatsapp.client import new_client
from nanoclaw_app.core.events import EventBus
from nanoclaw_app.db.database import Database
from nanoclaw_app.errors import ConfigError
from nanoclaw_app.secrets.store import SecretStore
from nanoclaw_app.sessions.store import SessionStore
from nanoclaw_app.settings import Settings
from tests.fakes.keyring import MemoryKeyring


def deps(settings: Settings, db: Database, store: SessionStore) -> ChannelDeps:
    return ChannelDeps(settings=settings, db=db, events=EventBus(), secrets=SecretStore(MemoryKeyring()), store=store)


async def test_build_gives_the_adapter_over_the_real_client(settings: Settings, db: Database,
                                                            store: SessionStore) -> None:
    adapter = await factory.build(deps(settings, db, store))
    assert isinstance(adapter, WhatsAppAdapter)
    assert adapter.device_db == settings.paths.home / "channels" / "whatsapp" / "device.db"
    assert adapter.status().state == "stopped"
    assert not adapter.is_connected()
    first = new_client(str(adapter.device_db))
    second = new_client(str(adapter.device_db))
    assert isinstance(first, native.NewAClient)
    assert first.name == str(adapter.device_db)
    assert first.device_props.os == "NanoClaw"
    assert first.device_props.platformType == native.DeviceProps.DESKTOP
    assert first.uuid != second.uuid  # a collected old client must never stop its successor


async def test_a_missing_neonize_is_explained(settings: Settings, db: Database, store: SessionStore,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nanoclaw_app.channels.whatsapp.adapter", None)
    with pytest.raises(ConfigError) as failed:
        await factory.build(deps(settings, db, store))
    assert "neonize" in str(failed.value)
    assert "Reinstall" in str(failed.value)
