"""Idle CPU and event latency of the file watchers: watchfiles (``step=2`` ms) against inotify.

    .venv/bin/python bench/watch_idle.py [--sessions 10] [--seconds 10] [--writes 100] [--variants a,b,...]

Every variant runs in its own child process, so one's threads cannot bill the other's CPU time. A child builds a
sessions tree (``<root>/<agent>/<session>/`` with both DBs, as ``SessionStore.create`` makes it), starts the watcher,
waits until it is ready, then measures its own CPU time (all threads) over an idle window, then commits to a session
DB ``--writes`` times, one at a time, the way the other side does, and times each commit's return to the callback.

Variants: ``baseline`` (an idle asyncio loop, no watcher), ``host_watchfiles`` (``OutboundWatcher`` with inotify
off: watchfiles, step 2 ms, as before), ``host_inotify``, ``host_polling`` (the stat fallback used when the kernel
refuses inotify), and ``runner_watchfiles``/``runner_inotify`` (the ``InboundWatcher`` in each agent container, on one
session folder). The last line printed is one JSON object: per variant ``idle_cpu_pct`` (percent of one core) and the
latency ``p50_ms``/``p95_ms``/``max_ms``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VARIANTS = ["baseline", "host_watchfiles", "host_inotify", "host_polling", "runner_watchfiles", "runner_inotify"]
SETTLE_SECONDS = 0.02
"""Pause between timed writes, so a straggling second batch of one write is not taken for the next one's."""


def make_tree(root: Path, sessions: int) -> list[Path]:
    from agent_runner.protocol import INBOUND_SCHEMA, OUTBOUND_SCHEMA

    folders = []
    for i in range(sessions):
        folder = root / f"ag-{i % 3}" / f"sess-{i}"
        for sub in ("inbox", "outbox"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        for name, schema in (("inbound.db", INBOUND_SCHEMA), ("outbound.db", OUTBOUND_SCHEMA)):
            conn = sqlite3.connect(folder / name)
            conn.execute("PRAGMA journal_mode=DELETE")
            conn.executescript(schema)
            conn.commit()
            conn.close()
        folders.append(folder)
    return folders


def commit(db: Path, n: int) -> None:
    """One small write transaction (open, commit, close), as a container or the host makes."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (f"bench-{n}", str(n)))
        conn.execute("COMMIT")
    finally:
        conn.close()


async def idle_cpu(seconds: float) -> float:
    start_cpu, start = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    return 100.0 * (time.process_time() - start_cpu) / (time.perf_counter() - start)


async def timed_writes(db: Path, writes: int, woken: asyncio.Event, jitter: float = 0.0) -> list[float]:
    """``jitter`` spreads the writes over a polling interval (else each would land at the same phase of it)."""
    latencies = []
    rng = random.Random(4)
    for n in range(writes):
        await asyncio.sleep(SETTLE_SECONDS + rng.random() * jitter)
        woken.clear()
        commit(db, n)
        start = time.perf_counter()
        async with asyncio.timeout(10):
            await woken.wait()
        latencies.append((time.perf_counter() - start) * 1000)
    return latencies


async def child(variant: str, sessions: int, seconds: float, writes: int) -> dict[str, Any]:
    from agent_runner import inbound_watch
    from nanoclaw_app.core import watcher as host_watch

    with tempfile.TemporaryDirectory(prefix="nc-watch-") as tmp:
        root = Path(tmp) / "sessions"
        folders = make_tree(root, sessions)
        woken = asyncio.Event()
        result: dict[str, Any] = {}
        if variant == "baseline":
            result["idle_cpu_pct"] = round(await idle_cpu(seconds), 3)
            return result
        if variant.startswith("host_"):
            if variant == "host_polling":
                def refuse() -> None:
                    raise host_watch.InotifyRefused("refused for the benchmark")
                host_watch.open_inotify = refuse  # type: ignore[assignment]

            async def on_change(session_id: str) -> None:
                woken.set()

            watcher = host_watch.OutboundWatcher(root, on_change, inotify=variant != "host_watchfiles")
            await watcher.start()
            async with asyncio.timeout(10):
                await watcher.wait_ready()
            result["backend"] = watcher.backend
            try:
                result["idle_cpu_pct"] = round(await idle_cpu(seconds), 3)
                jitter = host_watch.FALLBACK_POLL_MS / 1000 if watcher.backend == "polling" else 0.0
                latencies = await timed_writes(folders[0] / "outbound.db", writes, woken, jitter)
            finally:
                await watcher.stop()
        else:
            class Signal(inbound_watch.ChangeSignal):
                def notify(self) -> None:
                    super().notify()
                    woken.set()

            runner = inbound_watch.InboundWatcher(folders[0], Signal(), inotify=variant == "runner_inotify")
            await runner.start()
            async with asyncio.timeout(10):
                await runner.ready.wait()
            result["backend"] = runner.backend
            try:
                result["idle_cpu_pct"] = round(await idle_cpu(seconds), 3)
                latencies = await timed_writes(folders[0] / "inbound.db", writes, woken)
            finally:
                await runner.stop()
        ordered = sorted(latencies)
        result["p50_ms"] = round(statistics.median(ordered), 2)
        result["p95_ms"] = round(ordered[int(0.95 * (len(ordered) - 1))], 2)
        result["max_ms"] = round(ordered[-1], 2)
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--writes", type=int, default=100)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(child(args.child, args.sessions, args.seconds, args.writes))))
        return
    results: dict[str, Any] = {"sessions": args.sessions, "seconds": args.seconds, "writes": args.writes}
    for variant in args.variants.split(","):
        out = subprocess.run(
            [sys.executable, __file__, "--child", variant, "--sessions", str(args.sessions),
             "--seconds", str(args.seconds), "--writes", str(args.writes)],
            cwd=ROOT, capture_output=True, text=True, check=True,
        )
        results[variant] = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{variant}: {results[variant]}", file=sys.stderr, flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
