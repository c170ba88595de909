"""Faults that must lose nothing: the agent's container holds its session database locked.

``inbound.db`` lives in the session folder, which is mounted read-write into the container, so whatever runs there
can open it and keep ``BEGIN EXCLUSIVE`` for as long as it likes (longer than the host's 5 s busy timeout). Here a
real SQLite connection does exactly that while the owner writes in the app's chat page.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import expect

from nanoclaw_app.core.events import Event
from nanoclaw_app.db import agents, drops
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.host import Host
from nanoclaw_app.services import chat
from nanoclaw_app.services.auth import issue_login_token
from nanoclaw_app.sessions.store import INBOUND
from tests import waiting
from tests.web.conftest import base_url, browser, client, keyring_backend, page, shot, web_host, web_settings

__all__ = ["base_url", "browser", "client", "keyring_backend", "page", "web_host", "web_settings"]  # fixtures

WAIT = 60.0
WAIT_MS = 60_000


@asynccontextmanager
async def exclusive_lock(db_file: Path) -> AsyncIterator[None]:
    """Hold the file the way a hostile container can: an open ``BEGIN EXCLUSIVE`` (no reader, no writer gets in)."""
    conn = sqlite3.connect(db_file, timeout=30, isolation_level=None, check_same_thread=False)
    try:
        await asyncio.to_thread(conn.execute, "BEGIN EXCLUSIVE")
        yield
        conn.execute("ROLLBACK")
    finally:
        conn.close()


async def next_event(queue: asyncio.Queue[Event], kind: str, predicate: Any = None) -> Event:
    return await waiting.next_event(queue, kind, predicate, timeout=WAIT)


def inbound_texts(folder: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{folder / INBOUND}?mode=ro", uri=True, timeout=30)
    try:
        return [json.loads(r[0]).get("text", "") for r in conn.execute("SELECT content FROM messages_in ORDER BY seq")]
    finally:
        conn.close()


async def phone_view(browser: Any, host: Host, base_url: str) -> tuple[Any, Any]:
    """A second signed-in tab at phone width on the chat page."""
    context = await browser.new_context(viewport={"width": 390, "height": 844})
    tab = await context.new_page()
    token = await issue_login_token(host.db)
    await tab.goto(f"{base_url}/login?token={token}")
    await tab.goto(f"{base_url}/chat")
    await tab.wait_for_selector("body[data-chat-ready=true]")
    return context, tab


async def test_a_message_sent_while_the_container_locks_its_session_db_waits_and_then_reaches_the_agent_once(
    web_host: Host, client: httpx.AsyncClient, page: Any, browser: Any, base_url: str
) -> None:
    agent = await agents.create(web_host.db, "Nano")
    await chat.ensure_owner_chat(web_host.services, agent.id)
    async with web_host.events.subscribe() as queue:  # a first exchange: the session and its files exist
        assert (await client.post("/api/chat/messages", json={"text": "hello"})).status_code == 201
        await next_event(queue, "chat.message", lambda d: d["message"]["text"] == "echo: hello")
    [session] = await sessions_db.list_for_agent(web_host.db, agent.id)
    folder = web_host.store.dir(agent.id, session.id)
    await page.goto(f"{base_url}/chat")
    await page.wait_for_selector("body[data-chat-ready=true]")

    async with exclusive_lock(folder / INBOUND):
        # Typed in the page: it posts to the chat API, which answers once the router has dealt with the message.
        await page.locator("#chat-text").fill("are you there?")
        async with page.expect_response(lambda r: r.url.endswith("/api/chat/messages")
                                        and r.request.method == "POST", timeout=WAIT_MS) as answer:
            await page.locator("#chat-text").press("Enter")
        response = await answer.value
        assert response.status == 201
        sent = await response.json()
        assert sent["status"] == "waiting"
        bubble = page.locator(f'li.msg[data-id="{sent["id"]}"]')
        await expect(bubble).to_have_class("msg mine waiting")
        await expect(bubble.locator(".msg-status")).to_contain_text("Nano cannot take messages right now")
        await shot(page, "chat-message-waiting")
        context, phone = await phone_view(browser, web_host, base_url)
        try:
            await expect(phone.locator(f'li.msg[data-id="{sent["id"]}"] .msg-status')).to_be_visible()
            await shot(phone, "chat-message-waiting-phone")
        finally:
            await context.close()
        history = (await client.get("/api/chat/messages")).json()["messages"]
        assert [(m["text"], m["status"]) for m in history] == [
            ("hello", ""), ("echo: hello", ""), ("are you there?", "waiting")]

    # The container lets go: the message reaches the agent and the bubble looks like any other.
    await expect(page.locator("li.msg.theirs .msg-text", has_text="echo: are you there?")).to_be_visible(
        timeout=WAIT_MS)
    await expect(bubble).to_have_class("msg mine")
    await expect(bubble.locator(".msg-status")).to_have_count(0)
    history = (await client.get("/api/chat/messages")).json()["messages"]
    assert [(m["text"], m["status"]) for m in history] == [
        ("hello", ""), ("echo: hello", ""), ("are you there?", ""), ("echo: are you there?", "")]
    assert inbound_texts(folder) == ["hello", "are you there?"]  # exactly once, in order
    assert [d.reason for d in await drops.list_recent(web_host.db)] == []
