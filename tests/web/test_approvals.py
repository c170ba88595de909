"""The approvals queue: deciding in the app is a click on the card, so held messages are answered and agents told.

The host here runs the test channel adapter, so a stranger can write in a chat and the owner's card lands in a DM.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from nanoclaw_app.core.access import can_access
from nanoclaw_app.core.messages import InboundMessage
from nanoclaw_app.db import agents, denials, messaging, users
from nanoclaw_app.db import approvals as approvals_db
from nanoclaw_app.host import Host
from nanoclaw_app.secrets.store import SecretStore
from nanoclaw_app.settings import Settings
from nanoclaw_app.timeutil import later_iso
from tests.fakes.channel import FakeChannel
from tests.fakes.keyring import MemoryKeyring
from tests.fakes.runtime import InProcessRuntime
from tests.integration.seed import Seeded, seed
from tests.web.conftest import shot

STRANGER = "test:stranger"


@pytest.fixture
async def web_host(web_settings: Settings, keyring_backend: MemoryKeyring, channel: FakeChannel) -> AsyncIterator[Host]:
    """The shared fixture's host, plus the test channel (``client`` and ``page`` use this one)."""
    host = Host(web_settings, runtime=InProcessRuntime(), adapters=[channel], secrets=SecretStore(keyring_backend))
    await host.start()
    try:
        yield host
    finally:
        await host.stop()


@pytest.fixture
async def seeded(web_host: Host) -> Seeded:
    """Owner, agent Nano, and the Family group asking before strangers may talk to Nano (who answers everything)."""
    done = await seed(web_host.db)
    await messaging.update(web_host.db, done.group_id, unknown_sender_policy="request_approval")
    wiring = await messaging.wiring(web_host.db, done.group_id, done.agent_id)
    assert wiring is not None
    await messaging.update_wiring(web_host.db, wiring.id, engage_mode="pattern", engage_pattern=".")
    return done


def stranger_says(text: str, n: int = 1, platform_id: str = "group-1", chat_name: str = "Family") -> InboundMessage:
    return InboundMessage(channel_type="test", platform_id=platform_id, message_id=f"s{n}", sender_id="stranger",
                          sender_name="Sam", text=text, is_group=True, is_mention=True, chat_name=chat_name)


async def sent_text(channel: FakeChannel, text: str, timeout: float = 10.0) -> None:
    """Wait until the channel delivered ``text`` (in any chat)."""
    async with asyncio.timeout(timeout):
        while text not in channel.texts():
            await channel.wait_sent(len(channel.sent) + 1, timeout=timeout)


async def pending_sender(web_host: Host, channel: FakeChannel, text: str = "hello from Sam") -> str:
    await channel.inject(stranger_says(text))
    await channel.wait_sent(1)  # the owner's card
    rows = await approvals_db.list_sender_approvals(web_host.db)
    assert len(rows) == 1
    return rows[0].id


async def test_a_stranger_in_an_asking_chat_shows_in_the_queue_with_what_who_and_when(
    client: httpx.AsyncClient, seeded: Seeded, web_host: Host, channel: FakeChannel
) -> None:
    approval_id = await pending_sender(web_host, channel)

    queue = (await client.get("/api/approvals")).json()
    assert queue["count"] == 1
    [item] = queue["items"]
    assert (item["id"], item["kind"], item["who"], item["agent_name"], item["chat_name"]) == (
        approval_id, "sender", "Sam", "Nano", "Family")
    assert item["message"] == "hello from Sam"
    assert item["card_sent"] is True
    assert item["approver"] == "Owner"
    assert item["created_at"] < item["expires_at"]
    assert (await client.get("/api/approvals/count")).json() == {"count": 1}
    assert (await client.get("/api/approvals?kind=agent")).json()["items"] == []


async def test_allowing_a_sender_replays_their_message_and_makes_them_a_member(
    client: httpx.AsyncClient, seeded: Seeded, web_host: Host, channel: FakeChannel
) -> None:
    approval_id = await pending_sender(web_host, channel)

    decided = await client.post(f"/api/approvals/{approval_id}/approve", json={})

    assert decided.status_code == 200
    assert decided.json()["outcome"] == "allowed"
    assert decided.json()["count"] == 0
    await sent_text(channel, "echo: hello from Sam")
    assert [s.platform_id for s in channel.sent if s.message.text == "echo: hello from Sam"] == ["group-1"]
    assert (await can_access(web_host.db, STRANGER, seeded.agent_id)).reason == "member"
    edits = [s.message.text for s in channel.sent if s.message.kind == "edit"]
    assert edits == ["👤 New sender\n\n✅ Sam allowed by Owner"]  # the card in the owner's chat says who decided

    twice = await client.post(f"/api/approvals/{approval_id}/approve", json={})
    assert twice.status_code == 404
    assert "decided or expired" in twice.json()["error"]


