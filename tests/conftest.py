"""Shared fixtures: every test gets its own NANOCLAW_HOME in tmp_path, a migrated real SQLite DB and a store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from nanoclaw_app.core.adapter_contract import ChannelRegistry
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.events import EventBus
from nanoclaw_app.db.database import Database
from nanoclaw_app.db.migrate import migrate
from nanoclaw_app.paths import Paths
from nanoclaw_app.sessions.store import SessionStore
from nanoclaw_app.settings import Settings, load_settings
from tests.fakes.channel import FakeChannel
from tests.fakes.waker import RecordingWaker


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the real user dirs, whatever a test does."""
    monkeypatch.setenv("NANOCLAW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NANOCLAW_CONFIG_DIR", str(tmp_path / "config"))
    # The start-at-login entry lives in the user's own config (~/.config/autostart): keep the switch in tmp_path too.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    for name in ("NANOCLAW_PORT", "NANOCLAW_HOST", "NANOCLAW_TIMEZONE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def paths() -> Paths:
    p = Paths.from_env()
    p.ensure()
    return p


@pytest.fixture
def settings(paths: Paths) -> Settings:
    return load_settings(paths, timezone="Europe/Berlin")


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings.paths.central_db)
    await database.open()
    await migrate(database)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[SessionStore]:
    s = SessionStore(settings.paths.sessions)
    await s.start()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def channel() -> FakeChannel:
    return FakeChannel()


@pytest.fixture
def waker() -> RecordingWaker:
    return RecordingWaker()


@pytest.fixture
def ctx(settings: Settings, db: Database, store: SessionStore, channel: FakeChannel,
        waker: RecordingWaker) -> CoreContext:
    registry = ChannelRegistry()
    registry.add(channel)
    return CoreContext(settings=settings, db=db, store=store, channels=registry, waker=waker, events=EventBus())
