"""A started app whose WhatsApp runs over fake neonize clients (``phones``) and whose Telegram talks to a fake Bot API
server (``bot_api``); each test module sets ``web_settings`` (pointing Telegram at ``bot_api``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from nanoclaw_app.host import Host
from nanoclaw_app.secrets.store import SecretStore
from nanoclaw_app.settings import Settings
from tests.fakes.keyring import MemoryKeyring
from tests.fakes.runtime import InProcessRuntime
from tests.fakes.telegram_api import FakeBotApi
from tests.web.channels.phones import Phones


@pytest.fixture
async def bot_api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as fake:
        yield fake


@pytest.fixture
def phones() -> Phones:
    return Phones()


@pytest.fixture
async def web_host(web_settings: Settings, keyring_backend: MemoryKeyring, phones: Phones) -> AsyncIterator[Host]:
    host = Host(web_settings, runtime=InProcessRuntime(), secrets=SecretStore(keyring_backend),
                channel_builders={"whatsapp": phones.build})
    await host.start()
    try:
        yield host
    finally:
        await host.stop()
