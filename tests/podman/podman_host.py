"""A host process on real Podman for the host-crash test: ``python -m tests.podman.podman_host <workdir> <podman url>``.

It uses the crash test's file-fed adapter (messages in ``feed.jsonl``, deliveries appended to ``out.jsonl``) and the
real model gateway; the model's address comes from ``NANOCLAW_ANTHROPIC_BASE_URL``. Prints ``ready`` once started.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from nanoclaw_app.host import Host
from nanoclaw_app.logs import setup_logging
from tests.integration.crash_host import FeedChannel
from tests.podman.conftest import podman_settings, secrets_with_keys

FAST = {"sweep_interval_seconds": 0.3, "retry_base_seconds": 0.2, "fallback_poll_seconds": 0.2}


async def main(workdir: Path, podman_url: str) -> None:
    settings = podman_settings(podman_url, **FAST)
    setup_logging(settings.paths.logs, "INFO", console=False)
    host = Host(settings, adapters=[FeedChannel(workdir)], serve_web=False, secrets=secrets_with_keys())
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await host.start()
    print("ready", flush=True)
    try:
        await stop.wait()
    finally:
        await host.stop()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2]))
