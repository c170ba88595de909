"""Host cost at rest: RSS and CPU of the host process with N sessions whose containers are up and idle.

    .venv/bin/python bench/idle.py [--sessions 10] [--seconds 60]

This process is the host (Podman runtime, model gateway, watcher, sweep, wake manager; no web UI, like a headless
server with chat adapters). The fake model runs in a child process so its cost is not counted. Every session gets one
message, its container answers and stays up idle; then CPU time and RSS of this process are measured over the window.
The last line printed is one JSON object: sessions, seconds, host_rss_mb, host_cpu_pct (percent of one core),
containers_running.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FAKE = """
import asyncio, sys
from tests.fakes.anthropic_server import FakeAnthropic, Text
async def main():
    fake = FakeAnthropic(responder=lambda body: Text('<message to="' + body_origin(body) + '">ok</message>'))
    await fake.start()
    print(fake.url, flush=True)
    await asyncio.Event().wait()
import json, re
FROM = re.compile(r'from=\\\\"([^"\\\\]+)\\\\"')
def body_origin(body):
    found = FROM.findall(json.dumps(body["messages"]))
    return found[-1] if found else "owner-dm"
asyncio.run(main())
"""


async def run(sessions: int, seconds: float, base_image: str) -> dict[str, object]:
    from nanoclaw_app.core.messages import InboundMessage
    from nanoclaw_app.db import agents, messaging
    from nanoclaw_app.db.database import Database
    from nanoclaw_app.db.messaging import WiringSpec
    from nanoclaw_app.db.migrate import migrate
    from nanoclaw_app.host import Host
    from nanoclaw_app.secrets.store import SecretStore
    from nanoclaw_app.settings import load_settings
    from tests.fakes.channel import FakeChannel
    from tests.fakes.keyring import MemoryKeyring
    from tests.integration.seed import seed

    fake = subprocess.Popen([sys.executable, "-c", FAKE], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert fake.stdout is not None
    fake_url = fake.stdout.readline().strip()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["NANOCLAW_HOME"] = f"{tmp}/home"
        os.environ["NANOCLAW_CONFIG_DIR"] = f"{tmp}/config"
        ca = "/etc/ssl/certs/ca-certificates.crt"
        settings = load_settings(
            port=0, runtime="podman", agent_base_image=base_image,
            agent_ca_certificates=ca if Path(ca).exists() else "", anthropic_base_url=fake_url,
            max_concurrent_containers=sessions,
        )
        settings.paths.ensure()
        async with Database(settings.paths.central_db) as db:
            await migrate(db)
            seeded = await seed(db)
            await agents.update_config(db, seeded.agent_id, provider="anthropic", model="claude-test")
            for i in range(sessions):
                chat = await messaging.create(db, "test", f"chat-{i}", name=f"Chat {i}",
                                              unknown_sender_policy="public")
                await messaging.wire(db, chat.id, seeded.agent_id,
                                     WiringSpec(engage_mode="pattern", engage_pattern="."))
        keys = MemoryKeyring()
        keys.set_password("nanoclaw", "anthropic_api_key", "sk-bench")
        channel = FakeChannel()
        host = Host(settings, adapters=[channel], serve_web=False, secrets=SecretStore(keys))
        await host.start()
        try:
            await host.runtime.images.ensure_base()  # type: ignore[attr-defined]
            for i in range(sessions):
                await channel.inject(InboundMessage(channel_type="test", platform_id=f"chat-{i}",
                                                    message_id=f"m{i}", sender_id="owner", sender_name="Owner",
                                                    text=f"hello {i}"))
            async with asyncio.timeout(300):
                while len({s.platform_id for s in channel.sent}) < sessions:
                    await asyncio.sleep(0.2)
            await asyncio.sleep(3)  # let the turns finish and the runners go quiet
            me = psutil.Process()
            cpu_before = me.cpu_times()
            wall_before = time.monotonic()
            await asyncio.sleep(seconds)
            cpu_after = me.cpu_times()
            wall = time.monotonic() - wall_before
            used = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
            rss_mb = me.memory_info().rss / 2**20
            running = host.waker.running_count()
        finally:
            await host.stop()
            fake.terminate()
            fake.wait(10)
    return {
        "sessions": sessions,
        "seconds": round(wall, 1),
        "host_rss_mb": round(rss_mb, 1),
        "host_cpu_pct": round(100 * used / wall, 3),
        "containers_running": running,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--base-image", default="localhost/nanoclaw-base:bookworm")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.sessions, args.seconds, args.base_image))))


if __name__ == "__main__":
    main()
