"""A host with the real Slack adapter (real slack-bolt in Socket Mode) against the fake Slack on 127.0.0.1.

The agent is the in-process test runtime, which answers ``echo: <text>``; the database and session files are real.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from nanoclaw_app.channels import registry as channel_registry
from nanoclaw_app.channels.slack.setup import APP_SECRET, BOT_SECRET
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
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_workspace import APP_TOKEN, BOT_TOKEN, OWNER, OWNER_DM, SlackUser
from tests.waiting import until

WAIT = 30.0
HANDLED = ("message.routed", "message.dropped")


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    server = FakeSlack()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def slack_settings(settings: Settings, slack: FakeSlack) -> Settings:
    return load_settings(settings.paths, timezone="Europe/Berlin", port=0, sweep_interval_seconds=0.2,
                         retry_base_seconds=0.05, fallback_poll_seconds=0.2, runtime="local",
                         slack_api_base_url=slack.api_url, slack_ping_interval_seconds=1.0)


@pytest.fixture
async def host(slack_settings: Settings) -> AsyncIterator[Host]:
    """A started host (no web server) with both tokens stored and Slack turned on, but not yet started."""
    server = Host(slack_settings, runtime=InProcessRuntime(), secrets=SecretStore(MemoryKeyring()), serve_web=False)
    await server.start()
    await server.secrets.set(BOT_SECRET, BOT_TOKEN)
    await server.secrets.set(APP_SECRET, APP_TOKEN)
    await channel_registry.set_enabled(server.db, "slack", True)
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def agent_id(host: Host) -> str:
    return (await agents.create(host.db, "Nano")).id


@pytest.fixture
async def running(host: Host, slack: FakeSlack, agent_id: str) -> Host:
    """Slack running and connected (there is an agent to talk to)."""
    await host.start_channel("slack")
    await wait_status(host, "connected")
    return host


@pytest.fixture
async def paired(running: Host, slack: FakeSlack) -> Host:
    await pair(running, slack)
    return running


async def wait_status(host: Host, state: str, timeout: float = WAIT) -> ChannelStatus:
    status: ChannelStatus = await until(
        lambda: (s := host.callbacks.statuses.get("slack")) is not None and s.state == state and s, timeout,
        every=0.05)
    return status


def texts(slack: FakeSlack, channel: str, thread_ts: str | None = None) -> list[str]:
    """The bot's messages in a conversation (in one thread when given), oldest first."""
    return [m["text"] for m in slack.sent_messages(channel) if thread_ts is None or m["thread_ts"] == thread_ts]


async def pair(host: Host, slack: FakeSlack, user: SlackUser = OWNER, channel: str = OWNER_DM) -> None:
    """The person sends the app's 4-digit code to the bot in their DM and gets "Paired!"."""
    code = await pairing.create_code(host.db, "slack")
    slack.push_message(channel, user, code.code)
    await slack.wait_for(lambda: any(t.startswith("Paired!") for t in texts(slack, channel)), WAIT)


async def say(slack: FakeSlack, text: str, *, channel: str = OWNER_DM, user: SlackUser = OWNER,
              reply: str | None = None, **kwargs: Any) -> dict[str, Any]:
    """The person writes; waits for the bot's reply (default ``echo: <text>``) in the same conversation."""
    event = slack.push_message(channel, user, text, **kwargs)
    expected = reply if reply is not None else f"echo: {text}"
    await slack.wait_for(lambda: expected in texts(slack, channel), WAIT)
    return event


async def next_event(queue: asyncio.Queue[Event], kinds: tuple[str, ...], predicate: Callable[[dict[str, Any]], bool]
                     = lambda _: True, timeout: float = WAIT) -> Event:
    """The next event of one of ``kinds`` whose data matches."""
    async with asyncio.timeout(timeout):
        while True:
            event = await queue.get()
            if event.kind in kinds and predicate(event.data):
                return event


async def sessions_of(host: Host, agent_id: str, channel: str) -> list[tuple[Session, Path]]:
    chat = await messaging.find(host.db, "slack", channel)
    assert chat is not None
    found = [s for s in await sessions_db.list_for_agent(host.db, agent_id) if s.messaging_group_id == chat.id]
    return [(s, host.store.dir(agent_id, s.id)) for s in found]


async def dm_session(host: Host, agent_id: str, channel: str = OWNER_DM) -> tuple[Session, Path]:
    found = await sessions_of(host, agent_id, channel)
    assert found, "the chat has no session yet"
    return found[0]


async def inbound_rows(host: Host, folder: Path) -> list[dict[str, Any]]:
    """The chat messages the agent's session received (its ``messages_in``), oldest first."""
    rows = await host.store.read(
        folder, lambda conn: conn.execute("SELECT kind, content FROM messages_in ORDER BY seq").fetchall(),
        with_outbound=False,
    )
    return [json.loads(r[1]) for r in rows if r[0] == "chat"]


async def inbound_texts(host: Host, folder: Path) -> list[str]:
    return [row.get("text", "") for row in await inbound_rows(host, folder)]
