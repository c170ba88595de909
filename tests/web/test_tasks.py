"""The scheduled-tasks page and API: every agent's tasks in one list; pause, resume and cancel reach the session DB."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import expect

from agent_runner.protocol import TaskSeries
from nanoclaw_app.core import scheduling
from nanoclaw_app.core.scheduling import NewTask
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.host import Host
from nanoclaw_app.timeutil import iso, utcnow
from tests.integration.seed import seed
from tests.web.conftest import shot

DAILY = "0 9 * * *"


@dataclass(frozen=True)
class Seeded:
    session_id: str
    folder: Path
    daily_id: str
    once_id: str
    daily_next_utc: str


async def seed_tasks(host: Host) -> Seeded:
    """Agent "Nano" in the owner's DM with a daily 9:00 task and a one-shot task in two days, as the agent schedules."""
    ids = await seed(host.db)
    session, _ = await sessions_db.find_or_create(host.db, ids.agent_id, "shared", ids.dm_id, None)
    folder = await host.store.create(session.agent_group_id, session.id)
    tz = host.settings.tz
    daily_next = iso(scheduling.next_run(DAILY, utcnow(), tz))
    daily = NewTask(id="task-plants", prompt="Remind me to water the plants on the balcony",
                    process_after=daily_next, recurrence=DAILY, channel_type="test", platform_id="owner")
    once = NewTask(id="task-dentist", prompt="Tell me to call the dentist about Friday",
                   process_after=iso(utcnow() + timedelta(days=2)), script="test -f /workspace/agent/dentist.txt",
                   channel_type="test", platform_id="owner")
    for task in (daily, once):
        await host.store.write(folder, partial(scheduling.schedule, task=task))
    return Seeded(session.id, folder, daily.id, once.id, daily_next)


async def live_tasks(host: Host, folder: Path) -> dict[str, TaskSeries]:
    listed = await host.store.read(folder, lambda conn: scheduling.list_tasks(conn), with_outbound=False)
    return {t.series_id: t for t in listed}


async def test_the_list_shows_each_task_with_its_agent_chat_schedule_and_local_next_run(
    web_host: Host, client: httpx.AsyncClient
) -> None:
    seeded = await seed_tasks(web_host)
    body = (await client.get("/api/tasks")).json()
    assert body["timezone"] == "Europe/Berlin"
    assert body["problems"] == []
    by_id = {t["id"]: t for t in body["tasks"]}
    assert list(by_id) == [seeded.daily_id, seeded.once_id]  # soonest first
    daily = by_id[seeded.daily_id]
    assert daily["agent_name"] == "Nano"
    assert daily["chat"] == "Owner DM"
    assert daily["schedule"] == "cron"
    assert daily["recurrence"] == DAILY
    assert daily["next_run"].endswith(" 09:00")  # 9:00 on the user's clock, whatever UTC says
    assert daily["next_run_utc"] == seeded.daily_next_utc
    assert daily["status"] == "pending"
    once = by_id[seeded.once_id]
    assert once["schedule"] == "once"
    assert once["has_script"] is True
    assert once["prompt"] == "Tell me to call the dentist about Friday"
    paused_only = (await client.get("/api/tasks", params={"status": "paused"})).json()
    assert paused_only["tasks"] == []


async def test_pause_resume_and_cancel_change_the_task_in_its_session_db(
    web_host: Host, client: httpx.AsyncClient
) -> None:
    seeded = await seed_tasks(web_host)
    paused = await client.post(f"/api/tasks/{seeded.daily_id}/pause")
    assert paused.status_code == 200, paused.text
    assert paused.json()["status"] == "paused"
    assert (await live_tasks(web_host, seeded.folder))[seeded.daily_id].status == "paused"

    again = await client.post(f"/api/tasks/{seeded.daily_id}/pause")
    assert again.status_code == 400
    assert "already paused" in again.json()["error"]

    resumed = await client.post(f"/api/tasks/{seeded.daily_id}/resume?session={seeded.session_id}")
    assert resumed.json()["status"] == "pending"
    assert (await live_tasks(web_host, seeded.folder))[seeded.daily_id].status == "pending"
    not_paused = await client.post(f"/api/tasks/{seeded.daily_id}/resume")
    assert "is not paused" in not_paused.json()["error"]

    cancelled = await client.post(f"/api/tasks/{seeded.daily_id}/cancel")
    assert cancelled.json()["status"] == "cancelled"
    assert seeded.daily_id not in await live_tasks(web_host, seeded.folder)
    recurrence = await web_host.store.read(seeded.folder, lambda conn: conn.execute(
        "SELECT recurrence FROM messages_in WHERE id = ?", (seeded.daily_id,)).fetchone()[0], with_outbound=False)
    assert recurrence is None  # the sweep will never clone it again
    listed = (await client.get("/api/tasks")).json()["tasks"]
    assert [t["id"] for t in listed] == [seeded.once_id]
    twice = await client.post(f"/api/tasks/{seeded.daily_id}/cancel")
    assert twice.status_code == 400
    assert "already ran or was cancelled" in twice.json()["error"]


async def test_an_unknown_task_id_is_a_404_that_says_where_the_ids_are(
    web_host: Host, client: httpx.AsyncClient
) -> None:
    await seed_tasks(web_host)
    response = await client.post("/api/tasks/task-nope/pause")
    assert response.status_code == 404
    assert "nanoclaw tasks list" in response.json()["error"]
    wrong_session = await client.post("/api/tasks/task-plants/pause?session=sess-nope")
    assert wrong_session.status_code == 404


async def test_pausing_a_task(web_host: Host, page: Any, base_url: str) -> None:
    seeded = await seed_tasks(web_host)
    await page.goto(f"{base_url}/tasks")
    row = page.locator(f"tr[data-task-id='{seeded.daily_id}']")
    await expect(row).to_contain_text("water the plants")
    await expect(row).to_contain_text("Scheduled")
    await row.get_by_role("button", name="Pause").click()
    await expect(row.locator(".badge")).to_have_text("Paused")
    await expect(row.get_by_role("button", name="Resume")).to_be_visible()
    assert (await live_tasks(web_host, seeded.folder))[seeded.daily_id].status == "paused"
    await shot(page, "tasks")

    other = page.locator(f"tr[data-task-id='{seeded.once_id}']")
    await other.get_by_role("button", name="Cancel task").click()
    await other.get_by_role("button", name="Yes, cancel it").click()
    await expect(page.locator(f"tr[data-task-id='{seeded.once_id}']")).to_have_count(0)
    assert seeded.once_id not in await live_tasks(web_host, seeded.folder)
    await expect(row.locator(".badge")).to_have_text("Paused")


async def test_without_tasks_the_page_says_how_to_get_one(web_host: Host, page: Any, base_url: str) -> None:
    await page.goto(f"{base_url}/tasks")
    await expect(page.locator("#tasks-list")).to_contain_text("Ask an agent in chat")
