"""A host process for the crash test: file-fed test adapter + in-process test runtime.

Run as ``python -m tests.integration.crash_host <workdir>``. The adapter reads messages from ``feed.jsonl`` and
commits how far it got in ``feed.offset`` only after the router stored them (like Telegram's update offset), and
"delivers" by appending a JSON line to ``out.jsonl``. It is not idempotent, so a send interrupted by a kill must end
explicitly failed, never sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from pathlib import Path

from nanoclaw_app.core.adapter_contract import ChannelAdapter, HostCallbacks
from nanoclaw_app.core.messages import InboundMessage, OutboundMessage
from nanoclaw_app.db.database import Database
from nanoclaw_app.db.migrate import migrate
from nanoclaw_app.host import Host
from nanoclaw_app.logs import setup_logging
from nanoclaw_app.settings import load_settings
from tests.fakes.runtime import InProcessRuntime
from tests.integration.seed import seed


class FeedChannel(ChannelAdapter):
    """Test adapter over files, surviving restarts like a real platform would."""

    channel_type = "test"

    def __init__(self, workdir: Path) -> None:
        self.feed = workdir / "feed.jsonl"
        self.offset_file = workdir / "feed.offset"
        self.out = workdir / "out.jsonl"
        self._task: asyncio.Task[None] | None = None

    async def setup(self, host: HostCallbacks) -> None:
        self._task = asyncio.create_task(self._pump(host), name="feed")

    async def teardown(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def is_connected(self) -> bool:
        return True

    async def deliver(self, platform_id: str, thread_id: str | None, message: OutboundMessage) -> str | None:
        line = json.dumps({"delivery_id": message.delivery_id, "platform_id": platform_id, "text": message.text})
        with self.out.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
        return f"p-{message.delivery_id}"

    async def _pump(self, host: HostCallbacks) -> None:
        offset = int(self.offset_file.read_text()) if self.offset_file.exists() else 0
        while True:
            lines = self.feed.read_text(encoding="utf-8").splitlines() if self.feed.exists() else []
            complete = [line for line in lines if line.endswith("}")]
            if offset >= len(complete):
                await asyncio.sleep(0.02)
                continue
            await host.on_inbound(InboundMessage.from_json(complete[offset]))
            offset += 1
            tmp = self.offset_file.with_suffix(".tmp")
            tmp.write_text(str(offset))
            tmp.replace(self.offset_file)


async def main(workdir: Path) -> None:
    # 200 messages in seconds is a runaway by the turn budget's measure; this test is about crashes, so lift it.
    settings = load_settings(port=0, sweep_interval_seconds=0.2, retry_base_seconds=0.02, fallback_poll_seconds=0.1,
                             turn_budget=1_000_000)
    settings.paths.ensure()
    setup_logging(settings.paths.logs, "INFO", console=False)
    async with Database(settings.paths.central_db) as db:
        await migrate(db)
        await seed(db)
    host = Host(settings, runtime=InProcessRuntime(), adapters=[FeedChannel(workdir)], serve_web=False)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await host.start()
    print("ready", flush=True)
    try:
        await stop.wait()
    finally:
        await host.stop()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
