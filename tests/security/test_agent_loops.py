"""Agents cannot multiply or loop: agent creation needs an admin, refusals feed no loop, and a turn budget stops any
runaway, whatever its cause (issue 12, item 3).

The real host runs with the in-process runtime; the hostile agent (``HostileRuntime``) writes whatever rows it likes
into its own ``outbound.db``, as a container's shell can.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent_runner.protocol import InboundRow
from nanoclaw_app.core.messages import InboundMessage
from nanoclaw_app.db import agents
from nanoclaw_app.db import approvals as approvals_db
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.rows import Session
from nanoclaw_app.host import Host
from nanoclaw_app.settings import Settings, load_settings
from tests.fakes.channel import FakeChannel, Sent
from tests.integration.seed import Seeded, seed
from tests.security.agent_loops_support import HostileRuntime, Out, action, quiet, reply, to_agent, write_outbound
from tests.waiting import until

OWNER = "test:owner"


@dataclass
class Scene:
    host: Host
    seeded: Seeded
    runtime: HostileRuntime
    channel: FakeChannel

    async def session(self) -> Session:
        """The agent's session with the owner (made by the first DM)."""
        found = await until(lambda: sessions_db.list_for_agent(self.host.db, self.seeded.agent_id))
        return found[0]  # type: ignore[no-any-return]

    def folder(self, session: Session) -> Path:
        return self.host.store.dir(session.agent_group_id, session.id)

    def cards(self) -> list[Sent]:
        return [s for s in self.channel.sent if s.message.kind == "question"]

    def texts(self) -> list[str]:
        return [s.message.text for s in self.channel.sent if s.message.kind == "text"]

    async def pending_rows(self, session: Session) -> list[str]:
        """Texts of rows still waiting for the agent in its ``inbound.db``."""
        return await self.host.store.read(self.folder(session), lambda conn: [
            r[0] for r in conn.execute("SELECT content FROM messages_in WHERE status = 'pending' AND trigger = 1"
                                       " AND NOT EXISTS (SELECT 1 FROM ob.processing_ack a"
                                       " WHERE a.message_id = messages_in.id) ORDER BY seq")])


Start = Callable[..., Awaitable[Scene]]


@pytest.fixture
async def start(settings: Settings, channel: FakeChannel) -> AsyncIterator[Start]:
    hosts: list[Host] = []

    async def run(script: Callable[[str, list[InboundRow]], list[Out]] | None = None, **overrides: Any) -> Scene:
        fast = load_settings(settings.paths, timezone="Europe/Berlin", port=0, sweep_interval_seconds=0.2,
                             retry_base_seconds=0.05, fallback_poll_seconds=0.2, **overrides)
        runtime = HostileRuntime(script=script)
        host = Host(fast, runtime=runtime, adapters=[channel], serve_web=False)
        await host.start()
        hosts.append(host)
        return Scene(host, await seed(host.db), runtime, channel)

    try:
        yield run
    finally:
        for host in hosts:
            await host.stop()


def dm(text: str, message_id: str) -> InboundMessage:
    return InboundMessage(channel_type="test", platform_id="owner", message_id=message_id, sender_id="owner",
                          sender_name="Owner", text=text)


# --------------------------------------------------------------------------------------------- create_agent


async def test_an_agent_asking_for_25_agents_gets_one_card_and_nothing_is_made_before_an_admin_approves(
    start: Start,
) -> None:
    scene = await start()
    await scene.channel.inject(dm("hello", "m1"))
    session = await scene.session()
    folder = scene.folder(session)
    await until(lambda: scene.runtime.turns.get(session.id))

    # The container's shell writes 25 create_agent requests straight into its outbound.db.
    await asyncio.to_thread(write_outbound, folder, [action("create_agent", name=f"Clone {n}") for n in range(25)])
    await until(lambda: quiet(folder))

    assert [a.name for a in await agents.list_all(scene.host.db)] == ["Nano"]
    [card] = scene.cards()
    assert card.platform_id == "owner"
    assert "Clone 0" in card.message.text
    assert len(await approvals_db.list_pending_approvals(scene.host.db)) == 1

    await scene.channel.click(card.message.question_id or "", "approve", OWNER)

    assert sorted(a.name for a in await agents.list_all(scene.host.db)) == ["Clone 0", "Nano"]
    assert len(scene.cards()) == 1


