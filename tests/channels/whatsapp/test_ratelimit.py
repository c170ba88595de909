"""The send rate limit waits, in order, and never drops a send."""

from __future__ import annotations

import asyncio

from nanoclaw_app.channels.whatsapp.ratelimit import TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


async def test_a_burst_goes_out_then_sends_wait_their_turn_in_order() -> None:
    clock = Clock()
    bucket = TokenBucket(20, clock=clock, sleep=clock.sleep)
    assert bucket.capacity == 5
    order: list[int] = []

    async def send(n: int) -> None:
        await bucket.acquire()
        order.append(n)

    await asyncio.gather(*(send(n) for n in range(8)))
    assert order == list(range(8))
    assert clock.sleeps == [3.0, 3.0, 3.0]  # 20 a minute: one every 3 s once the burst of 5 is used
    assert bucket.waits == 3


async def test_tokens_flow_back_in_while_idle() -> None:
    clock = Clock()
    bucket = TokenBucket(60, burst=2, clock=clock, sleep=clock.sleep)
    for _ in range(2):
        await bucket.acquire()
    clock.now += 10.0  # ten quiet seconds refill the (small) burst, no more
    for _ in range(3):
        await bucket.acquire()
    assert clock.sleeps == [1.0]
