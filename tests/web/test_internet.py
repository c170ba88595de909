"""What the agents did on the internet (Activity → Internet) and each agent's internet access (agent page →
Internet), against the real app in Chromium: lines in words with a filter per agent, "only these sites" saved and
refused in sentences, and hosts and paths from a hostile container shown as text, never markup."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from nanoclaw_app.cli import main
from nanoclaw_app.db import agents as agents_db
from nanoclaw_app.db import egress_events
from nanoclaw_app.db import users as users_db
from nanoclaw_app.host import Host
from nanoclaw_app.timeutil import iso, utcnow
from tests.web.conftest import shot

PHONE = {"width": 390, "height": 844}
WIDE = {"width": 1280, "height": 800}
HOSTILE = '<img src=x onerror="document.title=\'pwned\'">'


def line(agent_id: str, **values: Any) -> dict[str, Any]:
    return {"at": iso(utcnow()), "agent_group_id": agent_id, "session_id": "s-1", "kind": "connect",
            "host": "pypi.org", "port": 443, "decision": "allowed", **values}


async def both_widths(page: Any, name: str) -> None:
    await shot(page, name)
    await page.set_viewport_size(PHONE)
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    await shot(page, f"{name}-phone")
    await page.set_viewport_size(WIDE)


async def test_the_internet_tab_says_what_each_agent_did_and_filters_by_agent(web_host: Host, page: Any,
                                                                             base_url: str) -> None:
    await page.goto(f"{base_url}/activity#internet")
    await expect(page.locator("#net-list")).to_contain_text("No internet activity yet")

    nano = await agents_db.create(web_host.db, "Nano")
    scout = await agents_db.create(web_host.db, "Scout")
    await users_db.upsert(web_host.db, "telegram:42", "telegram", "Ana")
    await egress_events.add(web_host.db, [
        line(nano.id, host="192.168.1.1", port=80, decision="refused", reason="on your home network"),
        line(scout.id, host="registry.npmjs.org"),
        line(nano.id, kind="request", credential_name="GitHub", method="GET", host="api.github.com",
             path="/repos/x", decision="approved", approved_by="telegram:42", status_code=200),
        line(nano.id, kind="request", credential_name="Vercel", method="POST", host="api.vercel.com",
             path="/v13/deployments", decision="expired", status_code=403),
    ])
    await page.get_by_role("button", name="Refresh").click()
    rows = page.locator("#net-list tbody tr")
    await expect(rows).to_have_count(4)
    await expect(rows.locator("td:nth-child(3)")).to_have_text([
        "Vercel credential · POST api.vercel.com/v13/deployments · nobody answered in time, so it was refused · 403",
        "GitHub credential · GET api.github.com/repos/x · approved by Ana · 200",
        "connected to registry.npmjs.org:443",
        "refused 192.168.1.1:80: on your home network",
    ])
    await expect(rows.locator("td:nth-child(2)")).to_have_text(["Nano", "Nano", "Scout", "Nano"])
    await expect(rows.locator("td:nth-child(1)")).to_have_text([re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d$")] * 4)
    await both_widths(page, "activity-internet")

    await page.select_option("#net-agent", label="Scout")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("connected to registry.npmjs.org:443")
    await page.select_option("#net-kind", value="request")
    await expect(page.locator("#net-list")).to_contain_text("Nothing matches this filter yet.")
    await shot(page, "activity-internet-filtered-empty")
    await page.get_by_role("button", name="Show everything").click()
    await expect(rows).to_have_count(4)
    await page.select_option("#net-agent", label="Nano")
    await page.select_option("#net-kind", value="request")
    await expect(rows).to_have_count(2)
    await expect(rows.locator("td:nth-child(2)")).to_have_text(["Nano", "Nano"])


async def test_hosts_and_paths_from_the_container_are_shown_as_text(web_host: Host, page: Any,
                                                                   base_url: str) -> None:
    nano = await agents_db.create(web_host.db, "Nano")
    await egress_events.add(web_host.db, [
        line(nano.id, host=HOSTILE, decision="refused", reason="not a site this agent may reach"),
        line(nano.id, kind="request", credential_name="GitHub", method="GET", host="api.github.com",
             path="/<script>document.title='pwned'</script>/" + "x" * 20000, status_code=404),
    ])
    await page.goto(f"{base_url}/activity#internet")
    table = page.locator("#net-list table")
    await expect(table).to_contain_text("onerror")  # the text itself ...
    await expect(table).to_contain_text("<script>")
    assert await table.locator("img, script").count() == 0  # ... never an element
    assert await page.title() != "pwned"
    assert await page.evaluate("document.documentElement.scrollWidth") <= WIDE["width"]  # the long path wraps
    await both_widths(page, "activity-internet-hostile")


async def test_only_these_sites_is_saved_shown_after_reload_and_a_bad_site_is_refused(
    web_host: Host, page: Any, base_url: str, client: httpx.AsyncClient
) -> None:
    agent = await agents_db.create(web_host.db, "Nano")
    await page.goto(f"{base_url}/agents/{agent.id}#internet")
    form = page.locator("#internet-form")
    await expect(form).to_contain_text("can never reach your home network")
    await expect(page.get_by_label("Open (every connection is logged)")).to_be_checked()
    await expect(page.locator("#internet-list")).to_be_disabled()
    await both_widths(page, "agent-internet-open")

    await page.get_by_label("Only these sites").check()
    await expect(page.locator("#internet-nothing")).to_contain_text("reaches no site at all")
    await page.fill("#internet-list", "https://GitHub.com/anthropics\npypi.org\n")
    await form.get_by_role("button", name="Save").click()
    await expect(page.locator("#internet-saved")).to_have_text(
        "Saved. This agent may reach only github.com, pypi.org. It applies to its next connection.")
    assert (await client.get(f"/api/agents/{agent.id}")).json()["internet_sites"] == ["github.com", "pypi.org"]

    await page.reload()
    await expect(page.get_by_label("Only these sites")).to_be_checked()
    await expect(page.locator("#internet-list")).to_have_value("github.com\npypi.org")
    await expect(form).to_contain_text("can never reach your home network")

    await page.fill("#internet-list", "github.com\nmy laptop\n")
    await form.get_by_role("button", name="Save").click()
    error = page.locator("#internet-error")
    await expect(error).to_have_text(re.compile(r"Line 2: 'my laptop' is not a site: write a domain like github\.com"))
    await expect(page.locator("#internet-saved")).to_be_hidden()
    await both_widths(page, "agent-internet-refused")
    assert (await client.get(f"/api/agents/{agent.id}/internet")).json() == {
        "agent_id": agent.id, "mode": "sites", "sites": ["github.com", "pypi.org"]}

    await page.fill("#internet-list", "")
    await form.get_by_role("button", name="Save").click()
    await expect(page.locator("#internet-saved")).to_have_text(
        "Saved. This agent may reach no site at all. It applies to its next connection.")
    await expect(page.locator("#internet-nothing")).to_be_visible()
    await expect(error).to_be_hidden()


async def test_the_command_line_change_reaches_the_running_hosts_proxy(web_host: Host) -> None:
    agent = await agents_db.create(web_host.db, "Nano")
    async with web_host.events.subscribe() as queue:
        code = await asyncio.to_thread(main, ["agents", "internet", "Nano", "--sites", "github.com"])
        assert code == 0
        event = await queue.get()
        while event.kind != "agent.egress_changed":
            event = await queue.get()
    assert event.data == {"agent_group_id": agent.id}  # published in the host, where the proxy listens
    assert (await agents_db.get(web_host.db, agent.id) or pytest.fail("agent gone")).egress_mode == "sites"
