"""A chat round trip through a real container: the owner types in the chat page, the agent runs in Podman (the
``anthropic`` provider, its model a fake Anthropic server on 127.0.0.1 reached through the host's gateway), uses its
bash tool, and the reply appears in the page. Only the model is fake.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import expect

from nanoclaw_app.core.events import Event
from nanoclaw_app.db import agents
from nanoclaw_app.host import Host
from nanoclaw_app.services import chat
from nanoclaw_app.services.auth import issue_login_token
from tests.fakes.anthropic_server import FakeAnthropic, Text, ToolUse, last_user_content
from tests.podman.conftest import agent_image, podman_settings, podman_url, secrets_with_keys
from tests.web.conftest import shot

pytestmark = pytest.mark.podman

__all__ = ["agent_image", "podman_url"]  # session fixtures shared with tests/podman

CONTAINER_WAIT_MS = 180_000
MARK = re.compile(r"ping-(\w+)")


def model(body: dict[str, Any]) -> Any:
    """First turn: run a (slow enough to be seen) bash command; after its result: answer the app chat."""
    if any(block.get("type") == "tool_result" for block in last_user_content(body)):
        found = MARK.findall(json.dumps(body.get("messages")))
        return Text(f'<message to="app-chat">pong {found[-1] if found else "?"} from a real container</message>')
    return ToolUse("bash", {"command": "sleep 2; echo checked"})


@pytest.fixture
async def fake_model() -> AsyncIterator[FakeAnthropic]:
    fake = FakeAnthropic(responder=model)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def podman_web_host(podman_url: str, agent_image: str, fake_model: FakeAnthropic) -> AsyncIterator[Host]:
    settings = podman_settings(podman_url, anthropic_base_url=fake_model.url)
    host = Host(settings, secrets=secrets_with_keys())
    await host.start()
    try:
        agent = await agents.create(host.db, "Nano")
        await agents.update_config(host.db, agent.id, provider="anthropic", model="claude-test")
        await chat.ensure_owner_chat(host.services, agent.id)
        yield host
    finally:
        await host.stop()


async def test_a_message_typed_in_the_chat_page_is_answered_by_a_real_container(
    podman_web_host: Host, browser: Any, fake_model: FakeAnthropic
) -> None:
    host = podman_web_host
    assert host.runtime.name == "podman"
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    tab = await context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    activity: list[dict[str, Any]] = []
    try:
        async with host.events.subscribe() as queue:
            token = await issue_login_token(host.db)
            await tab.goto(f"{host.url}login?token={token}")
            await tab.goto(f"{host.url}chat")
            await tab.wait_for_selector("body[data-chat-ready=true]")
            await tab.locator("#chat-text").fill("ping-7 from the app")
            await tab.locator("#chat-text").press("Enter")
            await expect(tab.locator("#chat-typing")).to_be_visible()

            await expect(tab.locator("#chat-typing-text")).to_contain_text("using bash", timeout=CONTAINER_WAIT_MS)
            await shot(tab, "chat-podman-tool")
            reply = tab.locator("li.msg.theirs .msg-text")
            await expect(reply).to_have_text("pong 7 from a real container", timeout=CONTAINER_WAIT_MS)
            await expect(tab.locator("#chat-typing")).to_be_hidden(timeout=CONTAINER_WAIT_MS)
            await shot(tab, "chat-podman")
            activity = await _activity_until_idle(queue)
    finally:
        await context.close()
    assert not errors, errors
    states = [(a["state"], a["tool"]) for a in activity]
    assert ("tool", "bash") in states, states  # the runner's own report of the tool it ran
    assert states[-1] == ("idle", None)
    assert fake_model.requests, "the model was never called"


async def _activity_until_idle(queue: asyncio.Queue[Event]) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(CONTAINER_WAIT_MS / 1000):
        while not seen or seen[-1]["state"] != "idle":
            event = await queue.get()
            if event.kind == "chat.activity":
                seen.append(event.data)
    return seen
