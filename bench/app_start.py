"""App start: launching ``nanoclaw serve`` (from source) to the first HTTP 200 on ``/health``, and the idle RSS after.

    .venv/bin/python bench/app_start.py [--runs 5] [--idle-seconds 5]

Each run starts ``python -m nanoclaw_app serve --port <free port>`` in a fresh ``NANOCLAW_HOME`` with
``runtime=local`` (no container engine to wait for) and no OS keyring, polls ``/health`` until it answers 200, lets
the process sit idle, reads its RSS with psutil and stops it with SIGINT. The first run also pays for a cold page
cache, so the median is the number to compare. Targets: start_to_http_ms <= 1500, idle_rss_mb <= 120.
The last line printed is one JSON object: runs, start_to_http_ms (median), start_to_http_ms_runs, idle_rss_mb
(median), idle_rss_mb_runs, exit_codes, targets_met.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
TARGET_START_MS = 1500
TARGET_RSS_MB = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def health_status(port: int) -> int | None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/health")
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()


def one_run(idle_seconds: float) -> tuple[float, float, int]:
    """(ms to the first 200, idle RSS in MB, exit code after SIGINT)."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "NANOCLAW_HOME": f"{tmp}/home",
            "NANOCLAW_CONFIG_DIR": f"{tmp}/config",
            "NANOCLAW_RUNTIME": "local",
            "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
        }
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "nanoclaw_app", "serve", "--port", str(port)], cwd=ROOT,
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while health_status(port) != 200:
                if proc.poll() is not None:
                    raise SystemExit(f"nanoclaw serve exited with {proc.returncode} before answering /health")
                if time.perf_counter() - started > 60:
                    raise SystemExit("nanoclaw serve did not answer /health within 60 s")
                time.sleep(0.005)
            start_ms = (time.perf_counter() - started) * 1000
            time.sleep(idle_seconds)
            rss_mb = psutil.Process(proc.pid).memory_info().rss / 2**20
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                code = proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
    return start_ms, rss_mb, code


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--idle-seconds", type=float, default=5.0)
    args = parser.parse_args()
    starts: list[float] = []
    rss: list[float] = []
    codes: list[int] = []
    for _ in range(args.runs):
        start_ms, rss_mb, code = one_run(args.idle_seconds)
        starts.append(start_ms)
        rss.append(rss_mb)
        codes.append(code)
    median_start = statistics.median(starts)
    median_rss = statistics.median(rss)
    print(json.dumps({
        "runs": args.runs,
        "start_to_http_ms": round(median_start),
        "start_to_http_ms_runs": [round(v) for v in starts],
        "idle_rss_mb": round(median_rss, 1),
        "idle_rss_mb_runs": [round(v, 1) for v in rss],
        "exit_codes": codes,
        "targets_met": median_start <= TARGET_START_MS and median_rss <= TARGET_RSS_MB,
    }))


if __name__ == "__main__":
    main()
