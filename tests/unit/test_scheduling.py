"""Scheduling: series semantics, the user's timezone for naive times and cron, recurrence cloning (reference §8.1)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from agent_runner.protocol import ChatContent
from nanoclaw_app.core import scheduling
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.scheduling import NewTask
from nanoclaw_app.db import agents, messaging
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.errors import UserError

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
async def setup(ctx):
    agent = await agents.create(ctx.db, "Helper")
    chat = await messaging.create(ctx.db, "test", "chat-1", name="Family")
    await messaging.wire(ctx.db, chat.id, agent.id)
    session, _ = await sessions_db.find_or_create(ctx.db, agent.id, "shared", chat.id, None)
    folder = await ctx.store.create(agent.id, session.id)
    return session, folder


async def write(ctx: CoreContext, folder: Path, fn: Callable[[sqlite3.Connection], Any]) -> Any:
    return await ctx.store.write(folder, fn)


async def rows(ctx: CoreContext, folder: Path, where: str = "kind = 'task'") -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = await ctx.store.read(
        folder, lambda c: [dict(r) for r in c.execute(f"SELECT * FROM messages_in WHERE {where} ORDER BY seq")],
        with_outbound=False)
    return found


async def notes(ctx: CoreContext, folder: Path) -> list[str]:
    found = await rows(ctx, folder, "kind = 'chat' AND channel_type = 'agent'")
    return [ChatContent.from_dict(json.loads(r["content"])).text for r in found]


def task(task_id: str, *, recurrence: str | None = None, prompt: str = "noop", script: str | None = None,
         when: str = "2030-01-01T08:00:00.000Z") -> NewTask:
    return NewTask(id=task_id, prompt=prompt, process_after=when, script=script, recurrence=recurrence)


async def recurring_chain(ctx: CoreContext, folder: Path) -> None:
    """task-orig ran and completed; the sweep cloned the live follow-up."""
    await write(ctx, folder, lambda c: scheduling.schedule(c, task("task-orig", recurrence="0 9 * * *")))
    await write(ctx, folder, lambda c: c.execute("UPDATE messages_in SET status = 'completed' WHERE id = 'task-orig'"))
    assert await write(ctx, folder, lambda c: scheduling.clone_recurring(c, BERLIN)) == 1


async def live(ctx: CoreContext, folder: Path) -> dict[str, Any]:
    found = [r for r in await rows(ctx, folder) if r["id"] != "task-orig"]
    assert len(found) == 1
    return found[0]


# --------------------------------------------------------------------------------------------- series semantics


async def test_a_new_task_is_its_own_series(ctx, setup):
    _, folder = setup
    seq = await write(ctx, folder, lambda c: scheduling.schedule(c, task("task-1", script="test -f /srv/flag")))
    (row,) = await rows(ctx, folder)
    assert seq % 2 == 0
    assert (row["series_id"], row["status"], row["process_after"]) == ("task-1", "pending", "2030-01-01T08:00:00.000Z")
    assert json.loads(row["content"]) == {"prompt": "noop", "script": "test -f /srv/flag"}


async def test_cancel_by_the_original_id_reaches_the_live_follow_up(ctx, setup):
    _, folder = setup
    await recurring_chain(ctx, folder)
    assert await write(ctx, folder, lambda c: scheduling.cancel(c, "task-orig")) == 1
    follow_up = await live(ctx, folder)
    assert (follow_up["status"], follow_up["recurrence"]) == ("completed", None)
    assert await write(ctx, folder, lambda c: scheduling.clone_recurring(c, BERLIN)) == 0  # the series is over


async def test_pause_and_resume_by_the_original_id(ctx, setup):
    _, folder = setup
    await recurring_chain(ctx, folder)
    assert await write(ctx, folder, lambda c: scheduling.pause(c, "task-orig")) == 1
    assert (await live(ctx, folder))["status"] == "paused"
    assert await write(ctx, folder, lambda c: scheduling.pause(c, "task-orig")) == 0
    assert await write(ctx, folder, lambda c: scheduling.resume(c, "task-orig")) == 1
    assert (await live(ctx, folder))["status"] == "pending"


async def test_update_merges_into_the_live_row_only(ctx, setup):
    _, folder = setup
    await recurring_chain(ctx, folder)
    changed = await write(ctx, folder, lambda c: scheduling.update(c, "task-orig", prompt="new prompt"))
    assert changed == 1
    assert json.loads((await live(ctx, folder))["content"])["prompt"] == "new prompt"
    (orig,) = [r for r in await rows(ctx, folder) if r["id"] == "task-orig"]
    assert json.loads(orig["content"])["prompt"] == "noop"


async def test_update_keeps_other_content_and_clears_script_and_recurrence_on_request(ctx, setup):
    _, folder = setup
    await write(ctx, folder, lambda c: scheduling.schedule(c, task("task-1", recurrence="0 9 * * *",
                                                                    script="echo hi")))
    await write(ctx, folder, lambda c: c.execute(
        "UPDATE messages_in SET content = json_set(content, '$.extra', 'keep me') WHERE id = 'task-1'"))
    await write(ctx, folder, lambda c: scheduling.update(c, "task-1", prompt="p2"))
    (row,) = await rows(ctx, folder)
    assert json.loads(row["content"]) == {"prompt": "p2", "script": "echo hi", "extra": "keep me"}
    await write(ctx, folder, lambda c: scheduling.update(c, "task-1", script=None, recurrence=None,
                                                         process_after="2031-01-01T00:00:00.000Z"))
    (row,) = await rows(ctx, folder)
    assert "script" not in json.loads(row["content"])
    assert (row["recurrence"], row["process_after"]) == (None, "2031-01-01T00:00:00.000Z")


async def test_update_matches_nothing_once_the_task_is_done(ctx, setup):
    _, folder = setup
    await write(ctx, folder, lambda c: scheduling.schedule(c, task("task-1")))
    await write(ctx, folder, lambda c: c.execute("UPDATE messages_in SET status = 'completed'"))
    assert await write(ctx, folder, lambda c: scheduling.update(c, "task-1", prompt="late")) == 0


async def test_list_shows_one_row_per_series(ctx, setup):
    _, folder = setup
    await recurring_chain(ctx, folder)
    await write(ctx, folder, lambda c: scheduling.schedule(c, task("task-2", prompt="x" * 200)))
    await write(ctx, folder, lambda c: scheduling.pause(c, "task-2"))
    listed = await ctx.store.read(folder, scheduling.list_tasks, with_outbound=False)
    assert sorted(t.series_id for t in listed) == ["task-2", "task-orig"]
    paused = await ctx.store.read(folder, lambda c: scheduling.list_tasks(c, "paused"), with_outbound=False)
    assert [(t.id, t.status, len(t.prompt_preview)) for t in paused] == [("task-2", "paused", 80)]


# --------------------------------------------------------------------------------------------- time and recurrence


def test_next_run_keeps_local_wall_time_across_the_spring_dst_change():
    before = scheduling.next_run("0 9 * * *", datetime(2026, 3, 28, 8, 30, tzinfo=UTC), BERLIN)
    after = scheduling.next_run("0 9 * * *", before, BERLIN)
    assert before == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)  # 09:00 CEST
    assert after == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)
    assert scheduling.next_run("0 9 * * *", datetime(2026, 3, 27, 12, 0, tzinfo=UTC), BERLIN) == datetime(
        2026, 3, 28, 8, 0, tzinfo=UTC)  # 09:00 CET, the day before


def test_next_run_across_the_autumn_dst_change():
    assert scheduling.next_run("0 9 * * *", datetime(2026, 10, 24, 8, 0, tzinfo=UTC), BERLIN) == datetime(
        2026, 10, 25, 8, 0, tzinfo=UTC)  # 09:00 CET again


async def test_cloning_a_recurring_task_across_dst_keeps_the_series_and_local_time(ctx, setup):
    _, folder = setup
    await write(ctx, folder, lambda c: scheduling.schedule(
        c, task("task-daily", recurrence="0 9 * * *", when="2026-03-28T08:00:00.000Z")))
    await write(ctx, folder, lambda c: c.execute(
        "UPDATE messages_in SET status = 'completed', content = json_set(content, '$.script_output', 'ok')"))
    now = datetime(2026, 3, 28, 8, 5, tzinfo=UTC)
    assert await write(ctx, folder, lambda c: scheduling.clone_recurring(c, BERLIN, now=now)) == 1
    old, new = await rows(ctx, folder)
    assert old["recurrence"] is None
    assert (new["status"], new["series_id"], new["recurrence"]) == ("pending", "task-daily", "0 9 * * *")
    assert new["process_after"] == "2026-03-29T07:00:00.000Z"
    assert "script_output" not in json.loads(new["content"])
    assert await write(ctx, folder, lambda c: scheduling.clone_recurring(c, BERLIN, now=now)) == 0


async def test_a_failed_occurrence_still_recurs(ctx, setup):
    _, folder = setup
    await write(ctx, folder, lambda c: scheduling.schedule(c, task("task-1", recurrence="*/5 * * * *")))
    await write(ctx, folder, lambda c: c.execute("UPDATE messages_in SET status = 'failed'"))
    assert await write(ctx, folder, lambda c: scheduling.clone_recurring(c, BERLIN)) == 1


def test_a_naive_time_is_read_in_the_users_timezone():
    assert scheduling.parse_when("2026-07-01T09:00:00", BERLIN) == datetime(2026, 7, 1, 7, 0, tzinfo=UTC)
    assert scheduling.parse_when("2026-07-01T09:00:00Z", BERLIN) == datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
    assert scheduling.parse_when("2026-07-01T09:00:00+01:00", BERLIN) == datetime(2026, 7, 1, 8, 0, tzinfo=UTC)


# --------------------------------------------------------------------------------------------- actions


async def test_schedule_task_reads_a_naive_time_in_the_users_timezone(ctx, setup):
    session, folder = setup
    task_id = await scheduling.schedule_task(ctx, session, {"prompt": "stretch", "processAfter": "2030-07-01T09:00"})
    (row,) = await rows(ctx, folder)
    assert row["id"] == task_id
    assert row["process_after"] == "2030-07-01T07:00:00.000Z"  # Europe/Berlin is UTC+2 in July
    assert (row["channel_type"], row["platform_id"]) == ("test", "chat-1")  # the reply goes to the session's chat


async def test_schedule_task_uses_the_containers_task_id_so_a_repeat_is_harmless(ctx, setup):
    session, folder = setup
    payload = {"prompt": "p", "process_after": "2030-01-01T00:00:00Z", "task_id": "task-abc"}
    await scheduling.schedule_task(ctx, session, payload)
    await scheduling.schedule_task(ctx, session, payload)
    assert [r["id"] for r in await rows(ctx, folder)] == ["task-abc"]


async def test_a_recurring_task_without_a_start_runs_at_the_next_cron_time(ctx, setup):
    session, folder = setup
    await scheduling.schedule_task(ctx, session, {"prompt": "news", "recurrence": "0 7 * * *"})
    (row,) = await rows(ctx, folder)
    local = datetime.fromisoformat(row["process_after"].replace("Z", "+00:00")).astimezone(BERLIN)
    assert (local.hour, local.minute) == (7, 0)
    assert row["recurrence"] == "0 7 * * *"


async def test_an_invalid_recurrence_is_explained_to_the_agent(ctx, setup, waker):
    session, folder = setup
    assert await scheduling.schedule_task(ctx, session, {"prompt": "p", "recurrence": "every day at 9"}) is None
    assert await rows(ctx, folder) == []
    (note,) = await notes(ctx, folder)
    assert "schedule_task" in note
    assert "cron" in note
    assert session.id in waker.woken


async def test_an_unparseable_time_is_explained_to_the_agent(ctx, setup):
    session, folder = setup
    await scheduling.schedule_task(ctx, session, {"prompt": "p", "processAfter": "tomorrow-ish"})
    (note,) = await notes(ctx, folder)
    assert "not an ISO date-time" in note


async def test_update_task_with_no_match_tells_the_agent(ctx, setup):
    session, folder = setup
    assert await scheduling.update_task(ctx, session, {"taskId": "task-ghost", "prompt": "x"}) == 0
    (note,) = await notes(ctx, folder)
    assert "task-ghost" in note


async def test_update_task_empty_recurrence_makes_it_one_shot_and_empty_script_clears(ctx, setup):
    session, folder = setup
    await scheduling.schedule_task(ctx, session, {"prompt": "p", "recurrence": "0 9 * * *", "script": "true",
                                                  "task_id": "task-1"})
    assert await scheduling.update_task(ctx, session, {"task_id": "task-1", "recurrence": "", "script": "",
                                                       "processAfter": "2030-01-01T10:00"}) == 1
    (row,) = await rows(ctx, folder)
    assert row["recurrence"] is None
    assert "script" not in json.loads(row["content"])
    assert row["process_after"] == "2030-01-01T09:00:00.000Z"


async def test_cancel_pause_resume_actions_tell_the_agent_when_nothing_matched(ctx, setup):
    session, folder = setup
    for fn in (scheduling.cancel_task, scheduling.pause_task, scheduling.resume_task):
        assert await fn(ctx, session, {"task_id": "task-none"}) == 0
    assert len(await notes(ctx, folder)) == 3


async def test_cancel_task_action_ends_a_recurring_series(ctx, setup):
    session, folder = setup
    await recurring_chain(ctx, folder)
    assert await scheduling.cancel_task(ctx, session, {"taskId": "task-orig"}) == 1
    assert [r["status"] for r in await rows(ctx, folder)] == ["completed", "completed"]
    assert await notes(ctx, folder) == []


def test_check_cron_wants_five_fields():
    assert scheduling.check_cron(" 0  9 * * 1-5 ") == "0 9 * * 1-5"
    for bad in ("0 9 * *", "0 9 * * * *", "61 9 * * *"):
        with pytest.raises(UserError, match="recurrence"):
            scheduling.check_cron(bad)
