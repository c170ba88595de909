"""Slack round trip: a person's message pushed over the fake Slack's Socket Mode websocket → the bot's chat.postMessage.

    .venv/bin/python bench/slack_roundtrip.py [--n 50]

The real slack-bolt app (Socket Mode, aiohttp) talks to a fake Slack on 127.0.0.1; the host routes each message to an
in-process agent that answers ``echo: <text>`` at once, so the number is what the channel, router, session files and
delivery add (no model, no container). Messages are sent one at a time, in the owner's DM. The last line printed is
one JSON object: n, p50_ms, p95_ms, max_ms, start_ms (channel start to "connected").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def run(n: int) -> dict[str, object]:
    from nanoclaw_app.channels import registry as channel_registry
    from nanoclaw_app.channels.slack.setup import APP_SECRET, BOT_SECRET
    from nanoclaw_app.core import pairing
    from nanoclaw_app.db import agents
    from nanoclaw_app.host import Host
    from nanoclaw_app.paths import Paths
    from nanoclaw_app.secrets.store import SecretStore
    from nanoclaw_app.settings import load_settings
    from tests.fakes.keyring import MemoryKeyring
    from tests.fakes.runtime import InProcessRuntime
    from tests.fakes.slack_api import FakeSlack
    from tests.fakes.slack_workspace import APP_TOKEN, BOT_TOKEN, OWNER, OWNER_DM

    slack = FakeSlack()
    await slack.start()

    def texts() -> list[str]:
        return [m["text"] for m in slack.sent_messages(OWNER_DM)]

    with tempfile.TemporaryDirectory() as home:
        paths = Paths(home=Path(home) / "home", config=Path(home) / "config")
        settings = load_settings(paths, port=0, runtime="local", slack_api_base_url=slack.api_url,
                                 timezone="Europe/Berlin")
        host = Host(settings, runtime=InProcessRuntime(), secrets=SecretStore(MemoryKeyring()), serve_web=False)
        await host.start()
        try:
            await host.secrets.set(BOT_SECRET, BOT_TOKEN)
            await host.secrets.set(APP_SECRET, APP_TOKEN)
            await channel_registry.set_enabled(host.db, "slack", True)
            await agents.create(host.db, "Nano")
            started = time.perf_counter()
            await host.start_channel("slack")
            while (status := host.callbacks.statuses.get("slack")) is None or not status.up:
                await asyncio.sleep(0.005)
            start_ms = (time.perf_counter() - started) * 1000
            code = await pairing.create_code(host.db, "slack")
            slack.push_message(OWNER_DM, OWNER, code.code)
            await slack.wait_for(lambda: any(t.startswith("Paired!") for t in texts()))

            samples: list[float] = []
            for i in range(n + 1):
                text = f"ping {i}"
                sent = time.perf_counter()
                slack.push_message(OWNER_DM, OWNER, text)

                def answered(text: str = text) -> bool:
                    return f"echo: {text}" in texts()

                await slack.wait_for(answered, timeout=30)
                if i:  # the first message also wakes the session
                    samples.append((time.perf_counter() - sent) * 1000)
        finally:
            await host.stop()
            await slack.stop()
    return {
        "n": n, "p50_ms": round(statistics.median(samples), 1), "p95_ms": round(percentile(samples, 0.95), 1),
        "max_ms": round(max(samples), 1), "start_ms": round(start_ms, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50)
    args = parser.parse_args()
    result = asyncio.run(run(args.n))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
