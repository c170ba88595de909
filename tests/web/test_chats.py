"""The chats page and /api/chats: who may write in a chat, and which agents answer there and how."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from nanoclaw_app.db import agents, destinations, messaging
from nanoclaw_app.host import Host
from tests.integration.seed import Seeded, seed
from tests.web.conftest import shot


@pytest.fixture
async def seeded(web_host: Host) -> Seeded:
    return await seed(web_host.db)


def _chat(body: dict[str, Any], chat_id: str) -> dict[str, Any]:
    return next(c for c in body["chats"] if c["id"] == chat_id)


async def test_the_list_shows_each_chat_with_its_agents_and_how_they_answer(
    client: httpx.AsyncClient, seeded: Seeded
) -> None:
    body = (await client.get("/api/chats")).json()

    assert [a["name"] for a in body["agents"]] == ["Nano"]
    dm, group = _chat(body, seeded.dm_id), _chat(body, seeded.group_id)
    assert (dm["title"], dm["is_group"], dm["channel_type"]) == ("Owner DM", False, "test")
    assert group["unknown_sender_policy"] == "strict"
    assert [(w["agent_name"], w["engage_mode"], w["engage_pattern"]) for w in dm["wirings"]] == [
        ("Nano", "pattern", ".")]
    assert [(w["agent_name"], w["engage_mode"]) for w in group["wirings"]] == [("Nano", "mention")]


async def test_the_unknown_sender_policy_changes_and_a_wrong_one_is_refused_with_the_choices(
    client: httpx.AsyncClient, seeded: Seeded, web_host: Host
) -> None:
    changed = await client.patch(f"/api/chats/{seeded.group_id}", json={"unknown_sender_policy": "request_approval"})
    assert changed.status_code == 200
    assert changed.json()["unknown_sender_policy"] == "request_approval"

    wrong = await client.patch(f"/api/chats/{seeded.group_id}", json={"unknown_sender_policy": "open"})
    assert wrong.status_code == 400
    assert "request_approval asks you first" in wrong.json()["error"]
    chat = await messaging.get(web_host.db, seeded.group_id)
    assert chat is not None
    assert chat.unknown_sender_policy == "request_approval"


async def test_a_broken_pattern_is_refused_and_nothing_changes(
    client: httpx.AsyncClient, seeded: Seeded, web_host: Host
) -> None:
    group = _chat((await client.get("/api/chats")).json(), seeded.group_id)
    wiring = group["wirings"][0]
    url = f"/api/chats/{seeded.group_id}/wirings/{wiring['id']}"

    broken = await client.patch(url, json={"engage_mode": "pattern", "engage_pattern": "(hello"})
    assert broken.status_code == 400
    assert "not a valid regular expression" in broken.json()["error"]
    missing = await client.patch(url, json={"engage_mode": "pattern", "engage_pattern": ""})
    assert missing.status_code == 400
    assert "use . to answer every message" in missing.json()["error"]
    stored = await messaging.wiring(web_host.db, seeded.group_id, seeded.agent_id)
    assert stored is not None
    assert (stored.engage_mode, stored.engage_pattern) == ("mention", None)

    fixed = await client.patch(url, json={"engage_mode": "pattern", "engage_pattern": r"\bnano\b",
                                          "session_mode": "per-thread", "priority": 5})
    assert fixed.status_code == 200
    saved = fixed.json()["wirings"][0]
    assert (saved["engage_mode"], saved["engage_pattern"], saved["session_mode"], saved["priority"]) == (
        "pattern", r"\bnano\b", "per-thread", 5)

    back = await client.patch(url, json={"engage_mode": "mention-sticky"})
    assert back.json()["wirings"][0]["engage_pattern"] is None  # only pattern mode keeps a pattern


async def test_wiring_an_agent_gives_it_the_chat_as_a_destination_and_unwiring_stops_it(
    client: httpx.AsyncClient, seeded: Seeded, web_host: Host
) -> None:
    helper = await agents.create(web_host.db, "Helper")

    wired = await client.post(f"/api/chats/{seeded.group_id}/wirings", json={"agent_group_id": helper.id})
    assert wired.status_code == 201
    new = next(w for w in wired.json()["wirings"] if w["agent_name"] == "Helper")
    assert (new["engage_mode"], new["sender_scope"]) == ("mention-sticky", "known")  # a group's safe defaults
    assert "family" in [d.local_name for d in await destinations.list_for(web_host.db, helper.id)]

    again = await client.post(f"/api/chats/{seeded.group_id}/wirings", json={"agent_group_id": helper.id})
    assert again.status_code == 400
    assert "already answers" in again.json()["error"]

    elsewhere = await client.delete(f"/api/chats/{seeded.dm_id}/wirings/{new['id']}")
    assert elsewhere.status_code == 404
    gone = await client.delete(f"/api/chats/{seeded.group_id}/wirings/{new['id']}")
    assert gone.status_code == 200
    assert [w["agent_name"] for w in gone.json()["wirings"]] == ["Nano"]
    assert await messaging.wiring(web_host.db, seeded.group_id, helper.id) is None


async def test_an_unknown_chat_or_agent_is_a_404_with_a_hint(client: httpx.AsyncClient, seeded: Seeded) -> None:
    missing = await client.get("/api/chats/mg-nope")
    assert missing.status_code == 404
    assert "nanoclaw chats list" in missing.json()["error"]
    no_agent = await client.post(f"/api/chats/{seeded.group_id}/wirings", json={"agent_group_id": "ag-nope"})
    assert no_agent.status_code == 404


async def test_the_api_is_documented(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/schema/openapi.json")).json()["paths"]
    assert {"/api/chats", "/api/chats/{chat_id}", "/api/chats/{chat_id}/wirings",
            "/api/chats/{chat_id}/wirings/{wiring_id}"} <= set(paths)


async def test_the_chats_page_changes_who_may_write_and_how_an_agent_answers(
    page: Any, base_url: str, seeded: Seeded, web_host: Host
) -> None:
    await page.goto(f"{base_url}/chats")
    group = page.locator(f"[data-chat='{seeded.group_id}']")
    await expect(group.get_by_role("heading", name="Family")).to_be_visible()

    await group.get_by_label("When someone new writes here").select_option("request_approval")
    await expect(page.get_by_text("Saved for Family")).to_be_visible()

    group = page.locator(f"[data-chat='{seeded.group_id}']")
    form = group.locator("form.wiring")
    await form.get_by_label("Answers").select_option("pattern")
    await form.get_by_label("Pattern").fill("(nano")
    await form.get_by_role("button", name="Save").click()
    await expect(form.get_by_role("alert")).to_contain_text("not a valid regular expression")

    await form.get_by_label("Pattern").fill("nano|hey")
    await form.get_by_role("button", name="Save").click()
    await expect(page.get_by_text("Saved how Nano answers in Family")).to_be_visible()

    stored = await messaging.wiring(web_host.db, seeded.group_id, seeded.agent_id)
    assert stored is not None
    assert (stored.engage_mode, stored.engage_pattern) == ("pattern", "nano|hey")
    chat = await messaging.get(web_host.db, seeded.group_id)
    assert chat is not None
    assert chat.unknown_sender_policy == "request_approval"
    await expect(page.locator(f"[data-chat='{seeded.group_id}'] [name=engage_pattern]")).to_have_value("nano|hey")
    await shot(page, "chats")


async def test_the_chats_page_says_in_words_how_an_agent_answers_and_keeps_the_plumbing_under_advanced(
    page: Any, base_url: str, web_host: Host
) -> None:
    seeded = await seed(web_host.db, channel_type="whatsapp")
    await page.goto(f"{base_url}/chats")
    dm = page.locator(f"[data-chat='{seeded.dm_id}']")
    await expect(dm.locator(".chat-head")).to_contain_text("WhatsApp")
    form = dm.locator("form.wiring")
    await expect(form.locator(".wiring-summary")).to_have_text(
        "Nano answers every message from anyone allowed in this chat.")
    await expect(form.get_by_label("Answers")).to_have_value("all")
    await expect(form.get_by_label("Pattern")).to_be_hidden()  # no "." for a home user to puzzle over
    await expect(form.get_by_label("Priority")).to_be_hidden()
    await expect(dm.get_by_text("Chat id whatsapp:owner")).to_be_hidden()
    await shot(page, "chats-plain")
    await page.set_viewport_size({"width": 390, "height": 844})
    await shot(page, "chats-plain-phone")
    await page.set_viewport_size({"width": 1280, "height": 800})

    await dm.get_by_text("Advanced: this chat's id").click()
    await expect(dm.get_by_text("Chat id whatsapp:owner")).to_be_visible()
    await form.get_by_text("Advanced", exact=True).click()
    await form.get_by_label("Priority").fill("3")
    await form.get_by_label("Answers").select_option("mention")
    await form.get_by_role("button", name="Save").click()
    await expect(page.get_by_text("Saved how Nano answers in Owner DM")).to_be_visible()
    stored = await messaging.wiring(web_host.db, seeded.dm_id, seeded.agent_id)
    assert stored is not None
    assert (stored.engage_mode, stored.engage_pattern, stored.priority) == ("mention", None, 3)

    form = page.locator(f"[data-chat='{seeded.dm_id}'] form.wiring")
    await form.get_by_label("Answers").select_option("all")  # back to every message: stored as the pattern "."
    await form.get_by_role("button", name="Save").click()
    await expect(form.locator(".wiring-summary")).to_contain_text("answers every message")
    stored = await messaging.wiring(web_host.db, seeded.dm_id, seeded.agent_id)
    assert stored is not None
    assert (stored.engage_mode, stored.engage_pattern) == ("pattern", ".")


async def test_an_edit_in_progress_survives_a_change_made_elsewhere_meanwhile(
    page: Any, base_url: str, client: httpx.AsyncClient, seeded: Seeded
) -> None:
    await page.goto(f"{base_url}/chats")
    form = page.locator(f"[data-chat='{seeded.group_id}'] form.wiring")
    await expect(form.get_by_label("Answers")).to_be_visible()

    # The live reload that another change causes is held on its way, while the person starts an edit.
    asked, release, answered = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def hold(route: Any) -> None:
        asked.set()
        await release.wait()
        await route.continue_()
        answered.set()

    await page.route("**/api/chats", hold)
    changed = await client.patch(f"/api/chats/{seeded.dm_id}", json={"unknown_sender_policy": "request_approval"})
    assert changed.status_code == 200
    async with asyncio.timeout(15):
        await asked.wait()
    await form.get_by_label("Answers").select_option("pattern")
    await form.get_by_label("Pattern").fill("hey")
    release.set()
    async with asyncio.timeout(15):
        await answered.wait()
    await page.unroute("**/api/chats")

    await form.get_by_role("button", name="Save").click()
    await expect(page.get_by_text("Saved how Nano answers in Family")).to_be_visible()
    await expect(form.get_by_label("Pattern")).to_have_value("hey")
