"""A person answers an agent's ask_user_question card, and unknown clicks go nowhere."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from dataclasses import dataclass
from typing import Any

import pytest

from agent_runner.protocol import QuestionOption
from nanoclaw_app.core.approvals.service import ApprovalService
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.events import Event
from nanoclaw_app.db import agents, messaging
from nanoclaw_app.db import questions as questions_db
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.rows import Session
from tests.fakes.channel import FakeChannel
from tests.fakes.waker import RecordingWaker

OPTIONS = [QuestionOption("Pizza", "pizza", "🍕 Pizza it is"), QuestionOption("Sushi", "sushi")]


@dataclass
class Scene:
    ctx: CoreContext
    service: ApprovalService
    session: Session

    async def system_rows(self) -> list[dict[str, Any]]:
        folder = self.ctx.store.dir(self.session.agent_group_id, self.session.id)

        def run(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            return [dict(r) for r in conn.execute("SELECT * FROM messages_in WHERE kind = 'system' ORDER BY seq")]

        return await self.ctx.store.read(folder, run, with_outbound=False)


@pytest.fixture
async def scene(ctx: CoreContext) -> Scene:
    agent = await agents.create(ctx.db, "Helper")
    chat = await messaging.create(ctx.db, "test", "grp-1", is_group=True)
    session, _ = await sessions_db.find_or_create(ctx.db, agent.id, "shared", chat.id, None)
    await ctx.store.create(agent.id, session.id)
    await questions_db.create(
        ctx.db, question_id="q-lunch", session_id=session.id, message_out_id="out-1", platform_id="grp-1",
        channel_type="test", thread_id=None, title="Lunch?",
        options_json=json.dumps([o.to_dict() for o in OPTIONS]),
    )
    await questions_db.set_platform_message(ctx.db, "q-lunch", "test-m1")
    return Scene(ctx, ApprovalService(ctx), session)


async def test_a_click_hands_the_answer_to_the_waiting_agent_and_wakes_it(
    scene: Scene, channel: FakeChannel, waker: RecordingWaker
) -> None:
    assert await scene.service.on_action("q-lunch", "pizza", "test:carol")

    [row] = await scene.system_rows()
    assert row["trigger"] == 0
    assert json.loads(row["content"]) == {
        "type": "question_response", "question_id": "q-lunch", "selected_option": "pizza", "user_id": "test:carol"}
    assert waker.woken == [scene.session.id]
    question = await questions_db.get(scene.ctx.db, "q-lunch")
    assert question is not None
    assert question.answered_at is not None
    [edit] = channel.sent
    assert (edit.platform_id, edit.message.kind, edit.message.target_message_id) == ("grp-1", "edit", "test-m1")
    assert edit.message.text == "Lunch?\n\n🍕 Pizza it is"


async def test_a_second_click_is_ignored(scene: Scene, channel: FakeChannel, waker: RecordingWaker) -> None:
    await scene.service.on_action("q-lunch", "sushi", "test:carol")
    assert await scene.service.on_action("q-lunch", "pizza", "test:dan")

    rows = await scene.system_rows()
    assert [json.loads(r["content"])["selected_option"] for r in rows] == ["sushi"]
    assert len(channel.sent) == 1
    assert channel.sent[0].message.text == "Lunch?\n\n✅ Sushi"
    assert waker.woken == [scene.session.id]


async def test_an_option_the_card_never_had_is_ignored(scene: Scene) -> None:
    assert await scene.service.on_action("q-lunch", "tacos", "test:carol")

    assert await scene.system_rows() == []
    question = await questions_db.get(scene.ctx.db, "q-lunch")
    assert question is not None
    assert question.answered_at is None


async def test_a_click_on_an_unknown_card_is_logged_and_unclaimed(scene: Scene, ctx: CoreContext) -> None:
    async with ctx.events.subscribe() as events:
        assert not await scene.service.on_action("nope-123", "approve", "test:carol")
        kinds = [e.kind for e in _drain(events)]

    assert kinds == ["approval.unknown_click"]


def _drain(events: asyncio.Queue[Event]) -> list[Event]:
    return [events.get_nowait() for _ in range(events.qsize())]
