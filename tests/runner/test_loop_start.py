"""A fresh runner reads its inbox while its provider is still being built, for every provider."""

from __future__ import annotations

import asyncio
import threading

from agent_runner.config import RunnerConfig
from agent_runner.loop import RunnerLoop
from agent_runner.providers.registry import ProviderLoader
from tests.fakes.provider import ScriptedProvider
from tests.runner.conftest import TIMEOUT, Session, until

BUILT = threading.Event()
"""Held by the test: until it is set, building ``SlowProvider`` blocks, as a slow SDK import does."""


class SlowProvider(ScriptedProvider):
    """A scripted provider whose construction waits for ``BUILT``."""

    def __init__(self, config: RunnerConfig) -> None:
        if not BUILT.wait(TIMEOUT):
            raise RuntimeError("the test never let the provider be built")
        super().__init__(config)


async def test_the_inbox_is_read_while_the_provider_is_still_being_built(session: Session) -> None:
    BUILT.clear()
    await session.chat("hello")
    config = session.config(provider=f"{__name__}:SlowProvider")
    loader = ProviderLoader(config.provider, config).start()
    loop = RunnerLoop(config, loader)
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    try:
        try:
            await until(lambda: loop.polls, "the first read of inbound.db")
            assert session.acks() == {}, "nothing is claimed before the provider is known"
        finally:
            BUILT.set()
        await until(session.outbound, "the reply")
    finally:
        stop.set()
        async with asyncio.timeout(TIMEOUT):
            await task
        await loader.aclose()
    assert session.texts() == ["echo: hello"]
