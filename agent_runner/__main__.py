"""``python -m agent_runner``: load the config, build the provider, run the loop until SIGTERM, exit 0.

The container's main process; the host stops it with SIGTERM (podman stop), and a clean, prompt exit lets the host
tell a stop from a crash. When the host's model gateway is gone mid-turn (the host crashed or is restarting) it exits
at once with ``EXIT_GATEWAY_LOST``, its claims left for the restarted host's sweep to retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence

from agent_runner.config import RunnerConfig, load_config
from agent_runner.gateway_relay import GatewayRelay
from agent_runner.loop import RunnerLoop
from agent_runner.providers.base import GatewayLost
from agent_runner.providers.registry import ProviderLoader, UnknownProvider

log = logging.getLogger("agent_runner")

EXIT_GATEWAY_LOST = 75
"""``EX_TEMPFAIL``: the host's gateway vanished mid-turn; the work was kept, not answered with an error."""


async def serve(config: RunnerConfig, loader: ProviderLoader) -> None:
    """Run the loop until SIGTERM or SIGINT; the loop takes the provider from ``loader`` when it first needs it."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):  # Windows has no signal handlers in asyncio; not a container
            loop.add_signal_handler(sig, stop.set)
    egress = await _egress_relay(config)
    try:
        await RunnerLoop(config, loader).run(stop)
    finally:
        await loader.aclose()
        if egress is not None:
            await egress.aclose()


async def _egress_relay(config: RunnerConfig) -> GatewayRelay | None:
    """Relay the proxy variables' loopback port to the host's egress socket: the container's only way out."""
    if config.egress_socket is None:
        return None
    relay = GatewayRelay(config.egress_socket, port=config.egress_port, what="egress proxy (the agent's way out)")
    try:
        await relay.start()
    except OSError as err:  # the agent still works; only its web and package access fails, and says why
        log.error("cannot relay the egress proxy on port %d: %s", config.egress_port, err)
        return None
    return relay


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    logging.basicConfig(
        level=os.environ.get("NANOCLAW_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    config = load_config(argv)
    # The first line: with the runner's later lines it shows how long the provider's import and setup took.
    log.info("runner process up; loading provider %s", config.provider)
    loader = ProviderLoader(config.provider, config).start()
    try:
        asyncio.run(serve(config, loader))
    except UnknownProvider as err:
        log.error("%s", err)
        return 2
    except GatewayLost as err:
        log.error("exiting: %s; the host retries the claimed messages when it is back", err)
        return EXIT_GATEWAY_LOST
    return 0


if __name__ == "__main__":
    sys.exit(main())