async def test_an_agent_cannot_create_more_agents_than_the_cap_even_with_approval(start: Start) -> None:
    scene = await start(max_agents_created_by_agents=1)
    await scene.channel.inject(dm("hello", "m1"))
    session = await scene.session()
    folder = scene.folder(session)
    await until(lambda: scene.runtime.turns.get(session.id))
    await asyncio.to_thread(write_outbound, folder, [action("create_agent", name="First")])
    [card] = await until(scene.cards)
    await scene.channel.click(card.message.question_id or "", "approve", OWNER)

    await asyncio.to_thread(write_outbound, folder, [action("create_agent", name="Second")])
    await until(lambda: quiet(folder))

    assert sorted(a.name for a in await agents.list_all(scene.host.db)) == ["First", "Nano"]
    assert len(scene.cards()) == 1  # the second request never reached an admin


# --------------------------------------------------------------------------------------------- refusals


async def test_refused_agent_messages_do_not_wake_the_sender_again_and_again(start: Start) -> None:
    attempts: list[str] = []

    def write_to_ghosts(session_id: str, rows: list[InboundRow]) -> list[Out]:
        if len(attempts) >= 30:  # an upper bound, so the old loop ends too
            return []
        attempts.append(f"ag-ghost-{len(attempts)}")
        return [to_agent(attempts[-1], "are you there?")]

    scene = await start(write_to_ghosts)
    await scene.channel.inject(dm("talk to your friends", "m1"))
    session = await scene.session()
    folder = scene.folder(session)
    await until(lambda: scene.runtime.turns.get(session.id) and quiet(folder))

    # One turn for the owner's message, one for the first refusal; later refusals arrive as context, not as turns.
    assert scene.runtime.turns[session.id] == 2
    notes = await scene.host.store.read(folder, lambda conn: [
        (r[0], r[1]) for r in conn.execute(
            "SELECT content, trigger FROM messages_in WHERE channel_type = 'agent' ORDER BY seq")])
    assert [trigger for _, trigger in notes] == [1, 0]
    assert all("not delivered" in content for content, _ in notes)
    # Nothing vanished: the owner's message was answered, and each refused message is recorded with its reason.
    refused = await scene.host.store.read(folder, lambda conn: [
        r[0] for r in conn.execute("SELECT error FROM delivered WHERE status = 'failed' ORDER BY rowid")])
    assert refused == ["there is no agent ag-ghost-0", "there is no agent ag-ghost-1"]


# --------------------------------------------------------------------------------------------- the turn budget


async def test_a_runaway_loop_is_paused_within_the_budget_the_owner_told_once_and_no_message_lost(
    start: Start,
) -> None:
    """Two bots answering each other in a chat: no per-cause rule knows this loop; the turn budget stops it."""
    scene = await start(lambda _sid, rows: [reply(rows[-1], "echo")])
    budget = scene.host.settings.turn_budget
    bounced = 0
    stop = asyncio.Event()

    async def other_bot() -> None:
        nonlocal bounced
        seen = 0
        while not stop.is_set():
            for sent in scene.channel.sent[seen:]:
                if sent.message.kind == "text" and sent.message.text == "echo":
                    bounced += 1
                    await scene.channel.inject(dm(f"bounce {bounced}", f"b{bounced}"))
                seen += 1
            await asyncio.sleep(0.01)

    bot = asyncio.create_task(other_bot())
    try:
        await scene.channel.inject(dm("start", "m0"))
        [card] = await until(scene.cards)
    finally:
        stop.set()
        await bot
    session = await scene.session()
    turns = scene.runtime.turns[session.id]
    assert turns <= budget + 1  # the message that tipped the budget was already in the session
    assert "Nano" in card.message.text
    assert card.platform_id == "owner"

    # While paused, new messages are kept and nothing wakes the agent, however often the sweep looks.
    await scene.channel.inject(dm("are you there?", "m-late-1"))
    await scene.channel.inject(dm("hello?", "m-late-2"))
    for _ in range(3):
        await scene.host.sweep.sweep_once()
    assert session.id not in scene.runtime.running
    assert scene.runtime.turns[session.id] == turns
    held = await scene.pending_rows(session)
    assert any("are you there?" in h for h in held)
    assert any("hello?" in h for h in held)
    assert len(scene.cards()) == 1

    await scene.channel.click(card.message.question_id or "", "approve", OWNER)

    await until(_all_answered(scene, session))  # the held messages are answered once the owner says so
    assert len(scene.cards()) == 1


def _all_answered(scene: Scene, session: Session) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return not await scene.pending_rows(session) and scene.runtime.turns[session.id] > 0

    return check


async def test_a_paused_agent_continues_by_itself_after_the_cool_down(start: Start) -> None:
    scene = await start(lambda _sid, rows: [reply(rows[-1], "echo")], turn_budget=2, turn_pause_seconds=0.5)
    for n in range(3):
        await scene.channel.inject(dm(f"message {n}", f"m{n}"))
    await until(scene.cards)
    session = await scene.session()

    await until(_all_answered(scene, session))

    assert len(scene.cards()) == 1
