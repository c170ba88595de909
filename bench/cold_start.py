"""Cold start on real Podman: a message to a session without a container until the reply is delivered, by phase.

    .venv/bin/python bench/cold_start.py [--n 10] [--provider anthropic|claude|openai] [--no-standby]

Each of the ``n`` runs sends one message to the seeded agent with no container running (the previous run's container
is stopped and its exit awaited first), so every run starts a fresh container of the agent image (built first if
missing, not timed). As the app does after an idle stop, the container is stopped with a standby prepared (created and
initialised, not started: ``runtime/standby.py``), awaited before the next run; ``--no-standby`` creates every container
at the message instead. The model is the instant fake of ``e2e_host``. A run is split at these stamps:

- message routed: the router publishes ``message.routed`` (stamped synchronously in ``host.events.publish``);
- create: the ``POST …/containers/create`` request to Podman starts (every podman-py request is recorded), or with a
  standby the ``POST …/start`` of it;
- the runner's first line and its ``first read of inbound.db`` line: the timestamps Podman's k8s-file log driver
  writes in ``<home>/logs/containers/<session>.log``;
- the fake model receives the request; the channel is asked to deliver the reply.

Phases: ``wake_to_create_ms``, ``container_start_ms`` (create until the runner's first line), ``runner_ready_ms``
(first line until it read the inbox), ``to_model_ms`` (until the model request arrived), ``model_to_delivered_ms``;
they add up to ``cold_ms``. ``engine_ms`` (create until Podman answered the start call) is the engine's part of
``container_start_ms``; the rest is the runner's Python starting up until it logs. The last line printed is one JSON
object with ``{"median": …, "max": …}`` for each, plus the Podman API round trips made per start (and, for the first
start, which, with their durations).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import statistics
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PHASES = ("wake_to_create_ms", "container_start_ms", "runner_ready_ms", "to_model_ms", "model_to_delivered_ms")
READY_LINE = "first read of inbound.db"


def log_time_ns(stamp: str) -> int:
    """Podman's RFC 3339 log time (``2025-01-02T03:04:05.123456789+01:00``, trailing zeros dropped) as epoch ns."""
    whole, zone, fraction = stamp[:19], stamp[19:], ""
    if zone.startswith("."):
        digits = len(zone) - len(zone[1:].lstrip("0123456789")) - 1
        fraction, zone = zone[1 : 1 + digits], zone[1 + digits :]
    seconds = datetime.fromisoformat(whole + ("+00:00" if zone in ("", "Z") else zone)).timestamp()
    return round(seconds) * 1_000_000_000 + int(fraction.ljust(9, "0")[:9])


def runner_lines(text: str) -> list[tuple[int, str]]:
    """(timestamp ns, message) of each runner line in a k8s-file log: ``<time> <stream> <F|P> <message>``."""
    lines = []
    for raw in text.splitlines():
        parts = raw.split(" ", 3)
        if len(parts) == 4 and not parts[3].startswith("[nanoclaw]"):  # the host's own notes are not the runner's
            lines.append((log_time_ns(parts[0]), parts[3]))
    return lines


@contextlib.contextmanager
def recorded_podman_calls() -> Iterator[list[tuple[str, str, int, int]]]:
    """Record (method, path, start ns, end ns) of every podman-py request while open (the bench only, never the app)."""
    from podman.api.client import APIClient

    calls: list[tuple[str, str, int, int]] = []
    original = APIClient._request

    def request(self: APIClient, method: str, path: str | bytes, **kwargs: Any) -> Any:
        start = time.time_ns()
        try:
            return original(self, method, path, **kwargs)
        finally:
            calls.append((method.upper(), path.decode() if isinstance(path, bytes) else path, start, time.time_ns()))

    APIClient._request = request  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        APIClient._request = original  # type: ignore[method-assign]


def shape(path: str) -> str:
    """A call's path with the container/image name or id replaced, so calls of different runs compare equal."""
    parts = path.lstrip("/").split("/")
    if len(parts) >= 3 and parts[0] in ("containers", "images"):
        parts[1] = "{id}"
    return "/" + "/".join(parts)


async def standby_ready(bench: Any, session_id: str) -> None:
    """Wait (up to 30 s) until the session's standby container is prepared: the app makes it after an idle stop."""
    for _ in range(600):
        if bench.host.runtime.has_standby(session_id):
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"no standby container was prepared for session {session_id}")


