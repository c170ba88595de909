"""``nanoclaw approvals ...``: the queue from a terminal; decisions go to the running app when there is one."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import pytest

from nanoclaw_app.cli import main
from nanoclaw_app.core.messages import InboundMessage
from nanoclaw_app.db import agents, denials, messaging, users
from nanoclaw_app.db import approvals as approvals_db
from nanoclaw_app.db.database import Database
from nanoclaw_app.db.migrate import migrate
from nanoclaw_app.host import Host
from nanoclaw_app.paths import Paths
from nanoclaw_app.secrets.store import SecretStore
from nanoclaw_app.settings import Settings, load_settings
from nanoclaw_app.timeutil import later_iso
from tests.fakes.channel import FakeChannel
from tests.fakes.keyring import MemoryKeyring
from tests.fakes.runtime import InProcessRuntime
from tests.integration.seed import Seeded, seed

STRANGER = "test:stranger"
T = TypeVar("T")


async def _held(db: Database, seeded: Seeded, text: str = "hi, I'm Sam") -> str:
    """A stranger's message held in the Family group, as the router leaves it."""
    await users.upsert(db, STRANGER, "test", "Sam")
    msg = InboundMessage(channel_type="test", platform_id="group-1", message_id="s1", sender_id="stranger",
                         sender_name="Sam", text=text, is_group=True, is_mention=True, chat_name="Family")
    await approvals_db.create_sender_approval(
        db, approval_id="nsa-test-1", messaging_group_id=seeded.group_id, agent_group_id=seeded.agent_id,
        sender_identity=STRANGER, sender_name="Sam", original_message=msg.to_json(), approver_user_id="test:owner",
        channel_type="test", platform_id="owner", title="New sender", options_json="[]",
        expires_at=later_iso(3600),
    )
    return "nsa-test-1"


def _offline_scene() -> Seeded:
    async def go() -> Seeded:
        paths = Paths.from_env()
        paths.ensure()
        async with Database(paths.central_db) as db:
            await migrate(db)
            done = await seed(db)
            await _held(db, done)
            await approvals_db.create_approval(
                db, approval_id="appr-test-1", session_id=None, action="install_packages",
                payload={"apt": ["jq"], "pip": []}, agent_group_id=done.agent_id, approver_user_id="test:owner",
                channel_type="test", platform_id="owner", title="Install packages?", options_json="[]",
                expires_at=later_iso(3600),
            )
            return done
    return asyncio.run(go())


def _read(fn: Callable[[Database], Awaitable[T]]) -> T:
    async def go() -> T:
        async with Database(Paths.from_env().central_db) as db:
            return await fn(db)
    return asyncio.run(go())


def test_list_shows_every_waiting_request(capsys: pytest.CaptureFixture[str]) -> None:
    _offline_scene()
    assert main(["approvals", "list"]) == 0
    out = capsys.readouterr().out
    assert "nsa-test-1" in out
    assert "Sam wants to talk to Nano in Family" in out
    assert "appr-test-1" in out
    assert "install_packages (apt: jq)" in out

    assert main(["approvals", "list", "--kind", "sender", "--json"]) == 0
    items = json.loads(capsys.readouterr().out)
    assert [(i["id"], i["who"], i["message"]) for i in items] == [("nsa-test-1", "Sam", "hi, I'm Sam")]


def test_without_the_app_running_letting_a_sender_in_is_refused_with_the_reason(
    capsys: pytest.CaptureFixture[str],
) -> None:
    seeded = _offline_scene()
    assert main(["approvals", "approve", "nsa-test-1"]) == 1
    assert "needs NanoClaw running" in capsys.readouterr().err
    assert _read(lambda db: approvals_db.get_sender_approval(db, "nsa-test-1")) is not None  # still waiting
    assert not _read(lambda db: users.is_member(db, STRANGER, seeded.agent_id))


def test_without_the_app_running_a_sender_can_still_be_turned_away(capsys: pytest.CaptureFixture[str]) -> None:
    seeded = _offline_scene()
    assert main(["approvals", "reject", "nsa-test-1"]) == 0
    assert capsys.readouterr().out.startswith("denied: Sam was turned away")
    assert _read(lambda db: denials.is_denied(db, seeded.group_id, STRANGER))


def test_an_agents_request_is_approved_as_the_owner(capsys: pytest.CaptureFixture[str]) -> None:
    seeded = _offline_scene()
    assert main(["approvals", "approve", "appr-test-1", "--json"]) == 0
    decision = json.loads(capsys.readouterr().out)
    assert (decision["outcome"], decision["count"]) == ("approved", 1)
    row = _read(lambda db: approvals_db.get_approval(db, "appr-test-1"))
    assert row is not None
    assert (row.status, row.decided_by) == ("approved", "test:owner")
    config = _read(lambda db: agents.get_config(db, seeded.agent_id))
    assert config is not None
    assert json.loads(config.packages_apt) == ["jq"]

    assert main(["approvals", "reject", "appr-test-1"]) == 1
    assert "already approved" in capsys.readouterr().err


def test_nobody_can_decide_before_there_is_an_owner(capsys: pytest.CaptureFixture[str]) -> None:
    _offline_scene()
    _read(lambda db: users.revoke(db, "test:owner", "owner"))
    assert main(["approvals", "reject", "nsa-test-1"]) == 1
    assert "nobody is owner yet" in capsys.readouterr().err


@pytest.fixture
async def running(settings: Settings, channel: FakeChannel) -> AsyncIterator[tuple[Host, Seeded]]:
    fast = load_settings(settings.paths, timezone="Europe/Berlin", port=0, sweep_interval_seconds=0.2,
                         retry_base_seconds=0.05, fallback_poll_seconds=0.2)
    host = Host(fast, runtime=InProcessRuntime(), adapters=[channel], secrets=SecretStore(MemoryKeyring()))
    await host.start()
    try:
        seeded = await seed(host.db)
        await messaging.update(host.db, seeded.group_id, unknown_sender_policy="request_approval")
        yield host, seeded
    finally:
        await host.stop()


async def test_with_the_app_running_the_decision_is_made_there_and_the_message_answered(
    running: tuple[Host, Seeded], channel: FakeChannel, capsys: pytest.CaptureFixture[str]
) -> None:
    host, seeded = running
    approval_id = await _held(host.db, seeded, "@Nano what time is it?")

    code = await asyncio.to_thread(main, ["approvals", "approve", approval_id])

    assert code == 0
    assert capsys.readouterr().out.startswith("allowed: Sam may now talk to Nano")
    await channel.wait_sent(1)
    assert channel.texts() == ["echo: @Nano what time is it?"]
    assert await users.is_member(host.db, STRANGER, seeded.agent_id)
    assert await host.db.fetchval("SELECT COUNT(*) FROM web_sessions") == 0  # the command signed out again
