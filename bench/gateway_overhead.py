"""Per-call overhead of the model gateway: small non-streaming Messages calls to FakeAnthropic, direct vs. through it.

Run from the repo root: ``.venv/bin/python bench/gateway_overhead.py [--n 200] [--warmup 20]``.
The same HTTP client (``httpx2``, what the runner's SDKs use) posts the same small request sequentially, first straight
to the fake, then through a real ``ModelGateway`` over a container's own listener (unix socket, then loopback TCP), as
a container reaches it; the gateway does all its real work (token and listener check, endpoint allow-list, key from a
memory keyring, spend-cap check, forwarding, metering, one ``usage`` row per call).
The last line of output is one JSON object: p50/p99 per path and the added p50/p99 in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx2

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from nanoclaw_app.core.events import EventBus  # noqa: E402
from nanoclaw_app.db.database import Database  # noqa: E402
from nanoclaw_app.db.migrate import migrate  # noqa: E402
from nanoclaw_app.gateway.server import ModelGateway  # noqa: E402
from nanoclaw_app.paths import Paths  # noqa: E402
from nanoclaw_app.secrets.store import SecretStore  # noqa: E402
from nanoclaw_app.settings import load_settings  # noqa: E402
from tests.fakes.anthropic_server import FakeAnthropic  # noqa: E402
from tests.fakes.keyring import MemoryKeyring  # noqa: E402

BODY = {"model": "claude-sonnet-4-6", "max_tokens": 16, "messages": [{"role": "user", "content": "ping"}]}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def timed(client: httpx2.AsyncClient, url: str, key: str, n: int, warmup: int) -> list[float]:
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    samples: list[float] = []
    for i in range(warmup + n):
        start = time.perf_counter()
        response = await client.post(url, json=BODY, headers=headers)
        elapsed = (time.perf_counter() - start) * 1000
        if response.status_code != 200:
            raise SystemExit(f"call failed: {response.status_code} {response.text}")
        if i >= warmup:
            samples.append(elapsed)
    return samples


async def through_gateway(transport: str, fake: FakeAnthropic, home: Path, n: int, warmup: int) -> list[float]:
    paths = Paths(home=home / transport, config=home / f"{transport}-config")
    paths.ensure()
    settings = load_settings(paths, timezone="UTC", anthropic_base_url=fake.url, gateway_transport=transport)
    secrets = SecretStore(MemoryKeyring())
    await secrets.set("anthropic_api_key", "sk-ant-bench")
    async with Database(paths.central_db) as db:
        await migrate(db)
        gateway = ModelGateway(settings=settings, db=db, secrets=secrets, events=EventBus())
        await gateway.start()
        try:
            access = await gateway.attach("bench-session", "bench-agent", "anthropic")  # a container's own listener
            if transport == "unix":
                assert access.socket_path is not None
                client = httpx2.AsyncClient(transport=httpx2.AsyncHTTPTransport(uds=str(access.socket_path)))
                url = "http://gateway/anthropic/v1/messages"
            else:
                client = httpx2.AsyncClient()
                url = f"http://127.0.0.1:{access.port}/anthropic/v1/messages"
            async with client:
                samples = await timed(client, url, access.token, n, warmup)
        finally:
            await gateway.stop()  # returns once every call's usage row is written
        recorded = await db.fetchval("SELECT COUNT(*) FROM usage")
        if recorded != n + warmup:
            raise SystemExit(f"expected {n + warmup} usage rows, found {recorded}")
        return samples


async def run(n: int, warmup: int) -> dict[str, object]:
    logging.disable(logging.INFO)  # per-request INFO lines of httpx would be measured too
    fake = FakeAnthropic()
    await fake.start()
    try:
        async with httpx2.AsyncClient() as client:
            direct = await timed(client, f"{fake.url}/v1/messages", "sk-ant-bench", n, warmup)
        with tempfile.TemporaryDirectory(prefix="nc-bench-") as tmp:
            unix = await through_gateway("unix", fake, Path(tmp), n, warmup)
            tcp = await through_gateway("tcp", fake, Path(tmp), n, warmup)
    finally:
        await fake.stop()
    result: dict[str, object] = {"n": n}
    for name, samples in (("direct", direct), ("unix", unix), ("tcp", tcp)):
        result[f"{name}_p50_ms"] = round(statistics.median(samples), 3)
        result[f"{name}_p99_ms"] = round(percentile(samples, 0.99), 3)
    for name, samples in (("unix", unix), ("tcp", tcp)):
        result[f"overhead_{name}_p50_ms"] = round(statistics.median(samples) - statistics.median(direct), 3)
        result[f"overhead_{name}_p99_ms"] = round(percentile(samples, 0.99) - percentile(direct, 0.99), 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.n, args.warmup))))


if __name__ == "__main__":
    main()
