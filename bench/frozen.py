"""The frozen app as a user gets it: binary and .deb size, start to HTTP, start to the window, idle memory.

    .venv/bin/python bench/frozen.py [--binary dist/nanoclaw] [--runs 3] [--idle-seconds 5]

Without ``--binary`` it uses ``dist/nanoclaw``, building it from build.spec first when it is missing (minutes). Then:

- ``binary_mb``: the binary's size; ``deb_mb``: the .deb installers/linux/package.py makes from it (MB = 10^6 bytes).
- ``start_to_http_ms``: ``nanoclaw serve`` launched until ``/health`` answers 200 (median of the runs), in a fresh
  home with no OS keyring. The frozen app has no ``local`` runtime (that needs a Python), so unlike bench/app_start.py
  this includes reaching Podman, as a user's start does (the host starts ``podman system service`` when no socket
  answers).
- ``start_to_window_ms``: ``nanoclaw`` launched on a fresh Xvfb display until its window is mapped (``xdotool search
  --onlyvisible``; scripts/setup_ui_tests.sh installs both), median of the runs.
- ``idle_rss_mb``: the resident memory (MiB) of the app's Python process after ``--idle-seconds`` of idling after
  ``serve`` came up; ``idle_rss_with_loader_mb`` adds the small onefile loader process in front of it.
  ``window_idle_rss_mb`` is the same for the window's process (WebKit's own helper processes not counted).

Targets: binary <= 90 MB, window <= 2500 ms, HTTP <= 2000 ms, idle <= 120 MB. Progress goes to stderr; the last line
printed is one JSON object.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"binary_mb": 90, "start_to_window_ms": 2500, "start_to_http_ms": 2000, "idle_rss_mb": 120}
WAIT_S = 60.0


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


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


def ensure_binary(path: Path | None) -> Path:
    if path is not None:
        return path.resolve()
    binary = ROOT / "dist" / "nanoclaw"
    if not binary.is_file():
        say("building dist/nanoclaw from build.spec (several minutes)")
        subprocess.run([sys.executable, "-m", "PyInstaller", str(ROOT / "build.spec"), "--noconfirm",
                        "--log-level", "WARN"], cwd=ROOT, check=True)
    return binary


def deb_size(binary: Path) -> float:
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run([sys.executable, str(ROOT / "installers" / "linux" / "package.py"), "deb", str(binary),
                               "--out", out], capture_output=True, text=True, check=True)
        return Path(done.stdout.strip()).stat().st_size / 1e6


def app_env(home: str) -> dict[str, str]:
    return {**os.environ, "NANOCLAW_HOME": f"{home}/home", "NANOCLAW_CONFIG_DIR": f"{home}/config",
            "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}


def app_process(started: psutil.Process) -> tuple[psutil.Process, psutil.Process | None]:
    """(the app's Python process, the onefile loader in front of it or None), once the app answers.

    The single file's loader unpacks the program and runs it as its child, from the same file; the folder's program
    is the app itself (its children, such as ``podman system service``, are not).
    """
    same = [child for child in started.children() if child.exe() == started.exe()]
    return (same[0], started) if same else (started, None)


def rss(proc: psutil.Process) -> float:
    return proc.memory_info().rss / 2**20


def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def http_run(binary: Path, idle_seconds: float) -> tuple[float, float, float]:
    """(ms to the first 200 on /health, app RSS after idling, app + loader RSS)."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        proc = subprocess.Popen([str(binary), "serve", "--port", str(port)], env=app_env(tmp),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while health_status(port) != 200:
                if proc.poll() is not None:
                    raise SystemExit(f"nanoclaw serve exited with {proc.returncode} before answering /health")
                if time.perf_counter() - started > WAIT_S:
                    raise SystemExit(f"nanoclaw serve did not answer /health within {WAIT_S:.0f} s")
                time.sleep(0.005)
            start_ms = (time.perf_counter() - started) * 1000
            time.sleep(idle_seconds)
            app, loader = app_process(psutil.Process(proc.pid))
            return start_ms, rss(app), rss(app) + (rss(loader) if loader else 0.0)
        finally:
            stop(proc)


@contextmanager
def xvfb() -> Iterator[str]:
    """A fresh virtual display (its number is one no X server uses yet)."""
    number = next(n for n in range(90, 200) if not Path(f"/tmp/.X{n}-lock").exists())
    display = f":{number}"
    server = subprocess.Popen(["Xvfb", display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not Path(f"/tmp/.X11-unix/X{number}").exists():
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"Xvfb {display} did not start")
            time.sleep(0.02)
        yield display
    finally:
        server.terminate()
        server.wait(10)


def window_mapped(display: str) -> bool:
    found = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", "^NanoClaw$"], capture_output=True,
                           text=True, check=False, env={**os.environ, "DISPLAY": display})
    return bool(found.stdout.strip())


def window_run(binary: Path, display: str, idle_seconds: float) -> tuple[float, float]:
    """(ms until the window is mapped, the window app's RSS after idling)."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**app_env(tmp), "DISPLAY": display}
        env.pop("WAYLAND_DISPLAY", None)
        started = time.perf_counter()
        proc = subprocess.Popen([str(binary), "--port", "0"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            while not window_mapped(display):
                if proc.poll() is not None:
                    raise SystemExit(f"nanoclaw exited with {proc.returncode} before showing its window")
                if time.perf_counter() - started > WAIT_S:
                    raise SystemExit(f"no NanoClaw window was mapped within {WAIT_S:.0f} s")
                time.sleep(0.02)
            window_ms = (time.perf_counter() - started) * 1000
            time.sleep(idle_seconds)
            return window_ms, rss(app_process(psutil.Process(proc.pid))[0])
        finally:
            stop(proc)


def timings(program: Path, runs: int, idle_seconds: float) -> dict[str, object]:
    """Start to HTTP, start to window and idle memory of one program (the folder's or the single file)."""
    result: dict[str, object] = {}
    http = [http_run(program, idle_seconds) for _ in range(runs)]
    say(f"{program}: serve answered /health after {[round(h[0]) for h in http]} ms")
    result["start_to_http_ms"] = round(statistics.median(h[0] for h in http))
    result["start_to_http_ms_runs"] = [round(h[0]) for h in http]
    result["idle_rss_mb"] = round(statistics.median(h[1] for h in http), 1)
    result["idle_rss_with_loader_mb"] = round(statistics.median(h[2] for h in http), 1)
    if shutil.which("Xvfb") and shutil.which("xdotool"):
        with xvfb() as display:
            windows = [window_run(program, display, idle_seconds) for _ in range(runs)]
        say(f"{program}: window mapped after {[round(w[0]) for w in windows]} ms")
        result["start_to_window_ms"] = round(statistics.median(w[0] for w in windows))
        result["start_to_window_ms_runs"] = [round(w[0]) for w in windows]
        result["window_idle_rss_mb"] = round(statistics.median(w[1] for w in windows), 1)
    else:
        say("no Xvfb or xdotool: run scripts/setup_ui_tests.sh to time the window")
        result["start_to_window_ms"] = None
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", type=Path, help="the frozen binary (default: dist/nanoclaw, built if missing)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--idle-seconds", type=float, default=5.0)
    args = parser.parse_args()
    binary = ensure_binary(args.binary)
    folder = binary.parent / "nanoclaw-app"  # build.spec's folder form: what the .deb installs
    installed = folder / "nanoclaw" if (folder / "nanoclaw").is_file() else binary
    packaged = folder if installed != binary else binary
    result: dict[str, object] = {"binary_mb": round(binary.stat().st_size / 1e6, 1)}
    say(f"binary: {result['binary_mb']} MB; packaging the .deb from {packaged}")
    result["deb_mb"] = round(deb_size(packaged), 1)
    # What the .deb installs (the program's folder) is what a user starts; the single file unpacks itself first.
    result["measured"] = "installed folder" if installed != binary else "single file"
    result.update(timings(installed, args.runs, args.idle_seconds))
    if installed != binary:
        onefile = timings(binary, args.runs, args.idle_seconds)
        result["onefile"] = {key: onefile[key] for key in ("start_to_http_ms", "start_to_window_ms", "idle_rss_mb",
                                                            "idle_rss_with_loader_mb")}
    result["targets"] = TARGETS
    result["targets_met"] = all(
        isinstance(result.get(key), int | float) and float(result[key]) <= limit  # type: ignore[arg-type]
        for key, limit in TARGETS.items()
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
