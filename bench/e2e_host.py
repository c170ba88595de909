"""Shared setup of the end-to-end benchmarks: a real host, an instant fake model server and a channel that stamps.

Used by ``e2e_latency.py`` and ``cold_start.py`` so both measure the same path: the test channel's callback → router
→ ``inbound.db`` → runner → the provider over HTTP (through the host's model gateway with ``podman``) to a fake model
on 127.0.0.1 → ``outbound.db`` → delivery → the channel. Message ``i`` is ``ping-i``; the fake answers ``pong-i``.

Every stamp is ``time.time_ns()``: the wall clock is the one clock the host, the fake server and Podman's container log
timestamps share (all run on this machine).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nanoclaw_app.host import Host
    from nanoclaw_app.settings import Settings

PING = re.compile(r"ping-(\d+)")


@dataclass
class Stamps:
    """What the fake model and the channel saw, by message number."""

    model_request_ns: dict[int, int] = field(default_factory=dict)
    """When the fake model first received a request whose newest ping is ``i``."""
    delivered_ns: dict[int, int] = field(default_factory=dict)
    """When the channel was asked to deliver ``pong-i``."""
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class BenchHost:
    """A started host with one seeded agent answering the owner's DM on the ``test`` channel."""

    host: Host
    settings: Settings
    stamps: Stamps
    channel: Any

    async def send(self, i: int, timeout: float = 60.0) -> tuple[int, int]:
        """Inject ``ping-i`` as the owner and wait for ``pong-i``; returns (injected_ns, delivered_ns)."""
        from nanoclaw_app.core.messages import InboundMessage

        msg = InboundMessage(channel_type="test", platform_id="owner", message_id=f"b{i}",
                             sender_id="owner", sender_name="Owner", text=f"ping-{i}")
        self.stamps.arrived.clear()
        start = time.time_ns()
        await self.channel.inject(msg)
        async with asyncio.timeout(timeout):
            while i not in self.stamps.delivered_ns:
                await self.stamps.arrived.wait()
                self.stamps.arrived.clear()
        return start, self.stamps.delivered_ns[i]


@asynccontextmanager
async def bench_host(runtime_name: str, provider: str, base_image: str) -> AsyncIterator[BenchHost]:
    """A host in a temporary home with the fake model running; with ``podman`` the agent image is ready (not timed)."""
    from nanoclaw_app.core.messages import OutboundMessage
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
    stamps = Stamps()

    class TimedChannel(FakeChannel):
        async def deliver(self, platform_id: str, thread_id: str | None, message: OutboundMessage) -> str | None:
            found = re.fullmatch(r"pong-(\d+)", message.text)
            if found:
                stamps.delivered_ns.setdefault(int(found.group(1)), time.time_ns())
                stamps.arrived.set()
            return await super().deliver(platform_id, thread_id, message)

    def responder(request: dict[str, Any]) -> Text:
        now = time.time_ns()
        found = PING.findall(json.dumps(request["messages"]))
        if found:
            stamps.model_request_ns.setdefault(int(found[-1]), now)
        return Text(f'<message to="owner-dm">pong-{found[-1] if found else "?"}</message>')

    fake: FakeAnthropic | FakeOpenAI
    if provider == "openai":
        fake = FakeOpenAI(responder=lambda body: OpenAIText(responder(body).text))
    else:
        fake = FakeAnthropic(responder=responder)
    await fake.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["NANOCLAW_HOME"] = f"{tmp}/home"
            os.environ["NANOCLAW_CONFIG_DIR"] = f"{tmp}/config"
            ca = "/etc/ssl/certs/ca-certificates.crt"
            settings = load_settings(
                port=0, runtime=runtime_name, agent_base_image=base_image,
                agent_ca_certificates=ca if Path(ca).exists() else "",
                anthropic_base_url=fake.url, openai_base_url=f"{fake.url}/v1",
                turn_budget=1_000_000,  # a benchmark is a deliberate burst of turns, not a runaway to pause
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
                host = Host(settings, runtime=runtime, adapters=[channel], serve_web=False,
                            secrets=SecretStore(keys))
            else:
                host = Host(settings, adapters=[channel], serve_web=False, secrets=SecretStore(keys))
            await host.start()
            try:
                if runtime_name == "podman":
                    build_started = time.perf_counter()
                    await host.runtime.images.ensure_base()  # type: ignore[attr-defined]
                    print(f"agent image ready in {time.perf_counter() - build_started:.1f} s", file=sys.stderr)
                yield BenchHost(host=host, settings=settings, stamps=stamps, channel=channel)
            finally:
                await host.stop()
    finally:
        await fake.stop()
