"""The agent page's Skills tab, against the real app in Chromium: every shipped skill with its one line, on by
default; a skill turned off stays off after a reload and reaches the API; the folder for the owner's own skills is
named; a refused change is a sentence, never a raw error."""

from __future__ import annotations

import re
from typing import Any

import httpx
from playwright.async_api import expect

from nanoclaw_app.db import agents as agents_db
from nanoclaw_app.host import Host
from tests.web.conftest import shot

PHONE = {"width": 390, "height": 844}
WIDE = {"width": 1280, "height": 800}
SHIPPED = ["credentials", "files", "formatting", "memory", "scheduling", "self-customize", "web", "welcome"]


def skill(page: Any, name: str) -> Any:
    """A skill's checkbox, found as a person finds it: by the name it is labelled with."""
    return page.get_by_role("checkbox", name=re.compile(rf"^{re.escape(name)} "))


async def both_widths(page: Any, name: str) -> None:
    await page.set_viewport_size(WIDE)
    await shot(page, name)
    await page.set_viewport_size(PHONE)
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    await shot(page, f"{name}-phone")
    await page.set_viewport_size(WIDE)


async def test_skills_are_on_by_default_and_one_turned_off_stays_off_after_reload(
    web_host: Host, page: Any, base_url: str, client: httpx.AsyncClient
) -> None:
    agent = await agents_db.create(web_host.db, "Nano")
    await page.goto(f"{base_url}/agents/{agent.id}")
    await page.get_by_role("tab", name="Skills").click()
    boxes = page.locator("#skills-list input[type=checkbox]")
    await expect(boxes).to_have_count(len(SHIPPED))
    for name in SHIPPED:
        await expect(skill(page, name)).to_be_checked()
    await expect(page.locator("#skills-list")).to_contain_text(
        "The first conversation with a new person - introduce yourself")
    own = web_host.settings.paths.agents / "nano" / "skills"
    await expect(page.locator("#skills-own-folder")).to_have_text(f"{own}/<name>/SKILL.md")
    await both_widths(page, "agent-skills")

    await skill(page, "web").uncheck()
    await skill(page, "welcome").uncheck()
    await page.locator("#skills-form").get_by_role("button", name="Save").click()
    await expect(page.locator("#skills-saved")).to_have_text("Saved. The agent's next container uses these skills.")
    shown = (await client.get(f"/api/agents/{agent.id}/skills")).json()
    assert [s["name"] for s in shown["skills"] if not s["enabled"]] == ["web", "welcome"]

    await page.reload()
    await expect(page.get_by_role("tab", name="Skills")).to_have_attribute("aria-selected", "true")
    await expect(skill(page, "web")).not_to_be_checked()
    await expect(skill(page, "welcome")).not_to_be_checked()
    await expect(skill(page, "memory")).to_be_checked()
    await both_widths(page, "agent-skills-saved")

    for name in SHIPPED:
        await skill(page, name).uncheck()
    await page.locator("#skills-form").get_by_role("button", name="Save").click()
    await expect(page.locator("#skills-saved")).to_contain_text("Every shipped skill is off")


async def test_an_unknown_skill_is_refused_in_a_sentence(
    web_host: Host, page: Any, base_url: str, client: httpx.AsyncClient
) -> None:
    agent = await agents_db.create(web_host.db, "Nano")
    refused = await client.put(f"/api/agents/{agent.id}/skills", json={"off": ["weather"]})
    assert refused.status_code == 400
    assert "there is no shipped skill called 'weather'" in refused.text
    await page.goto(f"{base_url}/agents/{agent.id}#skills")
    await expect(skill(page, "web")).to_be_checked()
    # a skill removed from a newer NanoClaw while this page was open: the save is refused in words
    await page.evaluate("""() => {
        const box = document.querySelector('#skills-list input[value="web"]');
        box.value = "weather"; box.checked = false;
    }""")
    await page.locator("#skills-form").get_by_role("button", name="Save").click()
    await expect(page.locator("#skills-error")).to_contain_text("there is no shipped skill called 'weather'")
    await shot(page, "agent-skills-refused")
