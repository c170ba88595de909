"""The tasks list tells the truth at once: a one-shot task the agent has carried out is no longer "pending", even
before the host's periodic sweep copies the container's acknowledgement into ``inbound.db``."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

import httpx
import pytest

from nanoclaw_app.core import scheduling
from nanoclaw_app.core.scheduling import NewTask
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.host import Host
from nanoclaw_app.settings import Settings, load_settings
from nanoclaw_app.timeutil import iso, utcnow
from tests.fakes.runtime import claim, write_replies
from tests.integration.seed import seed


@pytest.fixture
def web_settings(settings: Settings) -> Settings:
    """A sweep that does not come round during the test: only the list itself can notice the finished task."""
    return load_settings(settings.paths, timezone="Europe/Berlin", port=0, sweep_interval_seconds=3600,
                         retry_base_seconds=0.05, fallback_poll_seconds=0.2, runtime="local")


async def test_a_fired_one_shot_task_leaves_the_list_as_soon_as_the_agent_has_done_it(
    web_host: Host, client: httpx.AsyncClient
) -> None:
    ids = await seed(web_host.db)
    session, _ = await sessions_db.find_or_create(web_host.db, ids.agent_id, "shared", ids.dm_id, None)
    folder = await web_host.store.create(session.agent_group_id, session.id)
    due = NewTask(id="task-tea", prompt="Tell me the tea is ready", process_after=iso(utcnow() - timedelta(seconds=1)),
                  channel_type="test", platform_id="owner")
    daily = NewTask(id="task-plants", prompt="Water the plants", recurrence="0 9 * * *",
                    process_after=iso(scheduling.next_run("0 9 * * *", utcnow(), web_host.settings.tz)),
                    channel_type="test", platform_id="owner")
    for task in (due, daily):
        await web_host.store.write(folder, partial(scheduling.schedule, task=task))
    before = (await client.get("/api/tasks")).json()["tasks"]
    assert {t["id"]: t["status"] for t in before} == {"task-tea": "pending", "task-plants": "pending"}

    # The container takes the task, answers and acknowledges it, as the agent runner does.
    await web_host.store.run_io(lambda: claim(folder, ["task-tea"]))
    await web_host.store.run_io(lambda: write_replies(folder, [], ["task-tea"]))

    after = (await client.get("/api/tasks")).json()["tasks"]
    assert [t["id"] for t in after] == ["task-plants"]
    pending = (await client.get("/api/tasks", params={"status": "pending"})).json()["tasks"]
    assert [t["id"] for t in pending] == ["task-plants"]
