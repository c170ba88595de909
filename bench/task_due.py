"""How late a scheduled task is delivered: the task is due at T, its answer reaches the channel at T + lateness.

    .venv/bin/python bench/task_due.py --runtime local [--n 3]
    .venv/bin/python bench/task_due.py --runtime podman [--n 3]

The real path of ``e2e_host.py`` with an instant fake model: the agent schedules ``ping-i`` (through the same
``schedule_task`` system action the container uses) and the fake answers ``pong-i``. Two cases, ``n`` times each:
``idle`` (the session's container runs and waits; its runner must wake at T by itself) and ``stopped`` (no container
runs; the host's due timer must start one in time). The target is lateness <= 1000 ms in both. The last line printed is
one JSON object: runtime, n, and per case the median and max lateness in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

IDLE_AHEAD_S = 1.5
STOPPED_AHEAD_S = 6.0
"""Longer than the due timer's lead, so the stopped case exercises the wake ahead of time."""


async def run(runtime_name: str, n: int, base_image: str) -> dict[str, object]:
    from bench.e2e_host import BenchHost, bench_host
    from nanoclaw_app.core import scheduling
    from nanoclaw_app.db import sessions as sessions_db
    from nanoclaw_app.timeutil import iso

    async def due_task(bench: BenchHost, i: int, ahead: float) -> float:
        """Schedule ``ping-i`` ``ahead`` seconds from now; returns its lateness in ms."""
        (session,) = await sessions_db.list_active(bench.host.db)
        due_ns = time.time_ns() + int(ahead * 1e9)
        when = iso(datetime.fromtimestamp(due_ns / 1e9, UTC))
        due_ns = int(datetime.fromisoformat(when.replace("Z", "+00:00")).timestamp() * 1e9)  # as stored (ms)
        await scheduling.schedule_task(bench.host.ctx, session, {"prompt": f"ping-{i}", "processAfter": when})
        async with asyncio.timeout(ahead + 60):
            while i not in bench.stamps.delivered_ns:
                await bench.stamps.arrived.wait()
                bench.stamps.arrived.clear()
        return (bench.stamps.delivered_ns[i] - due_ns) / 1e6

    idle: list[float] = []
    stopped: list[float] = []
    async with bench_host(runtime_name, "anthropic", base_image) as bench:
        await bench.send(0)  # creates the session and its container
        i = 1
        for _ in range(n):
            idle.append(await due_task(bench, i, IDLE_AHEAD_S))
            i += 1
        for _ in range(n):
            (session,) = await sessions_db.list_active(bench.host.db)
            await bench.host.waker.stop(session.id, reason="benchmark: no container may run")
            stopped.append(await due_task(bench, i, STOPPED_AHEAD_S))
            i += 1
    print(f"idle lateness ms: {[round(x) for x in idle]}; stopped: {[round(x) for x in stopped]}", file=sys.stderr)
    return {
        "runtime": runtime_name,
        "n": n,
        "idle_late_p50_ms": round(statistics.median(idle), 1),
        "idle_late_max_ms": round(max(idle), 1),
        "stopped_late_p50_ms": round(statistics.median(stopped), 1),
        "stopped_late_max_ms": round(max(stopped), 1),
        "target_ms": 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runtime", default="local")
    parser.add_argument("--n", type=int, default=3)
    parser.add_argument("--base-image", default="localhost/nanoclaw-base:bookworm",
                        help="agent base image (podman; the CI's local one by default)")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.runtime, args.n, args.base_image))))


if __name__ == "__main__":
    main()
