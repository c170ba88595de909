"""The host as a normal user on rootless Podman, run by the rootless tests as that user.

``python -m tests.podman.rootless_host serve <workdir> <settings json>`` runs the host until SIGTERM: everything
happens as the user (its home, the central database, the gateway's sockets, and the Podman service the app finds or
starts for itself: no ``podman_url``). Messages come from ``feed.jsonl`` in ``workdir`` and answers go to
``out.jsonl`` (the crash test's file-fed adapter). Prints ``ready`` once started.

``... engine-check <workdir> <settings json>`` starts the host, prints what the setup wizard's container step reports
(one JSON line) and stops.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import signal
import sys
from pathlib import Path

from nanoclaw_app.host import Host
from nanoclaw_app.logs import setup_logging
from nanoclaw_app.services.engine_check import check_engine
from tests.integration.crash_host import FeedChannel
from tests.podman.conftest import podman_settings, secrets_with_keys, seeded_home


async def main(mode: str, workdir: Path, overrides: dict[str, object]) -> None:
    settings = podman_settings("", **overrides)
    setup_logging(settings.paths.logs, "INFO", console=False)
    if not settings.paths.central_db.exists():
        await seeded_home(settings, provider="anthropic")
    host = Host(settings, adapters=[FeedChannel(workdir)], serve_web=False, secrets=secrets_with_keys())
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await host.start()
    try:
        if mode == "engine-check":
            print(json.dumps(dataclasses.asdict(await check_engine(host.services))), flush=True)
            return
        print("ready", flush=True)
        await stop.wait()
    finally:
        await host.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3])))
