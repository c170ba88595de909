"""Router throughput: N chat messages through the adapter callback path into session inbound DBs.

Run from the repo root: ``.venv/bin/python bench/route_throughput.py [--n 2000] [--concurrency 1] [--profile]``.
One agent is wired (pattern ``.``, so every message is delivered and wakes) to a few group chats with several member
senders; the waker is a no-op, so this measures routing and the session-DB write, not containers. The last line of
output is one JSON object: ``{"routed_per_s", "route_p50_ms", "route_p99_ms", "n"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from nanoclaw_app.core.adapter_contract import ChannelRegistry  # noqa: E402
from nanoclaw_app.core.context import CoreContext  # noqa: E402
from nanoclaw_app.core.events import EventBus  # noqa: E402
from nanoclaw_app.core.messages import InboundMessage  # noqa: E402
from nanoclaw_app.core.router import NoApprovals, Router  # noqa: E402
from nanoclaw_app.db import agents, messaging, users  # noqa: E402
from nanoclaw_app.db.database import Database  # noqa: E402
from nanoclaw_app.db.messaging import WiringSpec  # noqa: E402
from nanoclaw_app.db.migrate import migrate  # noqa: E402
from nanoclaw_app.db.rows import Session  # noqa: E402
from nanoclaw_app.paths import Paths  # noqa: E402
from nanoclaw_app.sessions.store import SessionStore  # noqa: E402
from nanoclaw_app.settings import load_settings  # noqa: E402
from tests.fakes.channel import FakeChannel  # noqa: E402

CHATS = 4
SENDERS = 6


class NoopWaker:
    """A waker that starts nothing."""

    async def wake(self, session: Session) -> bool:
        return True

    async def is_running(self, session_id: str) -> bool:
        return False

    async def stop(self, session_id: str, *, reason: str) -> None:
        return None


class Callbacks:
    """The host callbacks an adapter sees, routing straight into the router."""

    def __init__(self, router: Router) -> None:
        self._router = router

    async def on_inbound(self, message: InboundMessage) -> None:
        await self._router.on_inbound(message)

    async def on_metadata(self, channel_type: str, platform_id: str, name: str | None, is_group: bool) -> None:
        return None

    async def on_action(self, question_id: str, value: str, user_id: str) -> None:
        return None


def message(i: int, chat: int) -> InboundMessage:
    sender = i % SENDERS
    return InboundMessage(
        channel_type="test", platform_id=f"grp-{chat}", message_id=f"bench-{i}", sender_id=f"user{sender}",
        text=f"message number {i}: how is the weather today?", sender_name=f"User {sender}", is_group=True,
    )


async def bench(n: int, concurrency: int) -> dict[str, float | int]:
    with tempfile.TemporaryDirectory(prefix="nanoclaw-bench-") as tmp:
        os.environ["NANOCLAW_HOME"] = str(Path(tmp) / "home")
        os.environ["NANOCLAW_CONFIG_DIR"] = str(Path(tmp) / "config")
        paths = Paths.from_env()
        paths.ensure()
        settings = load_settings(paths, timezone="UTC")
        db = Database(paths.central_db)
        await db.open()
        store = SessionStore(paths.sessions)
        await store.start()
        try:
            await migrate(db)
            channel = FakeChannel()
            registry = ChannelRegistry()
            registry.add(channel)
            ctx = CoreContext(settings=settings, db=db, store=store, channels=registry, waker=NoopWaker(),
                              events=EventBus())
            router = Router(ctx, NoApprovals())
            ctx.route = router.on_inbound
            await channel.setup(Callbacks(router))

            agent = await agents.create(db, "Bench")
            for c in range(CHATS):
                chat = await messaging.create(db, "test", f"grp-{c}", name=f"Group {c}", is_group=True)
                await messaging.wire(db, chat.id, agent.id, WiringSpec("pattern", "."))
            for s in range(SENDERS):
                await users.upsert(db, f"test:user{s}", "test", f"User {s}")
                await users.add_member(db, f"test:user{s}", agent.id)
            for c in range(CHATS):  # warm up: sessions and folders exist before timing
                await channel.inject(message(-1 - c, c))

            latencies: list[float] = []

            async def stream(worker: int) -> None:
                for i in range(worker, n, concurrency):
                    start = time.perf_counter()
                    await channel.inject(message(i, i % CHATS))
                    latencies.append(time.perf_counter() - start)

            began, cpu_began = time.perf_counter(), time.process_time()
            await asyncio.gather(*(stream(w) for w in range(concurrency)))
            elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu_began

            stored = await db.fetchval("SELECT COUNT(*) FROM sessions")
            dropped = await db.fetchval("SELECT COALESCE(SUM(message_count), 0) FROM dropped_messages")
            if dropped:
                raise SystemExit(f"bench setup is wrong: {dropped} messages were dropped")
            print(f"# {n} messages, {CHATS} chats, {SENDERS} senders, {stored} sessions, concurrency {concurrency},"
                  f" {elapsed:.2f}s wall, {cpu / n * 1000:.3f} ms CPU per message (all threads)", file=sys.stderr)
        finally:
            await store.close()
            await db.close()

    ordered = sorted(latencies)
    return {
        "routed_per_s": round(n / elapsed, 1),
        "route_p50_ms": round(statistics.median(ordered) * 1000, 3),
        "route_p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 3),
        "n": n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="messages to route")
    parser.add_argument("--concurrency", type=int, default=1, help="parallel adapter streams")
    parser.add_argument("--profile", action="store_true", help="print the top of a cProfile run to stderr")
    args = parser.parse_args()
    if args.profile:
        profiler = cProfile.Profile()
        result = profiler.runcall(asyncio.run, bench(args.n, max(1, args.concurrency)))
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(35)
    else:
        result = asyncio.run(bench(args.n, max(1, args.concurrency)))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
