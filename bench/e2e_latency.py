"""Added latency from the adapter callback to the adapter's deliver call, with a model that answers instantly.

    .venv/bin/python bench/e2e_latency.py --runtime local [--n 100]
    .venv/bin/python bench/e2e_latency.py --runtime podman [--n 100] [--provider anthropic|claude|openai]

The whole real path runs: router → inbound.db → runner (woken by inotify) → the provider over HTTP to a fake model
server on 127.0.0.1 → outbound.db → host file watcher → delivery → adapter. With ``local`` the runner is a subprocess
that calls the fake directly; with ``podman`` it runs in a fresh container of the agent image (built first if missing,
not timed) and calls the fake through the host's model gateway over the mounted unix socket, as in the app. The last
line printed is one JSON object: runtime, n, cold_ms (first message, no container yet), warm_p50_ms, warm_p99_ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


async def run(runtime_name: str, n: int, provider: str, base_image: str) -> dict[str, object]:
    from nanoclaw_app.core.messages import InboundMessage, OutboundMessage
    from nanoclaw_app.db import agents
    from nanoclaw_app.db.database import Database
    from nanoclaw_app.db.migrate import migrate
    from nanoclaw_app.host import Host
    from nanoclaw_app.runtime.local import LocalRuntime
    from nanoclaw_app.secrets.store import SecretStore
    from nanoclaw_app.settings import load_settings
    from tests.fakes.anthropic_server import FakeAnthropic, Text
    from tests.fakes.channel import FakeChannel
    from tests.fakes.keyring import MemoryKeyring
    from tests.fakes.openai_server import FakeOpenAI
    from tests.fakes.openai_server import Text as OpenAIText
    from tests.integration.seed import seed

    if runtime_name not in ("local", "podman"):
        raise SystemExit(f"unknown runtime {runtime_name!r}; use local or podman")

    delivered: dict[str, float] = {}
    arrived = asyncio.Event()

    class TimedChannel(FakeChannel):
        async def deliver(self, platform_id: str, thread_id: str | None, message: OutboundMessage) -> str | None:
            delivered[message.text] = time.perf_counter()
            arrived.set()
            return await super().deliver(platform_id, thread_id, message)

    def responder(request: dict[str, object]) -> Text:
        found = re.findall(r"ping-(\d+)", json.dumps(request["messages"]))
        return Text(f'<message to="owner-dm">pong-{found[-1] if found else "?"}</message>')

    fake: FakeAnthropic | FakeOpenAI
    if provider == "openai":
        fake = FakeOpenAI(responder=lambda body: OpenAIText(responder(body).text))
    else:
        fake = FakeAnthropic(responder=responder)
    await fake.start()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["NANOCLAW_HOME"] = f"{tmp}/home"
        os.environ["NANOCLAW_CONFIG_DIR"] = f"{tmp}/config"
        ca = "/etc/ssl/certs/ca-certificates.crt"
        settings = load_settings(
            port=0, runtime=runtime_name, agent_base_image=base_image,
            agent_ca_certificates=ca if Path(ca).exists() else "",
            anthropic_base_url=fake.url, openai_base_url=f"{fake.url}/v1",
            turn_budget=1_000_000,  # a latency run is a deliberate burst of turns, not a runaway to pause
        )
        settings.paths.ensure()
        async with Database(settings.paths.central_db) as db:
            await migrate(db)
            seeded = await seed(db)
            model = "gpt-test" if provider == "openai" else "claude-test"
            await agents.update_config(db, seeded.agent_id, provider=provider, model=model)
        channel = TimedChannel()
        keys = MemoryKeyring()
        keys.set_password("nanoclaw", "anthropic_api_key", "sk-bench")
        keys.set_password("nanoclaw", "openai_api_key", "sk-bench")
        if runtime_name == "local":
            base_url = f"{fake.url}/v1" if provider == "openai" else fake.url
            runtime = LocalRuntime(
                pid_dir=settings.paths.container_logs,
                env={"NANOCLAW_MODEL_BASE_URL": base_url, "NANOCLAW_MODEL_TOKEN": "bench-token",
                     "NANOCLAW_POLL_SECONDS": "2"},
            )
            host = Host(settings, runtime=runtime, adapters=[channel], serve_web=False, secrets=SecretStore(keys))
        else:
            host = Host(settings, adapters=[channel], serve_web=False, secrets=SecretStore(keys))
        await host.start()
        if runtime_name == "podman":
            build_started = time.perf_counter()
            await host.runtime.images.ensure_base()  # type: ignore[attr-defined]
            print(f"agent image ready in {time.perf_counter() - build_started:.1f} s", file=sys.stderr)
        try:
            samples: list[float] = []
            for i in range(n + 1):
                arrived.clear()
                msg = InboundMessage(channel_type="test", platform_id="owner", message_id=f"b{i}",
                                     sender_id="owner", sender_name="Owner", text=f"ping-{i}")
                start = time.perf_counter()
                await channel.inject(msg)
                async with asyncio.timeout(60):
                    while f"pong-{i}" not in delivered:
                        await arrived.wait()
                        arrived.clear()
                samples.append((delivered[f"pong-{i}"] - start) * 1000)
        finally:
            await host.stop()
            await fake.stop()
    cold, warm = samples[0], samples[1:]
    return {
        "runtime": runtime_name,
        "provider": provider,
        "n": len(warm),
        "cold_ms": round(cold, 1),
        "warm_p50_ms": round(statistics.median(warm), 2),
        "warm_p99_ms": round(percentile(warm, 0.99), 2),
        "warm_max_ms": round(max(warm), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runtime", default="local")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--provider", default="anthropic", choices=["anthropic", "claude", "openai"])
    parser.add_argument("--base-image", default="localhost/nanoclaw-base:bookworm",
                        help="agent base image (podman; the CI's local one by default)")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.runtime, args.n, args.provider, args.base_image))))


if __name__ == "__main__":
    main()