async def test_the_app_decides_as_its_own_user_when_that_user_is_an_owner(
    client: httpx.AsyncClient, seeded: Seeded, web_host: Host, channel: FakeChannel
) -> None:
    await users.upsert(web_host.db, "webchat:owner", "webchat", "Olivia in the app")
    await users.grant(web_host.db, "webchat:owner", "owner")
    approval_id = await pending_sender(web_host, channel)

    await client.post(f"/api/approvals/{approval_id}/approve", json={})

    await sent_text(channel, "echo: hello from Sam")
    edits = [s.message.text for s in channel.sent if s.message.kind == "edit"]
    assert edits == ["👤 New sender\n\n✅ Sam allowed by Olivia in the app"]


async def test_turning_a_sender_away_is_remembered_and_their_message_is_not_answered(
    client: httpx.AsyncClient, seeded: Seeded, web_host: Host, channel: FakeChannel
) -> None:
    approval_id = await pending_sender(web_host, channel)

    decided = await client.post(f"/api/approvals/{approval_id}/reject")

    assert decided.json()["outcome"] == "denied"
    assert await denials.is_denied(web_host.db, seeded.group_id, STRANGER)
    await channel.inject(stranger_says("hello again", 2))
    assert await approvals_db.list_sender_approvals(web_host.db) == []
    assert not any(t.startswith("echo:") for t in channel.texts())


async def test_approving_an_agents_package_request_applies_it_like_a_click(
    client: httpx.AsyncClient, seeded: Seeded, web_host: Host
) -> None:
    await approvals_db.create_approval(
        web_host.db, approval_id="appr-test-1", session_id=None, action="install_packages",
        payload={"apt": ["curl"], "pip": [], "reason": "fetch pages"}, agent_group_id=seeded.agent_id,
        approver_user_id="test:owner", channel_type="test", platform_id="owner", title="Install packages?",
        options_json="[]", expires_at=later_iso(3600),
    )
    [item] = (await client.get("/api/approvals")).json()["items"]
    assert (item["kind"], item["who"], item["details"]) == ("agent", "Nano", "apt: curl; reason: fetch pages")
    assert item["card_sent"] is False

    decided = await client.post("/api/approvals/appr-test-1/approve", json={})

    assert decided.json()["outcome"] == "approved"
    row = await approvals_db.get_approval(web_host.db, "appr-test-1")
    assert row is not None
    assert (row.status, row.decided_by) == ("approved", "test:owner")
    config = await agents.get_config(web_host.db, seeded.agent_id)
    assert config is not None
    assert json.loads(config.packages_apt) == ["curl"]


async def test_a_new_chat_is_connected_to_the_chosen_agent_and_its_message_answered(
    client: httpx.AsyncClient, seeded: Seeded, web_host: Host, channel: FakeChannel
) -> None:
    helper = await agents.create(web_host.db, "Helper")
    await channel.inject(stranger_says("anyone here?", 3, platform_id="club", chat_name="Book club"))
    await channel.wait_sent(1)
    [item] = (await client.get("/api/approvals")).json()["items"]
    assert (item["kind"], item["chat_name"], item["who"]) == ("channel", "Book club", "Sam")

    unchosen = await client.post(f"/api/approvals/{item['id']}/approve", json={})
    assert unchosen.status_code == 400
    assert "choose which agent" in unchosen.json()["error"]

    decided = await client.post(f"/api/approvals/{item['id']}/approve", json={"agent_group_id": helper.id})

    assert decided.json()["outcome"] == "connected"
    await sent_text(channel, "echo: anyone here?")
    chat = await messaging.find(web_host.db, "test", "club")
    assert chat is not None
    assert await messaging.wiring(web_host.db, chat.id, helper.id) is not None
    assert await messaging.wiring(web_host.db, chat.id, seeded.agent_id) is None
    assert (await client.get("/api/approvals")).json()["items"] == []


