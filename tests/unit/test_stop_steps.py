"""The host's stop in named steps: reverse order, and a step that hangs says which it is while it hangs."""

from __future__ import annotations

import asyncio
import logging

import pytest

from nanoclaw_app.stop_steps import StopSteps


async def test_steps_run_in_reverse_order_and_a_failing_step_still_lets_the_others_run() -> None:
    ran: list[str] = []

    async def record(name: str) -> None:
        ran.append(name)

    async def broken() -> None:
        ran.append("broken")
        raise RuntimeError("the gateway would not stop")

    stack = StopSteps()
    stack.step("database", lambda: record("database"))
    stack.step("gateway", broken)
    stack.step("web", lambda: record("web"))
    with pytest.raises(RuntimeError, match="would not stop"):
        await stack.aclose()
    assert ran == ["web", "broken", "database"]


async def test_a_step_that_hangs_is_named_in_the_log_while_it_hangs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="nanoclaw_app.stop_steps")
    release = asyncio.Event()
    stack = StopSteps(slow_seconds=0.01)
    stack.step("the agent containers", release.wait)
    closing = asyncio.create_task(stack.aclose())
    async with asyncio.timeout(10):
        while "still stopping: the agent containers" not in caplog.text:
            await asyncio.sleep(0.01)
    assert not closing.done()
    release.set()
    await closing
    assert "stopping the agent containers took" in caplog.text


async def test_cancelling_the_stop_cancels_the_step_it_waits_for() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def hang() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    stack = StopSteps()
    stack.step("the channels", hang)
    closing = asyncio.create_task(stack.aclose())
    await started.wait()
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    assert cancelled.is_set()
