"""``nanoclaw tasks``: the same service layer as the page, over this machine's database, from a terminal."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest

from nanoclaw_app.cli import main
from nanoclaw_app.core import scheduling
from nanoclaw_app.core.scheduling import NewTask
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.services.offline import offline_services
from nanoclaw_app.settings import load_settings
from nanoclaw_app.timeutil import iso, utcnow
from tests.integration.seed import seed


@pytest.fixture(autouse=True)
def berlin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NANOCLAW_TIMEZONE", "Europe/Berlin")


def seed_task() -> str:
    """One daily 7:30 task in the owner's DM, scheduled the way the agent's request is applied."""

    async def run() -> str:
        async with offline_services(load_settings()) as services:
            ctx = services.ctx
            ids = await seed(ctx.db)
            session, _ = await sessions_db.find_or_create(ctx.db, ids.agent_id, "shared", ids.dm_id, None)
            folder = await ctx.store.create(ids.agent_id, session.id)
            when = iso(scheduling.next_run("30 7 * * *", utcnow() + timedelta(minutes=1), ctx.settings.tz))
            task = NewTask(id="task-news", prompt="Summarise the morning news", process_after=when,
                           recurrence="30 7 * * *", channel_type="test", platform_id="owner")
            await ctx.store.write(folder, lambda conn: scheduling.schedule(conn, task))
            return session.id

    return asyncio.run(run())


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> object:
    capsys.readouterr()
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_tasks_list_prints_the_task_with_its_local_next_run(capsys: pytest.CaptureFixture[str]) -> None:
    seed_task()
    assert main(["tasks", "list"]) == 0
    out = capsys.readouterr().out
    assert "task-news" in out
    assert "Summarise the morning news" in out
    assert "30 7 * * *" in out
    assert "07:30" in out
    assert "(times in Europe/Berlin)" in out
    listed = run_json(capsys, "tasks", "list")
    assert isinstance(listed, dict)
    assert [t["id"] for t in listed["tasks"]] == ["task-news"]
    assert listed["tasks"][0]["next_run"].endswith(" 07:30")


def test_pause_resume_and_cancel_from_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    session_id = seed_task()
    assert main(["tasks", "pause", "task-news"]) == 0
    assert "is now paused" in capsys.readouterr().out
    paused = run_json(capsys, "tasks", "list", "--status", "paused")
    assert isinstance(paused, dict)
    assert [t["id"] for t in paused["tasks"]] == ["task-news"]
    resumed = run_json(capsys, "tasks", "resume", "task-news", "--session", session_id)
    assert isinstance(resumed, dict)
    assert resumed["status"] == "pending"
    cancelled = run_json(capsys, "tasks", "cancel", "task-news")
    assert isinstance(cancelled, dict)
    assert cancelled["status"] == "cancelled"
    assert main(["tasks", "list"]) == 0
    assert "no scheduled tasks" in capsys.readouterr().out


def test_an_unknown_or_finished_task_is_a_clear_error_not_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    seed_task()
    assert main(["tasks", "pause", "task-nope"]) == 1
    err = capsys.readouterr().err
    assert "no scheduled task 'task-nope'" in err
    assert "nanoclaw tasks list" in err
    assert main(["tasks", "cancel", "task-news"]) == 0
    assert main(["tasks", "resume", "task-news"]) == 1
    err = capsys.readouterr().err
    assert "already ran or was cancelled" in err
    assert "Traceback" not in err


def test_an_unreadable_session_db_is_reported_and_the_other_tasks_still_listed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed_task()

    async def break_one() -> str:
        async with offline_services(load_settings()) as services:
            ctx = services.ctx
            ids = await seed(ctx.db)
            session, _ = await sessions_db.find_or_create(ctx.db, ids.agent_id, "shared", ids.group_id, None)
            folder = await ctx.store.create(ids.agent_id, session.id)
            (folder / "inbound.db").write_bytes(b"this is not a database" * 100)
            return session.id

    broken = asyncio.run(break_one())
    assert main(["tasks", "list"]) == 1
    out = capsys.readouterr().out
    assert "task-news" in out
    assert f"warning: the tasks of Nano (session {broken}) cannot be read" in out