async def run(n: int, provider: str, base_image: str, standby: bool) -> dict[str, object]:
    from bench.e2e_host import bench_host

    samples: dict[str, list[float]] = {name: [] for name in ("cold_ms", *PHASES, "engine_ms")}
    call_counts: list[int] = []
    call_shapes: list[str] = []
    async with bench_host("podman", provider, base_image) as bench:
        routed: dict[str, tuple[int, dict[str, Any]]] = {}
        publish = bench.host.events.publish

        def stamping_publish(kind: str, **data: Any) -> None:
            if kind == "message.routed":
                routed[str(data.get("message_id"))] = (time.time_ns(), data)
            publish(kind, **data)

        bench.host.events.publish = stamping_publish  # type: ignore[method-assign]
        offsets: dict[Path, int] = {}
        with recorded_podman_calls() as calls:
            first = 1 if standby else 0  # the first start has no standby yet: not counted
            for i in range(first + n):
                calls.clear()
                _, delivered_ns = await bench.send(i)
                start_calls = list(calls)
                routed_ns, data = routed[f"b{i}"]
                session_id = str(data["session_id"])
                await bench.host.waker.stop(session_id, reason="cold-start benchmark: the next run needs a fresh one",
                                            standby=standby)
                if await bench.host.waker.is_running(session_id):
                    raise RuntimeError(f"the container of session {session_id} still runs after stop")
                if standby and i < first + n - 1:
                    await standby_ready(bench, session_id)
                log_path = bench.settings.paths.container_log(session_id)
                with log_path.open("rb") as f:
                    f.seek(offsets.get(log_path, 0))
                    text = f.read().decode(errors="replace")
                    offsets[log_path] = f.tell()
                if i < first:
                    print(f"run {i}: a start without a standby, not counted", file=sys.stderr)
                    continue
                lines = runner_lines(text)
                first_line_ns = lines[0][0]
                ready_ns = next(t for t, message in lines if READY_LINE in message)
                create_ns = next(s for m, p, s, _ in start_calls
                                 if m == "POST" and p.endswith(("containers/create", "/start")))
                model_ns = bench.stamps.model_request_ns[i]
                stamps = [routed_ns, create_ns, first_line_ns, ready_ns, model_ns, delivered_ns]
                for name, (a, b) in zip(PHASES, itertools.pairwise(stamps), strict=True):
                    samples[name].append((b - a) / 1e6)
                samples["cold_ms"].append((delivered_ns - routed_ns) / 1e6)
                started_ns = next(e for m, p, _, e in start_calls if m == "POST" and p.endswith("/start"))
                samples["engine_ms"].append((started_ns - create_ns) / 1e6)
                call_counts.append(len(start_calls))
                if not call_shapes:
                    call_shapes = [f"{m} {shape(p)} {(e - s) / 1e6:.1f}ms" for m, p, s, e in start_calls]
                    for t, message in lines:  # the first counted container's log, in ms after the message was routed
                        print(f"  +{(t - routed_ns) / 1e6:7.1f} ms  {message[:110]}", file=sys.stderr)
                print(f"run {i - first}: " + ", ".join(f"{k} {v[-1]:.0f}" for k, v in samples.items()), file=sys.stderr)
    result: dict[str, object] = {"runtime": "podman", "provider": provider, "standby": standby, "n": n}
    for name, values in samples.items():
        result[name] = {"median": round(statistics.median(values), 1), "max": round(max(values), 1)}
    result["podman_calls_per_start"] = round(statistics.median(call_counts), 1)
    result["podman_calls_first_start"] = call_shapes
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10)
    parser.add_argument("--provider", default="anthropic", choices=["anthropic", "claude", "openai"])
    parser.add_argument("--no-standby", action="store_true",
                        help="create each container at the message (no standby prepared after the stop)")
    parser.add_argument("--base-image", default="localhost/nanoclaw-base:bookworm",
                        help="agent base image (the CI's local one by default)")
    args = parser.parse_args()
    if args.n < 1:
        raise SystemExit("--n must be at least 1")
    print(json.dumps(asyncio.run(run(args.n, args.provider, args.base_image, not args.no_standby))))


if __name__ == "__main__":
    main()
