"""The app's side of the egress proxy: sites, credentials, approvals by card, and the activity rows it keeps.

Real SQLite, the real approval service and a real (in-memory) keyring behind the secret store; the card goes to a
fake channel's owner DM, where a click decides it as it would on Telegram.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from nanoclaw_app.core.approvals.service import ApprovalService
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.db import agents, credentials, egress_events, messaging, users
from nanoclaw_app.db import approvals as approvals_db
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.rows import Session
from nanoclaw_app.egress.decisions import ACTION, EgressDecisions
from nanoclaw_app.egress.policy import Caller, EgressRecord, Injection
from nanoclaw_app.secrets.store import SecretStore
from tests.fakes.channel import FakeChannel
from tests.fakes.keyring import MemoryKeyring

OWNER = "test:owner"
TOKEN = "ghp_SECRETvalue123"


@dataclass
class Scene:
    ctx: CoreContext
    approvals: ApprovalService
    decisions: EgressDecisions
    session: Session
    secrets: SecretStore
    ttl: list[float]

    @property
    def caller(self) -> Caller:
        return Caller(self.session.id, self.session.agent_group_id)

    async def credential(self, policy: str = "allow", *, pattern: str = "api.github.com",
                         agents_: object = "all", name: str = "GitHub") -> credentials.Credential:
        made = await credentials.create(self.ctx.db, name=name, host_pattern=pattern, kind="bearer",
                                        agents=agents_, policy=policy)  # type: ignore[arg-type]
        await self.secrets.set(credentials.secret_name(made.id), TOKEN)
        self.decisions._credentials = (0.0, [])  # the next question reads the table again
        return made

    async def notes(self) -> list[str]:
        folder = self.ctx.store.dir(self.session.agent_group_id, self.session.id)

        def run(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute("SELECT content FROM messages_in WHERE channel_type = 'agent' ORDER BY seq")
            return [json.loads(r["content"])["text"] for r in rows]

        return await self.ctx.store.read(folder, run, with_outbound=False)


@pytest.fixture
async def scene(ctx: CoreContext) -> AsyncIterator[Scene]:
    await users.upsert(ctx.db, OWNER, "test", "Olivia")
    await users.grant(ctx.db, OWNER, "owner")
    agent = await agents.create(ctx.db, "Nano")
    chat = await messaging.create(ctx.db, "test", "grp-1", name="Family", is_group=True)
    await messaging.wire(ctx.db, chat.id, agent.id)
    session, _ = await sessions_db.find_or_create(ctx.db, agent.id, "shared", chat.id, None)
    await ctx.store.create(agent.id, session.id)
    approvals = ApprovalService(ctx)
    secrets = SecretStore(MemoryKeyring())
    ttl = [5.0]
    decisions = EgressDecisions(db=ctx.db, secrets=secrets, approval_seconds=lambda: ttl[0])
    decisions.use_approvals(approvals)
    decisions.start()
    yield Scene(ctx, approvals, decisions, session, secrets, ttl)
    await decisions.stop()


async def test_a_credential_under_use_freely_is_added_without_asking(scene: Scene, channel: FakeChannel) -> None:
    made = await scene.credential("allow")

    plan = await scene.decisions.plan_connect(scene.caller, "api.github.com", 443)
    verdict = await scene.decisions.authorize(scene.caller, "GET", "api.github.com", 443, "/user")

    assert plan.intercept
    assert not plan.refused
    assert verdict.injection == Injection("bearer", "", TOKEN)
    assert (verdict.credential_id, verdict.decision, verdict.refused) == (made.id, "allowed", "")
    assert channel.sent == []


async def test_hosts_without_a_credential_of_this_agent_are_tunnelled_untouched(scene: Scene) -> None:
    other = await agents.create(scene.ctx.db, "Other")
    await scene.credential("allow", agents_=[other.id])

    plan = await scene.decisions.plan_connect(scene.caller, "api.github.com", 443)
    elsewhere = await scene.decisions.plan_connect(scene.caller, "pypi.org", 443)
    verdict = await scene.decisions.authorize(scene.caller, "GET", "api.github.com", 443, "/user")

    assert not plan.intercept
    assert not elsewhere.intercept
    assert verdict.injection is None
    assert verdict.credential_id is None


async def test_ask_each_time_holds_the_request_until_the_owner_allows_it_on_the_card(
    scene: Scene, channel: FakeChannel
) -> None:
    await scene.credential("ask")

    held = asyncio.create_task(scene.decisions.authorize(scene.caller, "POST", "api.github.com", 443, "/repos/x"))
    [card] = await channel.wait_sent(1)
    assert card.platform_id == "owner"
    assert "Nano" in (card.message.title or "")
    assert "GitHub" in (card.message.title or "")
    assert "POST api.github.com/repos/x" in (card.message.text or "")
    assert TOKEN not in repr(card.message)
    assert not held.done()

    await scene.approvals.on_action(card.message.question_id or "", "approve", OWNER)
    verdict = await asyncio.wait_for(held, 5)

    assert verdict.injection is not None
    assert verdict.decision == "approved"
    assert verdict.approved_by == OWNER
    assert any("allowed by Olivia" in note for note in await scene.notes())


async def test_a_denial_answers_with_a_reason_that_names_who_said_no(scene: Scene, channel: FakeChannel) -> None:
    await scene.credential("ask")

    held = asyncio.create_task(scene.decisions.authorize(scene.caller, "GET", "api.github.com", 443, "/user"))
    [card] = await channel.wait_sent(1)
    await scene.approvals.on_action(card.message.question_id or "", "reject", OWNER)
    verdict = await asyncio.wait_for(held, 5)

    assert verdict.injection is None
    assert verdict.decision == "denied"
    assert verdict.refused == "Olivia denied the use of the GitHub credential for GET api.github.com/user."
    assert any("request to use the GitHub credential for GET api.github.com/user was rejected by Olivia" in note
               for note in await scene.notes())


async def test_an_unanswered_card_expires_edited_and_the_agent_is_told(scene: Scene, channel: FakeChannel) -> None:
    await scene.credential("ask")
    scene.ttl[0] = 0.5

    verdict = await asyncio.wait_for(
        scene.decisions.authorize(scene.caller, "GET", "api.github.com", 443, "/user"), 10)

    assert verdict.decision == "expired"
    assert verdict.injection is None
    assert "Nobody answered" in verdict.refused
    assert await approvals_db.list_pending_approvals(scene.ctx.db) == []
    edits = [s for s in channel.sent if s.message.kind == "edit"]
    assert any("Expired" in (s.message.text or "") for s in edits)
    assert any("expired without a response" in note for note in await scene.notes())


async def test_ask_once_asks_once_per_conversation_even_for_parallel_requests(
    scene: Scene, channel: FakeChannel
) -> None:
    await scene.credential("ask_once")

    first = [asyncio.create_task(scene.decisions.authorize(scene.caller, "GET", "api.github.com", 443, f"/r/{n}"))
             for n in range(3)]
    [card] = await channel.wait_sent(1)
    await scene.approvals.on_action(card.message.question_id or "", "approve", OWNER)
    verdicts = await asyncio.wait_for(asyncio.gather(*first), 5)
    later = await scene.decisions.authorize(scene.caller, "GET", "api.github.com", 443, "/r/9")

    assert all(v.injection is not None for v in verdicts)
    assert later.injection is not None
    cards = [s for s in channel.sent if s.message.question_id and s.message.kind != "edit"]
    assert len(cards) == 1


async def test_a_pending_request_is_expired_at_the_next_host_start(scene: Scene, channel: FakeChannel) -> None:
    await scene.credential("ask")
    held = asyncio.create_task(scene.decisions.authorize(scene.caller, "GET", "api.github.com", 443, "/user"))
    [card] = await channel.wait_sent(1)
    while (row := await approvals_db.get_approval(scene.ctx.db, card.message.question_id or "")) is None \
            or row.platform_message_id is None:
        await asyncio.sleep(0.01)
    held.cancel()  # the process that held it ended

    fresh = ApprovalService(scene.ctx)
    fresh.register_handler(ACTION, scene.decisions._on_approved, live=True)
    assert await fresh.sweep_stale_on_start() == 1

    row = await approvals_db.get_approval(scene.ctx.db, card.message.question_id or "")
    assert row is not None
    assert row.status == "expired"
    assert any(s.message.kind == "edit" and "Expired" in (s.message.text or "") for s in channel.sent)


async def test_a_locked_store_refuses_in_words_and_never_asks(scene: Scene, channel: FakeChannel) -> None:
    await scene.credential("ask")
    scene.secrets.set_backend(None, "locked")

    verdict = await scene.decisions.authorize(scene.caller, "GET", "api.github.com", 443, "/user")

    assert verdict.decision == "refused"
    assert "locked" in verdict.refused
    assert channel.sent == []


async def test_only_these_sites_refuses_another_site_and_lets_subdomains_through(scene: Scene) -> None:
    await agents.set_egress(scene.ctx.db, scene.session.agent_group_id, "sites", ["github.com"])

    allowed = await scene.decisions.plan_connect(scene.caller, "api.github.com", 443)
    refused = await scene.decisions.plan_connect(scene.caller, "pypi.org", 443)

    assert not allowed.refused
    assert "pypi.org is not on the list of sites Nano may reach" in refused.refused


async def test_activity_rows_are_written_in_a_batch_without_any_value(scene: Scene) -> None:
    caller = scene.caller
    scene.decisions.record(EgressRecord(caller, "connect", "pypi.org", 443, "allowed"))
    scene.decisions.record(EgressRecord(caller, "request", "api.github.com", 443, "approved", method="GET",
                                        path="/user", credential_name="GitHub", approved_by=OWNER, status_code=200))
    await scene.decisions.stop()

    rows = await egress_events.recent(scene.ctx.db)
    assert [(r.kind, r.host, r.decision, r.status_code) for r in rows] == [
        ("request", "api.github.com", "approved", 200), ("connect", "pypi.org", "allowed", None)]
    dump = "\n".join(repr(r) for r in rows)
    assert TOKEN not in dump
