"""A host with the real Discord adapter (real discord.py) against the fake Discord (REST + gateway) on 127.0.0.1.

The agent is the in-process test runtime, which answers ``echo: <text>``; the database and session files are real.
"""

from __future__ import annotations

import asyncio
import json
import warnings
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from nanoclaw_app.channels import registry as channel_registry
from nanoclaw_app.channels.discord.setup import TOKEN_SECRET
from nanoclaw_app.core import pairing
from nanoclaw_app.core.adapter_contract import ChannelStatus
from nanoclaw_app.core.events import Event
from nanoclaw_app.db import agents, messaging
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.rows import Session
from nanoclaw_app.host import Host
from nanoclaw_app.secrets.store import SecretStore
from nanoclaw_app.settings import Settings, load_settings
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.discord_model import OWNER, TOKEN, DcUser
from tests.fakes.keyring import MemoryKeyring
from tests.fakes.runtime import InProcessRuntime
from tests.waiting import until

with warnings.catch_warnings():  # discord.py imports audioop (voice), deprecated since Python 3.11
    warnings.simplefilter("ignore", DeprecationWarning)
    import discord.gateway
    import discord.http

WAIT = 30.0


@pytest.fixture(autouse=True)
def _library_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    """The adapter aims discord.py at the configured server process-wide; put the real addresses back afterwards."""
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY",
                        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def dc_settings(settings: Settings, fake: FakeDiscord) -> Settings:
    return load_settings(settings.paths, timezone="Europe/Berlin", port=0, sweep_interval_seconds=0.2,
                         retry_base_seconds=0.05, fallback_poll_seconds=0.2, runtime="local",
                         discord_api_base_url=fake.api_base, discord_gateway_url=fake.gateway_url,
                         discord_guild_ready_timeout=0.05)


@pytest.fixture
async def host(dc_settings: Settings) -> AsyncIterator[Host]:
    """A started host (no web server) with the token stored and Discord turned on, but not yet started."""
    server = Host(dc_settings, runtime=InProcessRuntime(), secrets=SecretStore(MemoryKeyring()), serve_web=False)
    await server.start()
    await server.secrets.set(TOKEN_SECRET, TOKEN)
    await channel_registry.set_enabled(server.db, "discord", True)
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def agent_id(host: Host) -> str:
    return (await agents.create(host.db, "Nano")).id


@pytest.fixture
async def discord_host(host: Host, fake: FakeDiscord, agent_id: str) -> Host:
    """Discord running and connected (there is an agent to talk to)."""
    await host.start_channel("discord")
    await wait_status(host, "connected")
    return host


async def wait_status(host: Host, state: str, timeout: float = WAIT) -> ChannelStatus:
    status: ChannelStatus = await until(
        lambda: (s := host.callbacks.statuses.get("discord")) is not None and s.state == state and s, timeout,
        every=0.05)
    return status


def dm_id(fake: FakeDiscord, user: DcUser = OWNER) -> int:
    return int(fake.dm_channel(user)["id"])


async def pair(host: Host, fake: FakeDiscord, user: DcUser = OWNER) -> None:
    """The person sends the app's 4-digit code to the bot in their DM and gets "Paired!"."""
    code = await pairing.create_code(host.db, "discord")
    fake.push_dm(user, code.code)
    await fake.wait_for(lambda: any(t.startswith("Paired!") for t in fake.texts(dm_id(fake, user))))


async def say_dm(fake: FakeDiscord, text: str, user: DcUser = OWNER, reply: str | None = None,
                 **kwargs: Any) -> dict[str, Any]:
    """The person writes to the bot; waits for the reply (default ``echo: <text>``) in the same DM."""
    message = fake.push_dm(user, text, **kwargs)
    expected = reply if reply is not None else f"echo: {text}"
    await fake.wait_for(lambda: expected in fake.texts(dm_id(fake, user)), WAIT)
    return message


async def next_event(queue: asyncio.Queue[Event], kinds: tuple[str, ...], predicate: Callable[[dict[str, Any]], bool]
                     = lambda _: True, timeout: float = WAIT) -> Event:
    """The next event of one of ``kinds`` whose data matches."""
    async with asyncio.timeout(timeout):
        while True:
            event = await queue.get()
            if event.kind in kinds and predicate(event.data):
                return event


HANDLED = ("message.routed", "message.dropped")


def about(message: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    """Events about one Discord message (routed or dropped by the host)."""
    return lambda data: data.get("message_id") == str(message["id"])


async def chat_sessions(host: Host, agent_id: str, platform_id: int | str) -> list[tuple[Session, Path]]:
    """The sessions of one Discord chat (a DM or a server channel), with their folders."""
    chat = await messaging.find(host.db, "discord", str(platform_id))
    assert chat is not None, "the chat is not known"
    found = [s for s in await sessions_db.list_for_agent(host.db, agent_id) if s.messaging_group_id == chat.id]
    return [(s, host.store.dir(agent_id, s.id)) for s in found]


async def dm_session(host: Host, fake: FakeDiscord, agent_id: str, user: DcUser = OWNER) -> tuple[Session, Path]:
    found = await chat_sessions(host, agent_id, dm_id(fake, user))
    assert found, "the chat has no session yet"
    return found[0]


async def inbound_contents(host: Host, folder: Path) -> list[dict[str, Any]]:
    """The chat messages the agent's session received (its ``messages_in``), oldest first."""
    rows = await host.store.read(
        folder, lambda conn: conn.execute("SELECT kind, content FROM messages_in ORDER BY seq").fetchall(),
        with_outbound=False,
    )
    return [json.loads(r[1]) for r in rows if r[0] == "chat"]


async def inbound_texts(host: Host, folder: Path) -> list[str]:
    return [c.get("text", "") for c in await inbound_contents(host, folder)]
