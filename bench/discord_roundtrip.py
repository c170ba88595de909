"""Discord round trip: a person's message appearing on the fake Discord gateway → the bot's reply posted over REST.

    .venv/bin/python bench/discord_roundtrip.py [--n 50]

The real discord.py client keeps a gateway websocket to a fake Discord (REST API + gateway) on 127.0.0.1; the host
routes each DM to an in-process agent that answers ``echo: <text>`` at once, so the number is what the channel,
router, session files and delivery add (no model, no container). Messages are sent one at a time. The last line
printed is one JSON object: n, p50_ms, p95_ms, max_ms, start_ms (channel start to "connected").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def run(n: int) -> dict[str, object]:
    from nanoclaw_app.channels import registry as channel_registry
    from nanoclaw_app.channels.discord.setup import TOKEN_SECRET
    from nanoclaw_app.core import pairing
    from nanoclaw_app.db import agents
    from nanoclaw_app.host import Host
    from nanoclaw_app.paths import Paths
    from nanoclaw_app.secrets.store import SecretStore
    from nanoclaw_app.settings import load_settings
    from tests.fakes.discord_api import FakeDiscord
    from tests.fakes.discord_model import OWNER, TOKEN
    from tests.fakes.keyring import MemoryKeyring
    from tests.fakes.runtime import InProcessRuntime

    fake = FakeDiscord()
    await fake.start()
    dm = int(fake.dm_channel(OWNER)["id"])
    with tempfile.TemporaryDirectory() as home:
        paths = Paths(home=Path(home) / "home", config=Path(home) / "config")
        settings = load_settings(paths, port=0, runtime="local", timezone="Europe/Berlin",
                                 discord_api_base_url=fake.api_base, discord_gateway_url=fake.gateway_url,
                                 discord_guild_ready_timeout=0.05)
        host = Host(settings, runtime=InProcessRuntime(), secrets=SecretStore(MemoryKeyring()), serve_web=False)
        await host.start()
        try:
            await host.secrets.set(TOKEN_SECRET, TOKEN)
            await channel_registry.set_enabled(host.db, "discord", True)
            await agents.create(host.db, "Nano")
            started = time.perf_counter()
            await host.start_channel("discord")
            while (status := host.callbacks.statuses.get("discord")) is None or not status.up:
                await asyncio.sleep(0.005)
            start_ms = (time.perf_counter() - started) * 1000
            code = await pairing.create_code(host.db, "discord")
            fake.push_dm(OWNER, code.code)
            await fake.wait_for(lambda: any(t.startswith("Paired!") for t in fake.texts(dm)))

            samples: list[float] = []
            for i in range(n + 1):
                text = f"ping {i}"
                sent = time.perf_counter()
                fake.push_dm(OWNER, text)
                expected = f"echo: {text}"
                await fake.wait_for(lambda: expected in fake.texts(dm), timeout=30)  # noqa: B023 - awaited here
                if i:  # the first message also wakes the session
                    samples.append((time.perf_counter() - sent) * 1000)
        finally:
            await host.stop()
            await fake.stop()
    return {
        "n": n, "p50_ms": round(statistics.median(samples), 1), "p95_ms": round(percentile(samples, 0.95), 1),
        "max_ms": round(max(samples), 1), "start_ms": round(start_ms, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)  # discord.py's voice support
    result = asyncio.run(run(args.n))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