async def test_rejecting_a_new_chat_makes_nanoclaw_ignore_it(
    client: httpx.AsyncClient, seeded: Seeded, web_host: Host, channel: FakeChannel
) -> None:
    await channel.inject(stranger_says("hi bot", 4, platform_id="spam", chat_name="Spam"))
    await channel.wait_sent(1)
    [item] = (await client.get("/api/approvals")).json()["items"]

    decided = await client.post(f"/api/approvals/{item['id']}/reject")

    assert decided.json()["outcome"] == "rejected"
    chat = await messaging.find(web_host.db, "test", "spam")
    assert chat is not None
    assert chat.denied_at is not None


async def test_an_unknown_request_is_a_404(client: httpx.AsyncClient, seeded: Seeded) -> None:
    response = await client.post("/api/approvals/nsa-nope/reject")
    assert response.status_code == 404


async def test_a_new_request_appears_live_with_the_menu_badge(
    page: Any, base_url: str, seeded: Seeded, web_host: Host, channel: FakeChannel
) -> None:
    await page.goto(f"{base_url}/approvals")
    await expect(page.get_by_text("Nothing is waiting for you.")).to_be_visible()
    badge = page.locator("[data-badge=approvals]")
    await expect(badge).to_be_hidden()

    await pending_sender(web_host, channel)

    await expect(page.locator("[data-kind=sender]")).to_contain_text("Sam wants to talk to Nano in Family")
    await expect(badge).to_have_text("1")


async def test_approving_a_sender_approval(
    page: Any, base_url: str, seeded: Seeded, web_host: Host, channel: FakeChannel
) -> None:
    approval_id = await pending_sender(web_host, channel, "can you help with homework?")

    await page.goto(f"{base_url}/people")
    waiting = page.locator(f"#waiting [data-approval='{approval_id}']")
    await expect(waiting).to_contain_text("Sam wants to talk to Nano in Family")
    await expect(waiting).to_contain_text("can you help with homework?")
    await shot(page, "people")

    await page.goto(f"{base_url}/approvals")
    card = page.locator(f"[data-approval='{approval_id}']")
    await expect(card).to_contain_text("Sam wants to talk to Nano in Family")
    await expect(card).to_contain_text("card sent to Owner")
    await shot(page, "approvals")

    await card.get_by_role("button", name="Let in").click()

    await expect(page.get_by_text("Sam may now talk to Nano; their message was passed on")).to_be_visible()
    await expect(page.get_by_text("Nothing is waiting for you.")).to_be_visible()
    await sent_text(channel, "echo: can you help with homework?")
    assert await users.is_member(web_host.db, STRANGER, seeded.agent_id)
    await page.goto(f"{base_url}/people")
    await expect(page.locator(f"tr[data-person='{STRANGER}']")).to_contain_text("Nano")
    await expect(page.locator("#waiting")).to_be_hidden()


async def test_connecting_a_new_chat_from_the_page_to_a_chosen_agent(
    page: Any, base_url: str, seeded: Seeded, web_host: Host, channel: FakeChannel
) -> None:
    helper = await agents.create(web_host.db, "Helper")
    await channel.inject(stranger_says("is this the book club bot?", 5, platform_id="club", chat_name="Book club"))
    await channel.wait_sent(1)

    await page.goto(f"{base_url}/approvals")
    card = page.locator("[data-kind=channel]")
    await expect(card).to_contain_text("Sam spoke to NanoClaw in Book club, where no agent answers yet")
    await card.get_by_label("Agent to answer there").select_option(label="Helper")
    await shot(page, "approvals-new-chat")
    await card.get_by_role("button", name="Connect").click()

    await expect(page.get_by_text("Connected Book club")).to_be_visible()
    await sent_text(channel, "echo: is this the book club bot?")
    chat = await messaging.find(web_host.db, "test", "club")
    assert chat is not None
    assert await messaging.wiring(web_host.db, chat.id, helper.id) is not None


async def test_the_command_line_approval_is_decided_by_the_running_host(
    seeded: Seeded, web_host: Host, channel: FakeChannel, capsys: pytest.CaptureFixture[str]
) -> None:
    from nanoclaw_app.cli import main

    approval_id = await pending_sender(web_host, channel)
    code = await asyncio.to_thread(main, ["approvals", "approve", approval_id, "--json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["outcome"] == "allowed"
    await sent_text(channel, "echo: hello from Sam")  # only the running host can replay the held message
    assert await web_host.db.fetchval("SELECT COUNT(*) FROM web_sessions WHERE origin = 'window'") == 0
