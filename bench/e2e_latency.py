"""Added latency from the adapter callback to the adapter's deliver call, with a model that answers instantly.

    .venv/bin/python bench/e2e_latency.py --runtime local [--n 100]
    .venv/bin/python bench/e2e_latency.py --runtime podman [--n 100] [--provider anthropic|claude|openai]

The whole real path runs: router → inbound.db → runner (woken by inotify) → the provider over HTTP to a fake model
server on 127.0.0.1 → outbound.db → host file watcher → delivery → adapter. With ``local`` the runner is a subprocess
that calls the fake directly; with ``podman`` it runs in a fresh container of the agent image (built first if missing,
not timed) and calls the fake through the host's model gateway over the mounted unix socket, as in the app. The last
line printed is one JSON object: runtime, n, cold_ms (first message, no container yet), warm_p50_ms, warm_p99_ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


async def run(runtime_name: str, n: int, provider: str, base_image: str) -> dict[str, object]:
    from bench.e2e_host import bench_host

    samples: list[float] = []
    async with bench_host(runtime_name, provider, base_image) as bench:
        for i in range(n + 1):
            start_ns, delivered_ns = await bench.send(i)
            samples.append((delivered_ns - start_ns) / 1e6)
    cold, warm = samples[0], samples[1:]
    return {
        "runtime": runtime_name,
        "provider": provider,
        "n": len(warm),
        "cold_ms": round(cold, 1),
        "warm_p50_ms": round(statistics.median(warm), 2),
        "warm_p99_ms": round(percentile(warm, 0.99), 2),
        "warm_max_ms": round(max(warm), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runtime", default="local")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--provider", default="anthropic", choices=["anthropic", "claude", "openai"])
    parser.add_argument("--base-image", default="localhost/nanoclaw-base:bookworm",
                        help="agent base image (podman; the CI's local one by default)")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.runtime, args.n, args.provider, args.base_image))))


if __name__ == "__main__":
    main()
