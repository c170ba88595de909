"""The container's half of ``nanoclaw doctor --live``: notice the host's rows as the runner does, answer each at once.

Started instead of the runner, in a container made like a session's. It is woken by :class:`InboundWatcher` (or the
runner's fallback poll), reads with :meth:`SessionDB.pending`, answers every row with one ``outbound.db`` row written
by :meth:`SessionDB.write_messages` (which also acks it) and touches ``.heartbeat``. Each answer carries when the row
was seen and when the answer's write began, so the host can tell both directions apart. It ends on the host's stop
row, or after ``--deadline`` seconds so a host killed mid-check never leaves it running.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import time
from pathlib import Path

from agent_runner.heartbeat import Heartbeat
from agent_runner.inbound_watch import PROBE_SECONDS, ChangeSignal, InboundWatcher
from agent_runner.session_db import NewOutbound, SessionDB

KIND = "live_check"
"""The ``kind`` of every row in both files: nothing else reads a doctor's session."""
EXIT_DEADLINE = 3


def _answer(content: dict[str, object], *, ack: str | None = None) -> tuple[list[NewOutbound], list[str]]:
    return [NewOutbound(kind=KIND, content=json.dumps(content))], [ack] if ack else []


async def run(session_dir: Path, *, deadline: float, poll: float) -> int:
    """Answer rows until the stop row (0) or the deadline (``EXIT_DEADLINE``)."""
    db = SessionDB(session_dir)
    heartbeat = Heartbeat(session_dir / ".heartbeat")
    changes = ChangeSignal()
    watcher = InboundWatcher(session_dir, changes)
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    await watcher.start()
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(PROBE_SECONDS + 1):
                await watcher.ready.wait()
        heartbeat.beat()
        rows, acks = _answer({"ready": True, "backend": watcher.backend, "events": watcher.ready.is_set()})
        await asyncio.to_thread(db.write_messages, rows, complete=acks)
        while loop.time() < end:
            version = changes.version
            for row in await asyncio.to_thread(db.pending, include_on_wake=True, limit=10_000):
                seen_ns = time.time_ns()
                heartbeat.beat()
                asked = json.loads(row.content)
                rows, acks = _answer({"n": asked.get("n"), "seen_ns": seen_ns, "written_ns": time.time_ns()},
                                     ack=row.id)
                await asyncio.to_thread(db.write_messages, rows, complete=acks)
                if asked.get("stop"):
                    return 0
            await changes.wait(version, max(0.0, min(poll, end - loop.time())))
        return EXIT_DEADLINE
    finally:
        await watcher.stop()


def main() -> int:
    """Entry point: ``python -P -s -m agent_runner.live_check``."""
    parser = argparse.ArgumentParser(prog="agent_runner.live_check")
    parser.add_argument("--deadline", type=float, default=120.0)
    parser.add_argument("--poll", type=float, default=2.0, help="the runner's fallback poll, in seconds")
    args = parser.parse_args()
    session_dir = Path(os.environ.get("NANOCLAW_SESSION_DIR", "/workspace"))
    return asyncio.run(run(session_dir, deadline=args.deadline, poll=args.poll))


if __name__ == "__main__":
    raise SystemExit(main())
