"""The owner's skill choice reaches the model: agent page service → container config → runner environment → prompt.

Host + real runner (a local subprocess) + the ``anthropic`` provider against the fake model server; one conversation
per scenario, and what the model was sent is read from the fake server's record.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from nanoclaw_app.core.messages import InboundMessage
from nanoclaw_app.db import agents
from nanoclaw_app.host import Host
from nanoclaw_app.runtime.local import LocalRuntime
from nanoclaw_app.services import agents as agents_svc
from nanoclaw_app.settings import Settings, load_settings
from tests.fakes.anthropic_server import FakeAnthropic, Text
from tests.fakes.channel import FakeChannel
from tests.integration.seed import Seeded, seed

pytestmark = pytest.mark.slow


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


async def ask(channel: FakeChannel, fake: FakeAnthropic, text: str) -> str:
    """One conversation turn; returns the system prompt the model was sent for it."""
    fake.script(Text('<message to="owner-dm">Hello!</message>'))
    before = len(fake.requests)
    await channel.inject(InboundMessage(channel_type="test", platform_id="owner", message_id=f"m{before}",
                                        sender_id="owner", sender_name="Owner", text=text))
    await channel.wait_sent(len(channel.sent) + 1, timeout=30)
    return "".join(block["text"] for block in fake.requests[before]["system"])


async def test_the_prompt_carries_the_skills_the_owner_left_on_and_their_own(
    host: tuple[Host, Seeded], channel: FakeChannel, fake: FakeAnthropic
) -> None:
    h, seeded = host
    view = await agents_svc.set_skills(h.services, seeded.agent_id, ["web", "formatting"])
    assert [s.name for s in view.skills if not s.enabled] == ["formatting", "web"]
    own = Path(view.own_folder) / "shopping"
    own.mkdir(parents=True)
    (own / "SKILL.md").write_text("---\ndescription: Where we shop\n---\nOur shop is Lidl on Main Street.")

    system = await ask(channel, fake, "hi, I'm new here")
    assert "### welcome (The first conversation with a new person" in system
    assert "### scheduling (Reminders and recurring tasks in the user's timezone" in system
    assert "### memory (How to keep memory" in system
    assert "### web (" not in system
    assert "### formatting (" not in system
    assert "## Your own skills" in system
    assert "### shopping (Where we shop)\nOur shop is Lidl on Main Street." in system
