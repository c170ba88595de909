"""The People page's memory editor: what one agent remembers about each person, in that person's own file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from agent_runner.people_memory import person_file
from nanoclaw_app.db import agents, users
from nanoclaw_app.host import Host
from tests.integration.seed import Seeded, seed
from tests.web.conftest import shot

FRIEND = "test:friend"


@pytest.fixture
async def seeded(web_host: Host) -> Seeded:
    done = await seed(web_host.db)
    await users.upsert(web_host.db, FRIEND, "test", "Fran")
    await users.add_member(web_host.db, FRIEND, done.agent_id)
    return done


async def workspace(host: Host, agent_id: str) -> Path:
    agent = await agents.get(host.db, agent_id)
    assert agent is not None
    return host.settings.paths.agents / agent.folder


async def test_a_persons_memory_is_saved_in_their_own_file_and_a_stale_save_is_refused(
    client: httpx.AsyncClient, seeded: Seeded, web_host: Host
) -> None:
    folder = await workspace(web_host, seeded.agent_id)
    listed = (await client.get("/api/people/memories", params={"agent": seeded.agent_id})).json()
    assert [(p["user_id"], p["bytes"]) for p in listed["people"]] == [("test:owner", None), (FRIEND, None)]

    empty = (await client.get("/api/people/memory", params={"agent": seeded.agent_id, "user": FRIEND})).json()
    assert (empty["text"], empty["name"]) == ("", "Fran")
    saved = await client.post("/api/people/memory", json={
        "agent_group_id": seeded.agent_id, "user_id": FRIEND, "text": "Fran is allergic to nuts.",
        "base_version": empty["version"]})
    assert saved.status_code == 200
    assert (folder / person_file(FRIEND)).read_text(encoding="utf-8") == "Fran is allergic to nuts."
    assert not (folder / person_file("test:owner")).exists()  # nobody else's file was touched

    (folder / person_file(FRIEND)).write_text("Fran is allergic to nuts. Birthday 3 May.", encoding="utf-8")
    stale = await client.post("/api/people/memory", json={
        "agent_group_id": seeded.agent_id, "user_id": FRIEND, "text": "overwritten",
        "base_version": saved.json()["version"]})
    assert stale.status_code == 400
    assert "changed since you opened it" in stale.json()["error"]
    assert "Birthday" in (folder / person_file(FRIEND)).read_text(encoding="utf-8")
    listed = (await client.get("/api/people/memories", params={"agent": seeded.agent_id})).json()
    assert {p["user_id"]: p["bytes"] for p in listed["people"]}[FRIEND] == 41


async def test_the_people_page_edits_what_an_agent_remembers_about_one_person(
    page: Any, base_url: str, seeded: Seeded, web_host: Host
) -> None:
    folder = await workspace(web_host, seeded.agent_id)
    (folder / "people").mkdir(parents=True)
    (folder / person_file("test:owner")).write_text("Owner takes the train at 7:40.", encoding="utf-8")
    await page.goto(f"{base_url}/people")
    section = page.locator("#person-memory")
    await expect(section.get_by_label("Agent")).to_have_value(seeded.agent_id)
    await expect(section.get_by_label("Person")).to_contain_text("Fran (nothing yet)")
    await expect(page.locator("#memory-text")).to_be_hidden()  # nobody's memory is open until someone is picked
    await section.get_by_label("Person").select_option(label="Owner")
    await expect(page.get_by_label("What Nano remembers about Owner")).to_have_value("Owner takes the train at 7:40.")

    await section.get_by_label("Person").select_option(label="Fran (nothing yet)")
    editor = page.get_by_label("What Nano remembers about Fran")
    await expect(editor).to_have_value("")
    await editor.fill("Fran is allergic to nuts.")
    await section.get_by_role("button", name="Save memory").click()
    await expect(page.get_by_text("Saved. Nano reads it in Fran's next conversation.")).to_be_visible()
    assert (folder / person_file(FRIEND)).read_text(encoding="utf-8") == "Fran is allergic to nuts."
    await expect(section.get_by_label("Person")).to_contain_text("Fran")
    await shot(page, "people-memory")

    # The agent writes meanwhile: the owner's save is refused in words, and one click shows the agent's text.
    (folder / person_file(FRIEND)).write_text("Fran is allergic to nuts and cats.", encoding="utf-8")
    await editor.fill("Fran likes jazz.")
    await section.get_by_role("button", name="Save memory").click()
    await expect(section.get_by_text("This memory changed since you opened it")).to_be_visible()
    await page.set_viewport_size({"width": 390, "height": 844})
    await shot(page, "people-memory-conflict-phone")
    await section.get_by_role("button", name="Load the newest text").click()
    await expect(editor).to_have_value("Fran is allergic to nuts and cats.")
    await expect(section.get_by_text("This memory changed since you opened it")).to_be_hidden()
    await shot(page, "people-memory-phone")
