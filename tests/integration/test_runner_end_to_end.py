"""Host + real runner (a local subprocess) + the `anthropic` provider against the fake model server.

test adapter → router → inbound.db → runner → fake model → outbound.db → delivery → test adapter, with no part faked
but the model service and the chat platform.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from nanoclaw_app.core.messages import InboundMessage
from nanoclaw_app.db import agents
from nanoclaw_app.host import Host
from nanoclaw_app.runtime.local import LocalRuntime
from nanoclaw_app.settings import Settings, load_settings
from tests.fakes.anthropic_server import FakeAnthropic, Reply, Text, ToolUse
from tests.fakes.channel import FakeChannel
from tests.integration.seed import Seeded, seed

pytestmark = pytest.mark.slow

Responder = Callable[[dict[str, Any]], Reply]


def last_user(request: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The text and the tool results of the newest user turn."""
    content = request["messages"][-1]["content"]
    if isinstance(content, str):
        return content, []
    texts = [b.get("text", "") for b in content if b.get("type") == "text"]
    results = [b for b in content if b.get("type") == "tool_result"]
    return " ".join(texts), results


def result_text(block: dict[str, Any]) -> str:
    content = block.get("content")
    if isinstance(content, str):
        return content
    return " ".join(c.get("text", "") for c in content or [])


def reply(text: str) -> Text:
    return Text(f'<message to="owner-dm">{text}</message>')


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    server = FakeAnthropic()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def host(settings: Settings, channel: FakeChannel, fake: FakeAnthropic) -> AsyncIterator[tuple[Host, Seeded]]:
    fast = load_settings(settings.paths, timezone="Europe/Berlin", port=0, sweep_interval_seconds=0.2,
                         retry_base_seconds=0.05, fallback_poll_seconds=0.2)
    runtime = LocalRuntime(pid_dir=fast.paths.container_logs,
                           env={"NANOCLAW_MODEL_BASE_URL": fake.url, "NANOCLAW_MODEL_TOKEN": "test-token",
                                "NANOCLAW_POLL_SECONDS": "0.5"})
    h = Host(fast, runtime=runtime, adapters=[channel], serve_web=False)
    await h.start()
    try:
        seeded = await seed(h.db)
        await agents.update_config(h.db, seeded.agent_id, provider="anthropic", model="claude-test")
        yield h, seeded
    finally:
        await h.stop()


def dm(text: str, message_id: str) -> InboundMessage:
    return InboundMessage(channel_type="test", platform_id="owner", message_id=message_id, sender_id="owner",
                          sender_name="Owner", text=text)


async def wait_text(channel: FakeChannel, predicate: Callable[[str], bool], timeout: float = 30) -> str:
    count = 1
    while True:
        await channel.wait_sent(count, timeout=timeout)
        for sent in channel.sent:
            if sent.message.kind == "text" and predicate(sent.message.text):
                return sent.message.text
        count = len(channel.sent) + 1


async def test_a_message_is_answered_by_the_model_through_the_real_runner(
    host: tuple[Host, Seeded], channel: FakeChannel, fake: FakeAnthropic
) -> None:
    fake.script(reply("Hello from the model"))
    await channel.inject(dm("hi", "m1"))
    assert await wait_text(channel, lambda t: "Hello from the model" in t) == "Hello from the model"
    # what the model saw: our formatted message, with the sender and no platform ids
    prompt, _ = last_user(fake.requests[0])
    assert "hi" in prompt
    assert "Owner" in prompt
    assert "owner-dm" in prompt


async def test_ask_user_question_is_answered_through_a_card_click(
    host: tuple[Host, Seeded], channel: FakeChannel, fake: FakeAnthropic
) -> None:
    def responder(request: dict[str, Any]) -> Reply:
        _, results = last_user(request)
        if results:
            return reply(f"answer: {result_text(results[0])}")
        return ToolUse("ask_user_question", {"title": "Drinks", "question": "Tea or coffee?",
                                             "options": ["Tea", "Coffee"]})

    fake.responder = responder
    await channel.inject(dm("what should I drink?", "m1"))
    sent = await channel.wait_sent(1, timeout=30)
    card = sent[0].message
    assert card.kind == "question"
    assert card.question_id is not None
    assert [o.label for o in card.options] == ["Tea", "Coffee"]
    await channel.click(card.question_id, card.options[1].value, "test:owner")
    text = await wait_text(channel, lambda t: t.startswith("answer:"))
    assert "Coffee" in text


async def test_a_scheduled_task_fires_later_and_replies(
    host: tuple[Host, Seeded], channel: FakeChannel, fake: FakeAnthropic
) -> None:
    when = (datetime.now(UTC) + timedelta(seconds=2)).isoformat(timespec="seconds")

    def responder(request: dict[str, Any]) -> Reply:
        text, results = last_user(request)
        if "water the plants" in text and "<task" in text:
            return reply("reminder: water the plants")
        if results:
            return reply("scheduled")
        return ToolUse("schedule_task", {"prompt": "water the plants", "process_after": when})

    fake.responder = responder
    await channel.inject(dm("remind me in 2 seconds", "m1"))
    await wait_text(channel, lambda t: t == "scheduled")
    assert await wait_text(channel, lambda t: "reminder" in t) == "reminder: water the plants"


async def test_edit_and_reaction_reach_the_adapter_with_platform_ids(
    host: tuple[Host, Seeded], channel: FakeChannel, fake: FakeAnthropic
) -> None:
    def responder(request: dict[str, Any]) -> Reply:
        _, results = last_user(request)
        if not results:
            return ToolUse("send_message", {"text": "draft"})
        said = result_text(results[0])
        if said.startswith("Sent"):
            seq = int(re.search(r"message (\d+)", said).group(1))  # type: ignore[union-attr]
            return ToolUse("edit_message", {"message_id": seq, "text": "final"})
        if said.startswith("Edit"):
            return ToolUse("add_reaction", {"message_id": 2, "emoji": "👍"})
        return reply("done")

    fake.responder = responder
    await channel.inject(dm("please draft something", "plat-42"))
    await wait_text(channel, lambda t: t == "done")
    by_kind = {s.message.kind: s for s in channel.sent}
    draft = next(s for s in channel.sent if s.message.text == "draft")
    assert by_kind["edit"].message.target_message_id == draft.platform_message_id
    assert by_kind["edit"].message.text == "final"
    assert by_kind["reaction"].message.target_message_id == "plat-42"
    assert by_kind["reaction"].message.emoji == "👍"
