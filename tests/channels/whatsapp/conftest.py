"""A real host (SQLite, router, delivery, approvals; the in-process agent answers ``echo: <text>``) with the WhatsApp
adapter over :class:`FakeNeonizeClient`: only WhatsApp's servers are fake.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from nanoclaw_app.channels.manifest import ChannelDeps
from nanoclaw_app.channels.whatsapp.adapter import WhatsAppAdapter
from nanoclaw_app.core import pairing
from nanoclaw_app.core.adapter_contract import ChannelStatus
from nanoclaw_app.core.events import Event
from nanoclaw_app.db import agents
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.host import Host
from nanoclaw_app.secrets.store import SecretStore
from nanoclaw_app.settings import Settings, load_settings
from tests import waiting
from tests.fakes.keyring import MemoryKeyring
from tests.fakes.neonize_client import FRIEND, FakeNeonizeClient, text_dm
from tests.fakes.runtime import InProcessRuntime
from tests.waiting import until

WAIT = 15.0
FAST = {"backoff": (0.05, 0.1, 0.2), "outage_alert_after": 600.0, "qr_timeout": 600.0}
"""Adapter timing for tests: reconnects within a tenth of a second, no outage alerts or QR expiry unless asked."""


@pytest.fixture
def wa_settings(settings: Settings) -> Settings:
    return load_settings(settings.paths, timezone="Europe/Berlin", sweep_interval_seconds=0.2,
                         retry_base_seconds=0.05, fallback_poll_seconds=0.2, runtime="local")


@pytest.fixture
def device_db(wa_settings: Settings) -> Path:
    return wa_settings.paths.channels / "whatsapp" / "device.db"


@pytest.fixture
def fake(device_db: Path) -> FakeNeonizeClient:
    return FakeNeonizeClient(str(device_db))


async def next_event(queue: asyncio.Queue[Event], kind: str, predicate: Any = None) -> Event:
    return await waiting.next_event(queue, kind, predicate, timeout=WAIT)


@dataclass
class WhatsApp:
    """One running host with WhatsApp, and the fake phone-side of it."""

    host: Host
    fake: FakeNeonizeClient
    built: list[WhatsAppAdapter] = field(default_factory=list)

    @property
    def adapter(self) -> WhatsAppAdapter:
        adapter = self.host.channels.get("whatsapp")
        assert isinstance(adapter, WhatsAppAdapter)
        return adapter

    def status(self) -> ChannelStatus | None:
        return self.host.callbacks.statuses.get("whatsapp")

    async def wait_state(self, state: str, predicate: Callable[[ChannelStatus], bool] | None = None) -> ChannelStatus:
        def reached() -> bool:
            status = self.status()
            return status is not None and status.state == state and (predicate is None or predicate(status))

        await until(reached)
        status = self.status()
        assert status is not None
        return status

    async def link(self) -> ChannelStatus:
        """Scan the QR code on the phone: QR, pair success, connected."""
        await self.fake.emit_qr("2@first-code,AbCdEf==,GhIjKl==,MnOpQr==")
        assert await self.fake.emit_pair_success()
        assert await self.fake.emit_connected()
        return await self.wait_state("connected")

    async def pair_owner(self, sender: str = FRIEND) -> str:
        """The owner sends the app's 4-digit code from their phone; returns their chat id."""
        if not await agents.list_all(self.host.db):
            await agents.create(self.host.db, "Nano")
        code = await pairing.create_code(self.host.db, "whatsapp")
        before = len(self.fake.sent)
        assert await self.fake.emit_message(text_dm(code.code, sender=sender, push_name="Olivia"))
        await self.fake.wait_sent(before + 1)
        assert self.fake.sent[-1].text.startswith("Paired!")
        return f"{sender}@s.whatsapp.net"

    async def reply_to(self, text: str) -> list[str]:
        """Wait until the agent's ``echo: <text>`` went out."""
        await until(lambda: f"echo: {text}" in self.fake.texts())
        return self.fake.texts()

    async def session_folder(self) -> Path:
        agent = (await agents.list_all(self.host.db))[0]
        sessions = await sessions_db.list_for_agent(self.host.db, agent.id)
        assert sessions, "no session was created"
        return self.host.store.dir(agent.id, sessions[-1].id)

    async def inbound_contents(self, folder: Path) -> list[dict[str, Any]]:
        rows = await self.host.store.read(
            folder, lambda conn: conn.execute("SELECT content FROM messages_in WHERE kind = 'chat' ORDER BY seq")
            .fetchall(), with_outbound=False,
        )
        return [json.loads(r[0]) for r in rows]


def builder(fake: FakeNeonizeClient, built: list[WhatsAppAdapter] | None = None, **kwargs: Any) -> Any:
    """The ``channel_builders`` entry: the real adapter over the fake client."""
    options = {**FAST, **kwargs}

    def factory(path: str) -> FakeNeonizeClient:
        assert path == fake.name, f"the device database should live at {fake.name}, not {path}"
        return fake

    async def build(deps: ChannelDeps) -> WhatsAppAdapter:
        adapter = WhatsAppAdapter(deps, client_factory=factory, **options)
        if built is not None:
            built.append(adapter)
        return adapter

    return build


@asynccontextmanager
async def running(settings: Settings, fake: FakeNeonizeClient, *, start_channel: bool = True,
                  runtime: InProcessRuntime | None = None, **kwargs: Any) -> AsyncIterator[WhatsApp]:
    """A started host with WhatsApp running over ``fake`` (connect already called)."""
    built: list[WhatsAppAdapter] = []
    host = Host(settings, runtime=runtime or InProcessRuntime(), secrets=SecretStore(MemoryKeyring()),
                serve_web=False, channel_builders={"whatsapp": builder(fake, built, **kwargs)})
    await host.start()
    try:
        if start_channel and "whatsapp" not in host.channels:
            await host.start_channel("whatsapp")
        wa = WhatsApp(host, fake, built)
        if "whatsapp" in host.channels:
            await fake.wait_connect_call()
        yield wa
    finally:
        await host.stop()


@pytest.fixture
async def wa(wa_settings: Settings, fake: FakeNeonizeClient) -> AsyncIterator[WhatsApp]:
    async with running(wa_settings, fake) as harness:
        yield harness


@pytest.fixture
async def linked(wa: WhatsApp) -> WhatsApp:
    """WhatsApp linked and connected."""
    await wa.link()
    return wa
