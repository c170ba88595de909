"""The agent-creation attack from a real container: its shell writes 25 ``create_agent`` rows into its own
``outbound.db`` with ``podman exec``, past the runner's tools; still one card, and no agent before an admin approves.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from typing import Any

import pytest

from nanoclaw_app.db import agents
from nanoclaw_app.db import approvals as approvals_db
from nanoclaw_app.host import Host
from tests.fakes.anthropic_server import FakeAnthropic, Text
from tests.fakes.channel import FakeChannel
from tests.podman.conftest import (
    ping,
    podman_settings,
    seeded_home,
    wait_for,
)
from tests.podman.test_faults import our_containers

pytestmark = pytest.mark.podman

OWNER = "test:owner"

WRITE_ROWS = r"""
import json, sqlite3, sys
n = int(sys.argv[1])
top = sqlite3.connect("file:/workspace/inbound.db?mode=ro", uri=True).execute("SELECT MAX(seq) FROM messages_in")
seq = top.fetchone()[0] or 0
out = sqlite3.connect("/workspace/outbound.db", isolation_level=None)
out.execute("BEGIN IMMEDIATE")
seq = max(seq, out.execute("SELECT MAX(seq) FROM messages_out").fetchone()[0] or 0)
for i in range(n):
    seq = seq + 2 if seq % 2 else seq + 1
    action = {"type": "action", "action": "create_agent", "payload": {"name": f"Clone {i}"}}
    out.execute("INSERT INTO messages_out (id, seq, timestamp, kind, content) VALUES (?, ?, ?, 'system', ?)",
                (f"out-shell-{i}", seq, "2026-01-01T00:00:00.000Z", json.dumps(action)))
out.execute("COMMIT")
print("wrote", n)
"""


def pong(request: dict[str, Any]) -> Text:
    found = re.findall(r"ping-(\d+)", json.dumps(request.get("messages")))
    return Text(f'<message to="owner-dm">pong {found[-1] if found else "?"}</message>')


async def test_a_container_shell_asking_for_25_agents_gets_one_card_and_no_agent(
    podman_url: str, podman_host_factory: Any
) -> None:
    fake = FakeAnthropic(responder=pong)
    await fake.start()
    try:
        settings = podman_settings(podman_url, anthropic_base_url=fake.url, sweep_interval_seconds=0.5,
                                   fallback_poll_seconds=0.2)
        await seeded_home(settings, provider="anthropic")
        channel = FakeChannel()
        host: Host = await podman_host_factory(settings, channel)
        await channel.inject(ping(1))
        await wait_for(lambda: "pong 1" in channel.texts(), timeout=600, what="the first reply")

        [container] = our_containers(host, live_only=True)
        done = await asyncio.to_thread(
            subprocess.run, ["podman", "exec", container, "python3", "-c", WRITE_ROWS, "25"],
            capture_output=True, text=True, timeout=120, check=False,
        )
        assert done.stdout.strip() == "wrote 25", done.stderr

        def cards() -> list[Any]:
            return [s for s in channel.sent if s.message.kind == "question"]

        async def all_handled() -> bool:
            session = (await host.db.fetchall("SELECT agent_group_id, id FROM sessions"))[0]
            folder = host.store.dir(session["agent_group_id"], session["id"])
            return not await host.store.due_outbound(folder)

        await wait_for(all_handled, what="the 25 rows to be handled")
        assert [a.name for a in await agents.list_all(host.db)] == ["Nano"]
        [card] = cards()
        assert "Clone 0" in card.message.text
        assert len(await approvals_db.list_pending_approvals(host.db)) == 1

        await channel.click(card.message.question_id or "", "approve", OWNER)
        assert sorted(a.name for a in await agents.list_all(host.db)) == ["Clone 0", "Nano"]
        assert len(cards()) == 1
    finally:
        await fake.stop()
