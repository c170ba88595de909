"""Added latency per request through the egress proxy: direct vs. plain tunnel vs. TLS terminated + credential added.

Run from the repo root: ``.venv/bin/python bench/egress_overhead.py [--n 500] [--warmup 20]``.
Three processes, as in real use: the fake HTTPS API (``tests/fakes/https_api.py``, its own CA), a real
``EgressServer`` (a container's own loopback listener, a bench policy that adds a bearer token in the injection mode),
and this client (httpx, keep-alive, one connection per mode, small GETs). ``tunnel`` is a host without a credential
(bytes passed through); ``inject`` has the proxy terminate TLS, ask the policy, add the credential and re-encrypt.
The last line of output is one JSON object with p50/p99 per mode and the added p50/p99 in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from nanoclaw_app.egress.caller_token import proxy_url  # noqa: E402
from nanoclaw_app.egress.policy import Caller, ConnectPlan, EgressRecord, Injection, RequestVerdict  # noqa: E402
from nanoclaw_app.egress.server import EgressServer  # noqa: E402
from tests.fakes.https_api import FakeHttpsApi  # noqa: E402

TOKEN = "sk-bench-token"


class BenchPolicy:
    """Intercepts (and adds a bearer token) only for the port given; records are counted, as the app would keep them."""

    def __init__(self, inject_port: int) -> None:
        self.inject_port = inject_port
        self.records = 0

    async def plan_connect(self, caller: Caller, host: str, port: int) -> ConnectPlan:
        return ConnectPlan(intercept=port == self.inject_port)

    async def authorize(self, caller: Caller, method: str, host: str, port: int, path: str) -> RequestVerdict:
        return RequestVerdict(injection=Injection("bearer", "", TOKEN), credential_id="bench", credential_name="b")

    def record(self, record: EgressRecord) -> None:
        self.records += 1


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def serve_fake() -> None:
    """Two fake APIs (one tunnelled, one intercepted); prints their ports and CA files, serves until stdin ends."""
    tunnel, inject = FakeHttpsApi(), FakeHttpsApi()
    await tunnel.start()
    await inject.start()
    print(json.dumps({"tunnel_port": tunnel.port, "inject_port": inject.port, "tunnel_ca": str(tunnel.ca_file),
                      "inject_ca": str(inject.ca_file)}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await tunnel.stop()
    await inject.stop()


async def serve_proxy(fake: dict[str, str]) -> None:
    """The egress server with a tcp listener for one container; prints its port and CA bundle."""
    logging.disable(logging.INFO)
    policy = BenchPolicy(int(fake["inject_port"]))
    with tempfile.TemporaryDirectory(prefix="nc-egress-bench-") as tmp:
        ports = (fake["tunnel_port"], fake["inject_port"])
        server = EgressServer(policy, ca_folder=Path(tmp) / "ca", run_dir=Path(tmp) / "run", transport="tcp",
                              exceptions=[f"127.0.0.1:{port}" for port in ports], extra_ca_file=fake["inject_ca"])
        await server.start()
        access = await server.attach("bench-session", "bench-agent")
        assert access.port is not None
        assert access.token is not None
        url = proxy_url("127.0.0.1", access.port, access.token)
        print(json.dumps({"url": url, "bundle": str(server.bundle_path)}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await server.stop()


def timed(client: httpx.Client, url: str, n: int, warmup: int, check: str | None = None) -> list[float]:
    samples: list[float] = []
    for i in range(warmup + n):
        start = time.perf_counter()
        response = client.get(url)
        elapsed = (time.perf_counter() - start) * 1000
        if response.status_code != 200:
            raise SystemExit(f"request failed: {response.status_code} {response.text}")
        if i >= warmup:
            samples.append(elapsed)
    if check is not None and response.json()["headers"].get("authorization") != check:
        raise SystemExit("the credential did not arrive")
    return samples


def child(*args: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    process = subprocess.Popen([sys.executable, __file__, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True)
    assert process.stdout is not None
    return process, json.loads(process.stdout.readline())


def run(n: int, warmup: int) -> dict[str, object]:
    fake_process, fake = child("--serve-fake")
    proxy_process, proxy = child("--serve-proxy", json.dumps(fake))
    try:
        via = proxy["url"]  # the container's address: its token as the password
        fake_ca = ssl.create_default_context(cafile=fake["tunnel_ca"])
        bundle = ssl.create_default_context(cafile=proxy["bundle"])
        tunnel_url = f"https://127.0.0.1:{fake['tunnel_port']}/echo"
        inject_url = f"https://127.0.0.1:{fake['inject_port']}/echo"
        with httpx.Client(verify=fake_ca, trust_env=False) as client:
            direct = timed(client, tunnel_url, n, warmup)
        with httpx.Client(verify=fake_ca, proxy=via, trust_env=False) as client:
            tunnel = timed(client, tunnel_url, n, warmup)
        with httpx.Client(verify=bundle, proxy=via, trust_env=False) as client:
            inject = timed(client, inject_url, n, warmup, check=f"Bearer {TOKEN}")
    finally:
        for process in (proxy_process, fake_process):
            assert process.stdin is not None
            process.stdin.close()
            process.wait(10)
    direct_p50, direct_p99 = statistics.median(direct), percentile(direct, 0.99)
    result: dict[str, object] = {"direct_p50_ms": round(direct_p50, 3), "direct_p99_ms": round(direct_p99, 3)}
    for name, samples in (("tunnel", tunnel), ("inject", inject)):
        result[f"{name}_p50_ms"] = round(statistics.median(samples), 3)
        result[f"{name}_added_p50_ms"] = round(statistics.median(samples) - direct_p50, 3)
        result[f"{name}_added_p99_ms"] = round(percentile(samples, 0.99) - direct_p99, 3)
    result["n"] = n
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--serve-fake", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-proxy", metavar="FAKE_JSON", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_fake:
        asyncio.run(serve_fake())
    elif args.serve_proxy:
        asyncio.run(serve_proxy(json.loads(args.serve_proxy)))
    else:
        print(json.dumps(run(args.n, args.warmup)))


if __name__ == "__main__":
    main()
