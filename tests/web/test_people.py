"""The people page and /api/people: roles, memberships and names; the last owner always stays."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from nanoclaw_app.core.access import can_access
from nanoclaw_app.db import agents, users
from nanoclaw_app.host import Host
from tests.integration.seed import Seeded, seed
from tests.web.conftest import shot

FRIEND = "test:friend"


@pytest.fixture
async def seeded(web_host: Host) -> Seeded:
    done = await seed(web_host.db)
    await users.upsert(web_host.db, FRIEND, "test", "Fran")
    return done


def _person(body: dict[str, Any], user_id: str) -> dict[str, Any]:
    return next(p for p in body["people"] if p["id"] == user_id)


async def test_everyone_is_listed_owners_first_with_roles_and_memberships(
    client: httpx.AsyncClient, seeded: Seeded, web_host: Host
) -> None:
    await users.add_member(web_host.db, FRIEND, seeded.agent_id)

    body = (await client.get("/api/people")).json()

    assert [p["id"] for p in body["people"]] == ["test:owner", FRIEND]
    assert [r["role"] for r in _person(body, "test:owner")["roles"]] == ["owner"]
    assert [m["agent_name"] for m in _person(body, FRIEND)["memberships"]] == ["Nano"]
    assert [a["name"] for a in body["agents"]] == ["Nano"]


async def test_an_admin_of_one_agent_can_be_granted_and_revoked(
    client: httpx.AsyncClient, seeded: Seeded, web_host: Host
) -> None:
    granted = await client.post("/api/people/grant",
                                json={"user_id": FRIEND, "role": "admin", "agent_group_id": seeded.agent_id})
    assert granted.status_code == 200
    assert [(r["role"], r["agent_name"], r["granted_by"]) for r in granted.json()["roles"]] == [
        ("admin", "Nano", "app")]
    assert (await can_access(web_host.db, FRIEND, seeded.agent_id)).reason == "scoped_admin"

    revoked = await client.post("/api/people/revoke",
                                json={"user_id": FRIEND, "role": "admin", "agent_group_id": seeded.agent_id})
    assert revoked.json()["roles"] == []
    again = await client.post("/api/people/revoke",
                              json={"user_id": FRIEND, "role": "admin", "agent_group_id": seeded.agent_id})
    assert again.status_code == 404
    assert "is not admin of that agent" in again.json()["error"]


async def test_the_last_owner_cannot_be_removed_but_one_of_two_can(
    client: httpx.AsyncClient, seeded: Seeded, web_host: Host
) -> None:
    last = await client.post("/api/people/revoke", json={"user_id": "test:owner", "role": "owner"})
    assert last.status_code == 400
    assert "only owner" in last.json()["error"]
    assert await users.owners(web_host.db) == ["test:owner"]

    assert (await client.post("/api/people/grant", json={"user_id": FRIEND, "role": "owner"})).status_code == 200
    handed_over = await client.post("/api/people/revoke", json={"user_id": "test:owner", "role": "owner"})
    assert handed_over.status_code == 200
    assert await users.owners(web_host.db) == [FRIEND]


async def test_the_owner_role_cannot_be_limited_to_one_agent(client: httpx.AsyncClient, seeded: Seeded) -> None:
    scoped = await client.post("/api/people/grant",
                               json={"user_id": FRIEND, "role": "owner", "agent_group_id": seeded.agent_id})
    assert scoped.status_code == 400
    assert "make them its admin" in scoped.json()["error"]
    unknown = await client.post("/api/people/grant", json={"user_id": FRIEND, "role": "boss"})
    assert unknown.status_code == 400


async def test_someone_who_has_not_written_yet_can_be_let_in_by_their_id(
    client: httpx.AsyncClient, seeded: Seeded, web_host: Host
) -> None:
    added = await client.post("/api/people/add-member",
                              json={"user_id": "telegram:4242", "agent_group_id": "Nano"})
    assert added.status_code == 200
    assert added.json()["kind"] == "telegram"
    assert (await can_access(web_host.db, "telegram:4242", seeded.agent_id)).allowed

    typo = await client.post("/api/people/add-member", json={"user_id": "grandma", "agent_group_id": "Nano"})
    assert typo.status_code == 404
    assert "<channel>:<handle>" in typo.json()["error"]

    removed = await client.post("/api/people/remove-member",
                                json={"user_id": "telegram:4242", "agent_group_id": seeded.agent_id})
    assert removed.json()["memberships"] == []
    assert not (await can_access(web_host.db, "telegram:4242", seeded.agent_id)).allowed


async def test_a_person_can_be_renamed_but_not_to_nothing(
    client: httpx.AsyncClient, seeded: Seeded, web_host: Host
) -> None:
    renamed = await client.post("/api/people/rename", json={"user_id": FRIEND, "display_name": "  Aunt   Fran "})
    assert renamed.json()["display_name"] == "Aunt Fran"
    user = await users.get(web_host.db, FRIEND)
    assert user is not None
    assert user.display_name == "Aunt Fran"
    empty = await client.post("/api/people/rename", json={"user_id": FRIEND, "display_name": "  "})
    assert empty.status_code == 400
    assert "empty" in empty.json()["error"]


async def test_the_people_page_gives_and_removes_roles_and_memberships(
    page: Any, base_url: str, seeded: Seeded, web_host: Host
) -> None:
    await agents.create(web_host.db, "Helper")
    await page.goto(f"{base_url}/people")
    row = page.locator(f"tr[data-person='{FRIEND}']")
    await expect(row).to_contain_text("Fran")

    await row.get_by_label("Give").select_option(label="May talk to Helper")
    await row.get_by_role("button", name="Give").click()
    await expect(page.get_by_text("Fran: May talk to Helper")).to_be_visible()
    row = page.locator(f"tr[data-person='{FRIEND}']")
    await expect(row.get_by_role("button", name="Remove Helper")).to_be_visible()

    await row.get_by_label("Give").select_option(label="Admin of Nano")
    await row.get_by_role("button", name="Give").click()
    await expect(page.locator(f"tr[data-person='{FRIEND}']")).to_contain_text("admin of Nano")

    await page.locator(f"tr[data-person='{FRIEND}']").get_by_role("button", name="Rename").click()
    await page.get_by_label("Name shown for Fran").fill("Aunt Fran")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator(f"tr[data-person='{FRIEND}']")).to_contain_text("Aunt Fran")

    remove_helper = page.locator(f"tr[data-person='{FRIEND}']").get_by_role("button", name="Remove Helper")
    await remove_helper.click()
    await expect(remove_helper).to_have_count(0)
    person = await users.get(web_host.db, FRIEND)
    assert person is not None
    assert person.display_name == "Aunt Fran"
    assert await users.is_member(web_host.db, FRIEND, seeded.agent_id) is False
    assert await users.scoped_admins(web_host.db, seeded.agent_id) == [FRIEND]

    await page.get_by_label("Where they write").select_option("telegram")
    await page.get_by_label("Their Telegram user id").fill("777")
    await page.locator("#add-agent").select_option(label="Nano")
    await page.locator("#add-person").get_by_role("button", name="Let in").click()
    await expect(page.locator("tr[data-person='telegram:777']")).to_contain_text("Nano")
    await shot(page, "people-roles")


async def test_people_are_shown_by_name_and_where_they_write_and_let_in_by_phone_number(
    page: Any, base_url: str, seeded: Seeded, web_host: Host
) -> None:
    await users.upsert(web_host.db, "whatsapp:491701234567@s.whatsapp.net", "whatsapp", "Ada")
    await users.upsert(web_host.db, "telegram:4242", "telegram", None)
    await page.goto(f"{base_url}/people")
    ada = page.locator("tr[data-person='whatsapp:491701234567@s.whatsapp.net'] td.who")
    await expect(ada.locator("strong")).to_have_text("Ada")
    await expect(ada.locator(".where")).to_have_text("on WhatsApp, +491701234567")
    await expect(ada.locator(".where")).to_have_attribute("title", "whatsapp:491701234567@s.whatsapp.net")
    nameless = page.locator("tr[data-person='telegram:4242'] td.who")
    await expect(nameless.locator("strong")).to_have_text("user id 4242")
    await expect(nameless.locator(".where")).to_have_text("on Telegram")
    await expect(page.locator("#people")).not_to_contain_text("whatsapp:")  # no channel:handle plumbing on show

    await page.get_by_label("Their phone number").fill("+49 160 555 0101")
    await page.locator("#add-agent").select_option(label="Nano")
    await page.locator("#add-person").get_by_role("button", name="Let in").click()
    await expect(page.get_by_text("+49 160 555 0101 may now talk to Nano")).to_be_visible()
    assert await users.is_member(web_host.db, "whatsapp:491605550101@s.whatsapp.net", seeded.agent_id)

    await page.get_by_label("Their phone number").fill("call me")
    await page.locator("#add-person").get_by_role("button", name="Let in").click()
    await expect(page.get_by_text("Type their phone number with the country code")).to_be_visible()
    await shot(page, "people-plain")
    await page.set_viewport_size({"width": 390, "height": 844})
    await shot(page, "people-plain-phone")
