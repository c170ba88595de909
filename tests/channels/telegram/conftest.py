"""A host with the real Telegram adapter (real PTB) against the fake Bot API server on 127.0.0.1.

The agent is the in-process test runtime, which answers ``echo: <text>``; the database and session files are real.
"""

from __future__ import annotations

import asyncio
import json
import struct
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from nanoclaw_app.channels import registry as channel_registry
from nanoclaw_app.channels.telegram.setup import TOKEN_SECRET
from nanoclaw_app.core import pairing
from nanoclaw_app.core.adapter_contract import ChannelStatus
from nanoclaw_app.core.events import Event
from nanoclaw_app.db import agents, messaging
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.rows import Session
from nanoclaw_app.host import Host
from nanoclaw_app.secrets.store import SecretStore
from nanoclaw_app.settings import Settings, load_settings
from tests.fakes.keyring import MemoryKeyring
from tests.fakes.runtime import InProcessRuntime
from tests.fakes.telegram_api import ANN, TOKEN, FakeBotApi, TgUser
from tests.waiting import until

WAIT = 30.0


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    """PTB warns (an error under this suite's filterwarnings) whenever it reads ``RetryAfter.retry_after`` as an int;
    opting in to its coming ``timedelta`` type silences that, and the adapter handles both.
    """
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    server = FakeBotApi()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def tg_settings(settings: Settings, api: FakeBotApi) -> Settings:
    return load_settings(settings.paths, timezone="Europe/Berlin", port=0, sweep_interval_seconds=0.2,
                         retry_base_seconds=0.05, fallback_poll_seconds=0.2, runtime="local",
                         telegram_api_base_url=api.base_url)


@pytest.fixture
async def host(tg_settings: Settings) -> AsyncIterator[Host]:
    """A started host (no web server) with the token stored and Telegram turned on, but not yet started."""
    server = Host(tg_settings, runtime=InProcessRuntime(), secrets=SecretStore(MemoryKeyring()), serve_web=False)
    await server.start()
    await server.secrets.set(TOKEN_SECRET, TOKEN)
    await channel_registry.set_enabled(server.db, "telegram", True)
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def agent_id(host: Host) -> str:
    return (await agents.create(host.db, "Nano")).id


@pytest.fixture
async def telegram(host: Host, api: FakeBotApi, agent_id: str) -> Host:
    """Telegram running and connected (there is an agent to talk to)."""
    await host.start_channel("telegram")
    await wait_status(host, "connected")
    return host


async def wait_status(host: Host, state: str, timeout: float = WAIT) -> ChannelStatus:
    status: ChannelStatus = await until(
        lambda: (s := host.callbacks.statuses.get("telegram")) is not None and s.state == state and s, timeout,
        every=0.05)
    return status


async def pair(host: Host, api: FakeBotApi, user: TgUser = ANN) -> None:
    """The person sends the app's 4-digit code to the bot in their DM and gets "Paired!"."""
    code = await pairing.create_code(host.db, "telegram")
    api.push_message(code.code, user=user)
    await api.wait_for(lambda: any(t.startswith("Paired!") for t in api.texts(user.id)))


async def say(
    api: FakeBotApi, text: str, reply: str | None = None, user: TgUser = ANN, **kwargs: Any
) -> dict[str, Any]:
    """The person writes; waits for the bot's reply ``reply`` (default ``echo: <text>``) in the same chat."""
    message = api.push_message(text, user=user, **kwargs)
    chat_id = message["chat"]["id"]
    expected = reply if reply is not None else f"echo: {text}"
    await api.wait_for(lambda: expected in api.texts(chat_id), WAIT)
    return message


async def next_event(queue: asyncio.Queue[Event], kinds: tuple[str, ...], predicate: Callable[[dict[str, Any]], bool]
                     = lambda _: True, timeout: float = WAIT) -> Event:
    """The next event of one of ``kinds`` whose data matches."""
    async with asyncio.timeout(timeout):
        while True:
            event = await queue.get()
            if event.kind in kinds and predicate(event.data):
                return event


def about(message: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    """Events about one Telegram message (routed or dropped by the host)."""
    return lambda data: data.get("message_id") == str(message["message_id"])


HANDLED = ("message.routed", "message.dropped")


def png(width: int = 64, height: int = 48) -> bytes:
    """A small real PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + bytes((x * 4 % 256, y * 5 % 256, 128)) * 1 + b"\x10\x20\x30" * (width - 1)
                    for y in range(height) for x in (0,))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


async def dm_session(host: Host, agent_id: str, user: TgUser = ANN) -> tuple[Session, Path]:
    chat = await messaging.find(host.db, "telegram", str(user.id))
    assert chat is not None
    found = [s for s in await sessions_db.list_for_agent(host.db, agent_id) if s.messaging_group_id == chat.id]
    assert found, "the chat has no session yet"
    return found[0], host.store.dir(agent_id, found[0].id)


async def inbound_texts(host: Host, folder: Path) -> list[str]:
    """The chat messages the agent's session received (its ``messages_in``), oldest first."""
    rows = await host.store.read(
        folder, lambda conn: conn.execute("SELECT kind, content FROM messages_in ORDER BY seq").fetchall(),
        with_outbound=False,
    )
    return [json.loads(r[1]).get("text", "") for r in rows if r[0] == "chat"]
